//! The adapters' HTTP side: one small HTTP/1.1 client over plain TCP or rustls, and what its answers mean.
//!
//! Both protocols read an answer the same way: no answer or a 5xx leaves the outcome unknown
//! (`Unreachable`: query, then reverse), a 202 is "accepted, outcome unknown", and any other
//! status but 200 is an answer the adapter cannot trust (`BadAnswer`).

use std::time::Duration;

use checkout_storage::Provider;

use super::ProviderError;

/// Why an adapter cannot be built from its configuration.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdapterConfigError {
    #[error("base URL {0:?}: only http:// and https:// URLs are supported")]
    UnsupportedScheme(String),
    #[error("base URL {0:?} is not a valid URL")]
    BadUrl(String),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// The TLS side of an adapter's [`HttpClient`]: what to trust beyond the public roots, and who to be.
#[derive(Clone, Copy, Default)]
pub(crate) struct TlsOptions<'a> {
    /// PEM certificates trusted in addition to the public web roots (a private gateway, a test CA).
    pub extra_root_ca_pem: Option<&'a str>,
    /// PEM certificate chain and private key presented for TLS client authentication.
    pub client_identity: Option<(&'a str, &'a str)>,
}

/// A small HTTP/1.1 client shared by the adapters: one POST, a whole-call timeout, the body as text.
///
/// Speaks plain HTTP (the simulator) and HTTPS through rustls (ring provider), trusting the public
/// web roots of `webpki-roots` plus any extra CA of the configuration.
#[derive(Clone)]
pub(crate) struct HttpClient {
    client: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        http_body_util::Full<bytes::Bytes>,
    >,
    timeout: Duration,
}

/// The most of a provider's answer that is read; a longer answer leaves the outcome unknown.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// The most of a daily bill that is downloaded (WeChat's gzip, Alipay's zip): a day of a million payments
/// is a few tens of MiB compressed; anything larger is refused, not read.
pub const MAX_BILL_BYTES: usize = 256 * 1024 * 1024;

/// How long a bill's download may take, whatever the adapter's per-call timeout.
pub const BILL_TIMEOUT: Duration = Duration::from_secs(300);

/// A bill's download: its bytes as they came, or why nothing usable did.
pub(crate) enum BytesOutcome {
    Answer { status: u16, body: Vec<u8> },
    NoAnswer(String),
}
/// What came back, or why nothing usable did.
pub(crate) enum HttpOutcome {
    Answer {
        status: u16,
        body: String,
    },
    /// Connection refused or dropped, timeout, a TLS handshake refused, a body cut short: the outcome is unknown.
    NoAnswer(String),
}

impl HttpOutcome {
    /// The body of a 200 answer from `provider`, or `None` for a 202 (accepted, outcome unknown).
    pub(crate) fn body_of(self, provider: Provider) -> Result<Option<String>, ProviderError> {
        match self {
            HttpOutcome::NoAnswer(reason) => Err(ProviderError::unreachable(provider, reason)),
            HttpOutcome::Answer { status: 202, .. } => Ok(None),
            HttpOutcome::Answer { status: 200, body } => Ok(Some(body)),
            HttpOutcome::Answer { status, .. } if status >= 500 => {
                Err(ProviderError::unreachable(provider, format!("HTTP {status}")))
            }
            HttpOutcome::Answer { status, .. } => Err(ProviderError::bad_answer(provider, format!("HTTP {status}"))),
        }
    }
}

pub(crate) fn invalid(field: &'static str, reason: impl std::fmt::Display) -> AdapterConfigError {
    AdapterConfigError::Invalid { field, reason: reason.to_string() }
}

/// Every certificate of a PEM text; at least one.
fn pem_certificates(
    field: &'static str,
    pem: &str,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, AdapterConfigError> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(field, format!("not PEM certificates: {e}")))?;
    if certificates.is_empty() {
        return Err(invalid(field, "no CERTIFICATE in the PEM text"));
    }
    Ok(certificates)
}

fn tls_config(options: TlsOptions<'_>) -> Result<rustls::ClientConfig, AdapterConfigError> {
    use rustls::pki_types::{PrivateKeyDer, pem::PemObject};
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(pem) = options.extra_root_ca_pem {
        for certificate in pem_certificates("extra_root_ca_pem", pem)? {
            roots.add(certificate).map_err(|e| invalid("extra_root_ca_pem", e))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("tls", e))?
        .with_root_certificates(roots);
    match options.client_identity {
        None => Ok(builder.with_no_client_auth()),
        Some((certificate_pem, key_pem)) => {
            let chain = pem_certificates("client_cert_pem", certificate_pem)?;
            // The error names no part of the key.
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                .map_err(|_| invalid("client_key_pem", "not a PEM private key (PKCS#8, PKCS#1 or SEC1)"))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| invalid("client_cert_pem", e))
        }
    }
}

