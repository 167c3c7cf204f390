//! `nttmart.v1.MartService`: catalog, movements and stock of this node.

use std::sync::Arc;

use mart_proto::tonic::{self, Request, Response, Status, Streaming};
use mart_proto::v1 as pb;
use pb::mart_service_server::MartService;
use tokio_stream::wrappers::ReceiverStream;

use super::accept;
use super::convert::{self, ack_to_pb};
use super::escrow;
use super::sales;
use super::status::{invalid, to_status};
use crate::domain::movement::MovementKind;
use crate::domain::sales_report::DateRange;
use crate::engine::{Engine, MovementRequest};

/// The store operations, served over gRPC.
#[derive(Clone)]
pub struct MartApi {
    engine: Arc<Engine>,
}

impl MartApi {
    pub fn new(engine: Arc<Engine>) -> Self {
        MartApi { engine }
    }

    async fn record(
        &self,
        request_id: String,
        sku: String,
        kind: MovementKind,
    ) -> Result<Response<pb::MovementAck>, Status> {
        let request = MovementRequest {
            request_id: Some(request_id),
            sku,
            kind,
        };
        acked(self.engine.record(request)).await
    }
}

/// The answer to a call that records a movement.
async fn acked(
    outcome: impl std::future::Future<
        Output = Result<crate::engine::MovementAck, crate::engine::EngineError>,
    >,
) -> Result<Response<pb::MovementAck>, Status> {
    Ok(Response::new(ack_to_pb(outcome.await.map_err(to_status)?)))
}

pub(super) fn non_empty(value: String) -> Option<String> {
    Some(value).filter(|v| !v.is_empty())
}

#[tonic::async_trait]
impl MartService for MartApi {
    async fn add_producer(
        &self,
        request: Request<pb::AddProducerRequest>,
    ) -> Result<Response<pb::Producer>, Status> {
        let producer = convert::producer_from_pb(accept(request)?.producer)?;
        let (producer, doc) = self
            .engine
            .add_producer(producer)
            .await
            .map_err(to_status)?;
        Ok(Response::new(convert::producer_to_pb(&producer, &doc)))
    }

    async fn list_producers(
        &self,
        request: Request<pb::ListProducersRequest>,
    ) -> Result<Response<pb::ListProducersResponse>, Status> {
        let district = non_empty(accept(request)?.district);
        let producers = self
            .engine
            .producers(district.as_deref())
            .iter()
            .map(|(p, doc)| convert::producer_to_pb(p, doc))
            .collect();
        Ok(Response::new(pb::ListProducersResponse { producers }))
    }

    async fn add_product(
        &self,
        request: Request<pb::AddProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let product = convert::product_from_pb(accept(request)?.product)?;
        let (product, doc) = self.engine.add_product(product).await.map_err(to_status)?;
        Ok(Response::new(convert::product_to_pb(&product, &doc)))
    }

