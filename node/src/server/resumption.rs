//! The node's TLS 1.3 resumption cache as a server (stateful resumption): what a
//! ticket it issued stands for, kept in memory, so that a district that reconnects
//! presents a 32-byte ticket instead of both certificate chains.
//!
//! A cached session holds its secret and the client certificate chain of the full
//! handshake it descends from; rustls hands that chain back as the resumed
//! connection's peer certificates, so a resumed session has the identity of the
//! original one and no other. Tickets are single use (TLS 1.3 `take`), live at most
//! [`TICKET_LIFETIME`] (rustls tells clients the same lifetime for stateful tickets,
//! so a client stops offering one when the hub stops accepting it), and the cache
//! holds at most [`CAPACITY`] sessions, the oldest dropped first: memory stays
//! bounded however many districts connect.
//!
//! It must never outlive the process (a restarted hub knows no ticket: every
//! district does one full handshake) and never hand out a session older than its
//! lifetime.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::server::StoresServerSessions;

/// How long a ticket can be resumed after the handshake that issued it: the
/// lifetime rustls announces for stateful tickets, 24 h.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Sessions kept at most: one live ticket per district (the hub issues one per
/// connection, and each is used once) for four thousand districts, a few MB.
pub const CAPACITY: usize = 4096;

/// The clock the cache ages sessions by (a test's own clock in the unit tests).
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// A bounded, expiring, in-memory store of resumable sessions.
pub struct SessionCache {
    inner: Mutex<Entries>,
    capacity: usize,
    lifetime: Duration,
    clock: Clock,
}

#[derive(Default)]
struct Entries {
    by_key: HashMap<Vec<u8>, (Instant, Vec<u8>)>,
    /// Keys in insertion order; may name keys already taken (skipped on eviction).
    order: VecDeque<Vec<u8>>,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("capacity", &self.capacity)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl SessionCache {
    /// The node's cache: [`CAPACITY`] sessions of [`TICKET_LIFETIME`].
    pub fn new() -> Self {
        Self::with(CAPACITY, TICKET_LIFETIME, Arc::new(Instant::now))
    }

    pub fn with(capacity: usize, lifetime: Duration, clock: Clock) -> Self {
        SessionCache {
            inner: Mutex::new(Entries::default()),
            capacity: capacity.max(1),
            lifetime,
            clock,
        }
    }

    /// Sessions held now (expired ones included until evicted or asked for).
    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic under this lock stops the process (fail_stop): never poisoned here.
        self.inner
            .lock()
            .expect("the session cache lock is never poisoned")
    }

    fn fresh(&self, stored: Instant) -> bool {
        (self.clock)().saturating_duration_since(stored) <= self.lifetime
    }
}

impl Default for SessionCache {
    fn default() -> Self {
        Self::new()
    }
}

impl StoresServerSessions for SessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let now = (self.clock)();
        let mut entries = self.lock();
        while entries.by_key.len() >= self.capacity {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            entries.by_key.remove(&oldest);
        }
        // Keys taken long ago would otherwise pile up in `order`.
        if entries.order.len() >= 2 * self.capacity {
            let Entries { by_key, order } = &mut *entries;
            order.retain(|k| by_key.contains_key(k));
        }
        entries.order.push_back(key.clone());
        entries.by_key.insert(key, (now, value));
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let entries = self.lock();
        let (stored, value) = entries.by_key.get(key)?;
        self.fresh(*stored).then(|| value.clone())
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let (stored, value) = self.lock().by_key.remove(key)?;
        self.fresh(stored).then_some(value)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A clock a test moves by hand, in seconds after its start.
    pub(crate) fn manual_clock() -> (Clock, Arc<AtomicU64>) {
        let start = Instant::now();
        let offset = Arc::new(AtomicU64::new(0));
        let read = offset.clone();
        let clock: Clock =
            Arc::new(move || start + Duration::from_secs(read.load(Ordering::SeqCst)));
        (clock, offset)
    }

    #[test]
    fn a_ticket_is_used_once() {
        let cache = SessionCache::new();
        assert!(cache.put(b"t1".to_vec(), b"session".to_vec()));
        assert_eq!(cache.get(b"t1").as_deref(), Some(&b"session"[..]));
        assert_eq!(cache.take(b"t1").as_deref(), Some(&b"session"[..]));
        assert_eq!(cache.take(b"t1"), None);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_session_older_than_its_lifetime_is_not_resumed() {
        let (clock, seconds) = manual_clock();
        let cache = SessionCache::with(8, Duration::from_secs(60), clock);
        cache.put(b"old".to_vec(), b"a".to_vec());
        seconds.store(30, Ordering::SeqCst);
        cache.put(b"new".to_vec(), b"b".to_vec());
        seconds.store(61, Ordering::SeqCst);
        assert_eq!(cache.get(b"old"), None);
        assert_eq!(cache.take(b"old"), None);
        assert_eq!(cache.take(b"new").as_deref(), Some(&b"b"[..]));
    }

    #[test]
    fn the_oldest_session_goes_first_and_memory_stays_bounded() {
        let cache = SessionCache::with(3, TICKET_LIFETIME, Arc::new(Instant::now));
        for i in 0..1000u32 {
            cache.put(i.to_be_bytes().to_vec(), vec![0; 16]);
            // Every other ticket is used, as a reconnecting district does.
            if i % 2 == 0 {
                cache.take(&i.to_be_bytes());
            }
            let entries = cache.lock();
            assert!(entries.by_key.len() <= 3);
            assert!(entries.order.len() <= 2 * 3 + 1, "{}", entries.order.len());
        }
        assert_eq!(cache.take(&999u32.to_be_bytes()).map(|v| v.len()), Some(16));
        assert_eq!(cache.take(&1u32.to_be_bytes()), None);
    }
}
