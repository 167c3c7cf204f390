//! The engine over a store whose writes or flushes fail on demand (a full disk),
//! then recover: no failed write is acknowledged or read, every write after the
//! failure is refused in plain words, and the store reopened holds exactly the
//! acknowledged movements, with request ids still answered once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mart_proto::tonic::Code;

use super::{Engine, EngineError, Identity, MovementRequest};
use crate::domain::doc_id::NodeId;
use crate::domain::movement::{Buyer, Channel, MovementKind};
use crate::store::{Backend, Batch, KeyValue, MemoryBackend, StoreError};

const SKU: &str = "TTU-MKP-060";

/// A [`MemoryBackend`] whose writes or flushes fail, as a full disk's do, while
/// the test says so.
#[derive(Default)]
struct FillingDisk {
    inner: MemoryBackend,
    writes_fail: AtomicBool,
    flushes_fail: AtomicBool,
}

impl FillingDisk {
    fn full() -> StoreError {
        StoreError::Full {
            path: "/srv/mart/data/db".into(),
            reason: "No space left on device (os error 28)".into(),
        }
    }
}

impl Backend for FillingDisk {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        self.inner.scan_prefix(prefix)
    }
    fn write(&self, batch: Batch) -> Result<(), StoreError> {
        if self.writes_fail.load(Ordering::SeqCst) {
            return Err(Self::full());
        }
        self.inner.write(batch)
    }
    fn flush(&self) -> Result<(), StoreError> {
        if self.flushes_fail.load(Ordering::SeqCst) {
            return Err(Self::full());
        }
        self.inner.flush()
    }
    fn close(self: Box<Self>) -> Result<(), StoreError> {
        Box::new(self.inner).close()
    }
}

fn ttu() -> Identity {
    Identity {
        node: NodeId::parse("ttu").unwrap(),
        hub: NodeId::parse("kupang").unwrap(),
    }
}

fn request(id: &str, kind: MovementKind) -> MovementRequest {
    MovementRequest {
        request_id: Some(id.into()),
        sku: SKU.into(),
        kind,
    }
}

fn sale(id: &str) -> MovementRequest {
    request(
        id,
        MovementKind::Sale {
            quantity: 1,
            unit_price: None,
            channel: Channel::Store,
            buyer: Buyer::Public,
            order: None,
            basket: None,
        },
    )
}

/// Opens an engine and records 10 units and the sales `ids`, all acknowledged.
async fn stocked(disk: Arc<FillingDisk>, ids: &[&str]) -> Engine {
    let engine = Engine::open(disk, ttu()).unwrap();
    let receipt = MovementKind::Receipt {
        quantity: 10,
        unit_cost: 20_000,
        producer: None,
        over_budget: None,
    };
    engine.record(request("stock", receipt)).await.unwrap();
    for id in ids {
        engine.record(sale(id)).await.unwrap();
    }
    engine
}

/// The ids of the movements a client is shown.
async fn listed(engine: &Engine) -> Result<Vec<String>, EngineError> {
    engine
        .durable_read(|e| e.movements(None, None, 0, None))
        .await
        .map(|ms| ms.into_iter().map(|m| m.id).collect())
}

fn assert_says_free_space(e: &EngineError) {
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    let words = e.to_string();
    assert!(
        words.contains("free space on it and restart the node"),
        "{words}"
    );
}

async fn fails_then_recovers(make_it_fail: impl Fn(&FillingDisk, bool)) {
    let disk = Arc::new(FillingDisk::default());
    let engine = stocked(disk.clone(), &["a", "b"]).await;
    let failure = engine.watch_storage_failure();
    assert!(failure.borrow().is_none());

    make_it_fail(&disk, true);
    let lost = engine.record(sale("c")).await.unwrap_err();
    assert_says_free_space(&lost);
    assert!(failure.borrow().is_some(), "the server is not told to stop");
    // Reads are refused rather than show the write that failed.
    let read = listed(&engine).await.unwrap_err();
    assert_eq!(read.code(), Code::Unavailable, "{read}");
    let stock = engine
        .durable_read(|e| e.stock(None, Some(SKU)))
        .await
        .unwrap_err();
    assert_eq!(stock.code(), Code::Unavailable, "{stock}");

    // Space is freed: this engine still refuses, in the same words (its memory may
    // hold what the disk lost); the node stops and a new one starts.
    make_it_fail(&disk, false);
    assert_says_free_space(&engine.record(sale("d")).await.unwrap_err());
    drop(engine);

    let disk = Arc::new(FillingDisk {
        inner: disk.inner.crash_and_reopen(),
        ..Default::default()
    });
    let engine = Engine::open(disk, ttu()).unwrap();
    assert_eq!(listed(&engine).await.unwrap(), ["stock", "a", "b"]);
    // Retried under their request ids: the acknowledged one once, the lost one anew.
    assert!(engine.record(sale("b")).await.unwrap().duplicate);
    assert!(!engine.record(sale("c")).await.unwrap().duplicate);
    assert!(engine.record(sale("c")).await.unwrap().duplicate);
    assert_eq!(listed(&engine).await.unwrap(), ["stock", "a", "b", "c"]);
    let stock = engine
        .durable_read(|e| e.stock(None, Some(SKU)))
        .await
        .unwrap();
    assert_eq!(stock[0].quantity, 7);
}

#[tokio::test]
async fn a_failed_flush_is_neither_acknowledged_nor_read_nor_kept() {
    fails_then_recovers(|disk, fail| disk.flushes_fail.store(fail, Ordering::SeqCst)).await;
}

#[tokio::test]
async fn a_failed_write_is_neither_acknowledged_nor_read_nor_kept() {
    fails_then_recovers(|disk, fail| disk.writes_fail.store(fail, Ordering::SeqCst)).await;
}

/// A read that saw a write still waiting for its flush is served only once that
/// flush succeeded.
#[tokio::test]
async fn a_read_waits_for_the_flush_of_what_it_saw() {
    let disk = Arc::new(FillingDisk::default());
    let engine = Arc::new(stocked(disk.clone(), &[]).await);
    disk.flushes_fail.store(true, Ordering::SeqCst);
    let failing = tokio::spawn({
        let engine = engine.clone();
        async move { engine.record(sale("pending")).await }
    });
    // Whether the read comes before the sale was staged, after it, or after the
    // flush failed, it never lists the sale.
    match listed(&engine).await {
        Ok(ids) => assert_eq!(ids, ["stock"]),
        Err(e) => assert_says_free_space(&e),
    }
    assert_says_free_space(&failing.await.unwrap().unwrap_err());
}
