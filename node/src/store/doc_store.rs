//! Documents as a snapshot plus incremental chunks, each record checksummed.
//!
//! Keys: `snap/<doc>` holds the snapshot, `d/<doc>/c/<seq, 20 digits>` each chunk
//! written since, `a/<doc>` marks a ledger period archived (sealed and settled: not
//! loaded at start-up; its value: the bytes it takes), `i/<doc>` lists every stored
//! document (so start-up finds them without reading their records), `m/incarnation`
//! the node's start counter, `m/restoring` a restore from the hub that has not
//! ended, `m/retired` the movement ids of the outlet's period archived last,
//! `m/indexed` that `i/` is complete, `m/clock` the newest time the node has
//! evidence for (ms since the epoch, i64 big endian), `q/<ms>/<key>` a record an
//! operator dropped at that time (moved aside byte for byte, never read again). A record is one version
//! byte, a CRC-32 of the payload (little endian) and the payload. A record that fails
//! its checksum is reported by key; it is never skipped.
//!
//! The snapshot lives far from the chunks in key order on purpose: sled keeps
//! neighbouring keys in one leaf and rewrites the whole leaf (a value over its blob
//! threshold as a new blob file) every few updates, so a snapshot next to the chunks
//! was written again every few appended chunks: about 83 KB written per sale at
//! 100,000 sales, and a data dir swinging with stale blob files (issues 14 and 16).
//! Stores written before kept the snapshot at `d/<doc>/s`: it is still read, and
//! the next compaction of the document moves it (deleted in the same batch).

use super::{Backend, Batch, StoreError};

const RECORD_VERSION: u8 = 1;
const HEADER: usize = 5;
const INCARNATION_KEY: &[u8] = b"m/incarnation";
const RESTORING_KEY: &[u8] = b"m/restoring";
const INDEXED_KEY: &[u8] = b"m/indexed";
const RETIRED_KEY: &[u8] = b"m/retired";
const CLOCK_KEY: &[u8] = b"m/clock";

/// What is stored of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDoc {
    pub snapshot: Option<Vec<u8>>,
    /// Chunks written since the snapshot, in the order they were written.
    pub chunks: Vec<Vec<u8>>,
    /// The sequence number the next chunk must use.
    pub next_chunk: u64,
    /// Bytes of all records of the document.
    pub bytes: u64,
}

/// Document records over any [`Backend`].
pub struct DocStore<'a> {
    backend: &'a dyn Backend,
}

impl<'a> DocStore<'a> {
    pub fn new(backend: &'a dyn Backend) -> Self {
        DocStore { backend }
    }

    fn prefix(doc: &str) -> Vec<u8> {
        format!("d/{doc}/").into_bytes()
    }

    fn snapshot_key(doc: &str) -> Vec<u8> {
        format!("snap/{doc}").into_bytes()
    }

    /// Where stores written before the snapshot moved kept it (read, never written).
    fn legacy_snapshot_key(doc: &str) -> Vec<u8> {
        format!("d/{doc}/s").into_bytes()
    }

    pub(crate) fn chunk_key(doc: &str, seq: u64) -> Vec<u8> {
        format!("d/{doc}/c/{seq:020}").into_bytes()
    }

    fn seal(payload: &[u8]) -> Vec<u8> {
        let mut record = Vec::with_capacity(HEADER + payload.len());
        record.push(RECORD_VERSION);
        record.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        record.extend_from_slice(payload);
        record
    }

