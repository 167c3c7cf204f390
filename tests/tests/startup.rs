//! Start-up and shutdown of a real `mart-node`: a graceful stop loses nothing that
//! was acknowledged, a corrupt record on disk quarantines its document (named with
//! the key at error level and in `martctl docs`; never skipped or served) while the
//! node starts and serves the rest, and `check-config` accepts every shipped config
//! and names the field of a bad one. A private key others may read stops the node,
//! `check-config` and `martctl`; a file at the admin socket path that is not a stale
//! socket is never deleted.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use mart_proto::tonic::Code;
use mart_proto::v1::{AddProductRequest, GetProductRequest, Product};
use mart_tests::cluster::free_local_addr;
use mart_tests::node::EXIT_TIMEOUT;
use mart_tests::ops::{movements, on_hand, open_ledger, receive, sale, StoreState};
use mart_tests::pki::{Pki, Role};
use mart_tests::rot::corrupt_newest_ledger_chunk;
use mart_tests::{mart_node_bin, martctl, martctl_bin, NodeProcess, NodeSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_zero_and_a_restart_sees_every_acknowledged_write() -> Result<()> {
    let mut node = NodeProcess::start_default().await?;
    let mut mart = node.mart().await?;
    receive(&mut mart, "rcv-1", "TTU-MKP-060", 40).await?;
    receive(&mut mart, "rcv-2", "NGD-KOP-250", 40).await?;
    for i in 0..30 {
        let sku = if i % 2 == 0 {
            "TTU-MKP-060"
        } else {
            "NGD-KOP-250"
        };
        let ack = mart
            .record_sale(sale(&format!("sale-{i:04}"), sku, 1))
            .await?
            .into_inner();
        ensure!(
            !ack.duplicate && ack.movement_id == format!("sale-{i:04}"),
            "{ack:?}"
        );
    }
    let product = Product {
        sku: "TTU-MKP-030".into(),
        name: "Minyak Kayu Putih Humusu Wini".into(),
        producer_id: "ikm-humusu-wini".into(),
        category: "minyak atsiri".into(),
        unit: "30 ml bottle".into(),
        price_rupiah: 20_000,
        ..Default::default()
    };
    mart.add_product(AddProductRequest {
        product: Some(product.clone()),
    })
    .await?;
    let before_movements = movements(&mut mart).await?;
    let before_state = StoreState::read(&mut node.admin().await?).await?;
    drop(mart);

    let status = node.terminate().await?;
    ensure!(
        status.code() == Some(0),
        "SIGTERM gave {status}, expected exit 0:\n{}",
        node.stderr()
    );
    ensure!(
        !node.admin_socket().exists(),
        "a stopped node left its admin socket behind"
    );

    node.restart().await?;
    let mut mart = node.mart().await?;
    let after_movements = movements(&mut mart).await?;
    ensure!(
        after_movements == before_movements,
        "movements differ after a graceful restart"
    );
    ensure!(
        after_movements.len() == 32,
        "{} movements, expected 2 receipts and 30 sales",
        after_movements.len()
    );
    let after_state = StoreState::read(&mut node.admin().await?).await?;
    ensure!(
        after_state == before_state,
        "stored documents differ:\nbefore {before_state:?}\nafter {after_state:?}"
    );
    ensure!(on_hand(&mut mart, "TTU-MKP-060").await? == 25);
    ensure!(on_hand(&mut mart, "NGD-KOP-250").await? == 25);
    let stored = mart
        .get_product(GetProductRequest {
            sku: product.sku.clone(),
        })
        .await?
        .into_inner();
    ensure!(
        stored.name == product.name && stored.price_rupiah == product.price_rupiah,
        "{stored:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_chunk_quarantines_its_document_and_the_node_serves_the_rest() -> Result<()> {
    let mut node = NodeProcess::start_default().await?;
    let mut mart = node.mart().await?;
    receive(&mut mart, "rcv-1", "TTU-MKP-060", 10).await?;
    for i in 0..3 {
        mart.record_sale(sale(&format!("sale-{i}"), "TTU-MKP-060", 1))
            .await?;
    }
    drop(mart);
    // `ledger/ttu/<open period>`: its chunks are `d/ledger/ttu/<period>/c/<seq>`.
    let ledger = open_ledger(&mut node.admin().await?).await?;
    let status = node.terminate().await?;
    ensure!(status.success(), "SIGTERM gave {status}");

    let key = corrupt_newest_ledger_chunk(&node.db_path())?;
    ensure!(
        key.starts_with(&format!("d/{ledger}/c/")),
        "unexpected chunk key {key} (the open period is {ledger})"
    );

    // The node starts, and says loudly which document it quarantined and why.
    node.restart().await?;
    let stderr = node.stderr();
    ensure!(
        stderr.contains("document quarantined")
            && stderr.contains(&format!("corrupt record {key}"))
            && stderr.contains("checksum"),
        "stderr does not name the quarantined document and its key {key}:\n{stderr}"
    );
    let socket = node.admin_socket();
    let docs = martctl::list(&socket, &["docs"]).await?;
    let listed = docs
        .iter()
        .find(|d| d["id"] == ledger.as_str())
        .with_context(|| format!("martctl docs does not list {ledger}: {docs:?}"))?;
    ensure!(
        listed["state"] == "quarantined"
            && listed["reason"]
                .as_str()
                .is_some_and(|r| r.contains(&key) && r.contains("checksum")),
        "{listed}"
    );
    ensure!(
        docs.iter()
            .filter(|d| d["id"] != ledger.as_str())
            .all(|d| d["state"] == "ok"),
        "{docs:?}"
    );

    // Everything else serves; a write into the quarantined period is a clear refusal.
    let mut mart = node.mart().await?;
    let product = mart
        .get_product(GetProductRequest {
            sku: "TTU-MKP-060".into(),
        })
        .await?
        .into_inner();
    ensure!(product.sku == "TTU-MKP-060", "{product:?}");
    let refused = mart
        .record_sale(sale("sale-after", "TTU-MKP-060", 1))
        .await
        .expect_err("a sale into a quarantined period was accepted");
    ensure!(
        refused.code() == Code::FailedPrecondition && refused.message().contains("quarantined"),
        "{refused:?}"
    );
    // The outlet's own open period is not dropped without --force: the hub may lack
    // some of its sales.
    let line = martctl::refused(&socket, &["doc", "drop", &ledger], "failed precondition").await?;
    ensure!(
        line.contains("--force") && line.contains("--restore"),
        "{line}"
    );
    ensure!(martctl::list(&socket, &["docs"])
        .await?
        .iter()
        .any(|d| d["id"] == ledger.as_str() && d["state"] == "quarantined"));
    Ok(())
}

fn check_config(file: &Path, cwd: &Path) -> Result<std::process::Output> {
    Command::new(mart_node_bin())
        .arg("check-config")
        .arg(file)
        .current_dir(cwd)
        .output()
        .with_context(|| format!("run mart-node check-config {}", file.display()))
}

fn martctl(cwd: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new(martctl_bin())
        .args(args)
        .current_dir(cwd)
        .output()?;
    ensure!(
        out.status.success(),
        "martctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A directory holding `./mart-pki` as the shipped configs expect it: the CA, the
/// hub `kupang` and the district `sikka`.
fn shipped_pki() -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    martctl(dir.path(), &["pki", "init", "--dir", "mart-pki"])?;
    martctl(
        dir.path(),
        &[
            "pki",
            "issue",
            "--ca",
            "mart-pki",
            "--id",
            "kupang",
            "--role",
            "hub",
            "--out",
            "mart-pki/kupang",
            "--host",
            "localhost",
        ],
    )?;
    martctl(
        dir.path(),
        &[
            "pki",
            "issue",
            "--ca",
            "mart-pki",
            "--id",
            "sikka",
            "--role",
            "district",
            "--out",
            "mart-pki/sikka",
        ],
    )?;
    Ok(dir)
}

#[test]
fn check_config_accepts_every_shipped_config() -> Result<()> {
    let pki = shipped_pki()?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = check_config(&path, pki.path())?;
            ensure!(
                out.status.success(),
                "{} refused ({}): {}",
                path.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    ensure!(
        checked >= 3,
        "only {checked} config files in {}",
        dir.display()
    );
    Ok(())
}

/// A hub whose `[hub] districts` names a district NTT does not have is refused, and
/// a valid config says its relative paths are relative to the working directory.
#[test]
fn check_config_refuses_unknown_districts_and_explains_relative_paths() -> Result<()> {
    let pki = shipped_pki()?;
    let hub = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/hub.toml");
    let text = std::fs::read_to_string(&hub)?;
    let bad = pki.path().join("bad-hub.toml");
    std::fs::write(
        &bad,
        text.replacen("districts = [", "districts = [\"jakarta\", ", 1),
    )?;
    let out = check_config(&bad, pki.path())?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && stderr.contains("hub.districts") && stderr.contains("jakarta"),
        "an unknown district accepted: {stderr}"
    );
    let out = check_config(&hub, pki.path())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        stdout.contains("relative to the working directory")
            && stdout.contains(&pki.path().display().to_string()),
        "{stdout}"
    );
    Ok(())
}

#[test]
fn check_config_refuses_certificates_that_do_not_match() -> Result<()> {
    let pki = shipped_pki()?;
    let hub = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/hub.toml");
    // Missing certificate files.
    // From an empty directory of its own (the system's temp dir may hold anything).
    let empty = tempfile::tempdir()?;
    let out = check_config(&hub, empty.path())?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    ensure!(
        !out.status.success() && stderr.contains("ca.pem"),
        "missing files accepted: {stderr}"
    );
    // The hub's config with the district's certificate.
    let text = std::fs::read_to_string(&hub)?.replace("mart-pki/kupang/", "mart-pki/sikka/");
    let swapped = pki.path().join("swapped.toml");
    std::fs::write(&swapped, text)?;
    let out = check_config(&swapped, pki.path())?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    ensure!(
        !out.status.success() && stderr.contains("tls.cert") && stderr.contains("sikka"),
        "a certificate for another node was accepted: {stderr}"
    );
    // An expired certificate.
    martctl(
        pki.path(),
        &[
            "pki",
            "issue",
            "--ca",
            "mart-pki",
            "--id",
            "kupang",
            "--role",
            "hub",
            "--out",
            "mart-pki/old",
            "--host",
            "localhost",
            "--not-before",
            "2020-01-01",
            "--not-after",
            "2020-12-31",
        ],
    )?;
    let text = std::fs::read_to_string(&hub)?.replace("mart-pki/kupang/", "mart-pki/old/");
    let expired = pki.path().join("expired.toml");
    std::fs::write(&expired, text)?;
    let out = check_config(&expired, pki.path())?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    ensure!(
        !out.status.success() && stderr.contains("expired"),
        "an expired certificate was accepted: {stderr}"
    );
    Ok(())
}

#[test]
fn check_config_refuses_a_bad_config_naming_the_field() -> Result<()> {
    let good = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/district-ttu.toml"),
    )?;
    let dir = tempfile::tempdir()?;
    let cases = [
        ("role = \"district\"", "role = \"outlet\"", "node.role"),
        ("version = 1", "version = 7", "version"),
        ("id = \"ttu\"", "id = \"TTU Kefa\"", "node.id"),
        // Not a district of NTT: it would run, and the hub would never let it in.
        ("id = \"ttu\"", "id = \"jakarta\"", "node.id"),
        ("hub = \"kupang\"", "hub = \"ttu\"", "node.hub"),
        ("127.0.0.1:7443", "localhost", "grpc.listen"),
        ("[grpc]", "[grpc]\nlisten_tls = true", "listen_tls"),
    ];
    for (from, to, field) in cases {
        ensure!(
            good.contains(from),
            "district-ttu.toml no longer contains {from:?}"
        );
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, good.replacen(from, to, 1))?;
        let out = check_config(&path, dir.path())?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            !out.status.success(),
            "{to:?} was accepted: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        ensure!(
            stderr.contains(field),
            "error for {to:?} does not name {field}: {stderr}"
        );
    }
    Ok(())
}

