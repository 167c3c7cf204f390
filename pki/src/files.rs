//! Files of the certificate authority and of issued certificates: private directories
//! (0700) and files written exactly once, private keys 0600 from the moment they exist.
//!
//! It must never overwrite a file and never chmod after the fact: every file is
//! created with `O_CREAT | O_EXCL` and its final mode, so a private key is never, even
//! for an instant, readable by anyone but its owner. [`check_private`] is the one
//! check, used by every program that loads a key, that a key file stayed that way.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Mode of private keys.
pub const PRIVATE: u32 = 0o600;
/// Mode of certificates: public material, readable by the node's service user.
pub const PUBLIC: u32 = 0o644;

/// Creates `dir` (and missing parents) with mode 0700; an existing directory is kept
/// as it is.
pub fn private_dir(dir: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))
}

/// Checks that the private key file at `path` grants nothing to its group or to
/// others (mode 0600 or 0400); the error says how to fix it.
pub fn check_private(path: &Path) -> Result<(), String> {
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "the private key {path} may be read by others (mode {mode:03o}); a key must be \
             readable by its owner only: chmod 600 {path}",
            path = path.display()
        ));
    }
    Ok(())
}

/// A file to create: where, what and with which mode.
pub struct NewFile {
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub mode: u32,
}

/// Creates every file or none: refuses if any already exists, and removes the ones it
/// made if a later one fails. Each file is synced before the call returns.
pub fn create_all(files: &[NewFile]) -> Result<()> {
    let existing: Vec<String> = files
        .iter()
        .filter(|f| f.path.symlink_metadata().is_ok())
        .map(|f| f.path.display().to_string())
        .collect();
    match existing.as_slice() {
        [] => {}
        [one] => bail!("{one} already exists, refusing to overwrite it"),
        [rest @ .., last] => bail!(
            "{} and {last} already exist, refusing to overwrite them",
            rest.join(", ")
        ),
    }
    for (done, file) in files.iter().enumerate() {
        if let Err(err) = create(file) {
            for made in &files[..done] {
                let _ = std::fs::remove_file(&made.path);
            }
            return Err(err);
        }
    }
    for dir in parents(files) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync directory {}", dir.display()))?;
    }
    Ok(())
}

fn create(file: &NewFile) -> Result<()> {
    let path = &file.path;
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(file.mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    out.write_all(&file.contents)
        .and_then(|()| out.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn parents(files: &[NewFile]) -> Vec<&Path> {
    let mut dirs: Vec<&Path> = files
        .iter()
        .filter_map(|f| f.path.parent())
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .collect();
    dirs.dedup();
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn file(path: PathBuf, text: &str, mode: u32) -> NewFile {
        NewFile {
            path,
            contents: text.as_bytes().to_vec(),
            mode,
        }
    }

    #[test]
    fn only_keys_their_owner_alone_may_read_pass() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "k").unwrap();
        for (mode, ok) in [
            (0o600, true),
            (0o400, true),
            (0o700, true),
            (0o640, false),
            (0o604, false),
            (0o644, false),
            (0o666, false),
        ] {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
            let checked = check_private(&key);
            assert_eq!(checked.is_ok(), ok, "{mode:o}: {checked:?}");
            if let Err(e) = checked {
                assert!(e.contains(&format!("chmod 600 {}", key.display())), "{e}");
            }
        }
        assert!(check_private(&dir.path().join("missing.pem")).is_err());
    }

    #[test]
    fn creates_private_dirs_and_files_with_their_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        private_dir(&dir).unwrap();
        create_all(&[
            file(dir.join("key.pem"), "secret", PRIVATE),
            file(dir.join("cert.pem"), "public", PUBLIC),
        ])
        .unwrap();
        assert_eq!(mode(&dir.join("key.pem")), 0o600);
        assert_eq!(mode(&dir.join("cert.pem")), 0o644);
        assert_eq!(
            std::fs::read_to_string(dir.join("key.pem")).unwrap(),
            "secret"
        );
    }

    #[test]
    fn never_overwrites_and_leaves_nothing_half_done() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("cert.pem"), "old").unwrap();
        let err = create_all(&[
            file(dir.join("key.pem"), "new", PRIVATE),
            file(dir.join("cert.pem"), "new", PUBLIC),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert!(!dir.join("key.pem").exists());
        assert_eq!(
            std::fs::read_to_string(dir.join("cert.pem")).unwrap(),
            "old"
        );

        // A file that fails after others were made: the made ones are removed.
        let err = create_all(&[
            file(dir.join("key.pem"), "new", PRIVATE),
            file(dir.join("missing/cert.pem"), "new", PUBLIC),
        ])
        .unwrap_err();
        assert!(format!("{err:#}").contains("cannot create"), "{err:#}");
        assert!(!dir.join("key.pem").exists());
    }
}
