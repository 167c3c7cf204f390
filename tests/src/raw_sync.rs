//! A sync session opened by a test itself with a node's real certificate, speaking
//! the protocol by hand: to send a hub what a hostile or broken district would.
//!
//! It must never retry: each message is sent once and each answer read once.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use automerge::{Automerge, ChangeHash};
use mart_proto::tonic::transport::{Channel, ClientTlsConfig};
use mart_proto::tonic::{Status, Streaming};
use mart_proto::v1::sync_message::Body;
use mart_proto::v1::sync_service_client::SyncServiceClient;
use mart_proto::v1::{Bundle, Have, Hello, SyncMessage};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::connect_tls;

/// How long the hub may take to answer one sync message.
pub const ANSWER: Duration = Duration::from_secs(15);

/// `Hello` from `node` speaking protocol 1, with no clock reading.
pub fn hello(node: &str) -> SyncMessage {
    SyncMessage {
        body: Some(Body::Hello(Hello {
            node_id: node.into(),
            protocol: 1,
            ..Hello::default()
        })),
    }
}

/// `Have` of `doc` with `heads`.
pub fn have(doc: &str, heads: &[ChangeHash]) -> SyncMessage {
    SyncMessage {
        body: Some(Body::Have(Have {
            doc_id: doc.into(),
            heads: heads.iter().map(|h| h.0.to_vec()).collect(),
            changes: 0,
            answers: 0,
        })),
    }
}

/// `Bundle` of `doc`.
pub fn bundle(doc: &str, data: Vec<u8>, changes: u32) -> SyncMessage {
    SyncMessage {
        body: Some(Body::Bundle(Bundle {
            doc_id: doc.into(),
            data,
            changes,
            seq: 0,
        })),
    }
}

/// Heads as sorted hex strings.
pub fn hex_heads(heads: &[ChangeHash]) -> Vec<String> {
    let mut hex: Vec<String> = heads.iter().map(|h| h.to_string()).collect();
    hex.sort();
    hex
}

/// A sync session opened by the test itself, speaking the protocol by hand.
pub struct RawSession {
    out: mpsc::Sender<SyncMessage>,
    inbound: Streaming<SyncMessage>,
}

impl RawSession {
    /// Connects to `url` with `tls`, sends `Hello` as `node` and opens the session.
    pub async fn open(url: &str, tls: ClientTlsConfig, node: &str) -> Result<RawSession> {
        Self::open_with(url, tls, hello(node)).await
    }

    /// Connects to `url` with `tls`, sends `first` and opens the session.
    pub async fn open_with(
        url: &str,
        tls: ClientTlsConfig,
        first: SyncMessage,
    ) -> Result<RawSession> {
        Self::open_on(connect_tls(url, tls).await?, first).await
    }

    /// Sends `first` and opens the session on a channel already connected.
    pub async fn open_on(channel: Channel, first: SyncMessage) -> Result<RawSession> {
        let mut client = SyncServiceClient::new(channel)
            .max_decoding_message_size(4 << 20)
            .max_encoding_message_size(4 << 20);
        let (out, rx) = mpsc::channel(16);
        // The hub reads the first message (Hello) before it answers the call.
        out.send(first).await?;
        let inbound = client
            .session(ReceiverStream::new(rx))
            .await
            .map_err(|s| anyhow::Error::new(s).context("the hub refused the session"))?
            .into_inner();
        Ok(RawSession { out, inbound })
    }

    pub async fn send(&self, message: SyncMessage) -> Result<()> {
        self.out
            .send(message)
            .await
            .map_err(|_| anyhow!("the session's outgoing stream closed"))
    }

    /// The next message from the hub; an error if the stream fails or ends.
    pub async fn next(&mut self) -> Result<Body> {
        match tokio::time::timeout(ANSWER, self.inbound.message()).await {
            Err(_) => bail!("the hub said nothing for {ANSWER:?}"),
            Ok(Err(status)) => bail!("stream error {:?}: {}", status.code(), status.message()),
            Ok(Ok(None)) => bail!("the hub ended the stream"),
            Ok(Ok(Some(SyncMessage { body: None }))) => bail!("an empty message from the hub"),
            Ok(Ok(Some(SyncMessage { body: Some(body) }))) => Ok(body),
        }
    }

    /// Reads until the stream ends: `None` when it ends cleanly, else its status.
    pub async fn end(&mut self) -> Result<Option<Status>> {
        loop {
            match tokio::time::timeout(ANSWER, self.inbound.message()).await {
                Err(_) => bail!("the stream did not end within {ANSWER:?}"),
                Ok(Err(status)) => return Ok(Some(status)),
                Ok(Ok(None)) => return Ok(None),
                Ok(Ok(Some(_))) => {}
            }
        }
    }

    /// Asks for `doc` as if the disk was lost and rebuilds it from the hub's bundles
    /// until it has the heads `want`.
    pub async fn fetch(&mut self, doc: &str, want: &[String]) -> Result<Automerge> {
        self.send(have(doc, &[])).await?;
        let mut mirror = Automerge::new();
        while hex_heads(&mirror.get_heads()) != want {
            match self.next().await? {
                Body::Bundle(b) if b.doc_id == doc => {
                    mirror.load_incremental(&b.data)?;
                }
                // The hub's own announce: its heads, then the end of them.
                Body::Have(_) | Body::Announced(_) => {}
                other => bail!("unexpected while fetching {doc}: {other:?}"),
            }
        }
        Ok(mirror)
    }

    /// The hub's answer about `doc`: a `Refused`, or a `Have` whose heads differ from
    /// `known` (a re-announce of `known` is not an answer).
    pub async fn answer(&mut self, doc: &str, known: &[String]) -> Result<Body> {
        loop {
            match self.next().await? {
                Body::Refused(r) if r.doc_id == doc => return Ok(Body::Refused(r)),
                Body::Have(h) if h.doc_id == doc => {
                    let heads: Vec<ChangeHash> = h
                        .heads
                        .iter()
                        .map(|b| ChangeHash::try_from(b.as_slice()))
                        .collect::<Result<_, _>>()?;
                    if hex_heads(&heads) != known {
                        return Ok(Body::Have(h));
                    }
                }
                _ => {}
            }
        }
    }
}
