//! The proxy on real sockets: an echo server behind it, a client in front. Bounds on
//! time are generous (the machine may be loaded): a lower bound shows the link holds
//! bytes back, a loose upper bound that it still moves them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{Proxy, RuralLink, Shape};

/// A server that echoes every connection back.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = socket.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Sends `bytes` through the proxy to the echo server and reads them back; the time
/// from the first byte sent to the last byte back.
async fn echo_through(proxy: &Proxy, bytes: usize) -> Duration {
    let stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let (mut r, mut w) = stream.into_split();
    let data: Vec<u8> = (0..bytes).map(|i| i as u8).collect();
    let expected = data.clone();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w
    });
    let mut back = vec![0u8; bytes];
    r.read_exact(&mut back).await.unwrap();
    let took = started.elapsed();
    assert!(back == expected, "the bytes came back changed");
    drop(writer.await.unwrap());
    took
}

fn rate(bytes_per_s: u64) -> Shape {
    Shape {
        rate_bytes_per_s: Some(bytes_per_s),
        one_way_delay: Duration::ZERO,
    }
}

#[tokio::test]
async fn a_clean_link_relays_every_byte_and_counts_them() {
    let proxy = Proxy::start(echo_server().await).await.unwrap();
    echo_through(&proxy, 100_000).await;
    assert_eq!(proxy.upstream_bytes(), 100_000);
    assert_eq!(proxy.downstream_bytes(), 100_000);
    assert_eq!(proxy.connections(), 1);
    assert_eq!(proxy.drops(), 0);
}

#[tokio::test]
async fn a_rate_limited_transfer_takes_about_bytes_over_rate() {
    let proxy = Proxy::start(echo_server().await).await.unwrap();
    proxy.shape(rate(20_000), rate(20_000));
    // 40,000 bytes at 20,000 B/s each way (the echo pipelines): about 2 s.
    let took = echo_through(&proxy, 40_000).await;
    assert!(took >= Duration::from_millis(1_600), "{took:?}");
    assert!(took <= Duration::from_secs(10), "{took:?}");
}

#[tokio::test]
async fn the_delay_adds_about_the_delay_each_way() {
    let proxy = Proxy::start(echo_server().await).await.unwrap();
    let clean = echo_through(&proxy, 10).await;
    let delay = Shape {
        rate_bytes_per_s: None,
        one_way_delay: Duration::from_millis(300),
    };
    proxy.shape(delay, delay);
    let took = echo_through(&proxy, 10).await;
    assert!(took >= Duration::from_millis(600), "{took:?}");
    assert!(took <= clean + Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn the_delay_is_a_delay_line_not_a_wait_per_read() {
    let proxy = Proxy::start(echo_server().await).await.unwrap();
    let delay = Shape {
        rate_bytes_per_s: None,
        one_way_delay: Duration::from_millis(300),
    };
    proxy.shape(delay, delay);
    // 4 MiB is 256 reads of 16 KiB at least each way: 150 s if each waited 300 ms.
    let took = echo_through(&proxy, 4 << 20).await;
    assert!(took >= Duration::from_millis(600), "{took:?}");
    assert!(took <= Duration::from_secs(20), "{took:?}");
}

#[tokio::test]
async fn a_drop_cuts_every_open_connection_and_new_ones_are_accepted() {
    let proxy = Proxy::start(echo_server().await).await.unwrap();
    let mut first = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut second = TcpStream::connect(proxy.addr()).await.unwrap();
    // Both relayed before the drop.
    for stream in [&mut first, &mut second] {
        stream.write_all(b"ping").await.unwrap();
        let mut back = [0u8; 4];
        stream.read_exact(&mut back).await.unwrap();
    }
    proxy.drop_now();
    for stream in [&mut first, &mut second] {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest));
        assert!(
            closed.await.is_ok(),
            "a connection stayed open after the drop"
        );
    }
    assert_eq!(proxy.drops(), 1);
    assert!(!proxy.is_cut());
    echo_through(&proxy, 1_000).await;
}

#[tokio::test]
async fn scheduled_drops_fire_and_are_counted() {
    let proxy = Proxy::start(echo_server().await).await.unwrap();
    proxy.play(RuralLink {
        rate_bytes_per_s: 1_000_000,
        one_way_delay: Duration::ZERO,
        drops_every: Some((Duration::from_millis(100), Duration::from_millis(200))),
        seed: 12,
    });
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest));
    assert!(closed.await.is_ok(), "the connection outlived the schedule");
    assert!(proxy.drops() >= 1);
    proxy.schedule_drops(None);
    let stopped_at = proxy.drops();
    echo_through(&proxy, 1_000).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        proxy.drops(),
        stopped_at,
        "drops went on after the schedule stopped"
    );
}

#[tokio::test]
async fn cut_after_passes_exactly_that_many_bytes_then_cuts() {
    let proxy = Proxy::start(echo_server().await).await.unwrap();
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    proxy.cut_after(10);
    stream.write_all(&[7u8; 100]).await.unwrap();
    let mut back = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut back));
    assert!(
        closed.await.is_ok(),
        "the connection stayed open after the cut"
    );
    assert!(proxy.is_cut());
    assert_eq!(proxy.total_bytes(), 10);
    proxy.heal();
    echo_through(&proxy, 100).await;
}
