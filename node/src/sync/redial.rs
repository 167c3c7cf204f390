//! When a district dials its hub again after a dial or a session ended, and how it
//! learns cheaply that a hub that was down answers again (issue 12, the herd).
//!
//! - A dial that did not reach the hub is followed by a bare TCP connect to the
//!   hub's port, the [`Probe`]. While that is refused (the hub's process is down) or
//!   the host or network is unreachable, the district probes again every
//!   [`PROBE_MIN`] to [`PROBE_MAX`] (uniform jitter), however long the outage: a
//!   refused connect costs the hub one SYN and one RST, no TLS, no session. The first
//!   probe that connects after refused ones means the hub listens again: the district
//!   dials at once, so every district is back within [`PROBE_MAX`] plus a dial of the
//!   hub answering, spread over that interval instead of in one burst.
//! - Every failure that cost the hub work waits an exponential backoff with jitter,
//!   [`BACKOFF_START`] doubling to [`BACKOFF_CAP`]: a dial refused after the hub's
//!   port answered (a TLS or certificate refusal, a session the hub refused), a
//!   session the hub ended with a status of its own, a failure of this side's
//!   session, a probe with no answer at all (a silent host: no RST comes back).
//! - A session that reached the hub and then lost its link starts the backoff again
//!   at its first step; one that ended without error resets it.
//!
//! It must never dial the hub sooner than the backoff allows after a failure that
//! cost the hub work, never grow the backoff while the hub's port merely refuses,
//! and never wait on a probe without a bound.

use std::future::Future;
use std::time::Duration;

use mart_proto::tonic::transport::Uri;
use mart_proto::tonic::Code;
use rand::Rng;

use super::DriveError;

/// First wait after a failure that cost the hub work; doubled at each one after it,
/// up to [`BACKOFF_CAP`].
pub const BACKOFF_START: Duration = Duration::from_millis(250);
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// Probes of a refused hub port come this often at the soonest...
pub const PROBE_MIN: Duration = Duration::from_millis(1_000);
/// ...and at the latest.
pub const PROBE_MAX: Duration = Duration::from_millis(2_500);
/// A probe whose SYN has no answer in this long finds a silent host (no RST): that
/// is not a refusal, and the backoff follows.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How a dial of the hub ended, as the redial schedule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The session ended without an error (the hub closed it, e.g. at its shutdown).
    Closed,
    /// The session reached the hub, then its link dropped or fell silent.
    Dropped,
    /// The hub refused or ended the session with a status of its own, or this
    /// side's session failed.
    Refused,
    /// The dial never reached a session: the port may refuse (the hub is down) or
    /// the hub refused the TLS handshake or the call; the [`Probe`] tells which.
    Unreached,
}

impl Ending {
    /// `reached_hub`: the hub accepted the session call before the end.
    pub fn of(result: &Result<(), DriveError>, reached_hub: bool) -> Ending {
        let error = match result {
            Ok(()) => return Ending::Closed,
            Err(_) if !reached_hub => return Ending::Unreached,
            Err(e) => e,
        };
        match error {
            DriveError::Link(_) | DriveError::PeerClosed | DriveError::Silent(_) => Ending::Dropped,
            // What tonic makes of a connection that failed under the stream (the
            // hub says UNAVAILABLE too when its side of the link failed).
            DriveError::Inbound(s)
                if matches!(
                    s.code(),
                    Code::Unknown | Code::Internal | Code::Unavailable | Code::Cancelled
                ) =>
            {
                Ending::Dropped
            }
            // ABORTED included: the hub ended it for a newer session under the same
            // certificate (another node running with it?); two such nodes must not
            // take the hub from each other several times a second.
            DriveError::Inbound(_) | DriveError::Session(_) => Ending::Refused,
        }
    }
}

/// What a bare TCP connect to the hub's port found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Refused, or the host or network unreachable: nothing listens there now.
    Refused,
    /// Something accepted the connection.
    Answered,
    /// No answer within [`PROBE_TIMEOUT`], or no address to try.
    Silent,
}

/// Connects to `host:port` and closes at once.
pub async fn probe(host: &str, port: u16) -> Probe {
    use std::io::ErrorKind::{ConnectionRefused, HostUnreachable, NetworkUnreachable};
    let connect = tokio::net::TcpStream::connect((host, port));
    match tokio::time::timeout(PROBE_TIMEOUT, connect).await {
        Ok(Ok(_stream)) => Probe::Answered,
        Ok(Err(e))
            if matches!(
                e.kind(),
                ConnectionRefused | HostUnreachable | NetworkUnreachable
            ) =>
        {
            Probe::Refused
        }
        Ok(Err(_)) | Err(_) => Probe::Silent,
    }
}

/// The host and port a hub URL dials (443 for `https` without a port, 80 for `http`).
pub fn probe_target(url: &str) -> Option<(String, u16)> {
    let uri: Uri = url.parse().ok()?;
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().or(match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    })?;
    Some((host.to_string(), port))
}

/// The wait before the dial after `failures` failures that cost the hub work
/// (0: the first): exponential with jitter in [d/2, d].
pub fn backoff(failures: u32) -> Duration {
    let exp = BACKOFF_START.saturating_mul(1u32 << failures.min(16));
    let capped = exp.min(BACKOFF_CAP);
    let half = capped / 2;
    half + rand::rng().random_range(Duration::ZERO..=half)
}

/// The wait between two probes of a refused port.
pub fn probe_interval() -> Duration {
    rand::rng().random_range(PROBE_MIN..=PROBE_MAX)
}

/// The district's redial schedule: failures that cost the hub work since the last
/// session that reached it.
#[derive(Debug, Default)]
pub struct Redial {
    failures: u32,
}

impl Redial {
    /// Failures that cost the hub work since the last session that reached it.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Waits until the next dial is due after one that ended so; `probe` connects
    /// to the hub's port ([`probe`]), and is only called after an
    /// [`Ending::Unreached`].
    pub async fn wait<P, F>(&mut self, ending: Ending, mut probe: P)
    where
        P: FnMut() -> F,
        F: Future<Output = Probe>,
    {
        match ending {
            Ending::Closed => {
                self.failures = 0;
                tokio::time::sleep(BACKOFF_START).await;
            }
            Ending::Dropped => {
                self.failures = 1;
                tokio::time::sleep(backoff(0)).await;
            }
            Ending::Refused => self.back_off().await,
            Ending::Unreached => {
                let mut refused = 0u64;
                loop {
                    match probe().await {
                        Probe::Refused => {
                            refused += 1;
                            tokio::time::sleep(probe_interval()).await;
                        }
                        // The port listens again after refusing: the hub is back.
                        Probe::Answered if refused > 0 => {
                            tracing::info!(refused, "the hub's port answers again: dialing");
                            return;
                        }
                        // It answered (or is silent) right after the dial failed:
                        // that failure cost the hub work, or the host is mute.
                        Probe::Answered | Probe::Silent => return self.back_off().await,
                    }
                }
            }
        }
    }

    async fn back_off(&mut self) {
        self.failures = self.failures.saturating_add(1);
        tokio::time::sleep(backoff(self.failures - 1)).await;
    }
}
