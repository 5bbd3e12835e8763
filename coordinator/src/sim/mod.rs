//! The simulated wallet provider, a test tool: real books (`books.rs`), in process (`in_process.rs`) or as
//! `checkout provider-sim`, an HTTP server that speaks WeChat Pay v2 and Alipay OpenAPI over them, with
//! fault injection.
//!
//! The simulator is built on the protocols of `crate::providers` (their tables,
//! signatures and XML); nothing there imports it.
//!
//! WeChat Pay v2 (XML, MD5 or HMAC-SHA256 signatures): `POST /pay/micropay`,
//! `/pay/orderquery`, `/secapi/pay/reverse`, `/secapi/pay/refund`,
//! `/pay/downloadbill`. Alipay OpenAPI (form-encoded requests signed RSA2,
//! JSON answers signed RSA2): `POST /gateway.do` with `method` =
//! `alipay.trade.pay` (`scene=bar_code`), `alipay.trade.query`,
//! `alipay.trade.cancel`, `alipay.trade.refund`,
//! `alipay.data.dataservice.bill.downloadurl.query` (the URL it gives is
//! `GET /sim/alipay/bill?date=YYYY-MM-DD`: Alipay's zip of GBK CSV files, see
//! `bills.rs`). `downloadbill` answers the gzip of its CSV when asked with
//! `tar_type=GZIP`. Reverse and cancel keep the providers' windows (7 days,
//! 24 hours from the order's creation); `SimulatedProvider::age_order` lets a
//! test get there without waiting.
//!
//! Administration (JSON): `GET /sim/books` dumps the books, `GET /sim/faults`
//! and `POST /sim/faults` read and replace the fault knobs ([`Faults`]),
//! `GET /sim/code?provider=wechat|alipay&wallet=N` issues a wallet's current
//! payment code, `GET /sim/keys` gives the keys an adapter needs to talk to
//! it (made at start, see `keys.rs`). The books are a [`SimulatedProvider`],
//! shared with whoever holds [`ProviderSim::books`].

mod alipay_api;
mod answers;
pub mod bills;
pub mod books;
mod in_process;
pub mod keys;
mod wechat_api;

