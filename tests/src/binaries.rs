//! The real `mart-node` and `martctl` executables (and `mart-node-faults`, the node
//! with fault injection), built once per test process with escargot in the profile
//! the tests run in.
//!
//! It must never fall back to a stale binary found elsewhere: if the build fails, the
//! test fails with cargo's message.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Variables cargo sets for the test process that describe this test crate. Passed
/// on to the inner build they would make build scripts that watch them (ring's does)
/// rebuild on every alternation between `cargo test` and this build.
fn is_test_crate_var(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
        )
}

fn build(package: &str, bin: &str, features: &str) -> Result<PathBuf, String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut cargo = escargot::CargoBuild::new();
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_test_crate_var) {
            cargo = cargo.env_remove(name);
        }
    }
    if !features.is_empty() {
        cargo = cargo.features(features);
    }
    cargo
        .manifest_path(manifest)
        .package(package)
        .bin(bin)
        .current_release()
        .run()
        .map(|run| run.path().to_path_buf())
        .map_err(|e| format!("cannot build {bin}: {e}"))
}

fn built(
    cell: &'static OnceLock<Result<PathBuf, String>>,
    package: &str,
    bin: &str,
    features: &str,
) -> &'static Path {
    match cell.get_or_init(|| build(package, bin, features)) {
        Ok(path) => path,
        Err(e) => panic!("{e}"),
    }
}

/// Path of the built `mart-node`.
pub fn mart_node_bin() -> &'static Path {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    built(&BIN, "mart-node", "mart-node", "")
}

/// Path of the built `mart-node-faults`: `mart-node` with the `fault-injection`
/// feature, which `MART_FAULT_PANIC` makes panic at a named point. It is its own
/// binary, so building it never replaces `mart-node` under the other tests.
pub fn mart_node_faults_bin() -> &'static Path {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    built(&BIN, "mart-node", "mart-node-faults", "fault-injection")
}

/// Path of the built `martctl`.
pub fn martctl_bin() -> &'static Path {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    built(&BIN, "martctl", "martctl", "")
}
