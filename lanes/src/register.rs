//! How a lane joins the store when it starts: its token (kept, configured, or got by enrolling), then
//! registration, which answers with the store's currency and catalog.

use std::time::Duration;

use checkout_proto::v1::lane_service_client::LaneServiceClient;
use checkout_storage::{Currency, LaneId, LaneStore, Product};
use tonic::transport::Channel;

use crate::{
    config::LaneConfig,
    connection::{Bearer, CoordinatorClient, coordinator_endpoint, retryable},
    convert,
    error::LaneError,
};

/// The first pause between attempts to register; it doubles up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between attempts to register: a coordinator that comes up is found soon.
const LONGEST_PAUSE: Duration = Duration::from_secs(2);

/// Why one attempt to register failed: for good, or worth another try.
enum Refusal {
    /// The coordinator answered no: stop.
    Final(LaneError),
    /// Unreachable or not ready: try again.
    Retry(String),
}

/// The lane's token: the one kept in its folder, else the configured one (then kept), else one got
/// by enrolling with the enrolment secret (then kept).
async fn lane_token(config: &LaneConfig, outbox: &LaneStore, channel: &Channel) -> Result<String, Refusal> {
    let keep = |token: &str| outbox.set_lane_token(Some(token)).map_err(|e| Refusal::Final(LaneError::KeepToken(e)));
    if let Some(token) = &config.credentials.token
        && outbox.lane_token().ok().flatten().as_deref() != Some(token.as_str())
    {
        keep(token)?;
        return Ok(token.clone());
    }
    if let Ok(Some(token)) = outbox.lane_token() {
        return Ok(token);
    }
    let Some(secret) = &config.credentials.enrolment_secret else {
        return Err(Refusal::Final(LaneError::NoCredentials { lane_id: config.lane_id.clone() }));
    };
    // The lane makes its token and keeps it first: a crash before the answer enrols the same token again.
    let token = match outbox.enrolling_token() {
        Ok(Some(token)) => token,
        _ => {
            let token = new_lane_token().map_err(|e| Refusal::Final(LaneError::Random(e)))?;
            outbox.set_enrolling_token(Some(&token)).map_err(|e| Refusal::Final(LaneError::KeepToken(e)))?;
            token
        }
    };
    let bearer = Bearer::new(secret).map_err(Refusal::Final)?;
    let mut client = LaneServiceClient::with_interceptor(channel.clone(), bearer);
    match client.enrol_lane(convert::enrol_request(&config.lane_id, sha256_hex(&token))).await {
        Ok(_) => {
            keep(&token)?;
            let _ = outbox.set_enrolling_token(None);
            tracing::info!(lane_id = %config.lane_id, "lane enrolled with the store; its token is kept in its data folder");
            Ok(token)
        }
        Err(status) => Err(refusal(&config.lane_id, status)),
    }
}

/// A new lane token: `ckl_` and 32 bytes of the system's random source in base64url, as the store makes them.
fn new_lane_token() -> std::io::Result<String> {
    use base64::Engine;
    Ok(format!("ckl_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)))
}

/// `N` bytes of the system's random source (lane tokens, the screens' key).
pub(crate) fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(bytes)
}

/// Bytes in lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The token's SHA-256 in hex: all of it the store keeps.
fn sha256_hex(token: &str) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(token.as_bytes()))
}

/// A refusal is final unless the coordinator may answer otherwise later (down, starting, overloaded).
fn refusal(lane_id: &LaneId, status: tonic::Status) -> Refusal {
    if retryable(&status) {
        Refusal::Retry(status.to_string())
    } else {
        Refusal::Final(LaneError::Refused { lane_id: lane_id.clone(), message: status.message().to_owned() })
    }
}

/// Registers with the coordinator, retrying until it answers or `config.connect_timeout` passes.
pub(crate) async fn register(
    config: &LaneConfig,
    outbox: &LaneStore,
) -> Result<
    (CoordinatorClient, Currency, Vec<Product>, Option<checkout_storage::MemberKey>, convert::Promotions),
    LaneError,
> {
    let endpoint = coordinator_endpoint(&config.coordinator_url, config.tls.as_ref())?;
    let started = tokio::time::Instant::now();
    let mut delay = FIRST_PAUSE;
    loop {
        let attempt = async {
            let channel = endpoint.connect().await.map_err(|e| Refusal::Retry(e.to_string()))?;
            let token = lane_token(config, outbox, &channel).await?;
            let mut client = LaneServiceClient::with_interceptor(channel, Bearer::new(&token).map_err(Refusal::Final)?);
            match client.register_lane(convert::register_request(&config.lane_id)).await {
                Ok(response) => Ok((client, response.into_inner())),
                Err(status) if status.code() == tonic::Code::Unauthenticated && config.credentials.token.is_none() => {
                    // The kept token is unknown to this coordinator (a new ledger): forget it, so the
                    // next try enrols again if the lane has the enrolment secret.
                    let _ = outbox.set_lane_token(None);
                    match config.credentials.enrolment_secret {
                        Some(_) => {
                            Err(Refusal::Retry(format!("the kept lane token was refused ({})", status.message())))
                        }
                        None => Err(refusal(&config.lane_id, status)),
                    }
                }
                Err(status) => Err(refusal(&config.lane_id, status)),
            }
        };
        match attempt.await {
            Ok((client, response)) => {
                let (store_id, currency, products, member_key, promotions) = convert::catalog_from_pb(response)?;
                tracing::info!(lane_id = %config.lane_id, store = %store_id, products = products.len(), "lane registered");
                return Ok((client, currency, products, member_key, promotions));
            }
            Err(Refusal::Final(error)) => return Err(error),
            Err(Refusal::Retry(message)) if started.elapsed() >= config.connect_timeout => {
                return Err(LaneError::Unreachable {
                    url: config.coordinator_url.clone(),
                    waited: config.connect_timeout,
                    last_error: message,
                });
            }
            Err(Refusal::Retry(message)) => {
                tracing::info!(url = %config.coordinator_url, error = %message, "coordinator not reachable yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(LONGEST_PAUSE);
            }
        }
    }
}
