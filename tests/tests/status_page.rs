//! The hub's status page in a real browser (headless Chromium): a hub and two
//! districts over mutual TLS; a district cut off shows as stale, a low-stock SKU
//! shows, a sale at a district shows after sync, a product name carrying markup
//! shows as text, and the page renders to a non-empty PNG (desktop and phone). The
//! district's own page shows its stock and its hub.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use mart_proto::v1::{AddProductRequest, Product};
use mart_tests::browser::{dump_dom, screenshot};
use mart_tests::ops::{receive, sell};
use mart_tests::{http, tools, wait_until, TestCluster};

/// The hub's staleness threshold: short, so a cut district goes stale within the
/// test; the connected one re-announces every second and stays fresh.
const STALE_AFTER_SECS: u64 = 8;
/// How long the page may take to show a change (sync, then a browser run, on a
/// loaded machine).
const SHOW_TIMEOUT: Duration = Duration::from_secs(120);
const HOSTILE_NAME: &str = "<script>alert(1)</script> Madu hutan";

/// The `<tr>` of `id` in a dumped DOM, up to its end.
fn row<'a>(dom: &'a str, id: &str) -> Option<&'a str> {
    let start = dom.find(&format!("<tr id=\"{id}\""))?;
    let end = dom[start..].find("</tr>")?;
    Some(&dom[start..start + end])
}

/// Waits until the page at `url`, as Chromium renders it, satisfies `check`;
/// returns that DOM.
async fn wait_for_dom(url: &str, what: &str, check: impl Fn(&str) -> bool) -> Result<String> {
    let last = std::cell::RefCell::new(String::new());
    let waited = wait_until(what, SHOW_TIMEOUT, || {
        let dom = dump_dom(url);
        let (last, check) = (&last, &check);
        async move {
            let dom = dom.await?;
            let holds = check(&dom);
            *last.borrow_mut() = dom;
            Ok(holds)
        }
    })
    .await;
    waited.with_context(|| format!("last DOM of {url}:\n{}", last.borrow()))?;
    Ok(last.into_inner())
}

fn is_png(path: &std::path::Path) -> Result<u64> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    ensure!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 5_000,
        "{} is not a PNG of a page ({} bytes)",
        path.display(),
        bytes.len()
    );
    Ok(bytes.len() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_page_in_a_browser_shows_stale_districts_low_stock_and_sales() -> Result<()> {
    tools::require("chromium")?;
    let cluster = TestCluster::builder()
        .district("ttu")
        .district("sikka")
        .resync_secs(1)
        .stale_after_secs(STALE_AFTER_SECS)
        .metrics()
        .start()
        .await?;
    let hub_url = format!(
        "http://{}/",
        cluster.hub().metrics_addr().context("hub page")?
    );
    let ttu_url = format!(
        "http://{}/",
        cluster.node("ttu").metrics_addr().context("ttu page")?
    );

    let mut ttu = cluster.mart("ttu").await?;
    receive(&mut ttu, "rcv-low", "TTU-MKP-060", 4).await?;
    ttu.add_product(AddProductRequest {
        product: Some(Product {
            sku: "TTU-MDU-XSS".into(),
            name: HOSTILE_NAME.into(),
            producer_id: "ikm-humusu-wini".into(),
            category: "madu".into(),
            unit: "250 g jar".into(),
            price_rupiah: 60_000,
            reorder_level: 10,
            ..Default::default()
        }),
    })
    .await
    .context("add the product with markup in its name")?;
    receive(&mut ttu, "rcv-xss", "TTU-MDU-XSS", 2).await?;
    receive(
        &mut cluster.mart("sikka").await?,
        "rcv-sikka",
        "SKA-MET-250",
        20,
    )
    .await?;

    // A low-stock SKU shows, and the product name with markup shows as text.
    let on_hand = |n: i64| format!("data-label=\"On hand\" class=\"num\">{n}</td>");
    let dom = wait_for_dom(&hub_url, "the hub page shows ttu's low stock", |dom| {
        row(dom, "low-ttu-TTU-MKP-060").is_some_and(|r| r.contains(&on_hand(4)))
            && row(dom, "low-ttu-TTU-MDU-XSS").is_some()
    })
    .await?;
    ensure!(
        !dom.contains("<script"),
        "markup from a peer reached the DOM:\n{dom}"
    );
    ensure!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt; Madu hutan"),
        "the product name is not shown as text:\n{dom}"
    );
    let raw = http::get(cluster.hub().metrics_addr().unwrap(), "/").await?;
    ensure!(!raw.body.contains("<script"), "{}", raw.body);
    let csp = raw.header("content-security-policy").unwrap_or_default();
    ensure!(
        csp.contains("default-src 'none'"),
        "no CSP: {:?}",
        raw.headers
    );
    ensure!(
        raw.body.contains("http-equiv=\"refresh\" content=\"10\"")
            && raw.body.contains("name=\"viewport\""),
        "the page neither refreshes nor fits a phone:\n{}",
        raw.body
    );

    // A sale at a district shows after sync.
    sell(&mut ttu, "sale-page", "TTU-MKP-060", 1).await?;
    wait_for_dom(&hub_url, "the hub page shows ttu's sale", |dom| {
        row(dom, "low-ttu-TTU-MKP-060").is_some_and(|r| r.contains(&on_hand(3)))
    })
    .await?;

    // A district cut off goes stale; the connected one stays fresh.
    cluster.cut("sikka");
    let dom = wait_for_dom(
        &hub_url,
        "the hub page shows sikka stale and ttu fresh",
        |dom| {
            row(dom, "peer-sikka")
                .is_some_and(|r| r.contains("class=\"stale\"") && r.contains(">stale<"))
                && row(dom, "peer-ttu").is_some_and(|r| r.contains(">fresh<"))
        },
    )
    .await?;
    ensure!(
        dom.contains("Timor Tengah Utara"),
        "no district names:\n{dom}"
    );

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for (name, width, height) in [("hub-desktop", 1280, 1400), ("hub-phone", 390, 1600)] {
        let path = shots.join(format!("status-page-{name}.png"));
        let _ = std::fs::remove_file(&path);
        screenshot(&hub_url, &path, width, height).await?;
        is_png(&path)?;
    }

    // The district's own page: its stock and its hub.
    let dom = wait_for_dom(&ttu_url, "ttu's page shows its stock", |dom| {
        row(dom, "stock-TTU-MKP-060").is_some_and(|r| r.contains(">3</td>"))
    })
    .await?;
    ensure!(
        row(&dom, "peer-kupang").is_some(),
        "ttu's page has no hub row:\n{dom}"
    );
    ensure!(!dom.contains("<script"), "{dom}");
    let path = shots.join("status-page-district.png");
    screenshot(&ttu_url, &path, 390, 900).await?;
    is_png(&path)?;
    Ok(())
}
