//! gRPC clients other than martctl on the admin socket: grpcurl, run exactly as the
//! README shows it. grpcurl (like grpcio) sends the socket path as `:authority`,
//! which h2 refused with `RST_STREAM PROTOCOL_ERROR` until the node rewrote it
//! (node/src/server/unix_authority.rs); reflection is served in v1alpha (grpcurl
//! 1.8) and v1.

use std::path::Path;
use std::process::Output;

use anyhow::{ensure, Context, Result};
use mart_tests::readme::{lines_starting, require_tool};
use mart_tests::NodeProcess;
use serde_json::Value;

/// Runs one shell line in `dir` (where `./mart-data` is the node's data dir).
async fn shell(dir: &Path, line: &str) -> Result<Output> {
    tokio::process::Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(dir)
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("run {line:?}"))
}

fn describe(line: &str, out: &Output) -> String {
    format!(
        "{line}\nexited {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A directory whose `mart-data` is the node's data dir, as the README's tour has it.
fn readme_dir(node: &NodeProcess) -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    std::os::unix::fs::symlink(node.data_dir(), dir.path().join("mart-data"))?;
    Ok(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_runs_as_the_readme_shows() -> Result<()> {
    require_tool("grpcurl")?;
    let lines = lines_starting("grpcurl")?;
    ensure!(
        lines.len() >= 3,
        "the README shows too few grpcurl lines: {lines:?}"
    );
    let node = NodeProcess::start_default().await?;
    let dir = readme_dir(&node)?;
    for line in &lines {
        let out = shell(dir.path(), line).await?;
        ensure!(out.status.success(), "{}", describe(line, &out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        if line.contains(" list") {
            for service in [
                "nttmart.v1.MartService",
                "nttmart.v1.AdminService",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
                "grpc.health.v1.Health",
            ] {
                ensure!(
                    stdout.contains(service),
                    "no {service}: {}",
                    describe(line, &out)
                );
            }
        } else {
            let answer: Value = serde_json::from_str(&stdout)
                .with_context(|| format!("no JSON: {}", describe(line, &out)))?;
            ensure!(answer.is_object(), "{}", describe(line, &out));
            if line.contains("AdminService/Status") {
                ensure!(answer["nodeId"] == "ttu", "{}", describe(line, &out));
            }
        }
    }
    Ok(())
}

/// An absolute socket path (every byte of it `/`-separated) is served too, and so are
/// several calls on one connection (the rewritten authority sits in HPACK's dynamic
/// table of both ends).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_on_an_absolute_socket_path_describes_and_calls() -> Result<()> {
    require_tool("grpcurl")?;
    let node = NodeProcess::start_default().await?;
    let socket = node.admin_socket();
    let socket = socket.display();
    for line in [
        format!("grpcurl -plaintext -unix {socket} describe nttmart.v1.MartService"),
        // Reflection v1 itself, called as any streaming RPC.
        format!(
            "grpcurl -plaintext -unix -d '{{\"list_services\": \"\"}}' {socket} \
             grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        ),
        format!(
            "grpcurl -plaintext -unix -d '{{\"sku\": \"TTU-MKP-060\"}}' {socket} \
             nttmart.v1.MartService/GetProduct"
        ),
    ] {
        let out = shell(Path::new("/"), &line).await?;
        ensure!(out.status.success(), "{}", describe(&line, &out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            stdout.contains("RecordSale")
                || stdout.contains("TTU-MKP-060")
                || stdout.contains("nttmart.v1.MartService"),
            "{}",
            describe(&line, &out)
        );
    }
    Ok(())
}
