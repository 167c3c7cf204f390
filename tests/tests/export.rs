//! `martctl export` against a real node: the automerge bytes it writes load in the
//! JavaScript `@automerge/automerge` library (another implementation than the node's)
//! with the same heads and the same movements `martctl movements` shows; `--json`
//! gives the movements as objects; a document the node does not hold is refused.
//!
//! The JavaScript library comes from `tests/run` (tests/tools/install-automerge-js.sh).

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use mart_tests::martctl;
use mart_tests::NodeProcess;
use serde_json::Value;

const SKU: &str = "TTU-MKP-060";

/// Where tests/run installed `@automerge/automerge`.
fn automerge_js() -> Result<PathBuf> {
    let tools = std::env::var_os("MART_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools"));
    let dir = tools.join("automerge-js");
    ensure!(
        dir.join("node_modules/@automerge/automerge/package.json").exists(),
        "@automerge/automerge is not installed under {}: run the tests with `tests/run`, which installs it",
        dir.display()
    );
    Ok(dir)
}

/// Loads `file` with the JavaScript library; prints its heads and the movements of
/// the ledger (each record parsed from the JSON text the schema keeps).
const LOAD_IN_JS: &str = r#"
const A = await import("@automerge/automerge");
const fs = await import("node:fs");
const doc = A.load(new Uint8Array(fs.readFileSync(process.argv[1])));
const plain = A.toJS(doc);
console.log(JSON.stringify({
  heads: A.getHeads(doc),
  movements: (plain.movements || []).map((m) => JSON.parse(m)),
}));
"#;

async fn load_in_js(file: &Path) -> Result<Value> {
    // Run from the install folder: the import resolves in its node_modules.
    let dir = automerge_js()?;
    let out = tokio::process::Command::new("node")
        .arg("--input-type=module")
        .arg("-e")
        .arg(LOAD_IN_JS)
        .arg(file)
        .current_dir(&dir)
        .kill_on_drop(true)
        .output()
        .await
        .context("run node (Node.js is on every machine the README names)")?;
    ensure!(
        out.status.success(),
        "node could not load {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).context("the JS loader printed no JSON")
}

/// The open period of the node's own ledger, as `martctl docs` lists it.
async fn own_ledger(node: &NodeProcess) -> Result<(String, Vec<String>)> {
    let docs = martctl::list(&node.admin_socket(), &["docs"]).await?;
    for doc in docs {
        let id = doc["id"].as_str().unwrap_or_default();
        if id.starts_with("ledger/ttu/") {
            let heads = doc["heads"]
                .as_array()
                .context("docs --json without heads")?
                .iter()
                .map(|h| h.as_str().unwrap_or_default().to_string())
                .collect();
            return Ok((id.to_string(), heads));
        }
    }
    bail!("no ledger of ttu in `martctl docs`")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_ledger_loads_in_javascript_automerge_with_the_nodes_heads_and_movements(
) -> Result<()> {
    let node = NodeProcess::start_default().await?;
    let socket = node.admin_socket();
    martctl::ok(
        &socket,
        &[
            "receive",
            "--sku",
            SKU,
            "--qty",
            "10",
            "--unit-cost",
            "30.000",
        ],
    )
    .await?;
    martctl::ok(&socket, &["sell", "--sku", SKU, "--qty", "3"]).await?;
    martctl::ok(&socket, &["sell", "--sku", SKU, "--qty", "2"]).await?;

    let (ledger, heads) = own_ledger(&node).await?;
    let scratch = tempfile::tempdir()?;
    let file = scratch.path().join("ledger.automerge");
    martctl::ok(
        &socket,
        &["export", &ledger, "--out", file.to_str().unwrap()],
    )
    .await?;

    let loaded = load_in_js(&file).await?;
    let mut js_heads: Vec<String> = serde_json::from_value(loaded["heads"].clone())?;
    let mut heads = heads;
    js_heads.sort();
    heads.sort();
    ensure!(
        js_heads == heads,
        "heads in JS {js_heads:?}, at the node {heads:?}"
    );

    let listed = martctl::list(&socket, &["movements"]).await?;
    let ids = |items: &[Value]| -> Vec<String> {
        items
            .iter()
            .map(|m| m["id"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let js_movements = loaded["movements"]
        .as_array()
        .context("no movements")?
        .clone();
    ensure!(listed.len() == 3, "martctl movements: {listed:?}");
    ensure!(
        ids(&js_movements) == ids(&listed),
        "movements in JS {js_movements:?}\nmartctl movements {listed:?}"
    );

    // --json: the same movements, as objects (not JSON text), to stdout.
    let plain = martctl::json(&socket, &["export", &ledger]).await?;
    let plain_movements = plain["movements"]
        .as_array()
        .context("no movements array")?;
    ensure!(
        plain_movements.iter().all(Value::is_object),
        "movements are not objects: {plain}"
    );
    ensure!(
        ids(plain_movements) == ids(&listed),
        "export --json: {plain}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporting_what_the_node_does_not_hold_is_refused_and_writes_no_file() -> Result<()> {
    let node = NodeProcess::start_default().await?;
    let socket = node.admin_socket();
    let scratch = tempfile::tempdir()?;
    let file = scratch.path().join("none.automerge");
    let message = martctl::refused(
        &socket,
        &[
            "export",
            "ledger/ttu/2001-01",
            "--out",
            file.to_str().unwrap(),
        ],
        "failed precondition",
    )
    .await?;
    ensure!(message.contains("ledger/ttu/2001-01"), "{message}");
    ensure!(!file.exists(), "a refused export left {}", file.display());
    ensure!(
        std::fs::read_dir(scratch.path())?.next().is_none(),
        "a refused export left a partial file"
    );

    // The automerge bytes are binary: without --out martctl refuses before asking.
    let out = martctl::run(&socket, &["export", "catalog/ttu"]).await?;
    ensure!(
        !out.status.success(),
        "{}",
        martctl::describe(&["export"], &out)
    );
    Ok(())
}
