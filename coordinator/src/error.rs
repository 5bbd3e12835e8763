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

impl From<CoordinatorError> for Status {
    fn from(e: CoordinatorError) -> Status {
        let code = match &e {
            CoordinatorError::InvalidArgument { .. } => Code::InvalidArgument,
            CoordinatorError::FailedPrecondition(_) => Code::FailedPrecondition,
            CoordinatorError::NotFound(_) => Code::NotFound,
            CoordinatorError::PermissionDenied(_) => Code::PermissionDenied,
            CoordinatorError::ResourceExhausted(_) => Code::ResourceExhausted,
            CoordinatorError::Storage(_) | CoordinatorError::ShuttingDown => Code::Unavailable,
            CoordinatorError::Internal(_) => Code::Internal,
        };
        if code == Code::Unavailable {
            tracing::error!(error = %e, "request refused");
        }
        Status::new(code, e.to_string())
    }
}
