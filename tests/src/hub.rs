//! Short reads of the hub's figures and of online quota (escrow), as the tests of the
//! hub repeat them: quota lines by (outlet, SKU), orders, regional stock by district,
//! and the amount a refused online order says is available.
//!
//! It must never decide what a test expects: helpers return what the node said.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use mart_proto::v1::{
    DistrictQuantity, DistrictSummariesRequest, DistrictSummary, ListOrdersRequest,
    ListQuotaRequest, Order, QuotaLine, RegionalStockRequest, RegionalStockResponse,
};

use crate::client::{HubClient, MartClient};

/// Quota lines as a node knows them, by (outlet, SKU); `outlet` empty for every
/// outlet the node sees.
pub async fn quota(
    mart: &mut MartClient,
    outlet: &str,
) -> Result<BTreeMap<(String, String), QuotaLine>> {
    Ok(mart
        .list_quota(ListQuotaRequest {
            outlet: outlet.into(),
        })
        .await
        .with_context(|| format!("ListQuota outlet {outlet:?}"))?
        .into_inner()
        .lines
        .into_iter()
        .map(|l| ((l.outlet.clone(), l.sku.clone()), l))
        .collect())
}

/// The quota line of one outlet and SKU, all zero when the node has none.
pub async fn quota_line(mart: &mut MartClient, outlet: &str, sku: &str) -> Result<QuotaLine> {
    Ok(quota(mart, outlet)
        .await?
        .remove(&(outlet.to_string(), sku.to_string()))
        .unwrap_or_else(|| QuotaLine {
            outlet: outlet.into(),
            sku: sku.into(),
            ..Default::default()
        }))
}

/// Online orders a node knows, by id; `status` and `outlet` empty for all.
pub async fn orders(
    mart: &mut MartClient,
    status: &str,
    outlet: &str,
) -> Result<BTreeMap<String, Order>> {
    Ok(mart
        .list_orders(ListOrdersRequest {
            status: status.into(),
            outlet: outlet.into(),
        })
        .await
        .with_context(|| format!("ListOrders status {status:?} outlet {outlet:?}"))?
        .into_inner()
        .orders
        .into_iter()
        .map(|o| (o.id.clone(), o))
        .collect())
}

/// The hub's regional stock of every SKU.
pub async fn regional(hub: &mut HubClient) -> Result<RegionalStockResponse> {
    Ok(hub
        .regional_stock(RegionalStockRequest::default())
        .await
        .context("RegionalStock")?
        .into_inner())
}

/// What the hub's regional stock says of one district for one SKU.
pub fn district_line<'a>(
    regional: &'a RegionalStockResponse,
    sku: &str,
    district: &str,
) -> Option<&'a DistrictQuantity> {
    regional
        .skus
        .iter()
        .find(|s| s.sku == sku)?
        .districts
        .iter()
        .find(|d| d.district == district)
}

/// The hub's summary of each district, by district.
pub async fn summaries(hub: &mut HubClient) -> Result<BTreeMap<String, DistrictSummary>> {
    Ok(hub
        .district_summaries(DistrictSummariesRequest {})
        .await
        .context("DistrictSummaries")?
        .into_inner()
        .districts
        .into_iter()
        .map(|d| (d.district.clone(), d))
        .collect())
}

/// The units a refused online order says are available ("... : N available, M
/// requested"), if the message says so.
pub fn available_in_refusal(message: &str) -> Option<i64> {
    let (_, tail) = message.rsplit_once(": ")?;
    let (number, rest) = tail.split_once(' ')?;
    rest.starts_with("available")
        .then(|| number.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_available_units_of_a_refusal() {
        let m = "online quota of TTU-MKP-060 at ttu: 3 available, 4 requested";
        assert_eq!(available_in_refusal(m), Some(3));
        assert_eq!(available_in_refusal("unknown sku X"), None);
    }
}
