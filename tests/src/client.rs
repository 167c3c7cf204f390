//! gRPC clients of a node: over its admin Unix socket (no TLS, no certificate), or
//! over TCP with mutual TLS.
//!
//! Every call has a deadline, so a node that hangs fails the test instead of hanging
//! it. It must never retry a call: what the node answered is what the test sees.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use hyper_util::rt::TokioIo;
use mart_proto::tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use mart_proto::v1::admin_service_client::AdminServiceClient;
use mart_proto::v1::hub_service_client::HubServiceClient;
use mart_proto::v1::mart_service_client::MartServiceClient;

pub type MartClient = MartServiceClient<Channel>;
pub type AdminClient = AdminServiceClient<Channel>;
pub type HubClient = HubServiceClient<Channel>;

/// Deadline of one call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Connects to a node's admin socket.
pub async fn connect_unix(socket: &Path) -> Result<Channel> {
    let path: PathBuf = socket.to_path_buf();
    // The URI is required by the API and ignored: the connector dials the socket.
    Endpoint::try_from("http://[::]:50051")?
        .connect_timeout(Duration::from_secs(5))
        .timeout(CALL_TIMEOUT)
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await
        .with_context(|| format!("connect to {}", socket.display()))
}

/// Connects to `url` (`https://localhost:PORT`) with mutual TLS. A refused
/// certificate may show here or only at the first call: TLS 1.3 clients finish their
/// side of the handshake before the server has checked theirs.
pub async fn connect_tls(url: &str, tls: ClientTlsConfig) -> Result<Channel> {
    Endpoint::from_shared(url.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .timeout(CALL_TIMEOUT)
        .tls_config(tls)?
        .connect()
        .await
        .with_context(|| format!("connect to {url}"))
}
