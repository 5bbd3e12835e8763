//! The lane's line to the coordinator: the endpoint (plaintext or TLS), the generated client with the lane's
//! bearer token, and which failed calls are worth another try.

use std::time::Duration;

use checkout_proto::v1::lane_service_client::LaneServiceClient;
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

use crate::{config::ClientTls, error::LaneError};

/// How long one attempt to open a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often an idle connection is pinged, so that a dead one is noticed before the next call needs it.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);
/// How long a ping may go unanswered before the connection counts as dead.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends a bearer token with every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    /// The `authorization` header for `token` (surrounding white space dropped).
    pub fn new(token: &str) -> Result<Bearer, LaneError> {
        format!("Bearer {}", token.trim()).parse().map(Bearer).map_err(|_| LaneError::BadToken)
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bearer(..)")
    }
}

/// The lane's client of the coordinator: the generated client, sending the lane's token.
pub type CoordinatorClient = LaneServiceClient<InterceptedService<Channel, Bearer>>;

/// How the lane's calls travel, as the coordinator's URL says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// `http://`: no TLS.
    Plaintext,
    /// `https://`: TLS, with the CA the lane is given.
    Tls,
}

impl Transport {
    fn of(url: &str) -> Transport {
        if url.starts_with("https://") { Transport::Tls } else { Transport::Plaintext }
    }
}

/// An endpoint for the coordinator at `url`, with TLS for `https://` URLs.
pub fn coordinator_endpoint(url: &str, tls: Option<&ClientTls>) -> Result<Endpoint, LaneError> {
    let bad_url = |source| LaneError::BadUrl { url: url.to_owned(), source };
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(bad_url)?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT);
    match Transport::of(url) {
        Transport::Plaintext => Ok(endpoint),
        Transport::Tls => endpoint.tls_config(tls_config(tls)?).map_err(|e| LaneError::Tls(e.to_string())),
    }
}

/// The TLS settings for an `https://` coordinator: its CA, and the lane's certificate and key if it has them.
fn tls_config(tls: Option<&ClientTls>) -> Result<ClientTlsConfig, LaneError> {
    let tls = tls.cloned().unwrap_or_default();
    let Some(ca) = &tls.ca_pem else { return Err(LaneError::TlsWithoutCa) };
    let config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    match (&tls.certificate_pem, &tls.key_pem) {
        (Some(certificate), Some(key)) => Ok(config.identity(Identity::from_pem(certificate, key))),
        (None, None) => Ok(config),
        _ => Err(LaneError::TlsHalfIdentity),
    }
}

/// Worth repeating the same request: the coordinator may not have seen it, or its answer was lost
/// (it is down, starting, overloaded, or the call timed out).
pub(crate) fn retryable(status: &tonic::Status) -> bool {
    use tonic::Code;
    matches!(status.code(), Code::Unavailable | Code::Unknown | Code::DeadlineExceeded | Code::Cancelled)
}

/// A request that gives up after `timeout`.
pub(crate) fn with_timeout<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}
