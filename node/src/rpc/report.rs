//! `nttmart.v1.ReportService`: sales reports by local date (WITA) of the ledgers
//! this node holds, and their conversion to proto.
//!
//! Reads only, and decides nothing: which ledgers a report covers and how sales
//! are totalled are the engine's and the domain's. A report reads whole ledgers, so
//! it runs on a blocking thread, never on the threads that serve other calls.

use std::sync::Arc;

use mart_proto::tonic::{self, Request, Response, Status};
use mart_proto::v1 as pb;
use pb::report_service_server::ReportService;

use super::accept;
use super::convert::{buyer_to_pb, channel_to_pb};
use super::status::to_status;
use crate::domain::sales_report::{SalesReport, SalesTotals};
use crate::engine::Engine;

/// The reports, served over gRPC.
#[derive(Clone)]
pub struct ReportApi {
    engine: Arc<Engine>,
}

impl ReportApi {
    pub fn new(engine: Arc<Engine>) -> Self {
        ReportApi { engine }
    }
}

fn totals_to_pb(t: SalesTotals) -> pb::SalesTotals {
    pb::SalesTotals {
        sales: t.sales,
        baskets: t.baskets,
        units: t.units,
        revenue_rupiah: t.revenue_rupiah,
    }
}

fn report_to_pb(report: &SalesReport) -> pb::SalesReportResponse {
    pb::SalesReportResponse {
        from: report.range().from().to_string(),
        to: report.range().to().to_string(),
        districts: report.districts().iter().map(|d| d.to_string()).collect(),
        rows: report
            .rows()
            .map(|row| pb::SalesReportRow {
                date: row.date.to_string(),
                district: row.district.to_string(),
                channel: channel_to_pb(row.channel) as i32,
                buyer: buyer_to_pb(row.buyer) as i32,
                sales: row.totals.sales,
                baskets: row.totals.baskets,
                units: row.totals.units,
                revenue_rupiah: row.totals.revenue_rupiah,
            })
            .collect(),
        totals: Some(totals_to_pb(report.totals())),
    }
}

#[tonic::async_trait]
impl ReportService for ReportApi {
    async fn sales_report(
        &self,
        request: Request<pb::SalesReportRequest>,
    ) -> Result<Response<pb::SalesReportResponse>, Status> {
        let r = accept(request)?;
        let district = Some(r.district).filter(|d| !d.trim().is_empty());
        let engine = self.engine.clone();
        let report = tokio::task::spawn_blocking(move || {
            engine.sales_report(&r.from, &r.to, district.as_deref())
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "sales report task failed");
            Status::internal("the sales report failed; see the node's log")
        })?
        .map_err(to_status)?;
        self.engine.reads_durable().await.map_err(to_status)?;
        Ok(Response::new(report_to_pb(&report)))
    }
}
