//! How long each end of a sync link waits on the other before it calls the link
//! dead: one budget, [`DEAD_LINK_BUDGET`], and every timeout that keeps within it
//! (TCP connect, TLS and HTTP/2 handshake, HTTP/2 and TCP keepalive), plus the
//! session's own silence limit; and the words an operator reads when it happens.
//!
//! It must never let a wait on the peer go unbounded, and never blame the link for
//! what the peer said (a status the peer sent is an answer, not silence).

use std::fmt;
use std::time::Duration;

use crate::domain::doc_id::NodeId;

/// A link that carries nothing (a black hole: packets swallowed, connections left
/// open) is noticed within this long at both ends (invariant 9 of the brief).
pub const DEAD_LINK_BUDGET: Duration = Duration::from_secs(30);

/// Either end sends an HTTP/2 PING once it has read nothing from the peer for this
/// long...
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// ...and closes the connection if the PING is not answered within this long.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// TCP keepalive under HTTP/2's, for a link whose kernel still knows better: the
/// first probe after this long idle...
pub const TCP_KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
/// ...then one every this long...
pub const TCP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// ...and the connection is dropped after this many unanswered.
pub const TCP_KEEPALIVE_RETRIES: u32 = 3;

/// The district's TCP connect to the hub.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The district's whole connect: TCP, then the TLS handshake (both certificates)
/// and HTTP/2's; and then, again, the hub's answer to the session call. A few round
/// trips and a few kilobytes: seconds on a 64 kbit/s link with a 600 ms round trip.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// The longest `sync.resync_secs`: a side announces its heads at least this often
/// (the hub every 30 s), so a session never waits longer than this for a message
/// from a live peer whose link carries nothing else.
pub const MAX_ANNOUNCE_EVERY: Duration = Duration::from_secs(300);
/// Time for the largest sync message, queued behind another, to cross the slowest
/// link sync is built for (64 kbit/s): 2 MiB at 8 kB/s.
pub const SLOWEST_TRANSIT: Duration =
    Duration::from_secs(2 * super::MAX_MESSAGE_BYTES as u64 / 8_000);
/// A session that has had no message from its peer for this long ends, even if the
/// connection under it still answers pings (the peer's session is stuck): a live
/// peer's announce would have arrived by then, however slow the link.
pub const SESSION_SILENCE_LIMIT: Duration =
    Duration::from_secs(MAX_ANNOUNCE_EVERY.as_secs() + SLOWEST_TRANSIT.as_secs());

// The budget holds by construction: HTTP/2 keepalive gives up at most interval plus
// timeout after the last byte read, TCP keepalive after idle plus its probes.
const _: () = assert!(
    KEEPALIVE_INTERVAL.as_secs() + KEEPALIVE_TIMEOUT.as_secs() < DEAD_LINK_BUDGET.as_secs()
);
const _: () = assert!(
    TCP_KEEPALIVE_IDLE.as_secs() + TCP_KEEPALIVE_INTERVAL.as_secs() * TCP_KEEPALIVE_RETRIES as u64
        <= DEAD_LINK_BUDGET.as_secs()
);
const _: () = assert!(SESSION_SILENCE_LIMIT.as_secs() > MAX_ANNOUNCE_EVERY.as_secs());

/// A session that ended with nothing from the peer for at least this long ended on
/// silence: the keepalive only pings after [`KEEPALIVE_INTERVAL`] with nothing read,
/// so a connection that failed sooner after a message was not cut for silence.
pub const SILENT_AFTER: Duration = KEEPALIVE_INTERVAL;

/// The other end of a link, as an operator of this node calls it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// This district's hub.
    Hub,
    /// A district, seen from the hub.
    District(NodeId),
}

impl Peer {
    /// `peer` as seen by a node whose hub is `hub`.
    pub fn of(peer: &NodeId, hub: &NodeId) -> Peer {
        if peer == hub {
            Peer::Hub
        } else {
            Peer::District(peer.clone())
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Hub => f.write_str("the hub"),
            Peer::District(id) => write!(f, "district {id}"),
        }
    }
}

/// The peer said nothing for `silent`, while this side waited `during` something:
/// the link is dead or the peer is frozen (or gone). The district redials; the hub
/// waits for the district to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    pub peer: Peer,
    pub silent: Duration,
    /// What this side was waiting for, e.g. "the TLS handshake at https://h:1";
    /// empty for a running session.
    pub during: String,
}

impl fmt::Display for Silence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (who, next) = match &self.peer {
            Peer::Hub => ("the hub", "redialing"),
            Peer::District(_) => ("the district", "it redials when it can"),
        };
        write!(f, "no answer from {}", self.peer)?;
        if !self.during.is_empty() {
            write!(f, " to {}", self.during)?;
        }
        write!(
            f,
            " for {} s: the link is dead or {who} is frozen or down; {next}",
            self.silent.as_secs().max(1)
        )
    }
}

/// Turns TCP keepalive on for an accepted connection, so that a peer gone without a
/// FIN is dropped by the kernel even when HTTP/2 is not asking. A socket that refuses
/// the option is served anyway (HTTP/2 keepalive still covers it).
pub fn keep_alive(stream: &tokio::net::TcpStream) {
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(TCP_KEEPALIVE_IDLE)
        .with_interval(TCP_KEEPALIVE_INTERVAL)
        .with_retries(TCP_KEEPALIVE_RETRIES);
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!(error = %e, "cannot turn TCP keepalive on for a connection");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_black_holed_link_is_given_up_within_the_budget() {
        // The worst case: the link dies just after a byte was read.
        assert!(KEEPALIVE_INTERVAL + KEEPALIVE_TIMEOUT <= DEAD_LINK_BUDGET);
        assert!(
            TCP_KEEPALIVE_IDLE + TCP_KEEPALIVE_INTERVAL * TCP_KEEPALIVE_RETRIES <= DEAD_LINK_BUDGET
        );
        // A redial against a black hole ends within the budget too.
        assert!(CONNECT_TIMEOUT < HANDSHAKE_TIMEOUT && HANDSHAKE_TIMEOUT <= DEAD_LINK_BUDGET);
        // Silence that ends a session is silence the keepalive could have cut.
        assert!(SILENT_AFTER <= KEEPALIVE_INTERVAL);
    }

    #[test]
    fn the_session_outwaits_a_live_peer_on_the_slowest_link() {
        assert!(SESSION_SILENCE_LIMIT >= MAX_ANNOUNCE_EVERY + SLOWEST_TRANSIT);
        assert!(SLOWEST_TRANSIT >= Duration::from_secs(250));
    }

    #[test]
    fn silence_is_said_in_words() {
        let hub = NodeId::parse("kupang").unwrap();
        let ttu = NodeId::parse("ttu").unwrap();
        let at_district = Silence {
            peer: Peer::of(&hub, &hub),
            silent: Duration::from_millis(20_400),
            during: String::new(),
        };
        assert_eq!(
            at_district.to_string(),
            "no answer from the hub for 20 s: the link is dead or the hub is frozen or down; redialing"
        );
        let at_hub = Silence {
            peer: Peer::of(&ttu, &hub),
            silent: Duration::from_secs(21),
            during: String::new(),
        };
        assert_eq!(
            at_hub.to_string(),
            "no answer from district ttu for 21 s: the link is dead or the district is frozen or down; it redials when it can"
        );
        let dialing = Silence {
            during: "the TLS handshake at https://localhost:7440".into(),
            ..at_district
        };
        assert!(dialing
            .to_string()
            .starts_with("no answer from the hub to the TLS handshake at https://localhost:7440 for 20 s: the link is dead"));
    }
}
