//! The coordinator's errors, and the one place they become gRPC statuses.

use checkout_storage::{IdError, MoneyError, StorageError};
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    /// A request field is malformed; `field` names it as in the .proto.
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    /// The request is well formed but does not fit the state of things.
    #[error("{0}")]
    FailedPrecondition(String),
    /// Refused for a reason a script can branch on (AIP-193): `reason` is UPPER_SNAKE_CASE, for example
    /// `REVERSE_WINDOW_CLOSED`. A FAILED_PRECONDITION.
    #[error("{message}")]
    Refused { reason: &'static str, message: String },
    #[error("{0}")]
    NotFound(String),
    /// The caller is known but may not do this (another lane's sale, a viewer refunding).
    #[error("{0}")]
    PermissionDenied(String),
    /// A cap of the store is reached (lanes, open sales).
    #[error("{0}")]
    ResourceExhausted(String),
    /// The ledger could not be read or written: nothing was acknowledged.
    #[error("the store's ledger failed; nothing was recorded: {0}")]
    Storage(#[from] StorageError),
    #[error("the coordinator is shutting down")]
    ShuttingDown,
    /// A payment provider could not be reached or answered something unusable; nothing was changed.
    #[error("{0}")]
    ProviderUnavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl CoordinatorError {
    pub fn invalid(field: impl Into<String>, reason: impl std::fmt::Display) -> CoordinatorError {
        CoordinatorError::InvalidArgument { field: field.into(), reason: reason.to_string() }
    }
}

/// Field-naming helpers for parsing requests: `LaneId::parse(x).map_err(field("lane_id"))`.
pub fn field<E: std::fmt::Display>(name: &str) -> impl FnOnce(E) -> CoordinatorError + '_ {
    move |e| CoordinatorError::invalid(name, e)
}

impl From<IdError> for CoordinatorError {
    fn from(e: IdError) -> Self {
        CoordinatorError::invalid(e.what, e)
    }
}

impl From<MoneyError> for CoordinatorError {
    fn from(e: MoneyError) -> Self {
        CoordinatorError::invalid("amount", e)
    }
}

impl CoordinatorError {
    /// The gRPC code and the AIP-193 reason of this error.
    fn code_and_reason(&self) -> (Code, &'static str) {
        match self {
            CoordinatorError::InvalidArgument { .. } => (Code::InvalidArgument, "INVALID_FIELD"),
            CoordinatorError::FailedPrecondition(_) => (Code::FailedPrecondition, "FAILED_PRECONDITION"),
            CoordinatorError::Refused { reason, .. } => (Code::FailedPrecondition, reason),
            CoordinatorError::NotFound(_) => (Code::NotFound, "NOT_FOUND"),
            CoordinatorError::PermissionDenied(_) => (Code::PermissionDenied, "PERMISSION_DENIED"),
            CoordinatorError::ResourceExhausted(_) => (Code::ResourceExhausted, "RESOURCE_EXHAUSTED"),
            CoordinatorError::Storage(e) => match e {
                StorageError::DayNotOver { .. } => (Code::FailedPrecondition, "DAY_NOT_OVER"),
                StorageError::DayAlreadyClosed { .. } => (Code::FailedPrecondition, "DAY_ALREADY_CLOSED"),
                StorageError::DayUnsettled { .. } => (Code::FailedPrecondition, "DAY_UNSETTLED"),
                StorageError::DayClosed { .. } => (Code::FailedPrecondition, "DAY_CLOSED"),
                StorageError::InvalidMonth { .. } => (Code::InvalidArgument, "INVALID_FIELD"),
                _ => (Code::Unavailable, "LEDGER_UNAVAILABLE"),
            },
            CoordinatorError::ShuttingDown => (Code::Unavailable, "SHUTTING_DOWN"),
            CoordinatorError::ProviderUnavailable(_) => (Code::Unavailable, "PROVIDER_UNAVAILABLE"),
            CoordinatorError::Internal(_) => (Code::Internal, "INTERNAL"),
        }
    }
}

impl From<CoordinatorError> for Status {
    fn from(e: CoordinatorError) -> Status {
        let (code, reason) = e.code_and_reason();
        if code == Code::Unavailable {
            tracing::error!(error = %e, "request refused");
        }
        let field = match &e {
            CoordinatorError::InvalidArgument { field, reason } => Some((field.as_str(), reason.as_str())),
            _ => None,
        };
        status(code, e.to_string(), reason, field)
    }
}

/// The AIP-193 error domain of every `ErrorInfo` the coordinator sends.
pub const ERROR_DOMAIN: &str = "checkout";

/// A status with its details: a `google.rpc.ErrorInfo` carrying `reason`, and for a malformed field a
/// `google.rpc.BadRequest` naming it. Every status the coordinator sends is made here.
pub fn status(code: Code, message: String, reason: &str, field: Option<(&str, &str)>) -> Status {
    use checkout_proto::google_rpc;
    use prost::Message;
    let any = |type_name: &str, value: Vec<u8>| prost_types::Any {
        type_url: format!("type.googleapis.com/google.rpc.{type_name}"),
        value,
    };
    let info = google_rpc::ErrorInfo {
        reason: reason.to_owned(),
        domain: ERROR_DOMAIN.to_owned(),
        metadata: field.map(|(name, _)| [("field".to_owned(), name.to_owned())].into()).unwrap_or_default(),
    };
    let mut details = vec![any("ErrorInfo", info.encode_to_vec())];
    if let Some((name, description)) = field {
        let violation =
            google_rpc::bad_request::FieldViolation { field: name.to_owned(), description: description.to_owned() };
        details.push(any("BadRequest", google_rpc::BadRequest { field_violations: vec![violation] }.encode_to_vec()));
    }
    let rich = google_rpc::Status { code: code as i32, message: message.clone(), details };
    Status::with_details(code, message, rich.encode_to_vec().into())
}
