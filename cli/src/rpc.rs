//! The connected node as the commands see it: both service clients, one deadline per
//! call, and the error a refused call turns into.
//!
//! It must never retry a call on its own: a retried movement without the same request
//! id could be counted twice, so retrying is the operator's decision.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use mart_proto::tonic::transport::Channel;
use mart_proto::tonic::{Code, Request, Response, Status, TimeoutExpired};
use mart_proto::v1::admin_service_client::AdminServiceClient;
use mart_proto::v1::hub_service_client::HubServiceClient;
use mart_proto::v1::mart_service_client::MartServiceClient;
use mart_proto::v1::report_service_client::ReportServiceClient;

/// Clients of one node plus the per-call deadline from `--timeout`.
pub struct Node {
    mart: MartServiceClient<Channel>,
    admin: AdminServiceClient<Channel>,
    hub: HubServiceClient<Channel>,
    report: ReportServiceClient<Channel>,
    timeout: Duration,
    /// The `--node` address, for messages.
    addr: String,
}

impl Node {
    pub fn new(channel: Channel, timeout: Duration, addr: String) -> Self {
        Node {
            mart: MartServiceClient::new(channel.clone()),
            admin: AdminServiceClient::new(channel.clone()),
            hub: HubServiceClient::new(channel.clone()),
            report: ReportServiceClient::new(channel),
            timeout,
            addr,
        }
    }

    /// A handle on the store operations (cheap: clients share the channel).
    pub fn mart(&self) -> MartServiceClient<Channel> {
        self.mart.clone()
    }

    /// A handle on the operator view of the node.
    pub fn admin(&self) -> AdminServiceClient<Channel> {
        self.admin.clone()
    }

    /// A handle on what only the hub answers.
    pub fn hub(&self) -> HubServiceClient<Channel> {
        self.hub.clone()
    }

    /// A handle on the reports.
    pub fn report(&self) -> ReportServiceClient<Channel> {
        self.report.clone()
    }

    /// Wraps `message` in a request that tells the server our deadline.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.timeout);
        request
    }

    /// Awaits one call, turning a refusal or a missed deadline into an [`RpcError`].
    pub async fn call<T>(
        &self,
        call: impl Future<Output = Result<Response<T>, Status>>,
    ) -> Result<T, RpcError> {
        let missed_deadline = || {
            let secs = self.timeout.as_secs();
            RpcError::new(
                Code::DeadlineExceeded,
                &format!("no answer from the node at {} within {secs} s", self.addr),
            )
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            // tonic enforces the request's own timeout and reports it as "cancelled".
            Ok(Err(status)) if timed_out(&status) => Err(missed_deadline()),
            Ok(Err(status)) => Err(RpcError::new(status.code(), status.message())),
            Err(_) => Err(missed_deadline()),
        }
    }
}

/// True when the client gave up waiting, as opposed to the server refusing.
fn timed_out(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        if e.is::<TimeoutExpired>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// A call the node refused or that did not complete. Displays as `<code>: <message>`.
#[derive(Debug)]
pub struct RpcError {
    pub code: Code,
    pub message: String,
    /// What the operator can do about it, printed on its own line.
    pub hint: Option<String>,
}

impl RpcError {
    pub fn new(code: Code, message: &str) -> Self {
        RpcError {
            code,
            message: message.to_string(),
            hint: None,
        }
    }

    /// True when the node may have done the work even though we got no answer.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self.code,
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
        )
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            f.write_str(code_name(self.code))
        } else {
            write!(f, "{}: {}", code_name(self.code), self.message)
        }
    }
}

impl std::error::Error for RpcError {}

/// The gRPC status code in lowercase words, e.g. "failed precondition".
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid argument",
        Code::DeadlineExceeded => "deadline exceeded",
        Code::NotFound => "not found",
        Code::AlreadyExists => "already exists",
        Code::PermissionDenied => "permission denied",
        Code::ResourceExhausted => "resource exhausted",
        Code::FailedPrecondition => "failed precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out of range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_code_and_message() {
        let err = RpcError::new(
            Code::FailedPrecondition,
            "insufficient stock of TTU-CJP-060: 3 on hand, 5 requested",
        );
        assert_eq!(
            err.to_string(),
            "failed precondition: insufficient stock of TTU-CJP-060: 3 on hand, 5 requested"
        );
        assert_eq!(RpcError::new(Code::NotFound, "").to_string(), "not found");
    }

    #[test]
    fn only_transport_failures_leave_the_outcome_unknown() {
        assert!(RpcError::new(Code::Unavailable, "x").outcome_unknown());
        assert!(RpcError::new(Code::DeadlineExceeded, "x").outcome_unknown());
        assert!(!RpcError::new(Code::FailedPrecondition, "x").outcome_unknown());
        assert!(!RpcError::new(Code::InvalidArgument, "x").outcome_unknown());
    }
}
