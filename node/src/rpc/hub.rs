//! `nttmart.v1.HubService`: what only the provincial hub answers (regional stock with
//! the freshness of each district's figures, shipments in transit, budgets, online
//! orders). At a district every call is PERMISSION_DENIED (the engine refuses).
//!
//! Freshness is decided here, from the engine's `as_of` and the peer book's last
//! successful sync, against the configured threshold.

use std::sync::Arc;
use std::time::Duration;

use mart_proto::tonic::{self, Request, Response, Status};
use mart_proto::v1 as pb;
use pb::hub_service_server::HubService;

use super::accept;
use super::convert;
use super::escrow;
use super::mart::non_empty;
use super::status::to_status;
use crate::domain::doc_id::NodeId;
use crate::engine::{now_ms, Engine};
use crate::sync::PeerBook;

#[derive(Clone)]
pub struct HubApi {
    engine: Arc<Engine>,
    book: Arc<PeerBook>,
    stale_after: Duration,
}

impl HubApi {
    pub fn new(engine: Arc<Engine>, book: Arc<PeerBook>, stale_after: Duration) -> Self {
        HubApi {
            engine,
            book,
            stale_after,
        }
    }

    /// How fresh the hub's figures of `district` are: the hub's own warehouse is
    /// always current; a district is stale when both its newest change and its last
    /// completed sync are older than the threshold.
    pub fn freshness(&self, district: &NodeId, as_of_ms: i64) -> pb::Freshness {
        let now = now_ms();
        let last_sync = if district == &self.engine.identity().node {
            now
        } else {
            self.book.last_success_ms(district).unwrap_or(0)
        };
        // A district clock running fast must not keep it looking fresh.
        let newest = as_of_ms.min(now).max(last_sync);
        let clock = self.book.clock(district);
        pb::Freshness {
            district: district.to_string(),
            as_of_unix_ms: as_of_ms,
            last_sync_unix_ms: last_sync,
            stale: now - newest > self.stale_after.as_millis() as i64,
            clock_offset_ms: clock.map_or(0, |c| c.offset_ms),
            clock_seen_unix_ms: clock.map_or(0, |c| c.seen_ms),
            clock_wrong: clock.is_some_and(|c| c.wrong()),
        }
    }
}

#[tonic::async_trait]
impl HubService for HubApi {
    async fn regional_stock(
        &self,
        request: Request<pb::RegionalStockRequest>,
    ) -> Result<Response<pb::RegionalStockResponse>, Status> {
        let r = accept(request)?;
        let lines = self
            .engine
            .regional_stock(
                non_empty(r.sku).as_deref(),
                non_empty(r.district).as_deref(),
            )
            .map_err(to_status)?;
        let skus = lines
            .into_iter()
            .map(|l| pb::RegionalSku {
                sku: l.sku,
                name: l.name,
                total: l.total,
                districts: l
                    .districts
                    .into_iter()
                    .map(|d| pb::DistrictQuantity {
                        freshness: Some(self.freshness(&d.district, d.as_of_ms)),
                        district: d.district.to_string(),
                        quantity: d.quantity,
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(pb::RegionalStockResponse {
            skus,
            stale_after_seconds: self.stale_after.as_secs() as i64,
        }))
    }

    async fn district_summaries(
        &self,
        request: Request<pb::DistrictSummariesRequest>,
    ) -> Result<Response<pb::DistrictSummariesResponse>, Status> {
        accept(request)?;
        let summaries = self
            .engine
            .durable_read(|e| e.district_summaries())
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::DistrictSummariesResponse {
            districts: summaries
                .into_iter()
                .map(|s| pb::DistrictSummary {
                    freshness: Some(self.freshness(&s.district, s.as_of_ms)),
                    district: s.district.to_string(),
                    skus: s.skus,
                    units: s.units,
                    value_rupiah: s.value,
                })
                .collect(),
        }))
    }

    async fn low_stock(
        &self,
        request: Request<pb::LowStockRequest>,
    ) -> Result<Response<pb::LowStockResponse>, Status> {
        let r = accept(request)?;
        let lines = self
            .engine
            .low_stock(non_empty(r.district).as_deref())
            .map_err(to_status)?;
        Ok(Response::new(pb::LowStockResponse {
            lines: lines
                .into_iter()
                .map(|l| pb::LowStockLine {
                    stale: self.freshness(&l.district, l.as_of_ms).stale,
                    district: l.district.to_string(),
                    sku: l.sku,
                    name: l.name,
                    quantity: l.quantity,
                    threshold: l.threshold,
                })
                .collect(),
        }))
    }

    async fn in_transit(
        &self,
        request: Request<pb::InTransitRequest>,
    ) -> Result<Response<pb::InTransitResponse>, Status> {
        accept(request)?;
        let shipments = self.engine.shipments().map_err(to_status)?;
        Ok(Response::new(pb::InTransitResponse {
            shipments: shipments
                .into_iter()
                .map(|s| pb::Shipment {
                    state: s.state().to_string(),
                    transfer_id: s.transfer_id,
                    from: s.from,
                    to: s.to,
                    sku: s.sku,
                    sent: s.sent,
                    received: s.received,
                    sent_at_unix_ms: s.sent_at_ms,
                    received_at_unix_ms: s.received_at_ms,
                })
                .collect(),
        }))
    }

    async fn allocate_budget(
        &self,
        request: Request<pb::AllocateBudgetRequest>,
    ) -> Result<Response<pb::BudgetLine>, Status> {
        let r = accept(request)?;
        let line = self
            .engine
            .allocate_budget(&r.district, r.year, r.amount_rupiah)
            .await
            .map_err(to_status)?;
        Ok(Response::new(escrow::budget_to_pb(line)))
    }

    async fn place_order(
        &self,
        request: Request<pb::PlaceOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let r = accept(request)?;
        let buyer = convert::buyer(r.buyer)?;
        let order = self
            .engine
            .place_order(
                non_empty(r.request_id),
                &r.outlet,
                &r.sku,
                r.quantity,
                buyer,
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(escrow::order_to_pb(order)))
    }

    async fn promote_product(
        &self,
        request: Request<pb::PromoteProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let r = accept(request)?;
        let (product, doc) = self
            .engine
            .promote_product(&r.sku, &r.from_district)
            .await
            .map_err(to_status)?;
        Ok(Response::new(convert::product_to_pb(&product, &doc)))
    }
}