    fn open(key: &[u8], record: &[u8]) -> Result<Vec<u8>, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            reason,
        };
        if record.len() < HEADER {
            return Err(corrupt(format!("truncated to {} bytes", record.len())));
        }
        if record[0] != RECORD_VERSION {
            return Err(corrupt(format!("unknown record version {}", record[0])));
        }
        let stored = u32::from_le_bytes(record[1..HEADER].try_into().expect("4 bytes"));
        let payload = &record[HEADER..];
        let computed = crc32fast::hash(payload);
        if stored != computed {
            return Err(corrupt(format!(
                "checksum mismatch (stored {stored:08x}, computed {computed:08x})"
            )));
        }
        Ok(payload.to_vec())
    }

    fn index_key(doc: &str) -> Vec<u8> {
        format!("i/{doc}").into_bytes()
    }

    /// Stages one chunk of a document (the first one lists the document). Durable
    /// after the next flush.
    pub fn append_chunk(&self, doc: &str, seq: u64, payload: &[u8]) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        batch.put(Self::chunk_key(doc, seq), Self::seal(payload));
        if seq == 0 {
            batch.put(Self::index_key(doc), Self::seal(&[]));
        }
        self.backend.write(batch)
    }

    /// Replaces the chunks before `upto` by a snapshot that contains them, atomically
    /// (a snapshot a store written before kept at its old key is deleted with them).
    pub fn compact(&self, doc: &str, snapshot: &[u8], upto: u64) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        batch.put(Self::snapshot_key(doc), Self::seal(snapshot));
        batch.put(Self::index_key(doc), Self::seal(&[]));
        let legacy = Self::legacy_snapshot_key(doc);
        for (key, _) in self.backend.scan_prefix(&Self::prefix(doc))? {
            if key == legacy || key < Self::chunk_key(doc, upto) {
                batch.delete(key);
            }
        }
        self.backend.write(batch)
    }

    /// Loads and verifies every record of a document; `None` if it has none.
    pub fn load(&self, doc: &str) -> Result<Option<StoredDoc>, StoreError> {
        let snapshot_key = Self::snapshot_key(doc);
        let mut records = self.backend.scan_prefix(&Self::prefix(doc))?;
        let snapshot = self.backend.get(&snapshot_key)?;
        if records.is_empty() && snapshot.is_none() {
            return Ok(None);
        }
        let legacy_key = Self::legacy_snapshot_key(doc);
        // A snapshot at the old key only where the new one was never written.
        if let Some(snapshot) = snapshot {
            records.retain(|(key, _)| key != &legacy_key);
            records.insert(0, (snapshot_key.clone(), snapshot));
        }
        let mut stored = StoredDoc {
            snapshot: None,
            chunks: Vec::new(),
            next_chunk: 0,
            bytes: 0,
        };
        for (key, record) in records {
            stored.bytes += (key.len() + record.len()) as u64;
            let payload = Self::open(&key, &record)?;
            if key == snapshot_key || key == legacy_key {
                stored.snapshot = Some(payload);
                continue;
            }
            let seq = std::str::from_utf8(&key[Self::prefix(doc).len()..])
                .ok()
                .and_then(|rest| rest.strip_prefix("c/"))
                .and_then(|seq| seq.parse::<u64>().ok())
                .ok_or_else(|| StoreError::Corrupt {
                    key: String::from_utf8_lossy(&key).into_owned(),
                    reason: "unexpected key in document records".into(),
                })?;
            stored.chunks.push(payload);
            stored.next_chunk = seq + 1;
        }
        Ok(Some(stored))
    }

    /// Ids of every stored document, from the `i/` list (a store written before the
    /// list existed is listed once by reading its records, and the list written).
    pub fn document_ids(&self) -> Result<Vec<String>, StoreError> {
        if self.backend.get(INDEXED_KEY)?.is_none() {
            let ids = self.document_ids_from_records()?;
            let mut batch = Batch::default();
            for doc in &ids {
                batch.put(Self::index_key(doc), Self::seal(&[]));
            }
            batch.put(INDEXED_KEY, Self::seal(&[]));
            self.backend.write(batch)?;
            self.backend.flush()?;
            return Ok(ids);
        }
        let mut ids = Vec::new();
        for (key, record) in self.backend.scan_prefix(b"i/")? {
            Self::open(&key, &record)?;
            ids.push(String::from_utf8_lossy(&key[2..]).into_owned());
        }
        Ok(ids)
    }

    /// Ids of every document with records, by reading them all (slow: every byte).
    fn document_ids_from_records(&self) -> Result<Vec<String>, StoreError> {
        let mut ids: Vec<String> = Vec::new();
        for (key, _) in self.backend.scan_prefix(b"snap/")? {
            ids.push(String::from_utf8_lossy(&key[5..]).into_owned());
        }
        for (key, _) in self.backend.scan_prefix(b"d/")? {
            let key = String::from_utf8_lossy(&key[2..]).into_owned();
            let doc = if let Some(doc) = key.strip_suffix("/s") {
                doc.to_string()
            } else if let Some((doc, _)) = key.rsplit_once("/c/") {
                doc.to_string()
            } else {
                continue;
            };
            ids.push(doc);
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Moves every record of a document (its chunks, snapshot, listing and archive
    /// mark) to `q/<stamp>/<key>`, byte for byte, in one atomic batch: start-up no
    /// longer sees it, and nothing is destroyed. Returns how many records moved.
    /// Durable after the next flush.
    pub fn set_aside(&self, doc: &str, stamp: i64) -> Result<usize, StoreError> {
        let mut records = self.backend.scan_prefix(&Self::prefix(doc))?;
        let keys = [
            Self::snapshot_key(doc),
            Self::index_key(doc),
            format!("a/{doc}").into_bytes(),
        ];
        for key in keys {
            if let Some(record) = self.backend.get(&key)? {
                records.push((key, record));
            }
        }
        let mut batch = Batch::default();
        for (key, record) in &records {
            let mut aside = format!("q/{stamp}/").into_bytes();
            aside.extend_from_slice(key);
            batch.put(aside, record.clone());
            batch.delete(key.clone());
        }
        self.backend.write(batch)?;
        Ok(records.len())
    }

    /// Marks a document archived (it takes `bytes` on disk): start-up leaves it on
    /// disk. Durable after the next flush; losing the mark only costs loading the
    /// document once more.
    pub fn set_archived(&self, doc: &str, bytes: u64) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        batch.put(
            format!("a/{doc}").into_bytes(),
            Self::seal(&bytes.to_be_bytes()),
        );
        self.backend.write(batch)
    }

    /// Every document marked archived, with the bytes it takes on disk.
    pub fn archived(&self) -> Result<std::collections::HashMap<String, u64>, StoreError> {
        let mut ids = std::collections::HashMap::new();
        for (key, record) in self.backend.scan_prefix(b"a/")? {
            let payload = Self::open(&key, &record)?;
            let bytes = <[u8; 8]>::try_from(payload.as_slice()).map_or(0, u64::from_be_bytes);
            ids.insert(String::from_utf8_lossy(&key[2..]).into_owned(), bytes);
        }
        Ok(ids)
    }

    /// Keeps the movement ids of the outlet's period archived last (JSON), so a
    /// retry across a period boundary is still recognised after a restart.
    pub fn set_retired_ids(&self, json: &[u8]) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        batch.put(RETIRED_KEY, Self::seal(json));
        self.backend.write(batch)
    }

    pub fn retired_ids(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.backend
            .get(RETIRED_KEY)?
            .map(|record| Self::open(RETIRED_KEY, &record))
            .transpose()
    }

    /// Keeps the newest time the node has evidence for (the clock guard's), durable
    /// after the next flush.
    pub fn set_clock_evidence(&self, unix_ms: i64) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        batch.put(CLOCK_KEY, Self::seal(&unix_ms.to_be_bytes()));
        self.backend.write(batch)
    }

    pub fn clock_evidence(&self) -> Result<Option<i64>, StoreError> {
        let Some(record) = self.backend.get(CLOCK_KEY)? else {
            return Ok(None);
        };
        let payload = Self::open(CLOCK_KEY, &record)?;
        let bytes: [u8; 8] = payload
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt {
                key: "m/clock".into(),
                reason: "not 8 bytes".into(),
            })?;
        Ok(Some(i64::from_be_bytes(bytes)))
    }

    /// Marks (or unmarks) the store as being restored from the hub, so a node killed
    /// mid-restore goes on restoring at its next start, whatever its command line.
    /// Durable after the next flush.
    pub fn set_restoring(&self, restoring: bool) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        if restoring {
            batch.put(RESTORING_KEY, Self::seal(&[]));
        } else {
            batch.delete(RESTORING_KEY.to_vec());
        }
        self.backend.write(batch)
    }

    /// Whether a restore from the hub began and has not ended.
    pub fn restoring(&self) -> Result<bool, StoreError> {
        match self.backend.get(RESTORING_KEY)? {
            Some(record) => Self::open(RESTORING_KEY, &record).map(|_| true),
            None => Ok(false),
        }
    }

    /// Durably bumps and returns the node's start counter; a store without one starts
    /// at `first`.
    pub fn next_incarnation(&self, first: u32) -> Result<u32, StoreError> {
        let current = match self.backend.get(INCARNATION_KEY)? {
            Some(record) => {
                let payload = Self::open(INCARNATION_KEY, &record)?;
                let bytes: [u8; 4] =
                    payload
                        .as_slice()
                        .try_into()
                        .map_err(|_| StoreError::Corrupt {
                            key: "m/incarnation".into(),
                            reason: format!("{} bytes, expected 4", payload.len()),
                        })?;
                u32::from_be_bytes(bytes)
            }
            None => first.saturating_sub(1),
        };
        let next = current.checked_add(1).ok_or_else(|| StoreError::Corrupt {
            key: "m/incarnation".into(),
            reason: "no incarnation left after u32::MAX".into(),
        })?;
        let mut batch = Batch::default();
        batch.put(INCARNATION_KEY, Self::seal(&next.to_be_bytes()));
        self.backend.write(batch)?;
        self.backend.flush()?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryBackend;

    fn keys(backend: &dyn Backend, prefix: &str) -> Vec<String> {
        backend
            .scan_prefix(prefix.as_bytes())
            .unwrap()
            .into_iter()
            .map(|(k, _)| String::from_utf8(k).unwrap())
            .collect()
    }

    /// Chunks are appended next to each other; the snapshot must not be among them,
    /// or sled rewrites it with every few chunks (issue 16).
    #[test]
    fn the_snapshot_is_kept_apart_from_the_chunks() {
        let backend = MemoryBackend::new();
        let store = DocStore::new(&backend);
        store.append_chunk("ledger/ttu/2026-12", 0, b"c0").unwrap();
        store.compact("ledger/ttu/2026-12", b"snapshot", 1).unwrap();
        store.append_chunk("ledger/ttu/2026-12", 1, b"c1").unwrap();
        assert_eq!(
            keys(&backend, "d/ledger/ttu/2026-12/"),
            [String::from_utf8(DocStore::chunk_key("ledger/ttu/2026-12", 1)).unwrap()]
        );
        let loaded = store.load("ledger/ttu/2026-12").unwrap().unwrap();
        assert_eq!(loaded.snapshot.as_deref(), Some(&b"snapshot"[..]));
        assert_eq!(loaded.chunks, vec![b"c1".to_vec()]);
    }

    /// A store written before the snapshot moved keeps loading, and its next
    /// compaction moves the snapshot.
    #[test]
    fn a_snapshot_at_the_old_key_loads_and_moves_at_the_next_compaction() {
        let backend = MemoryBackend::new();
        let doc = "ledger/ttu/2026-11";
        let mut batch = Batch::default();
        batch.put(DocStore::legacy_snapshot_key(doc), DocStore::seal(b"old"));
        batch.put(DocStore::chunk_key(doc, 4), DocStore::seal(b"c4"));
        batch.put(DocStore::index_key(doc), DocStore::seal(&[]));
        backend.write(batch).unwrap();
        let store = DocStore::new(&backend);
        let loaded = store.load(doc).unwrap().unwrap();
        assert_eq!(loaded.snapshot.as_deref(), Some(&b"old"[..]));
        assert_eq!(loaded.chunks, vec![b"c4".to_vec()]);
        assert_eq!(loaded.next_chunk, 5);
        assert_eq!(store.document_ids_from_records().unwrap(), [doc]);

        store.compact(doc, b"new", 5).unwrap();
        assert!(keys(&backend, &format!("d/{doc}/")).is_empty());
        let loaded = store.load(doc).unwrap().unwrap();
        assert_eq!(loaded.snapshot.as_deref(), Some(&b"new"[..]));
        assert!(loaded.chunks.is_empty());
        assert_eq!(store.document_ids_from_records().unwrap(), [doc]);

        assert_eq!(store.set_aside(doc, 7).unwrap(), 2);
        assert!(store.load(doc).unwrap().is_none());
    }
}
