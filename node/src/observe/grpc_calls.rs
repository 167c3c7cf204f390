//! A tower layer on the gRPC servers that counts every answered call by RPC and
//! status code ([`crate::events::grpc_answered`]): refusals by code and RPC come from
//! here, whatever layer refused (an interceptor, a service, tonic's own decoding).
//!
//! It must never change a request or a response: it reads the path, the
//! `grpc-status` header (a trailers-only answer, as every refused unary call is) or
//! the trailers at the end of a stream, and passes everything on untouched.

use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use mart_proto::tonic::Code;

/// Wraps a gRPC service (see [`layer`]).
#[derive(Debug, Clone)]
pub struct CountCalls<S> {
    inner: S,
}

/// The layer to give `Server::builder().layer(...)`.
pub fn layer<S>() -> tower::layer::LayerFn<fn(S) -> CountCalls<S>> {
    tower::layer::layer_fn(|inner| CountCalls { inner })
}

/// The RPC of a request path, `/nttmart.v1.MartService/RecordMovement` ->
/// `MartService/RecordMovement`; anything else (a path no service has) is `other`, so
/// a scanner cannot mint labels.
fn rpc_of(path: &str) -> String {
    let known = path
        .strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .filter(|(service, method)| {
            !method.is_empty()
                && method.len() <= 64
                && method.chars().all(|c| c.is_ascii_alphanumeric())
                && service.len() <= 96
                && (service.starts_with("nttmart.") || service.starts_with("grpc."))
        });
    match known {
        Some((service, method)) => {
            let short = service.rsplit('.').next().unwrap_or(service);
            format!("{short}/{method}")
        }
        None => "other".into(),
    }
}

/// The gRPC code named by a `grpc-status` header, if it holds one.
fn status_of(headers: &HeaderMap) -> Option<&'static str> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    let code = Code::from_bytes(value.as_bytes());
    Some(code_name(code))
}

/// The canonical upper-case name of a gRPC code, as Prometheus labels show it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

impl<S, B, R> tower::Service<Request<B>> for CountCalls<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    R: Body + Unpin,
{
    type Response = Response<Counted<R>>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let rpc = rpc_of(request.uri().path());
        let answered = self.inner.call(request);
        Box::pin(async move {
            let response = answered.await?;
            // A trailers-only answer (every refusal before a message) says it here.
            let pending = match status_of(response.headers()) {
                Some(code) => {
                    crate::events::grpc_answered(&rpc, code);
                    None
                }
                None => Some(rpc),
            };
            Ok(response.map(|inner| Counted { inner, pending }))
        })
    }
}

/// A response body that counts the call once its trailers name the status.
#[derive(Debug)]
pub struct Counted<B> {
    inner: B,
    /// The RPC, while its status is not counted yet.
    pending: Option<String>,
}

impl<B: Body + Unpin> Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(code) = frame.trailers_ref().and_then(status_of) {
                if let Some(rpc) = self.pending.take() {
                    crate::events::grpc_answered(&rpc, code);
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_labels_are_bounded() {
        assert_eq!(
            rpc_of("/nttmart.v1.MartService/RecordMovement"),
            "MartService/RecordMovement"
        );
        assert_eq!(rpc_of("/grpc.health.v1.Health/Check"), "Health/Check");
        for hostile in [
            "/",
            "/x/y",
            "/nttmart.v1.MartService/<script>",
            "/nttmart.v1.A/",
        ] {
            assert_eq!(rpc_of(hostile), "other", "{hostile}");
        }
    }
}
