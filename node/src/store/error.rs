//! Errors of the storage layer.

/// The store could not read, write or verify something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage i/o failed: {0}")]
    Io(String),
    #[error("corrupt record {key}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("cannot open the store at {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("cannot close the store at {path}: {reason}")]
    Close { path: String, reason: String },
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}
