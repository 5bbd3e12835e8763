//! The lane's one error type: why a lane could not start or run.

use std::{path::PathBuf, time::Duration};

use checkout_storage::LaneId;

/// Why a lane could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum LaneError {
    /// The coordinator's URL does not parse.
    #[error("coordinator address {url:?} is invalid: {source}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// Why it does not parse.
        source: tonic::transport::Error,
    },
    /// The coordinator did not answer within the lane's connect timeout.
    #[error("cannot reach the coordinator at {url} within {waited:?}: {last_error}")]
    Unreachable {
        /// The coordinator's URL.
        url: String,
        /// How long the lane tried.
        waited: Duration,
        /// The last attempt's error.
        last_error: String,
    },
    /// The coordinator answered, and said no for good.
    #[error("the coordinator refused lane {lane_id}: {message}")]
    Refused {
        /// The lane.
        lane_id: LaneId,
        /// The coordinator's reason.
        message: String,
    },
    /// The catalog the coordinator sent at registration does not read.
    #[error("the coordinator's price file is unusable: {0}")]
    BadCatalog(String),
    /// A folder of frames cannot be listed.
    #[error("cannot list frames in {path}: {source}")]
    Frames {
        /// The folder.
        path: PathBuf,
        /// Why it cannot be listed.
        source: std::io::Error,
    },
    /// A lane without a data folder runs in a temporary one, and it cannot be made.
    #[error("cannot make a temporary data folder: {0}")]
    TemporaryFolder(std::io::Error),
    /// The lane's data folder (its outbox) cannot be opened.
    #[error("cannot open the lane's data folder {path}: {source}")]
    Storage {
        /// The folder.
        path: PathBuf,
        /// Why it cannot be opened.
        source: checkout_storage::StorageError,
    },
    /// A hand-held scanner can serve one lane, and another lane has it.
    #[error("the hand-held scanner is already in use by another lane")]
    ScannerInUse,
    /// The actors stopped without reporting the lane's summary.
    #[error("the lane's actors stopped before finishing")]
    ActorsStopped,
    /// A token that cannot travel in a gRPC header.
    #[error("a token must be printable ASCII")]
    BadToken,
    /// An `https://` coordinator without the CA to check its certificate against.
    #[error("TLS towards the coordinator: an https:// coordinator needs the CA that signed its certificate (--ca)")]
    TlsWithoutCa,
    /// A lane certificate without its key, or a key without its certificate.
    #[error("TLS towards the coordinator: a lane certificate needs its key, and a key its certificate")]
    TlsHalfIdentity,
    /// The TLS settings were refused by the transport.
    #[error("TLS towards the coordinator: {0}")]
    Tls(String),
    /// Neither a token nor the enrolment secret: the lane cannot prove who it is.
    #[error(
        "lane {lane_id} has no credentials: give it the store's lane enrolment secret (--enrolment-secret FILE) or a lane token a manager issued (--token-file FILE)"
    )]
    NoCredentials {
        /// The lane.
        lane_id: LaneId,
    },
    /// The lane's token cannot be written to its data folder.
    #[error("cannot keep the lane's token in its data folder: {0}")]
    KeepToken(checkout_storage::StorageError),
    /// The lane's screens could not be served.
    #[error("cannot serve the lane's screens: {0}")]
    Screen(std::io::Error),
    /// A new lane token needs random bytes, and none could be read.
    #[error("cannot read the system's random source: {0}")]
    Random(std::io::Error),
}