fn chmod(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_others_may_read_stops_start_up_check_config_and_martctl() -> Result<()> {
    let pki = Pki::init()?;
    let tls = pki.issue("kupang", Role::Hub, &["localhost"])?;
    let mut node = NodeProcess::new(
        NodeSpec::hub("kupang")
            .with_grpc_listen(free_local_addr()?)
            .with_tls(tls.clone()),
    )?;
    let fix = format!("chmod 600 {}", tls.key.display());
    for mode in [0o644, 0o666, 0o640, 0o604] {
        chmod(&tls.key, mode)?;
        let out = check_config(&node.config_path(), node.dir())?;
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        ensure!(
            !out.status.success() && stderr.contains("tls.key") && stderr.contains(&fix),
            "check-config with a key of mode {mode:o} ({}): {stderr}",
            out.status
        );
        node.launch()?;
        let status = node.wait_exit(EXIT_TIMEOUT).await?;
        let stderr = node.stderr();
        ensure!(
            !status.success() && stderr.contains(&fix),
            "the node with a key of mode {mode:o} exited {status}:\n{stderr}"
        );
    }
    chmod(&tls.key, 0o600)?;
    let out = check_config(&node.config_path(), node.dir())?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    node.launch()?;
    node.wait_ready().await?;

    // martctl refuses an operator key others may read, likewise.
    let operator = pki.issue("ops-kupang", Role::Operator, &[])?;
    let addr = node.grpc_addr().context("the hub serves TCP")?;
    let status = |tls: &mart_tests::pki::TlsFiles| {
        Command::new(martctl_bin())
            .env_remove("MARTCTL_NODE")
            .args(["--node", &format!("https://localhost:{}", addr.port())])
            .arg("--ca")
            .arg(&tls.ca)
            .arg("--cert")
            .arg(&tls.cert)
            .arg("--key")
            .arg(&tls.key)
            .arg("status")
            .output()
    };
    chmod(&operator.key, 0o644)?;
    let out = status(&operator)?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    ensure!(
        !out.status.success() && stderr.contains(&format!("chmod 600 {}", operator.key.display())),
        "martctl with an operator key of mode 644 ({}): {stderr}",
        out.status
    );
    chmod(&operator.key, 0o600)?;
    let out = status(&operator)?;
    ensure!(
        out.status.success(),
        "martctl status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_at_the_admin_socket_path_is_never_deleted() -> Result<()> {
    let mut node = NodeProcess::new(NodeSpec::default())?;
    let socket = node.admin_socket();
    std::fs::create_dir_all(node.data_dir())?;
    std::fs::write(&socket, "the operator's notes")?;
    let out = check_config(&node.config_path(), node.dir())?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    ensure!(
        !out.status.success() && stderr.contains("admin.socket") && stderr.contains("not a socket"),
        "check-config with a regular file at the admin socket path ({}): {stderr}",
        out.status
    );
    node.launch()?;
    let status = node.wait_exit(EXIT_TIMEOUT).await?;
    let stderr = node.stderr();
    ensure!(
        !status.success() && stderr.contains("not a socket"),
        "the node exited {status}:\n{stderr}"
    );
    ensure!(
        std::fs::read_to_string(&socket)? == "the operator's notes",
        "the file at the admin socket path changed"
    );

    // A stale socket (its listener gone) is replaced.
    std::fs::remove_file(&socket)?;
    drop(std::os::unix::net::UnixListener::bind(&socket)?);
    ensure!(socket.exists(), "the stale socket file is gone");
    let out = check_config(&node.config_path(), node.dir())?;
    ensure!(
        out.status.success(),
        "check-config with a stale socket: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    node.launch()?;
    node.wait_ready().await?;
    // The live socket of the running node: fine, and check-config says so.
    let out = check_config(&node.config_path(), node.dir())?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    ensure!(
        out.status.success() && stdout.contains("a node is running"),
        "check-config next to a running node ({}): {stdout}",
        out.status
    );
    Ok(())
}
