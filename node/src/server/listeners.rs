//! Binding the node's listeners: the TCP gRPC port, the local admin socket, whose
//! file permissions are its access control, and the loopback HTTP port of the
//! metrics and status page.
//!
//! It must never delete a file it did not make: at the admin socket path only a stale
//! socket is replaced.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use tokio::net::{TcpListener, UnixListener};

use super::ServerError;
use crate::config::NodeConfig;

/// The bound sockets a node serves on.
pub struct Listeners {
    pub grpc: Option<TcpListener>,
    pub admin: UnixListener,
    /// `[metrics] listen`: `/metrics` and the status page.
    pub metrics: Option<TcpListener>,
}

impl Listeners {
    /// Binds what the config names. A stale admin socket file left by a killed node
    /// is replaced; one a running node still answers on, or anything at that path
    /// that is not a socket, is an error.
    pub async fn bind(config: &NodeConfig) -> Result<Self, ServerError> {
        let grpc = match config.grpc_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| ServerError::io(format!("listen on {addr}"), e))?,
            ),
            None => None,
        };
        let metrics = match config.metrics_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                ServerError::io(
                    format!("listen on {addr} (metrics.listen; listen = \"\" turns it off)"),
                    e,
                )
            })?),
            None => None,
        };
        let admin = bind_admin_socket(&config.admin_socket).await?;
        Ok(Listeners {
            grpc,
            admin,
            metrics,
        })
    }
}

/// Creates a directory (and its parents) readable by the owner only.
pub fn create_private_dir(dir: &Path) -> Result<(), ServerError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ServerError::io(format!("create {}", dir.display()), e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| ServerError::io(format!("restrict {}", dir.display()), e))
}

/// What sits at the admin socket path before the node binds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminSocketPath {
    /// Nothing: the node creates the socket.
    Free,
    /// A socket file nobody listens on (left by a node that was killed): replaced.
    Stale,
    /// A socket a running node answers on.
    InUse,
}

/// Looks at the admin socket path without changing anything. Anything there that is
/// not a socket (a regular file, a directory, a symlink) is an error: the node never
/// deletes what it did not make.
pub fn inspect_admin_socket(path: &Path) -> Result<AdminSocketPath, ServerError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AdminSocketPath::Free),
        Err(e) => return Err(ServerError::io(format!("inspect {}", path.display()), e)),
    };
    if !meta.file_type().is_socket() {
        return Err(ServerError::Task(format!(
            "admin.socket: {} exists and is not a socket; the node never deletes it: move it \
             away or set [admin] socket to another path",
            path.display()
        )));
    }
    // Only a refused connection proves nobody listens: a socket this user may not
    // connect to (another user's node) is not stale.
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Ok(AdminSocketPath::InUse),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(AdminSocketPath::Stale),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AdminSocketPath::Free),
        Err(e) => Err(ServerError::io(
            format!(
                "tell whether a node listens on the admin socket {} (it is left as it is)",
                path.display()
            ),
            e,
        )),
    }
}

async fn bind_admin_socket(path: &Path) -> Result<UnixListener, ServerError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent)?;
    }
    match inspect_admin_socket(path)? {
        AdminSocketPath::Free => {}
        AdminSocketPath::InUse => {
            return Err(ServerError::Task(format!(
                "admin socket {} is in use by a running node",
                path.display()
            )))
        }
        AdminSocketPath::Stale => {
            tracing::info!(socket = %path.display(), "replacing a stale admin socket");
            std::fs::remove_file(path)
                .map_err(|e| ServerError::io(format!("remove stale {}", path.display()), e))?;
        }
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| ServerError::io(format!("bind {}", path.display()), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| ServerError::io(format!("restrict {}", path.display()), e))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_socket_path_is_free_in_use_or_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        assert_eq!(inspect_admin_socket(&path).unwrap(), AdminSocketPath::Free);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert_eq!(inspect_admin_socket(&path).unwrap(), AdminSocketPath::InUse);
        // A node killed leaves its socket file behind, and nobody listens on it.
        drop(listener);
        assert_eq!(inspect_admin_socket(&path).unwrap(), AdminSocketPath::Stale);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"operator's notes").unwrap();
        assert!(inspect_admin_socket(&path).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"operator's notes");
    }
}
