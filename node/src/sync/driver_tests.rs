//! The session driver's bounds on a silent peer: with a short silence limit, a peer
//! that says nothing, or takes nothing, ends the session in words; one that keeps
//! talking does not; and a link that failed after silence is reported as dead.

use std::time::Duration;

use mart_proto::tonic::Status;
use mart_proto::v1::SyncMessage;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::liveness::{Peer, SILENT_AFTER};
use super::testkit::{engine, node};
use super::{drive, wire, DriveError, Rhythm, Session, Wiring, PROTOCOLS};
use crate::engine::now_ms;

const LIMIT: Duration = Duration::from_millis(300);

/// Wiring with a short silence limit and no timer announces; the senders keep the
/// watches open.
fn short_wiring() -> (Wiring, watch::Sender<u64>, watch::Sender<u64>) {
    let (writes_tx, local_writes) = watch::channel(0);
    let (resync_tx, resync) = watch::channel(0);
    let wiring = Wiring {
        local_writes,
        resync,
        rhythm: Rhythm {
            resync_every: Duration::from_secs(3600),
            silence_limit: LIMIT,
        },
        shutdown: CancellationToken::new(),
    };
    (wiring, writes_tx, resync_tx)
}

/// A district's session with the hub, and a sink that reads all it sends.
fn district_session() -> (Session, mpsc::Sender<SyncMessage>) {
    let (ttu, book) = engine("ttu");
    let session = Session::new(ttu, book, node("kupang"));
    let (out, mut sink) = mpsc::channel::<SyncMessage>(16);
    tokio::spawn(async move { while sink.recv().await.is_some() {} });
    (session, out)
}

#[tokio::test]
async fn a_peer_that_says_nothing_ends_the_session_in_words() {
    let (mut session, out) = district_session();
    let (wiring, _w, _r) = short_wiring();
    let (_inbound_tx, inbound) = mpsc::channel::<Result<SyncMessage, Status>>(1);
    let ended = tokio::time::timeout(
        Duration::from_secs(30),
        drive(
            &mut session,
            ReceiverStream::new(inbound),
            out,
            wiring,
            |_| {},
        ),
    )
    .await
    .expect("the session ends on its own");
    let Err(DriveError::Silent(silence)) = ended else {
        panic!("not ended for silence: {ended:?}");
    };
    assert_eq!(silence.peer, Peer::Hub);
    assert!(silence.silent >= LIMIT, "{silence:?}");
    assert!(
        silence
            .to_string()
            .contains("the link is dead or the hub is frozen"),
        "{silence}"
    );
}

#[tokio::test]
async fn a_peer_that_keeps_talking_keeps_the_session() {
    let (mut session, out) = district_session();
    let (wiring, _w, _r) = short_wiring();
    let (inbound_tx, inbound) = mpsc::channel::<Result<SyncMessage, Status>>(4);
    let talking = tokio::spawn(async move {
        inbound_tx
            .send(Ok(wire::hello("kupang", PROTOCOLS, now_ms())))
            .await
            .unwrap();
        // Ten times the limit, never silent for half of it.
        for _ in 0..20 {
            tokio::time::sleep(LIMIT / 2).await;
            inbound_tx
                .send(Ok(wire::announced(now_ms())))
                .await
                .unwrap();
        }
        // Then silence, the stream kept open.
        inbound_tx
    });
    let ended = drive(
        &mut session,
        ReceiverStream::new(inbound),
        out,
        wiring,
        |_| {},
    )
    .await;
    assert!(
        talking.is_finished(),
        "ended while the peer talked: {ended:?}"
    );
    assert!(matches!(ended, Err(DriveError::Silent(_))), "{ended:?}");
}

#[tokio::test]
async fn a_peer_that_takes_nothing_ends_the_session() {
    let (ttu, book) = engine("ttu");
    let mut session = Session::new(ttu, book, node("kupang"));
    // Room for one message, never read: the opening's second message waits.
    let (out, _unread) = mpsc::channel::<SyncMessage>(1);
    let (wiring, _w, _r) = short_wiring();
    let (_inbound_tx, inbound) = mpsc::channel::<Result<SyncMessage, Status>>(1);
    let ended = tokio::time::timeout(
        Duration::from_secs(30),
        drive(
            &mut session,
            ReceiverStream::new(inbound),
            out,
            wiring,
            |_| {},
        ),
    )
    .await
    .expect("the session ends on its own");
    let Err(DriveError::Silent(silence)) = ended else {
        panic!("not ended for silence: {ended:?}");
    };
    assert!(
        silence
            .to_string()
            .starts_with("no answer from the hub to this node's messages"),
        "{silence}"
    );
}

#[test]
fn a_transport_failure_after_silence_is_a_dead_link() {
    let hub = || Peer::District(node("ttu"));
    let transport = || {
        DriveError::Inbound(Status::unknown(
            "h2 protocol error: error reading a body from connection",
        ))
    };
    // After the keepalive's silence: the link is dead, in words.
    let dead = transport().after_silence(hub(), SILENT_AFTER + Duration::from_secs(10));
    assert!(
        dead.to_string()
            .starts_with("no answer from district ttu for 20 s: the link is dead"),
        "{dead}"
    );
    assert_eq!(dead.status().code(), mart_proto::tonic::Code::Unavailable);
    let dropped = DriveError::Link("the outgoing stream closed".into());
    assert!(matches!(
        dropped.after_silence(hub(), SILENT_AFTER),
        DriveError::Silent(_)
    ));
    // Soon after a message the keepalive cannot have fired: the error stays.
    let soon = transport().after_silence(hub(), SILENT_AFTER - Duration::from_millis(1));
    assert!(matches!(soon, DriveError::Inbound(_)), "{soon}");
    // What the peer said is an answer, however long it was silent before.
    let said = DriveError::Inbound(Status::invalid_argument("protocol violation"));
    let said = said.after_silence(hub(), Duration::from_secs(600));
    assert!(matches!(said, DriveError::Inbound(_)), "{said}");
    let closed = DriveError::PeerClosed.after_silence(hub(), Duration::from_secs(600));
    assert!(matches!(closed, DriveError::PeerClosed), "{closed}");
}

#[tokio::test]
async fn a_stream_that_ends_with_its_connection_is_a_dropped_link() {
    // The peer ends its stream and the connection stays: the peer closed it.
    let (mut session, out) = district_session();
    let (wiring, _w, _r) = short_wiring();
    let (inbound_tx, inbound) = mpsc::channel::<Result<SyncMessage, Status>>(1);
    drop(inbound_tx);
    let ended = drive(
        &mut session,
        ReceiverStream::new(inbound),
        out,
        wiring,
        |_| {},
    )
    .await;
    assert!(matches!(ended, Err(DriveError::PeerClosed)), "{ended:?}");
    // Both streams end: the connection went (a dead link, after long enough silence).
    let (ttu, book) = engine("ttu");
    let mut session = Session::new(ttu, book, node("kupang"));
    let (out, sink) = mpsc::channel::<SyncMessage>(16);
    let (wiring, _w, _r) = short_wiring();
    let (inbound_tx, inbound) = mpsc::channel::<Result<SyncMessage, Status>>(1);
    let cut = tokio::spawn(async move {
        tokio::time::sleep(LIMIT / 3).await;
        drop((sink, inbound_tx));
    });
    let ended = drive(
        &mut session,
        ReceiverStream::new(inbound),
        out,
        wiring,
        |_| {},
    )
    .await;
    cut.await.unwrap();
    let Err(DriveError::Link(reason)) = ended else {
        panic!("not a dropped link: {ended:?}");
    };
    assert_eq!(reason, "the connection closed");
}
