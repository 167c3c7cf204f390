//! Errors of the storage layer.

/// The store could not read, write or verify something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage i/o failed: {0}")]
    Io(String),
    /// The disk refused to grow a file: full, over quota or over the file-size limit.
    #[error("the disk holding {path} is full ({reason}): free space on it and restart the node")]
    Full { path: String, reason: String },
    /// A write refused because an earlier one failed (see `engine::group_commit`).
    #[error("the store stopped taking writes after a failure: {0}")]
    Stopped(String),
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