use std::{collections::BTreeMap, future::Future, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Body,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use checkout_storage::{Provider, SimulatedWallet, UnixMillis};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::Deserialize;
use tokio::net::TcpListener;

use books::Fate;
pub use books::{
    ALIPAY_CANCEL_WINDOW, Faults, PayOutcome, RefundOutcome, ReverseOutcome, SimOptions, SimOrderState, SimRefund,
    SimulatedOrder, SimulatedProvider, WECHAT_REVERSE_WINDOW, WECHAT_REVOKE_UNPAID_AFTER,
};
pub use keys::SimKeys;

use crate::providers::{
    alipay::{self, AlipayConfig, KeyError},
    wechat::{SignType, WeChatConfig},
};

/// The WeChat Pay merchant the simulator serves by default.
pub const WECHAT_APPID: &str = "wxsim0000000000001";
pub const WECHAT_MCH_ID: &str = "1900000001";
/// The merchant API key both sides sign with by default: a test tool's, protecting nothing.
pub const WECHAT_KEY: &str = "checkout-provider-sim-wechat-key1";
/// The Alipay app the simulator serves by default.
pub const ALIPAY_APP_ID: &str = "2021000000000001";

/// The WeChat Pay adapter's configuration for the simulator's default merchant at `base_url`.
pub fn wechat_merchant(base_url: &str) -> WeChatConfig {
    WeChatConfig {
        sign_type: SignType::HmacSha256,
        ..WeChatConfig::new(base_url, WECHAT_APPID, WECHAT_MCH_ID, WECHAT_KEY)
    }
}

/// The Alipay adapter's configuration for the simulator's default app at `gateway_url`, with its `keys`.
pub fn alipay_app(gateway_url: &str, keys: &SimKeys) -> AlipayConfig {
    AlipayConfig::new(gateway_url, ALIPAY_APP_ID, &keys.app_private_pem, &keys.alipay_public_pem)
}

/// The adapters' configurations for a `checkout provider-sim` at `base_url`, with the keys it made at start.
pub async fn adapters_for(base_url: &str) -> Result<(WeChatConfig, AlipayConfig), String> {
    let base = base_url.trim_end_matches('/');
    let http = crate::providers::http::HttpClient::new(Duration::from_secs(10), Default::default())
        .map_err(|e| e.to_string())?;
    let keys: SimKeys = match http.get(&format!("{base}/sim/keys")).await {
        crate::providers::http::HttpOutcome::Answer { status: 200, body } => {
            serde_json::from_str(&body).map_err(|e| format!("provider-sim's keys: {e}"))?
        }
        crate::providers::http::HttpOutcome::Answer { status, .. } => {
            return Err(format!("provider-sim at {base} answered {status} for its keys"));
        }
        crate::providers::http::HttpOutcome::NoAnswer(reason) => {
            return Err(format!("provider-sim at {base} did not answer: {reason}"));
        }
    };
    Ok((wechat_merchant(base), alipay_app(&format!("{base}/gateway.do"), &keys)))
}

/// The WeChat Pay merchant the simulator serves.
#[derive(Debug, Clone)]
pub struct SimWeChatMerchant {
    pub appid: String,
    pub mch_id: String,
    /// The merchant API key both sides sign with.
    pub key: String,
}

/// The Alipay app the simulator serves.
#[derive(Clone)]
pub struct SimAlipayApp {
    pub app_id: String,
    /// "Alipay's" private key (PEM or bare base64): signs answers.
    pub alipay_private_key: String,
    /// The app's public key (PEM or bare base64): verifies requests.
    pub app_public_key: String,
}

/// Everything `checkout provider-sim` starts from.
#[derive(Clone)]
pub struct ProviderSimConfig {
    pub wallet_seed: Vec<u8>,
    /// What every wallet holds at first, in minor units.
    pub starting_balance: i64,
    pub options: SimOptions,
    pub wechat: SimWeChatMerchant,
    pub alipay: SimAlipayApp,
    pub faults: Faults,
    /// Seed of the fault dice, so a run's faults repeat.
    pub fault_seed: u64,
    /// The keys `GET /sim/keys` gives an adapter, when the simulator made them (not when they were given).
    pub keys: Option<SimKeys>,
}

impl ProviderSimConfig {
    /// The default merchant and app ([`wechat_merchant`], [`alipay_app`]) with the keys made for this process.
    pub fn new(wallet_seed: &[u8], starting_balance: i64) -> Result<ProviderSimConfig, KeyError> {
        let keys = keys::generated()?;
        Ok(ProviderSimConfig {
            wallet_seed: wallet_seed.to_vec(),
            starting_balance,
            options: SimOptions::default(),
            wechat: SimWeChatMerchant {
                appid: WECHAT_APPID.into(),
                mch_id: WECHAT_MCH_ID.into(),
                key: WECHAT_KEY.into(),
            },
            alipay: SimAlipayApp {
                app_id: ALIPAY_APP_ID.into(),
                alipay_private_key: keys.alipay_private_pem.clone(),
                app_public_key: keys.app_public_pem.clone(),
            },
            faults: Faults::default(),
            fault_seed: 1,
            keys: Some(keys.clone()),
        })
    }
}

/// The simulator: books, merchant credentials, keys and fault dice.
pub struct ProviderSim {
    books: Arc<SimulatedProvider>,
    wechat: SimWeChatMerchant,
    alipay_app_id: String,
    alipay_key: RsaPrivateKey,
    app_key: RsaPublicKey,
    wallet_seed: Vec<u8>,
    keys: Option<SimKeys>,
}

impl ProviderSim {
    pub fn new(config: ProviderSimConfig) -> Result<ProviderSim, KeyError> {
        let books =
            Arc::new(SimulatedProvider::with_options(&config.wallet_seed, config.starting_balance, config.options));
        books.set_fault_seed(config.fault_seed);
        books.set_faults(config.faults);
        Ok(ProviderSim {
            books,
            wechat: config.wechat,
            alipay_app_id: config.alipay.app_id,
            alipay_key: alipay::private_key(&config.alipay.alipay_private_key)?,
            app_key: alipay::public_key(&config.alipay.app_public_key)?,
            wallet_seed: config.wallet_seed,
            keys: config.keys,
        })
    }

    /// The books behind the protocols: the truth tests compare against.
    pub fn books(&self) -> &Arc<SimulatedProvider> {
        &self.books
    }

    /// The fault knobs now in force (they live with the books: the in-process provider obeys them too).
    pub fn faults(&self) -> Faults {
        self.books.faults()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.books.set_faults(faults);
    }

    async fn fate(&self) -> Option<Fate> {
        self.books.fate().await
    }
}

/// The HTTP routes of the simulator.
pub fn router(sim: Arc<ProviderSim>) -> Router {
    Router::new()
        .route("/pay/micropay", post(wechat_api::micropay))
        .route("/pay/orderquery", post(wechat_api::orderquery))
        .route("/secapi/pay/reverse", post(wechat_api::reverse))
        .route("/secapi/pay/refund", post(wechat_api::refund))
        .route("/pay/downloadbill", post(wechat_api::downloadbill))
        .route("/gateway.do", post(alipay_api::gateway))
        .route("/sim/alipay/bill", get(alipay_api::bill))
        .route("/sim/books", get(books))
        .route("/sim/faults", get(get_faults).post(set_faults))
        .route("/sim/code", get(issue_code))
        .route("/sim/keys", get(keys_for_adapters))
        .with_state(sim)
}

/// Serves the simulator on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    sim: Arc<ProviderSim>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!(address = ?listener.local_addr().ok(), "provider-sim serving");
    axum::serve(listener, router(sim)).with_graceful_shutdown(shutdown).await
}

