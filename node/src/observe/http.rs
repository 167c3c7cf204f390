//! The metrics and status page listener: HTTP/1.1 over plain TCP on a loopback
//! address (config refuses any other), `GET /metrics` and `GET /`, nothing else.
//!
//! It must never let a client hold the node: connections are capped, a request's
//! headers must arrive within a few seconds, and every answer is built off the async
//! workers. It must never answer with anything a browser would run or fetch: the
//! pages carry a Content-Security-Policy that forbids scripts and outside sources.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{district_page, hub_page, scrape, Observed};

/// Connections served at once; one more is closed at once.
const MAX_CONNECTIONS: usize = 32;
/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// No script, no outside source, no frame: only the page's own inline CSS.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Serves `listener` until `stop` is cancelled.
pub async fn serve(listener: TcpListener, observed: Observed, stop: CancellationToken) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "the metrics listener cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "metrics listener full: connection closed");
            continue;
        };
        let observed = observed.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let observed = observed.clone();
                async move { Ok::<_, Infallible>(answer(request, observed).await) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "metrics connection ended");
            }
            drop(permit);
        });
    }
    connections.abort_all();
}

/// What a path answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    Metrics,
    Status,
}

async fn answer(request: Request<Incoming>, observed: Observed) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD are served\n",
        );
    }
    let page = match request.uri().path() {
        "/metrics" => Page::Metrics,
        "/" => Page::Status,
        _ => return plain(StatusCode::NOT_FOUND, "not found: try / or /metrics\n"),
    };
    let built = tokio::task::spawn_blocking(move || match page {
        Page::Metrics => scrape::render(&observed),
        Page::Status if observed.engine.identity().is_hub() => hub_page::render(&observed),
        Page::Status => district_page::render(&observed),
    })
    .await;
    let body = match built {
        Ok(body) => body,
        Err(e) => {
            tracing::warn!(error = %e, "a status page failed to build");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to build\n",
            );
        }
    };
    let content_type = match page {
        Page::Metrics => "text/plain; version=0.0.4; charset=utf-8",
        Page::Status => "text/html; charset=utf-8",
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    let headers = response.headers_mut();
    headers.insert("content-type", content_type.parse().expect("valid header"));
    headers.insert("cache-control", "no-store".parse().expect("valid header"));
    headers.insert(
        "x-content-type-options",
        "nosniff".parse().expect("valid header"),
    );
    headers.insert(
        "content-security-policy",
        CSP.parse().expect("valid header"),
    );
    headers.insert(
        "referrer-policy",
        "no-referrer".parse().expect("valid header"),
    );
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        "text/plain; charset=utf-8".parse().expect("valid header"),
    );
    response
}
