//! The soak's verdict on invariant 3: after every link is healed and the districts are
//! in step with the hub, every movement a district acknowledged is in the hub's copy
//! of that district's ledger exactly once, and the hub holds nothing of the soak that
//! was never acknowledged.
//!
//! The hub's copy is read through its API (ListMovements for each ledger period of
//! the district the hub lists), never from its files. It must never count a
//! movement by anything but its id (the request id the cashier chose).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use mart_proto::v1::ListMovementsRequest;
use mart_tests::cluster::ledger_periods;
use mart_tests::{AdminClient, MartClient};

use super::seller::Till;

/// How a node's copy of one district's ledger compares with what was acknowledged.
#[derive(Debug, Default)]
pub struct Tally {
    /// Movement ids found, each with how often.
    pub held: usize,
    /// Acknowledged, not found.
    pub missing: Vec<String>,
    /// Found more than once, with the count.
    pub duplicated: Vec<(String, usize)>,
    /// Found, of the soak, never acknowledged (refused or unanswered ids excepted:
    /// those are listed in `unacknowledged_held`).
    pub unknown: Vec<String>,
    /// Found, but the node never gave the cashier a definite yes (unanswered at the
    /// end, or refused): the acknowledgement was lost, not the movement.
    pub unacknowledged_held: Vec<String>,
}

impl Tally {
    /// No movement lost or counted twice, nothing unexplained.
    pub fn exact(&self) -> bool {
        self.missing.is_empty() && self.duplicated.is_empty() && self.unknown.is_empty()
    }
}

/// Every movement id of `outlet`'s ledger as the node behind `mart` holds it, over
/// every period it lists (`outlet` empty: the node's own ledger, its id `own`).
pub async fn movement_ids(
    mart: &mut MartClient,
    admin: &mut AdminClient,
    outlet: &str,
    own: &str,
) -> Result<Vec<String>> {
    let ledger = if outlet.is_empty() { own } else { outlet };
    let periods = ledger_periods(admin, ledger).await?;
    let mut ids = Vec::new();
    for period in periods.keys() {
        let movements = mart
            .list_movements(ListMovementsRequest {
                sku: String::new(),
                limit: 0,
                outlet: outlet.into(),
                period: period.clone(),
                ..Default::default()
            })
            .await
            .with_context(|| format!("ListMovements of {ledger} period {period}"))?
            .into_inner()
            .movements;
        ids.extend(movements.into_iter().map(|m| m.id));
    }
    Ok(ids)
}

/// Compares the ids a node holds for one district with what its cashier did.
pub fn tally(ids: &[String], till: &Till) -> Tally {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for id in ids {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    let acknowledged: BTreeSet<&str> = till.acknowledged().map(String::as_str).collect();
    let without_answer = |id: &str| till.unanswered.contains(id) || till.refused.contains_key(id);
    Tally {
        held: counts.len(),
        missing: acknowledged
            .iter()
            .filter(|id| !counts.contains_key(*id))
            .map(|id| id.to_string())
            .collect(),
        duplicated: counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, n)| (id.to_string(), *n))
            .collect(),
        unknown: counts
            .keys()
            .filter(|id| !acknowledged.contains(*id) && !without_answer(id))
            .map(|id| id.to_string())
            .collect(),
        unacknowledged_held: counts
            .keys()
            .filter(|id| without_answer(id))
            .map(|id| id.to_string())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_lost_the_doubled_and_the_unexplained() {
        let mut till = Till::default();
        till.sales.extend(["a", "b", "c"].map(String::from));
        till.receipts.insert("r".into());
        till.unanswered.insert("u".into());
        let ids: Vec<String> = ["a", "b", "b", "r", "u", "x"].map(String::from).to_vec();
        let t = tally(&ids, &till);
        assert_eq!(t.missing, vec!["c".to_string()]);
        assert_eq!(t.duplicated, vec![("b".to_string(), 2)]);
        assert_eq!(t.unknown, vec!["x".to_string()]);
        assert_eq!(t.unacknowledged_held, vec!["u".to_string()]);
        assert!(!t.exact());
        let whole: Vec<String> = ["a", "b", "c", "r"].map(String::from).to_vec();
        assert!(tally(&whole, &till).exact());
    }
}
