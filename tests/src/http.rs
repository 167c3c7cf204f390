//! [`get`]: one plain HTTP/1.1 GET to a node's metrics and status page listener,
//! the way `curl` or Prometheus would send it, answered as status, headers and body.
//!
//! It must never retry or follow anything: one request, one answer.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long one request may take (a scrape under a loaded machine included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Header names lower-cased, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` from `addr`, with `Connection: close`.
pub async fn get(addr: SocketAddr, path: &str) -> Result<Answer> {
    tokio::time::timeout(REQUEST_TIMEOUT, async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect to {addr}"))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        parse(&raw)
    })
    .await
    .with_context(|| format!("GET http://{addr}{path} took over {REQUEST_TIMEOUT:?}"))?
}

/// `GET path`, which must answer 200; returns the body.
pub async fn get_ok(addr: SocketAddr, path: &str) -> Result<String> {
    let answer = get(addr, path).await?;
    if answer.status != 200 {
        bail!("GET {path}: status {}: {}", answer.status, answer.body);
    }
    Ok(answer.body)
}

fn parse(raw: &[u8]) -> Result<Answer> {
    let text = String::from_utf8(raw.to_vec()).context("the answer is not UTF-8")?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("the answer has no end of headers")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: body.to_string(),
    })
}
