//! Reading a peer's bundle off the async threads and within a deadline. automerge
//! 0.12's parser panics on some damaged bundles and loops forever on others (both
//! found by `sync::fuzz_tests`): one such message from a peer with a valid
//! certificate would otherwise take a runtime thread for good. A parse that does not
//! finish in time is refused, and a peer has at most one parse running at a time, so
//! one peer leaves at most one parse spinning, however often it reconnects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use automerge::{Bundle, Change};

use super::EngineError;
use crate::domain::doc_id::{DocId, NodeId};
use crate::domain::DomainError;

/// The time a bundle's parse may take. A session's largest bundle (a few MiB of
/// changes) parses in well under a second even in a debug build on a loaded
/// machine; a parse still running after this is stuck.
pub const PARSE_DEADLINE: Duration = Duration::from_secs(20);

/// The parses running, per peer: the document and when it started.
type Running = Arc<Mutex<HashMap<NodeId, (DocId, Instant)>>>;

pub(crate) struct BundleParser {
    deadline: Mutex<Duration>,
    running: Running,
}

/// Takes a peer's parse off the running list when its thread ends, however it ends.
struct Finished {
    running: Running,
    peer: NodeId,
}

impl Drop for Finished {
    fn drop(&mut self) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(&self.peer);
        }
    }
}

