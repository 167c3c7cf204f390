//! The accept loop's cap, its pause after accept errors and its log throttle: the cap
//! over real loopback sockets, the errors from a fake listener on tokio's paused
//! clock.

use std::collections::VecDeque;

use tokio::io::{AsyncReadExt, DuplexStream};
use tokio::net::TcpStream;
use tokio_stream::StreamExt;

use super::*;

/// How long a test waits for what must happen at once; only a failure waits it out.
const AT_ONCE: Duration = Duration::from_secs(30);

/// Reads until the peer closes the connection (EOF or reset).
async fn closed_by_peer(stream: &mut TcpStream) -> bool {
    let mut buf = [0; 16];
    matches!(
        tokio::time::timeout(AT_ONCE, stream.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn a_connection_over_the_cap_is_closed_at_once_and_a_freed_slot_admits_the_next() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut incoming = Incoming::capped(listener, 2, None);
    let mut clients = Vec::new();
    for _ in 0..2 {
        clients.push(TcpStream::connect(addr).await.unwrap());
    }
    let first = incoming.next().await.unwrap().unwrap();
    let _second = incoming.next().await.unwrap().unwrap();

    let (admitted_tx, mut admitted_rx) = tokio::sync::mpsc::unbounded_channel();
    let serving = tokio::spawn(async move {
        while let Some(Ok(connection)) = incoming.next().await {
            admitted_tx.send(connection).unwrap();
        }
    });
    let mut third = TcpStream::connect(addr).await.unwrap();
    assert!(closed_by_peer(&mut third).await, "over the cap");
    assert!(admitted_rx.try_recv().is_err());

    drop(first);
    let _fourth = TcpStream::connect(addr).await.unwrap();
    let admitted = tokio::time::timeout(AT_ONCE, admitted_rx.recv()).await;
    assert!(matches!(admitted, Ok(Some(_))), "a freed slot is taken");
    serving.abort();
}

/// A listener that answers with `errors` first, then with connections forever.
struct Scripted {
    errors: VecDeque<io::ErrorKind>,
    raw_os_error: Option<i32>,
    polls: usize,
}

impl Accept for Scripted {
    type Io = DuplexStream;

    fn poll_next_connection(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<Self::Io>> {
        self.polls += 1;
        if let Some(code) = self.raw_os_error {
            return Poll::Ready(Err(io::Error::from_raw_os_error(code)));
        }
        match self.errors.pop_front() {
            Some(kind) => Poll::Ready(Err(kind.into())),
            None => Poll::Ready(Ok(tokio::io::duplex(64).0)),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn out_of_file_descriptors_the_loop_pauses_instead_of_spinning() {
    for code in [libc::EMFILE, libc::ENFILE, libc::ENOMEM] {
        let listener = Scripted {
            errors: VecDeque::new(),
            raw_os_error: Some(code),
            polls: 0,
        };
        let mut incoming = Incoming::uncapped(listener);
        let waited = tokio::time::timeout(Duration::from_secs(1), incoming.next()).await;
        assert!(waited.is_err(), "no connection and no error is handed on");
        // One try at once, then one per pause.
        let most = 2 + (Duration::from_secs(1).as_millis() / ACCEPT_PAUSE.as_millis()) as usize;
        assert!(
            incoming.listener.polls <= most,
            "errno {code}: {} accept calls in a second (at most {most})",
            incoming.listener.polls
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_that_gave_up_is_skipped_without_a_pause() {
    let listener = Scripted {
        errors: [
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::ConnectionReset,
        ]
        .into(),
        raw_os_error: None,
        polls: 0,
    };
    let mut incoming = Incoming::capped(listener, 4, None);
    let started = Instant::now();
    assert!(incoming.next().await.unwrap().is_ok());
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(incoming.listener.polls, 3);
}

#[tokio::test(start_paused = true)]
async fn a_flood_over_the_cap_is_closed_in_batches_that_let_other_tasks_run() {
    let listener = Scripted {
        errors: VecDeque::new(),
        raw_os_error: None,
        polls: 0,
    };
    let mut incoming = Incoming::capped(listener, 1, None);
    let _held = incoming.next().await.unwrap().unwrap();
    // Every further poll finds a connection and no slot: the stream must still
    // return Pending after a batch instead of looping forever.
    let polled =
        std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut incoming).poll_next(cx))).await;
    assert!(polled.is_pending());
    assert_eq!(incoming.listener.polls, 1 + ACCEPTS_PER_POLL);
}

#[test]
fn log_lines_about_a_flood_are_throttled_and_counted() {
    let start = Instant::now();
    let mut throttled = Throttled::new(LOG_EVERY);
    assert_eq!(throttled.hit(start), Some(1), "the first is logged at once");
    for i in 1..1000 {
        assert_eq!(throttled.hit(start + Duration::from_millis(i)), None);
    }
    assert_eq!(throttled.hit(start + LOG_EVERY), Some(1000));
    assert_eq!(throttled.hit(start + LOG_EVERY), None);
}
