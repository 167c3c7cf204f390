//! Binding the node's listeners: the TCP gRPC port and the local admin socket, whose
//! file permissions are its access control.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tokio::net::{TcpListener, UnixListener};

use super::ServerError;
use crate::config::NodeConfig;

/// The bound sockets a node serves on.
pub struct Listeners {
    pub grpc: Option<TcpListener>,
    pub admin: UnixListener,
}

impl Listeners {
    /// Binds what the config names. A stale admin socket file left by a killed node
    /// is replaced; one a running node still answers on is an error.
    pub async fn bind(config: &NodeConfig) -> Result<Self, ServerError> {
        let grpc = match config.grpc_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| ServerError::io(format!("listen on {addr}"), e))?,
            ),
            None => None,
        };
        let admin = bind_admin_socket(&config.admin_socket).await?;
        Ok(Listeners { grpc, admin })
    }
}

/// Creates a directory (and its parents) readable by the owner only.
pub fn create_private_dir(dir: &Path) -> Result<(), ServerError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ServerError::io(format!("create {}", dir.display()), e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| ServerError::io(format!("restrict {}", dir.display()), e))
}

async fn bind_admin_socket(path: &Path) -> Result<UnixListener, ServerError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent)?;
    }
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(ServerError::Task(format!(
                "admin socket {} is in use by a running node",
                path.display()
            )));
        }
        std::fs::remove_file(path)
            .map_err(|e| ServerError::io(format!("remove stale {}", path.display()), e))?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| ServerError::io(format!("bind {}", path.display()), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| ServerError::io(format!("restrict {}", path.display()), e))?;
    Ok(listener)
}