impl BundleParser {
    pub fn new(deadline: Duration) -> Self {
        BundleParser {
            deadline: Mutex::new(deadline),
            running: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Parses `data`, a bundle of `doc` from `from`, on a thread of its own. A
    /// peer's sessions send one bundle at a time, so a second one while its parse
    /// runs means that parse is stuck (or a second session of the same peer, which
    /// sends it again later): refused with RESOURCE_EXHAUSTED.
    pub async fn read(
        &self,
        from: &NodeId,
        doc: &DocId,
        data: &[u8],
    ) -> Result<(Bundle, Vec<Change>), EngineError> {
        {
            let mut running = self.running.lock().expect("never poisoned");
            if let Some((earlier, since)) = running.get(from) {
                return Err(EngineError::Exhausted(format!(
                    "a bundle from {from} (for {earlier}) has been parsed for {} s and \
                     its parse has not ended (automerge's parser hangs on some damaged \
                     bundles): no other bundle from {from} is taken until it does \
                     (restarting this node ends it)",
                    since.elapsed().as_secs()
                )));
            }
            running.insert(from.clone(), (doc.clone(), Instant::now()));
        }
        let finished = Finished {
            running: self.running.clone(),
            peer: from.clone(),
        };
        let deadline = *self.deadline.lock().expect("never poisoned");
        let (answer, parsed) = tokio::sync::oneshot::channel();
        let owned = data.to_vec();
        std::thread::Builder::new()
            .name("bundle-parse".into())
            .spawn(move || {
                let result = parse(&owned);
                // Off the running list before the answer, so the peer's next bundle
                // never finds this parse still listed.
                drop(finished);
                // The receiver is gone only when the session gave up on this parse.
                let _ = answer.send(result);
            })
            .map_err(|e| EngineError::Exhausted(format!("no thread to parse a bundle: {e}")))?;
        match tokio::time::timeout(deadline, parsed).await {
            Ok(Ok(result)) => Ok(result?),
            Ok(Err(_)) => Err(unreadable("its parser stopped without an answer")),
            Err(_) => {
                tracing::error!(
                    peer = %from,
                    doc = %doc,
                    bytes = data.len(),
                    "a bundle did not parse within {} s (a damaged or hostile bundle: \
                     its parse may keep a core busy until restart); no other bundle \
                     from this peer is taken while it runs",
                    deadline.as_secs_f32()
                );
                Err(unreadable(&format!(
                    "its parse did not finish within {} s; no other bundle from {from} \
                     is taken while it runs",
                    deadline.as_secs_f32()
                )))
            }
        }
    }

    /// Sets the deadline (tests that wait for a stuck parse).
    #[cfg(test)]
    pub fn set_deadline(&self, deadline: Duration) {
        *self.deadline.lock().expect("never poisoned") = deadline;
    }
}

fn unreadable(why: &str) -> EngineError {
    DomainError::invalid("bundle.data", format!("not an automerge bundle: {why}")).into()
}

/// Reads a bundle and its changes. automerge's parser panics on some malformed
/// bundles (a slice index out of range in its column decoders): such a bundle is
/// refused like any other unreadable one. The parse reads `data` and touches nothing
/// else, so unwinding out of it leaves no state behind.
fn parse(data: &[u8]) -> Result<(Bundle, Vec<Change>), DomainError> {
    check_chunk(data).map_err(|why| {
        DomainError::invalid("bundle.data", format!("not an automerge bundle: {why}"))
    })?;
    let parse = || -> Result<(Bundle, Vec<Change>), DomainError> {
        let bundle = Bundle::try_from(data).map_err(|e| {
            DomainError::invalid("bundle.data", format!("not an automerge bundle: {e}"))
        })?;
        let changes = bundle
            .to_changes()
            .map_err(|e| DomainError::invalid("bundle.data", format!("unreadable changes: {e}")))?;
        Ok((bundle, changes))
    };
    crate::fail_stop::catch_expected(parse).unwrap_or_else(|panic| {
        Err(DomainError::invalid(
            "bundle.data",
            format!(
                "not an automerge bundle: its parser failed ({})",
                panic.message
            ),
        ))
    })
}

/// The bytes that open every automerge chunk.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

/// Checks what automerge's bundle parser does not: that `data` is exactly one chunk
/// (nothing after it) whose checksum matches its contents. The parser takes a
/// bundle with a wrong checksum or trailing bytes, but loading the stored bundle at
/// the next start refuses it ("bad checksum"), and the document would be
/// quarantined (found by `sync::fuzz_tests` with damaged bundles).
fn check_chunk(data: &[u8]) -> Result<(), String> {
    if computed_checksum(data)? != data[4..8] {
        return Err("bad checksum".into());
    }
    Ok(())
}

/// The checksum `data`'s header should hold, when `data` is exactly one chunk.
pub(crate) fn computed_checksum(data: &[u8]) -> Result<[u8; 4], String> {
    use sha2::{Digest, Sha256};
    if data.len() < 10 || data[..4] != MAGIC {
        return Err("no chunk header".into());
    }
    let chunk_type = data[8];
    let (len, len_bytes) = uleb128(&data[9..]).ok_or("a bad chunk length")?;
    let start = 9 + len_bytes;
    if (data.len() - start) as u64 != len {
        return Err(format!(
            "the chunk says {len} bytes of data, the message holds {}",
            data.len() - start
        ));
    }
    let mut hasher = Sha256::new();
    hasher.update([chunk_type]);
    let mut leb = Vec::with_capacity(10);
    let mut rest = len;
    loop {
        let byte = (rest & 0x7f) as u8;
        rest >>= 7;
        if rest == 0 {
            leb.push(byte);
            break;
        }
        leb.push(byte | 0x80);
    }
    hasher.update(&leb);
    hasher.update(&data[start..]);
    let hash = hasher.finalize();
    Ok([hash[0], hash[1], hash[2], hash[3]])
}

/// Writes into `data`'s header the checksum of its contents, as a hostile peer
/// would after damaging a bundle (tests).
#[cfg(test)]
pub(crate) fn reseal(data: &mut [u8]) {
    if let Ok(checksum) = computed_checksum(data) {
        data[4..8].copy_from_slice(&checksum);
    }
}

/// An unsigned LEB128 number at the start of `bytes`, and how many bytes it took.
fn uleb128(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        let part = u64::from(byte & 0x7f);
        value |= part.checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;

    fn bundle() -> Vec<u8> {
        let mut doc = automerge::Automerge::new();
        let mut tx = doc.transaction();
        tx.put(automerge::ROOT, "opening", "{}").unwrap();
        tx.commit();
        let hashes: Vec<_> = doc.get_changes(&[]).iter().map(|c| c.hash()).collect();
        doc.bundle(hashes).unwrap().bytes().to_vec()
    }

    #[test]
    fn a_whole_bundle_passes_and_a_damaged_checksum_or_length_does_not() {
        let good = bundle();
        assert_eq!(check_chunk(&good), Ok(()));
        assert!(parse(&good).is_ok());
        let mut checksum = good.clone();
        checksum[5] ^= 0x01;
        assert_eq!(check_chunk(&checksum), Err("bad checksum".into()));
        let mut data = good.clone();
        let last = data.len() - 1;
        data[last] ^= 0x01;
        assert_eq!(check_chunk(&data), Err("bad checksum".into()));
        let mut longer = good.clone();
        longer.push(0);
        assert!(check_chunk(&longer)
            .unwrap_err()
            .contains("the message holds"));
        assert!(check_chunk(&good[..good.len() - 1]).is_err());
        assert!(check_chunk(&good[..9]).is_err());
        assert!(check_chunk(&[]).is_err());
        // What the parser alone takes and a restart would refuse.
        assert!(Bundle::try_from(checksum.as_slice()).is_ok());
        assert!(automerge::Automerge::new()
            .load_incremental(&checksum)
            .is_err());
        assert!(parse(&checksum).is_err());
    }
}
