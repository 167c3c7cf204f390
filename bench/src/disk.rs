//! Where a benchmark writes: the scratch directory and the filesystem under it.
//!
//! Durable-write figures only mean something on a real disk: the default avoids
//! `/tmp` (often tmpfs, where fsync costs nothing). This module never deletes anything
//! it did not create.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tempfile::TempDir;

/// A filesystem as `/proc/self/mountinfo` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filesystem {
    pub mount_point: PathBuf,
    pub kind: String,
    pub source: String,
}

impl Filesystem {
    pub fn is_memory(&self) -> bool {
        matches!(self.kind.as_str(), "tmpfs" | "ramfs")
    }
}

/// Creates a fresh scratch directory inside `parent`, or inside `/var/tmp` (else the
/// current directory) by default. It is removed when dropped.
pub fn scratch_dir(parent: Option<&Path>) -> anyhow::Result<TempDir> {
    let parent = match parent {
        Some(dir) => dir.to_path_buf(),
        None if Path::new("/var/tmp").is_dir() => PathBuf::from("/var/tmp"),
        None => std::env::current_dir().context("read the current directory")?,
    };
    tempfile::Builder::new()
        .prefix("mart-bench-")
        .tempdir_in(&parent)
        .with_context(|| format!("create a scratch directory in {}", parent.display()))
}

/// The filesystem `path` lives on, if `/proc/self/mountinfo` can tell.
pub fn filesystem_of(path: &Path) -> Option<Filesystem> {
    let path = path.canonicalize().ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo
        .lines()
        .filter_map(parse_mountinfo_line)
        .filter(|fs| path.starts_with(&fs.mount_point))
        .max_by_key(|fs| fs.mount_point.as_os_str().len())
}

/// One line: `id parent major:minor root mount-point options [optional...] - type source super-options`.
fn parse_mountinfo_line(line: &str) -> Option<Filesystem> {
    let (before, after) = line.split_once(" - ")?;
    let mount_point = before.split(' ').nth(4)?;
    let mut after = after.split(' ');
    let kind = after.next()?.to_string();
    let source = after.next()?.to_string();
    Some(Filesystem {
        mount_point: PathBuf::from(unescape_octal(mount_point)),
        kind,
        source,
    })
}

/// Mount points escape space, tab, newline and backslash as `\ooo`.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|d| std::str::from_utf8(d).ok());
        match (bytes[i], octal.and_then(|d| u8::from_str_radix(d, 8).ok())) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_mountinfo_line() {
        let line = "29 1 252:0 / /var/my\\040disk rw,relatime shared:1 - ext4 /dev/vda rw";
        assert_eq!(
            parse_mountinfo_line(line),
            Some(Filesystem {
                mount_point: PathBuf::from("/var/my disk"),
                kind: "ext4".into(),
                source: "/dev/vda".into(),
            })
        );
    }
}
