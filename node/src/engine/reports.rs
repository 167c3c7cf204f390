//! Reports over the ledgers a node holds: which ledgers a report may read here, and
//! reading them into a [`SalesReport`].
//!
//! Reads only: it must never write a document. It holds the documents lock for one
//! ledger period at a time, so a report over every district never stalls a sale for
//! longer than reading one period; archived periods are read from disk.

use super::{Engine, EngineError};
use crate::domain::doc_id::{DocId, NodeId};
use crate::domain::period::PeriodId;
use crate::domain::sales_report::{DateRange, Listed, SalesReport};
use crate::domain::DomainError;

impl Engine {
    /// Sales per WITA date, outlet, channel and buyer from `from` to `to`
    /// (`YYYY-MM-DD`, both included). At the hub: every ledger it holds, or the one
    /// of `district`; at a district: its own ledger only.
    pub fn sales_report(
        &self,
        from: &str,
        to: &str,
        district: Option<&str>,
    ) -> Result<SalesReport, EngineError> {
        let range = DateRange::parse(from, to)?;
        // A period holds the movements from its first month until the next period
        // begins (each outlet chooses its period length): read those that overlap
        // the range. A movement booked after its date (the outlet's clock set back)
        // lands in a later period and is read only if that period overlaps too.
        let (first_month, last_month) = (
            PeriodId::parse(&from.trim()[..7])?,
            PeriodId::parse(&to.trim()[..7])?,
        );
        let mut report = SalesReport::new(range);
        for (node, listed) in self.report_ledgers(district)? {
            let all = Self::periods_of(&self.docs(), &node);
            let starts: Vec<PeriodId> = all
                .iter()
                .filter_map(|id| Some(id.ledger_period()?.1))
                .collect();
            let periods: Vec<DocId> = all
                .iter()
                .enumerate()
                .filter(|(i, _)| {
                    starts[*i] <= last_month
                        && starts.get(i + 1).is_none_or(|next| *next > first_month)
                })
                .map(|(_, id)| id.clone())
                .collect();
            let mut movements = Vec::new();
            for id in periods {
                movements.extend(self.period_movements(&self.docs(), &id)?);
            }
            report.add_ledger(&node, &movements, listed)?;
        }
        Ok(report)
    }

