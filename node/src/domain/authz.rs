//! Who may write which document, and which documents travel to which peer.
//!
//! The unit of ownership is the document: a change is accepted only if its
//! automerge actor belongs to the document's owner, and only from the owner itself
//! or from the hub relaying it. So a refusal only ever hits a misbehaving node.

use automerge::ActorId;

use super::actor::node_of_actor;
use super::doc_id::{DocId, NodeId};
use super::DomainError;

/// Refuses a bundle for `doc` sent by `sender` unless the sender owns the document
/// or is the hub relaying it.
pub fn check_sender(doc: &DocId, sender: &NodeId, hub: &NodeId) -> Result<(), DomainError> {
    let owner = doc.owner(hub);
    if sender == owner || sender == hub {
        return Ok(());
    }
    Err(DomainError::Forbidden {
        doc: doc.to_string(),
        reason: format!("{sender} may not write a document owned by {owner}"),
    })
}

/// Refuses a change of `doc` whose actor is not one of the owner's.
pub fn check_author(doc: &DocId, actor: &ActorId, hub: &NodeId) -> Result<(), DomainError> {
    let owner = doc.owner(hub);
    match node_of_actor(actor) {
        Some((node, _)) if &node == owner => Ok(()),
        Some((node, _)) => Err(DomainError::Forbidden {
            doc: doc.to_string(),
            reason: format!("a change by {node} (actor {actor}) in a document owned by {owner}"),
        }),
        None => Err(DomainError::Forbidden {
            doc: doc.to_string(),
            reason: format!("actor {actor} is not bound to any node identity"),
        }),
    }
}

/// Whether `holder` offers `doc` to `peer`. A district offers the hub the documents
/// it owns. The hub offers a district the provincial catalog and budgets, the orders
/// addressed to it, and the district's own documents (so a district that lost its
/// disk can rebuild).
pub fn shared_with(doc: &DocId, holder: &NodeId, peer: &NodeId, hub: &NodeId) -> bool {
    if holder == hub {
        match doc {
            DocId::ProvincialCatalog | DocId::Budget => true,
            DocId::Orders(outlet) => outlet == peer,
            _ => doc.owner(hub) == peer,
        }
    } else {
        peer == hub && doc.owner(hub) == holder
    }
}

/// Whether `holder` accepts `doc` from `peer` at all (before looking at changes).
///
/// The hub never takes its own documents back from a district: actor ids are not
/// signed, so a district could pass off changes as the hub's. A hub that loses its
/// disk must be restored from its own backup, not from the districts.
pub fn accepted_from(doc: &DocId, holder: &NodeId, peer: &NodeId, hub: &NodeId) -> bool {
    shared_with(doc, peer, holder, hub)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::actor::actor_for;

    fn node(id: &str) -> NodeId {
        NodeId::parse(id).unwrap()
    }

    fn period() -> crate::domain::period::PeriodId {
        crate::domain::period::PeriodId::parse("2026-11").unwrap()
    }

    #[test]
    fn only_owner_or_hub_may_send() {
        let hub = node("kupang");
        let ledger = DocId::Ledger(node("ttu"), period());
        assert!(check_sender(&ledger, &node("ttu"), &hub).is_ok());
        assert!(check_sender(&ledger, &hub, &hub).is_ok());
        assert!(check_sender(&ledger, &node("sikka"), &hub).is_err());
        assert!(check_sender(&DocId::ProvincialCatalog, &node("ttu"), &hub).is_err());
    }

    #[test]
    fn only_the_owners_actors_may_author() {
        let hub = node("kupang");
        let ledger = DocId::Ledger(node("ttu"), period());
        assert!(check_author(&ledger, &actor_for(&node("ttu"), 3), &hub).is_ok());
        assert!(check_author(&ledger, &actor_for(&node("sikka"), 3), &hub).is_err());
        assert!(check_author(&ledger, &actor_for(&hub, 1), &hub).is_err());
        assert!(check_author(&ledger, &ActorId::random(), &hub).is_err());
        assert!(check_author(&DocId::ProvincialCatalog, &actor_for(&hub, 0), &hub).is_ok());
    }

    #[test]
    fn what_travels_where() {
        let hub = node("kupang");
        let (ttu, sikka) = (node("ttu"), node("sikka"));
        let ttu_ledger = DocId::Ledger(ttu.clone(), period());
        assert!(shared_with(&ttu_ledger, &ttu, &hub, &hub));
        assert!(shared_with(&ttu_ledger, &hub, &ttu, &hub));
        assert!(!shared_with(&ttu_ledger, &hub, &sikka, &hub));
        assert!(shared_with(&DocId::ProvincialCatalog, &hub, &sikka, &hub));
        assert!(shared_with(&DocId::Budget, &hub, &sikka, &hub));
        assert!(shared_with(&DocId::Orders(ttu.clone()), &hub, &ttu, &hub));
        assert!(!shared_with(
            &DocId::Orders(ttu.clone()),
            &hub,
            &sikka,
            &hub
        ));
        assert!(!shared_with(&DocId::Orders(ttu.clone()), &ttu, &hub, &hub));
        assert!(accepted_from(&DocId::Orders(ttu.clone()), &ttu, &hub, &hub));
        assert!(!accepted_from(
            &DocId::Orders(sikka.clone()),
            &ttu,
            &hub,
            &hub
        ));
        assert!(!accepted_from(
            &DocId::Orders(ttu.clone()),
            &hub,
            &ttu,
            &hub
        ));
        assert!(!shared_with(&DocId::ProvincialCatalog, &ttu, &hub, &hub));
        assert!(accepted_from(&DocId::ProvincialCatalog, &ttu, &hub, &hub));
        assert!(!accepted_from(
            &DocId::Ledger(sikka.clone(), period()),
            &ttu,
            &hub,
            &hub
        ));
        assert!(accepted_from(
            &DocId::Ledger(sikka.clone(), period()),
            &hub,
            &sikka,
            &hub
        ));
    }
}
