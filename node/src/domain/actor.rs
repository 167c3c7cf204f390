//! Automerge actor ids bound to node identity.
//!
//! An actor id is `b"nm1"`, one length byte, the node id, and a 4-byte big-endian
//! incarnation number. The node bumps its incarnation durably at every start, so an
//! actor id is never reused with a lost history (which would make peers fail with
//! `DuplicateSeqNumber`), and any receiver can tell from the actor alone which node
//! wrote a change. Incarnation 0 is reserved for the deterministic genesis of the
//! provincial catalog, which every node builds identically.

use automerge::ActorId;

use super::doc_id::NodeId;

const MAGIC: &[u8] = b"nm1";

/// The incarnation of the provincial catalog's genesis change.
pub const GENESIS_INCARNATION: u32 = 0;

/// The actor a node writes with during one incarnation.
pub fn actor_for(node: &NodeId, incarnation: u32) -> ActorId {
    let name = node.as_str().as_bytes();
    let mut bytes = Vec::with_capacity(MAGIC.len() + 1 + name.len() + 4);
    bytes.extend_from_slice(MAGIC);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(&incarnation.to_be_bytes());
    ActorId::from(bytes)
}

/// The node and incarnation an actor belongs to, or `None` for a foreign actor.
pub fn node_of_actor(actor: &ActorId) -> Option<(NodeId, u32)> {
    let bytes = actor.to_bytes();
    let rest = bytes.strip_prefix(MAGIC)?;
    let (&len, rest) = rest.split_first()?;
    let len = len as usize;
    if rest.len() != len + 4 {
        return None;
    }
    let node = NodeId::parse(std::str::from_utf8(&rest[..len]).ok()?).ok()?;
    let incarnation = u32::from_be_bytes(rest[len..].try_into().ok()?);
    Some((node, incarnation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_round_trips_to_node() {
        let node = NodeId::parse("ttu").unwrap();
        let actor = actor_for(&node, 7);
        assert_eq!(node_of_actor(&actor), Some((node, 7)));
    }

    #[test]
    fn foreign_actors_belong_to_no_node() {
        assert_eq!(node_of_actor(&ActorId::random()), None);
        assert_eq!(node_of_actor(&ActorId::from(b"nm1\x03tt".as_slice())), None);
    }

    #[test]
    fn incarnations_give_distinct_actors() {
        let node = NodeId::parse("ttu").unwrap();
        assert_ne!(actor_for(&node, 1), actor_for(&node, 2));
    }
}
