//! A real browser on the status pages: headless Chromium's `--dump-dom` (the DOM
//! after the page was parsed and laid out) and `--screenshot`, each run in a fresh
//! profile with everything that would reach the network turned off.
//!
//! It must never share a profile between runs, nor leave a browser running.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::tools;

/// How long one browser run may take on a loaded machine.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

fn base_args(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

async fn chromium(args: Vec<String>) -> Result<String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    tokio::time::timeout(BROWSER_TIMEOUT, tools::run("chromium", &args, None))
        .await
        .with_context(|| format!("chromium took over {BROWSER_TIMEOUT:?}"))?
}

/// The DOM Chromium built from `url`, serialized.
pub async fn dump_dom(url: &str) -> Result<String> {
    let profile = tempfile::tempdir()?;
    let mut args = base_args(profile.path());
    args.extend(["--dump-dom".to_string(), url.to_string()]);
    chromium(args).await
}

/// A PNG of `url` at `width` x `height` CSS pixels, written to `out`.
pub async fn screenshot(url: &str, out: &Path, width: u32, height: u32) -> Result<()> {
    let profile = tempfile::tempdir()?;
    let mut args = base_args(profile.path());
    args.extend([
        format!("--screenshot={}", out.display()),
        format!("--window-size={width},{height}"),
        "--hide-scrollbars".to_string(),
        url.to_string(),
    ]);
    chromium(args).await.map(|_| ())
}
