//! What a failed command means to a script: its exit code, and with `--json` the
//! error on stderr as one JSON object `{"code", "message", "retryable"}` (plus
//! `"hint"` when there is one). The codes are listed in `martctl --help`
//! ([`EXIT_CODES_HELP`]).
//!
//! It must never call an unknown outcome a refusal: a write whose answer never came
//! may have been recorded, and only a retry with the same request id is safe.

use std::process::ExitCode;

use mart_proto::tonic::Code;
use serde::Serialize;

use crate::rpc::RpcError;

/// The exit codes, as `martctl --help` lists them.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  done
  1  refused: the node said no (a rule of the store: insufficient stock, unknown SKU,
     invalid argument...), or `sync now`/`sync watch` ended out of sync
  2  bad usage: unknown command or option, a missing or malformed value
  3  permission: the node refused this caller (certificate, role, district)
  4  unavailable: the node could not be reached, or answered that it cannot serve
     now; nothing was recorded, try again later
  5  outcome unknown: a write was sent but no answer came; it may have been
     recorded: repeat it with the same --request-id (printed in the hint)

With --json, errors go to stderr as JSON too:
  {\"code\": \"failed_precondition\", \"message\": \"...\", \"retryable\": false}";

/// Why a command failed, as its exit code says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Refused = 1,
    Usage = 2,
    Permission = 3,
    Unavailable = 4,
    OutcomeUnknown = 5,
}

impl Failure {
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }
}

/// The node could not be reached at all (nothing was sent).
#[derive(Debug)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

/// The error as a script reads it.
#[derive(Debug, Serialize)]
pub struct ErrorView {
    /// A gRPC code in snake case (`failed_precondition`), or `unavailable`,
    /// `usage`, `failed` for errors that are not the node's.
    pub code: String,
    pub message: String,
    /// Whether running the same command again may succeed (with the same request
    /// id, for a write).
    pub retryable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(skip)]
    pub failure: Option<Failure>,
}

/// Classifies an error of a command that got past argument parsing.
pub fn classify(err: &anyhow::Error) -> ErrorView {
    if let Some(rpc) = err.downcast_ref::<RpcError>() {
        let (failure, retryable) = match rpc.code {
            Code::PermissionDenied | Code::Unauthenticated => (Failure::Permission, false),
            // A write with a request id: the hint says how to retry it safely.
            _ if rpc.outcome_unknown() && rpc.hint.is_some() => (Failure::OutcomeUnknown, true),
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                (Failure::Unavailable, true)
            }
            Code::Aborted | Code::ResourceExhausted => (Failure::Refused, true),
            _ => (Failure::Refused, false),
        };
        return ErrorView {
            code: snake(rpc.code).to_string(),
            message: rpc.message.clone(),
            retryable,
            hint: rpc.hint.clone(),
            failure: Some(failure),
        };
    }
    if err.downcast_ref::<Unreachable>().is_some() {
        return ErrorView {
            code: "unavailable".into(),
            message: format!("{err:#}"),
            retryable: true,
            hint: None,
            failure: Some(Failure::Unavailable),
        };
    }
    ErrorView {
        code: "failed".into(),
        message: format!("{err:#}"),
        retryable: false,
        hint: None,
        failure: Some(Failure::Refused),
    }
}

/// Prints the error (as text, or as JSON with `--json`) and returns its exit code.
pub fn report(err: &anyhow::Error, json: bool) -> ExitCode {
    let view = classify(err);
    let failure = view.failure.unwrap_or(Failure::Refused);
    if json {
        eprintln!(
            "{}",
            serde_json::to_string(&view).expect("an error view serializes")
        );
    } else {
        eprintln!("error: {err:#}");
        if let Some(hint) = &view.hint {
            eprintln!("hint: {hint}");
        }
    }
    failure.exit_code()
}

/// A usage error as JSON (clap prints its own text otherwise).
pub fn usage_json(err: &clap::Error) -> String {
    let text = err.to_string();
    let message = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string();
    serde_json::to_string(&ErrorView {
        code: "usage".into(),
        message,
        retryable: false,
        hint: None,
        failure: None,
    })
    .expect("an error view serializes")
}

/// The gRPC code in snake case, as the JSON error names it.
pub fn snake(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(err: anyhow::Error) -> (Failure, bool) {
        let view = classify(&err);
        (view.failure.unwrap(), view.retryable)
    }

    #[test]
    fn exit_codes_tell_refused_permission_unavailable_and_unknown_apart() {
        let rpc = |code, hint: Option<&str>| {
            let mut e = RpcError::new(code, "m");
            e.hint = hint.map(str::to_string);
            anyhow::Error::new(e)
        };
        assert_eq!(
            failure(rpc(Code::FailedPrecondition, None)),
            (Failure::Refused, false)
        );
        assert_eq!(
            failure(rpc(Code::PermissionDenied, None)),
            (Failure::Permission, false)
        );
        assert_eq!(
            failure(rpc(Code::Unavailable, None)),
            (Failure::Unavailable, true)
        );
        assert_eq!(
            failure(rpc(
                Code::DeadlineExceeded,
                Some("repeat with --request-id r")
            )),
            (Failure::OutcomeUnknown, true)
        );
        let down = anyhow::Error::new(Unreachable("cannot connect".into()));
        assert_eq!(failure(down), (Failure::Unavailable, true));
        assert_eq!(
            failure(anyhow::anyhow!("not in sync")),
            (Failure::Refused, false)
        );
    }

    #[test]
    fn the_json_error_has_code_message_and_retryable() {
        let view = classify(&anyhow::Error::new(RpcError::new(
            Code::NotFound,
            "no SKU X",
        )));
        let json: serde_json::Value = serde_json::to_value(&view).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"code": "not_found", "message": "no SKU X", "retryable": false})
        );
    }
}