    /// The outlets whose ledgers a report asked for `district` reads here (archived
    /// periods are read from disk).
    fn report_ledgers(&self, district: Option<&str>) -> Result<Vec<(NodeId, Listed)>, EngineError> {
        let me = &self.identity.node;
        let held: Vec<NodeId> = self
            .docs()
            .newest_ledgers()
            .into_iter()
            .map(|(node, _)| node.clone())
            .collect();
        // A district being restored has no figures of its own yet.
        self.docs().own_ledger_id()?;
        let Some(district) = district else {
            if !self.identity.is_hub() {
                return Ok(vec![(me.clone(), Listed::Always)]);
            }
            return Ok(held
                .into_iter()
                .map(|node| {
                    let listed = if &node == me {
                        Listed::WhenSold
                    } else {
                        Listed::Always
                    };
                    (node, listed)
                })
                .collect());
        };
        let node = NodeId::parse(district.trim()).map_err(|_| {
            DomainError::invalid("district", format!("not a district id: {district:?}"))
        })?;
        if !self.identity.is_hub() && &node != me {
            return Err(DomainError::invalid(
                "district",
                format!(
                    "this district node reports only its own sales ({me}); ask the hub ({}) for {node}",
                    self.identity.hub
                ),
            )
            .into());
        }
        if !held.contains(&node) {
            return Err(DomainError::UnknownOutlet(node.to_string()).into());
        }
        Ok(vec![(node, Listed::Always)])
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mart_proto::tonic::Code;

    use super::*;
    use crate::domain::movement::{Buyer, Channel, MovementKind};
    use crate::domain::sales_report::{LocalDate, SalesTotals};
    use crate::engine::{now_ms, Identity, MovementRequest};
    use crate::store::MemoryBackend;

    const SKU: &str = "TTU-MKP-060";
    const CATALOG_PRICE: i64 = 35_000;

    fn engine(id: &str) -> Engine {
        let identity = Identity {
            node: NodeId::parse(id).unwrap(),
            hub: NodeId::parse("kupang").unwrap(),
        };
        Engine::open(Arc::new(MemoryBackend::new()), identity).unwrap()
    }

    fn record(kind: MovementKind) -> MovementRequest {
        MovementRequest {
            request_id: None,
            sku: SKU.into(),
            kind,
        }
    }

    fn sale(
        quantity: i64,
        unit_price: Option<i64>,
        channel: Channel,
        buyer: Buyer,
    ) -> MovementRequest {
        record(MovementKind::Sale {
            quantity,
            unit_price,
            channel,
            buyer,
            order: None,
            basket: None,
        })
    }

    /// Records stock and three sales; returns their totals.
    async fn sell_some(engine: &Engine) -> SalesTotals {
        let receipt = MovementKind::Receipt {
            quantity: 50,
            unit_cost: 20_000,
            producer: None,
            over_budget: None,
        };
        engine.record(record(receipt)).await.unwrap();
        let sales = [
            sale(2, None, Channel::Store, Buyer::Public),
            sale(3, Some(30_000), Channel::Online, Buyer::Asn),
            sale(1, None, Channel::Store, Buyer::Asn),
        ];
        for s in sales {
            engine.record(s).await.unwrap();
        }
        SalesTotals {
            sales: 3,
            baskets: 3,
            units: 6,
            revenue_rupiah: 3 * CATALOG_PRICE + 3 * 30_000,
        }
    }

    /// Today's WITA date, read before and after the sales so a test running across
    /// midnight still covers every sale.
    fn today() -> String {
        LocalDate::of_unix_ms(now_ms()).unwrap().to_string()
    }

    fn code(result: Result<SalesReport, EngineError>) -> (Code, String) {
        let e = result.expect_err("the report was made");
        (e.code(), e.to_string())
    }

    #[tokio::test]
    async fn a_district_reports_its_own_sales_and_only_those() {
        let ttu = engine("ttu");
        let from = today();
        let sold = sell_some(&ttu).await;
        let to = today();
        let report = ttu.sales_report(&from, &to, None).unwrap();
        assert_eq!(report.totals(), sold);
        assert_eq!(report.districts(), [NodeId::parse("ttu").unwrap()]);
        assert_eq!(report.rows().count(), 3);
        assert_eq!(
            ttu.sales_report(&from, &to, Some("ttu")).unwrap().totals(),
            sold
        );

        let (c, message) = code(ttu.sales_report(&from, &to, Some("sikka")));
        assert_eq!(c, Code::InvalidArgument);
        assert!(message.starts_with("district: "), "{message}");
        assert!(
            message.contains("ask the hub (kupang) for sikka"),
            "{message}"
        );
        let (c, message) = code(ttu.sales_report(&from, &to, Some("TTU")));
        assert_eq!(
            (c, message.starts_with("district: ")),
            (Code::InvalidArgument, true)
        );

        // A period before the sales has none.
        let empty = ttu.sales_report("2020-01-01", "2020-12-31", None).unwrap();
        assert_eq!(empty.totals(), SalesTotals::default());
        assert_eq!(empty.districts().len(), 1);
    }

    #[tokio::test]
    async fn bad_dates_are_invalid_arguments_naming_the_field() {
        let ttu = engine("ttu");
        for (from, to, field) in [
            ("2026-13-01", "2026-12-01", "from: "),
            ("2026-11-01", "yesterday", "to: "),
            ("2026-12-02", "2026-12-01", "to: "),
        ] {
            let (c, message) = code(ttu.sales_report(from, to, None));
            assert_eq!(c, Code::InvalidArgument, "{message}");
            assert!(message.starts_with(field), "{from}..{to}: {message}");
        }
    }

    #[tokio::test]
    async fn the_hub_reports_every_district_ledger_it_holds_and_its_own_when_it_sold() {
        let (hub, ttu) = (engine("kupang"), engine("ttu"));
        let from = today();
        let sold = sell_some(&ttu).await;
        let ttu_node = NodeId::parse("ttu").unwrap();
        let ledger = ttu.open_period().unwrap();
        for bundle in ttu.bundles_after(&ledger, &[], usize::MAX).unwrap() {
            hub.apply_bundle(&ttu_node, &ledger, &bundle.data)
                .await
                .unwrap();
        }
        let to = today();
        let report = hub.sales_report(&from, &to, None).unwrap();
        assert_eq!(report.totals(), sold);
        assert_eq!(
            report.districts(),
            std::slice::from_ref(&ttu_node),
            "no sale at kupang yet"
        );
        assert_eq!(
            hub.sales_report(&from, &to, Some("ttu")).unwrap().totals(),
            sold
        );
        let (c, _) = code(hub.sales_report(&from, &to, Some("sikka")));
        assert_eq!(c, Code::NotFound);

        let hub_sold = sell_some(&hub).await;
        let to = today();
        let report = hub.sales_report(&from, &to, None).unwrap();
        let names: Vec<&str> = report.districts().iter().map(NodeId::as_str).collect();
        assert_eq!(names, ["kupang", "ttu"]);
        assert_eq!(report.totals().sales, sold.sales + hub_sold.sales);
        assert_eq!(
            report.totals().revenue_rupiah,
            sold.revenue_rupiah + hub_sold.revenue_rupiah
        );
        let own = hub.sales_report(&from, &to, Some("kupang")).unwrap();
        assert_eq!(own.totals(), hub_sold);
    }
}
