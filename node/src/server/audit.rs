//! The audit log: one line per write RPC, on both listeners, with who called (the
//! identity of the caller's certificate over TCP, the user id behind the admin
//! socket), which RPC, the request id and the outcome (`ok` or the gRPC code, in
//! snake case). Written as a tower layer over every service, so no handler has to
//! remember it; the target is `mart_node::audit`, so `RUST_LOG` can route it.
//!
//! It must never log a request's content (prices, quantities, notes) nor anything
//! secret: the request id is read from the first field of the request message only
//! for the RPCs whose first field it is, and nothing else is decoded.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame};
use mart_proto::tonic::body::Body;
use mart_proto::tonic::transport::server::{TcpConnectInfo, TlsConnectInfo, UdsConnectInfo};
use tower::{Layer, Service};

use crate::rpc::identity::identity_of_certificate;

/// The RPCs that change something, by method name (services may share a name), and
/// whether their request message has `request_id` as field 1.
const WRITES: &[(&str, bool)] = &[
    ("AddProducer", false),
    ("AddProduct", false),
    ("UpdateProduct", false),
    ("RecordReceipt", true),
    ("RecordSale", true),
    ("RecordAdjustment", true),
    ("RecordTransferOut", true),
    ("RecordTransferIn", true),
    ("GrantQuota", true),
    ("ReturnQuota", true),
    ("FulfilOrder", true),
    ("CancelOrder", true),
    ("AllocateBudget", false),
    ("PlaceOrder", true),
    ("PromoteProduct", false),
    ("SyncNow", false),
    ("DropDocument", false),
    ("RefetchDocument", false),
];

/// Adds the audit line to every service of a listener.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditLayer;

impl<S> Layer<S> for AuditLayer {
    type Service = Audit<S>;

    fn layer(&self, inner: S) -> Audit<S> {
        Audit { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Audit<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ResBody> Service<http::Request<Body>> for Audit<S>
where
    S: Service<http::Request<Body>, Response = http::Response<ResBody>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let path = request.uri().path();
        let method = path.rsplit('/').next().unwrap_or_default();
        let Some(&(_, request_id_first)) = WRITES.iter().find(|(name, _)| *name == method) else {
            return Box::pin(self.inner.call(request));
        };
        let rpc = path.trim_start_matches('/').to_string();
        let caller = caller(&request);
        let request_id = Arc::new(Mutex::new(None));
        let request = if request_id_first {
            let slot = request_id.clone();
            request.map(|body| {
                Body::new(FirstField {
                    inner: body,
                    slot: Some(slot),
                })
            })
        } else {
            request
        };
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            let outcome = match &result {
                Ok(response) => outcome(response.headers()),
                Err(_) => "internal",
            };
            let request_id = request_id.lock().expect("request id slot").take();
            let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            tracing::info!(
                target: "mart_node::audit",
                caller = %caller,
                rpc = %rpc,
                request_id = request_id.as_deref().unwrap_or(""),
                outcome,
                duration_ms,
                "write"
            );
            result
        })
    }
}

/// Who called: the certificate's identity URI over TLS, `uid:N` on the admin
/// socket, `unauthenticated` on plaintext TCP.
fn caller(request: &http::Request<Body>) -> String {
    let extensions = request.extensions();
    if let Some(tls) = extensions.get::<TlsConnectInfo<TcpConnectInfo>>() {
        return match tls.peer_certs().as_deref().and_then(|certs| certs.first()) {
            Some(cert) => match identity_of_certificate(cert.as_ref()) {
                Ok(identity) => identity.to_string(),
                Err(_) => "an unreadable certificate".to_string(),
            },
            None => "no certificate".to_string(),
        };
    }
    if let Some(uds) = extensions.get::<UdsConnectInfo>() {
        return match &uds.peer_cred {
            Some(cred) => format!("uid:{} (admin socket)", cred.uid()),
            None => "admin socket".to_string(),
        };
    }
    match extensions
        .get::<TcpConnectInfo>()
        .and_then(|i| i.remote_addr())
    {
        Some(addr) => format!("unauthenticated {addr}"),
        None => "unauthenticated".to_string(),
    }
}

/// `ok`, or the code of the status tonic put in the headers (a handler's error;
/// a success sends its status in the trailers, after this line).
fn outcome(headers: &http::HeaderMap) -> &'static str {
    let Some(code) = headers.get("grpc-status").and_then(|v| v.to_str().ok()) else {
        return "ok";
    };
    match code.parse::<u8>().unwrap_or(2) {
        0 => "ok",
        1 => "cancelled",
        3 => "invalid_argument",
        4 => "deadline_exceeded",
        5 => "not_found",
        6 => "already_exists",
        7 => "permission_denied",
        8 => "resource_exhausted",
        9 => "failed_precondition",
        10 => "aborted",
        11 => "out_of_range",
        12 => "unimplemented",
        13 => "internal",
        14 => "unavailable",
        15 => "data_loss",
        16 => "unauthenticated",
        _ => "unknown",
    }
}

/// A request body that hands the first field of the first message, when it is a
/// string (field 1, wire type 2), to `slot`; every byte goes through unchanged.
struct FirstField {
    inner: Body,
    slot: Option<Arc<Mutex<Option<String>>>>,
}

impl HttpBody for FirstField {
    type Data = Bytes;
    type Error = mart_proto::tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let (Some(data), Some(slot)) = (frame.data_ref(), self.slot.take()) {
                *slot.lock().expect("request id slot") = first_string_field(data);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Field 1 of the gRPC message at the start of `data` (5-byte frame prefix, then
/// protobuf), if it is a short string; protobuf writers put fields in order.
fn first_string_field(data: &[u8]) -> Option<String> {
    let message = data.get(5..)?;
    if *message.first()? != 0x0A {
        return None;
    }
    let len = usize::from(*message.get(1)?);
    if len >= 0x80 {
        return None; // a request id is short; a longer field is not one
    }
    let bytes = message.get(2..2 + len)?;
    let text = std::str::from_utf8(bytes).ok()?;
    text.chars()
        .all(|c| c.is_ascii_graphic())
        .then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_id_is_field_one_of_the_first_message() {
        let mut frame = vec![0, 0, 0, 0, 9, 0x0A, 3];
        frame.extend(b"r-1");
        frame.extend([0x12, 2, b'x', b'y']);
        assert_eq!(first_string_field(&frame).as_deref(), Some("r-1"));
        // No request id given: the message starts with another field.
        assert_eq!(
            first_string_field(&[0, 0, 0, 0, 4, 0x12, 2, b'x', b'y']),
            None
        );
        assert_eq!(first_string_field(&[0, 0, 0]), None);
    }

    #[test]
    fn outcomes_are_codes_in_snake_case() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(outcome(&headers), "ok");
        headers.insert("grpc-status", http::HeaderValue::from_static("9"));
        assert_eq!(outcome(&headers), "failed_precondition");
    }
}