fn outage() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "provider-sim: outage").into_response()
}

/// An answer whose body breaks off: the caller sees a dropped connection.
fn dropped() -> Response {
    let stream = futures::stream::once(async {
        Err::<bytes::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "provider-sim: answer dropped after the charge",
        ))
    });
    Response::new(Body::from_stream(stream))
}

// -------------------------------------------------------------- WeChat Pay v2

type Params = BTreeMap<String, String>;

fn param<'a>(params: &'a Params, name: &str) -> &'a str {
    params.get(name).map_or("", String::as_str)
}

/// Changes the first character of a signature (hex or base64) to another valid one.
fn corrupt(signature: &str) -> String {
    let mut chars: Vec<char> = signature.chars().collect();
    if let Some(first) = chars.first_mut() {
        *first = if *first == 'A' { 'B' } else { 'A' };
    }
    chars.into_iter().collect()
}

async fn books(State(sim): State<Arc<ProviderSim>>) -> Response {
    Json(sim.books.snapshot()).into_response()
}

async fn get_faults(State(sim): State<Arc<ProviderSim>>) -> Json<Faults> {
    Json(sim.faults())
}

async fn set_faults(State(sim): State<Arc<ProviderSim>>, Json(faults): Json<Faults>) -> Json<Faults> {
    sim.set_faults(faults);
    Json(sim.faults())
}

#[derive(Deserialize)]
struct CodeQuery {
    provider: String,
    wallet: u16,
}

/// The keys an adapter needs to talk to this simulator (a test tool on loopback: they protect nothing).
async fn keys_for_adapters(State(sim): State<Arc<ProviderSim>>) -> Response {
    match &sim.keys {
        Some(keys) => Json(keys.clone()).into_response(),
        None => {
            (StatusCode::NOT_FOUND, "provider-sim was given its keys: configure the adapter with them").into_response()
        }
    }
}

/// The wallet's code right now, for trying the simulator by hand (it is a simulated wallet: printing it is fine).
async fn issue_code(State(sim): State<Arc<ProviderSim>>, Query(query): Query<CodeQuery>) -> Response {
    let provider = match query.provider.to_ascii_lowercase().as_str() {
        "wechat" | "wechatpay" => Provider::WeChatPay,
        "alipay" => Provider::Alipay,
        "unionpay" => Provider::UnionPay,
        _ => return (StatusCode::BAD_REQUEST, "provider: wechat, alipay or unionpay").into_response(),
    };
    let code = SimulatedWallet::new(&sim.wallet_seed, provider, query.wallet).issue_code(UnixMillis::now());
    Json(serde_json::json!({ "provider": format!("{provider:?}"), "wallet": query.wallet, "code": code.expose_digits() }))
        .into_response()
}
