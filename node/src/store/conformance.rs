//! One suite every [`Backend`] must pass, run by each backend's own tests, covering
//! the raw key-value laws and the [`DocStore`] built on top.

use super::{Backend, Batch, DocStore, StoreError};

/// Runs the whole suite. `reopen` must give a fresh handle on the same storage; the
/// suite closes its handle before calling it.
pub fn run(backend: Box<dyn Backend>, reopen: impl Fn() -> Box<dyn Backend>) {
    point_reads_and_writes(backend.as_ref());
    batches_are_atomic_and_ordered(backend.as_ref());
    doc_store_round_trips_and_compacts(backend.as_ref());
    doc_store_detects_corruption(backend.as_ref());
    backend.flush().unwrap();
    backend.close().unwrap();
    flushed_writes_survive_reopen(reopen().as_ref());
}

fn put(backend: &dyn Backend, key: &str, value: &str) {
    let mut batch = Batch::default();
    batch.put(key.as_bytes(), value.as_bytes());
    backend.write(batch).unwrap();
}

fn point_reads_and_writes(backend: &dyn Backend) {
    assert_eq!(backend.get(b"k/missing").unwrap(), None);
    put(backend, "k/a", "1");
    assert_eq!(backend.get(b"k/a").unwrap().as_deref(), Some(&b"1"[..]));
    put(backend, "k/a", "2");
    assert_eq!(backend.get(b"k/a").unwrap().as_deref(), Some(&b"2"[..]));
    let mut batch = Batch::default();
    batch.delete(&b"k/a"[..]);
    backend.write(batch).unwrap();
    assert_eq!(backend.get(b"k/a").unwrap(), None);
}

fn batches_are_atomic_and_ordered(backend: &dyn Backend) {
    put(backend, "s/old", "x");
    let mut batch = Batch::default();
    batch
        .put(&b"s/c/10"[..], &b"ten"[..])
        .put(&b"s/c/02"[..], &b"two"[..])
        .put(&b"s/d"[..], &b"outside"[..])
        .delete(&b"s/old"[..]);
    backend.write(batch).unwrap();
    let scanned = backend.scan_prefix(b"s/c/").unwrap();
    let keys: Vec<_> = scanned
        .iter()
        .map(|(k, _)| String::from_utf8_lossy(k).to_string())
        .collect();
    assert_eq!(keys, ["s/c/02", "s/c/10"]);
    assert_eq!(backend.get(b"s/old").unwrap(), None);
    assert!(backend.scan_prefix(b"nothing/").unwrap().is_empty());
}

fn doc_store_round_trips_and_compacts(backend: &dyn Backend) {
    let store = DocStore::new(backend);
    assert!(store.load("ledger/ttu").unwrap().is_none());
    store.append_chunk("ledger/ttu", 0, b"chunk-0").unwrap();
    store.append_chunk("ledger/ttu", 1, b"chunk-1").unwrap();
    store
        .append_chunk("ledger/ttuv", 0, b"other doc, same prefix")
        .unwrap();
    let loaded = store.load("ledger/ttu").unwrap().unwrap();
    assert_eq!(loaded.snapshot, None);
    assert_eq!(
        loaded.chunks,
        vec![b"chunk-0".to_vec(), b"chunk-1".to_vec()]
    );
    assert_eq!(loaded.next_chunk, 2);

    store.compact("ledger/ttu", b"snapshot-0-1", 2).unwrap();
    store.append_chunk("ledger/ttu", 2, b"chunk-2").unwrap();
    let loaded = store.load("ledger/ttu").unwrap().unwrap();
    assert_eq!(loaded.snapshot.as_deref(), Some(&b"snapshot-0-1"[..]));
    assert_eq!(loaded.chunks, vec![b"chunk-2".to_vec()]);
    assert_eq!(loaded.next_chunk, 3);
    assert!(loaded.bytes > 0);

    let mut ids = store.document_ids().unwrap();
    ids.sort();
    assert_eq!(ids, ["ledger/ttu", "ledger/ttuv"]);
    assert_eq!(store.next_incarnation(70_000).unwrap(), 70_000);
    assert_eq!(store.next_incarnation(5).unwrap(), 70_001);
}

fn doc_store_detects_corruption(backend: &dyn Backend) {
    let store = DocStore::new(backend);
    store.append_chunk("catalog/ttu", 0, b"good chunk").unwrap();
    store
        .append_chunk("catalog/ttu", 1, b"will be damaged")
        .unwrap();
    let key = DocStore::chunk_key("catalog/ttu", 1);
    let mut stored = backend.get(&key).unwrap().unwrap();
    let last = stored.len() - 1;
    stored[last] ^= 0xff;
    let mut batch = Batch::default();
    batch.put(key.clone(), stored.clone());
    backend.write(batch).unwrap();
    match store.load("catalog/ttu") {
        Err(StoreError::Corrupt { key: named, reason }) => {
            assert!(named.contains("catalog/ttu"), "{named}");
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("corruption not detected: {other:?}"),
    }
    // A truncated record is caught too.
    let mut batch = Batch::default();
    batch.put(key, stored[..2].to_vec());
    backend.write(batch).unwrap();
    assert!(matches!(
        store.load("catalog/ttu"),
        Err(StoreError::Corrupt { .. })
    ));
}

fn flushed_writes_survive_reopen(backend: &dyn Backend) {
    assert_eq!(
        backend.get(b"s/c/02").unwrap().as_deref(),
        Some(&b"two"[..])
    );
    let store = DocStore::new(backend);
    let loaded = store.load("ledger/ttu").unwrap().unwrap();
    assert_eq!(loaded.chunks, vec![b"chunk-2".to_vec()]);
    assert_eq!(store.next_incarnation(5).unwrap(), 70_002);
}