/// An error and its causes, `outer: inner: innermost` (hyper's own text hides a refused certificate).
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl HttpClient {
    pub(crate) fn new(timeout: Duration, tls: TlsOptions<'_>) -> Result<HttpClient, AdapterConfigError> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(tls)?)
            .https_or_http()
            .enable_http1()
            .build();
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        Ok(HttpClient { client, timeout })
    }

    /// Checks that `base` is an http:// or https:// URL and returns it without a trailing slash.
    pub(crate) fn check_base_url(base: &str) -> Result<String, AdapterConfigError> {
        let uri: http::Uri = base.parse().map_err(|_| AdapterConfigError::BadUrl(base.to_owned()))?;
        if uri.host().is_none() {
            return Err(AdapterConfigError::BadUrl(base.to_owned()));
        }
        match uri.scheme_str() {
            Some("http" | "https") => Ok(base.trim_end_matches('/').to_owned()),
            Some(_) => Err(AdapterConfigError::UnsupportedScheme(base.to_owned())),
            None => Err(AdapterConfigError::BadUrl(base.to_owned())),
        }
    }

    pub(crate) async fn post(&self, url: &str, content_type: &str, body: String) -> HttpOutcome {
        let request = http::Request::post(url)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(http_body_util::Full::new(bytes::Bytes::from(body)));
        self.send(request).await
    }

    pub(crate) async fn get(&self, url: &str) -> HttpOutcome {
        self.send(http::Request::get(url).body(http_body_util::Full::new(bytes::Bytes::new()))).await
    }

    /// A bill's download by POST (WeChat `downloadbill`): the body's bytes, at most [`MAX_BILL_BYTES`], within
    /// [`BILL_TIMEOUT`].
    pub(crate) async fn post_bill(&self, url: &str, content_type: &str, body: String) -> BytesOutcome {
        let request = http::Request::post(url)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(http_body_util::Full::new(bytes::Bytes::from(body)));
        match self.send_limited(request, MAX_BILL_BYTES, BILL_TIMEOUT).await {
            Ok((status, body)) => BytesOutcome::Answer { status, body },
            Err(reason) => BytesOutcome::NoAnswer(reason),
        }
    }

    /// A bill's download by GET (Alipay's bill URL), bounded as [`HttpClient::post_bill`].
    pub(crate) async fn get_bill(&self, url: &str) -> BytesOutcome {
        let request = http::Request::get(url).body(http_body_util::Full::new(bytes::Bytes::new()));
        match self.send_limited(request, MAX_BILL_BYTES, BILL_TIMEOUT).await {
            Ok((status, body)) => BytesOutcome::Answer { status, body },
            Err(reason) => BytesOutcome::NoAnswer(reason),
        }
    }

    async fn send(
        &self,
        request: Result<http::Request<http_body_util::Full<bytes::Bytes>>, http::Error>,
    ) -> HttpOutcome {
        // Read up to a limit: a provider's answer is a few kilobytes; anything huge is not one.
        match self.send_limited(request, MAX_ANSWER_BYTES, self.timeout).await {
            Ok((status, body)) => match String::from_utf8(body) {
                Ok(body) => HttpOutcome::Answer { status, body },
                Err(_) => HttpOutcome::NoAnswer("the answer is not UTF-8".to_owned()),
            },
            Err(reason) => HttpOutcome::NoAnswer(reason),
        }
    }

    /// Sends `request` and reads at most `limit` bytes of the answer within `timeout`.
    async fn send_limited(
        &self,
        request: Result<http::Request<http_body_util::Full<bytes::Bytes>>, http::Error>,
        limit: usize,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), String> {
        use http_body_util::BodyExt;
        let request = request.map_err(|e| format!("cannot build the request: {e}"))?;
        let call = async {
            let response = self.client.request(request).await.map_err(|e| format!("request failed: {}", causes(&e)))?;
            let status = response.status().as_u16();
            let body = http_body_util::Limited::new(response.into_body(), limit);
            let body =
                body.collect().await.map_err(|e| match e.downcast_ref::<http_body_util::LengthLimitError>() {
                    Some(_) => format!("the answer is larger than {limit} bytes: not read"),
                    None => format!("answer cut short: {e}"),
                })?;
            Ok::<_, String>((status, body.to_bytes().to_vec()))
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }
}