    async fn update_product(
        &self,
        request: Request<pb::UpdateProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let product = convert::product_from_pb(accept(request)?.product)?;
        let (product, doc) = self
            .engine
            .update_product(product)
            .await
            .map_err(to_status)?;
        Ok(Response::new(convert::product_to_pb(&product, &doc)))
    }

    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        let category = non_empty(accept(request)?.category);
        let products = self
            .engine
            .products(category.as_deref())
            .iter()
            .map(|(p, doc)| convert::product_to_pb(p, doc))
            .collect();
        Ok(Response::new(pb::ListProductsResponse { products }))
    }

    async fn get_product(
        &self,
        request: Request<pb::GetProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let (product, doc) = self
            .engine
            .product(&accept(request)?.sku)
            .map_err(to_status)?;
        Ok(Response::new(convert::product_to_pb(&product, &doc)))
    }

    async fn record_receipt(
        &self,
        request: Request<pb::ReceiptRequest>,
    ) -> Result<Response<pb::MovementAck>, Status> {
        let r = accept(request)?;
        let kind = MovementKind::Receipt {
            quantity: r.quantity,
            unit_cost: r.unit_cost_rupiah,
            producer: non_empty(r.producer_id),
            over_budget: non_empty(r.over_budget_reason),
        };
        self.record(r.request_id, r.sku, kind).await
    }

    async fn record_sale(
        &self,
        request: Request<pb::SaleRequest>,
    ) -> Result<Response<pb::MovementAck>, Status> {
        let r = accept(request)?;
        Ok(Response::new(sales::record_sale(&self.engine, r).await?))
    }

    type RecordSalesStream = ReceiverStream<Result<pb::SaleResult, Status>>;

    async fn record_sales(
        &self,
        request: Request<Streaming<pb::SaleRequest>>,
    ) -> Result<Response<Self::RecordSalesStream>, Status> {
        Ok(Response::new(sales::record_stream(
            self.engine.clone(),
            request.into_inner(),
        )))
    }

    async fn record_adjustment(
        &self,
        request: Request<pb::AdjustmentRequest>,
    ) -> Result<Response<pb::MovementAck>, Status> {
        let r = accept(request)?;
        let kind = MovementKind::Adjustment {
            delta: r.quantity,
            reason: convert::reason(r.reason)?,
            note: r.note,
        };
        self.record(r.request_id, r.sku, kind).await
    }

    async fn record_transfer_out(
        &self,
        request: Request<pb::TransferOutRequest>,
    ) -> Result<Response<pb::MovementAck>, Status> {
        let r = accept(request)?;
        let kind = MovementKind::TransferOut {
            quantity: r.quantity,
            transfer_id: r.transfer_id,
            to: r.to_outlet,
        };
        self.record(r.request_id, r.sku, kind).await
    }

    async fn record_transfer_in(
        &self,
        request: Request<pb::TransferInRequest>,
    ) -> Result<Response<pb::MovementAck>, Status> {
        let r = accept(request)?;
        let kind = MovementKind::TransferIn {
            quantity: r.quantity,
            transfer_id: r.transfer_id,
            from: r.from_outlet,
        };
        self.record(r.request_id, r.sku, kind).await
    }

    async fn get_stock(
        &self,
        request: Request<pb::StockRequest>,
    ) -> Result<Response<pb::StockResponse>, Status> {
        let r = accept(request)?;
        let (sku, outlet) = (non_empty(r.sku), non_empty(r.outlet));
        let levels = self
            .engine
            .durable_read(|e| e.stock(outlet.as_deref(), sku.as_deref()))
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::StockResponse {
            outlet: outlet.unwrap_or_else(|| self.engine.identity().node.to_string()),
            levels: levels.into_iter().map(convert::stock_to_pb).collect(),
        }))
    }

    async fn list_movements(
        &self,
        request: Request<pb::ListMovementsRequest>,
    ) -> Result<Response<pb::ListMovementsResponse>, Status> {
        let r = accept(request)?;
        let (sku, outlet) = (non_empty(r.sku), non_empty(r.outlet));
        let range = match (non_empty(r.from), non_empty(r.to)) {
            (None, None) => None,
            (Some(from), Some(to)) if r.period.trim().is_empty() => {
                Some(DateRange::parse(&from, &to).map_err(|e| to_status(e.into()))?)
            }
            (Some(_), Some(_)) => {
                return Err(invalid("period", "give from and to, or a period, not both"))
            }
            _ => return Err(invalid("from", "from and to go together")),
        };
        let movements = self
            .engine
            .durable_read(|e| match &range {
                Some(range) => {
                    e.movements_between(outlet.as_deref(), sku.as_deref(), r.limit as usize, range)
                }
                None => e.movements(
                    outlet.as_deref(),
                    sku.as_deref(),
                    r.limit as usize,
                    Some(r.period.as_str()),
                ),
            })
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListMovementsResponse {
            movements: movements.into_iter().map(convert::movement_to_pb).collect(),
        }))
    }

    async fn grant_quota(
        &self,
        request: Request<pb::QuotaRequest>,
    ) -> Result<Response<pb::MovementAck>, Status> {
        let r = accept(request)?;
        acked(
            self.engine
                .change_quota(non_empty(r.request_id), &r.sku, r.quantity, true),
        )
        .await
    }

    async fn return_quota(
        &self,
        request: Request<pb::QuotaRequest>,
    ) -> Result<Response<pb::MovementAck>, Status> {
        let r = accept(request)?;
        acked(
            self.engine
                .change_quota(non_empty(r.request_id), &r.sku, r.quantity, false),
        )
        .await
    }

    async fn list_quota(
        &self,
        request: Request<pb::ListQuotaRequest>,
    ) -> Result<Response<pb::ListQuotaResponse>, Status> {
        let r = accept(request)?;
        let lines = self
            .engine
            .quota(non_empty(r.outlet).as_deref())
            .map_err(to_status)?;
        Ok(Response::new(pb::ListQuotaResponse {
            lines: lines.into_iter().map(escrow::quota_to_pb).collect(),
        }))
    }

    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        let r = accept(request)?;
        let orders = self
            .engine
            .orders(
                non_empty(r.outlet).as_deref(),
                non_empty(r.status).as_deref(),
            )
            .map_err(to_status)?;
        Ok(Response::new(pb::ListOrdersResponse {
            orders: orders.into_iter().map(escrow::order_to_pb).collect(),
        }))
    }

    async fn fulfil_order(
        &self,
        request: Request<pb::OrderActionRequest>,
    ) -> Result<Response<pb::MovementAck>, Status> {
        let r = accept(request)?;
        acked(
            self.engine
                .fulfil_order(non_empty(r.request_id), &r.order_id),
        )
        .await
    }

    async fn cancel_order(
        &self,
        request: Request<pb::OrderActionRequest>,
    ) -> Result<Response<pb::MovementAck>, Status> {
        let r = accept(request)?;
        acked(
            self.engine
                .cancel_order(non_empty(r.request_id), &r.order_id),
        )
        .await
    }

    async fn get_budget(
        &self,
        request: Request<pb::BudgetRequest>,
    ) -> Result<Response<pb::BudgetResponse>, Status> {
        let r = accept(request)?;
        let lines = self
            .engine
            .budgets(non_empty(r.district).as_deref(), r.year)
            .map_err(to_status)?;
        Ok(Response::new(pb::BudgetResponse {
            lines: lines.into_iter().map(escrow::budget_to_pb).collect(),
        }))
    }
}
