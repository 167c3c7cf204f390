//! Orders, quota and budgets from the engine to proto messages, shared by the store
//! service (outlets) and the hub service.

use mart_proto::v1 as pb;

use super::convert;
use crate::engine::{BudgetStatus, OrderInfo, QuotaInfo};

pub fn order_to_pb(o: OrderInfo) -> pb::Order {
    pb::Order {
        id: o.order.id,
        outlet: o.outlet.to_string(),
        sku: o.order.sku,
        quantity: o.order.quantity,
        unit_price_rupiah: o.order.unit_price,
        buyer: convert::buyer_to_pb(o.order.buyer) as i32,
        placed_at_unix_ms: o.order.at_ms,
        status: o.status.to_string(),
        duplicate: o.duplicate,
    }
}

pub fn quota_to_pb(q: QuotaInfo) -> pb::QuotaLine {
    pb::QuotaLine {
        outlet: q.outlet,
        sku: q.sku,
        granted: q.granted,
        accepted: q.accepted,
        fulfilled: q.fulfilled,
        cancelled: q.cancelled,
        released: q.released,
        available: q.available,
        reserved: q.reserved,
        pending_returns: q.pending_returns,
    }
}

pub fn budget_to_pb(b: BudgetStatus) -> pb::BudgetLine {
    pb::BudgetLine {
        remaining_rupiah: b.remaining(),
        allocated: b.allocated.is_some(),
        allocated_rupiah: b.allocated.unwrap_or(0),
        spent_rupiah: b.spent,
        over_budget: b
            .over_budget
            .into_iter()
            .map(|o| pb::OverBudgetReceipt {
                movement_id: o.movement_id,
                cost_rupiah: o.cost,
                reason: o.reason,
            })
            .collect(),
        district: b.district,
        year: b.year,
    }
}
