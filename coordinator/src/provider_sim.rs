//! `checkout provider-sim`: an HTTP server that speaks WeChat Pay v2 and Alipay OpenAPI over the simulated provider's books, with fault injection.
//!
//! WeChat Pay v2 (XML, MD5 or HMAC-SHA256 signatures): `POST /pay/micropay`,
//! `/pay/orderquery`, `/secapi/pay/reverse`, `/secapi/pay/refund`,
//! `/pay/downloadbill`. Alipay OpenAPI (form-encoded requests signed RSA2,
//! JSON answers signed RSA2): `POST /gateway.do` with `method` =
//! `alipay.trade.pay` (`scene=bar_code`), `alipay.trade.query`,
//! `alipay.trade.cancel`, `alipay.trade.refund`,
//! `alipay.data.dataservice.bill.downloadurl.query` (the URL it gives is
//! `GET /sim/alipay/bill?date=YYYY-MM-DD`: a UTF-8 CSV, not Alipay's zip of
//! GBK files).
//!
//! Administration (JSON): `GET /sim/books` dumps the books, `GET /sim/faults`
//! and `POST /sim/faults` read and replace the fault knobs ([`Faults`]),
//! `GET /sim/code?provider=wechat|alipay&wallet=N` issues a wallet's current
//! payment code. The books are a [`SimulatedProvider`], shared with whoever
//! holds [`ProviderSim::books`].

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    sync::Arc,
};

use axum::{
    Json, Router,
    body::Body,
    extract::{Form, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use checkout_storage::{Currency, Money, OutTradeNo, PaymentCode, Provider, SimulatedWallet, UnixMillis};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::Deserialize;
use tokio::net::TcpListener;

pub use crate::simulated::Faults;
use crate::{
    alipay::{self, KeyError},
    simulated::{
        Fate, PayOutcome, RefundOutcome, ReverseOutcome, SimOptions, SimOrderState, SimulatedOrder, SimulatedProvider,
    },
    wechat::{self, SignType},
};

/// Test-only RSA keys (see `coordinator/testdata/README.md`): public in this repository, protecting nothing.
pub mod test_keys {
    /// The simulator signs Alipay answers with this.
    pub const ALIPAY_PRIVATE_PEM: &str = include_str!("../testdata/test-only-alipay-private.pem");
    /// The `alipay` adapter verifies answers with this.
    pub const ALIPAY_PUBLIC_PEM: &str = include_str!("../testdata/test-only-alipay-public.pem");
    /// The `alipay` adapter signs requests with this.
    pub const MERCHANT_PRIVATE_PEM: &str = include_str!("../testdata/test-only-merchant-private.pem");
    /// The simulator verifies requests with this.
    pub const MERCHANT_PUBLIC_PEM: &str = include_str!("../testdata/test-only-merchant-public.pem");
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
}

impl ProviderSimConfig {
    /// The merchant of [`crate::wechat::WeChatConfig::for_simulator`] and the test-only RSA keys.
    pub fn with_test_keys(wallet_seed: &[u8], starting_balance: i64) -> ProviderSimConfig {
        ProviderSimConfig {
            wallet_seed: wallet_seed.to_vec(),
            starting_balance,
            options: SimOptions::default(),
            wechat: SimWeChatMerchant {
                appid: "wxsim0000000000001".into(),
                mch_id: "1900000001".into(),
                key: "checkout-provider-sim-wechat-key1".into(),
            },
            alipay: SimAlipayApp {
                app_id: "2021000000000001".into(),
                alipay_private_key: test_keys::ALIPAY_PRIVATE_PEM.into(),
                app_public_key: test_keys::MERCHANT_PUBLIC_PEM.into(),
            },
            faults: Faults::default(),
            fault_seed: 1,
        }
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
        .route("/pay/micropay", post(wechat_micropay))
        .route("/pay/orderquery", post(wechat_orderquery))
        .route("/secapi/pay/reverse", post(wechat_reverse))
        .route("/secapi/pay/refund", post(wechat_refund))
        .route("/pay/downloadbill", post(wechat_downloadbill))
        .route("/gateway.do", post(alipay_gateway))
        .route("/sim/alipay/bill", get(alipay_bill))
        .route("/sim/books", get(books))
        .route("/sim/faults", get(get_faults).post(set_faults))
        .route("/sim/code", get(issue_code))
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

enum WeChatCall {
    Micropay,
    OrderQuery,
    Reverse,
    Refund,
}

async fn wechat_micropay(State(sim): State<Arc<ProviderSim>>, body: String) -> Response {
    wechat_api(&sim, WeChatCall::Micropay, &body).await
}

async fn wechat_orderquery(State(sim): State<Arc<ProviderSim>>, body: String) -> Response {
    wechat_api(&sim, WeChatCall::OrderQuery, &body).await
}

async fn wechat_reverse(State(sim): State<Arc<ProviderSim>>, body: String) -> Response {
    wechat_api(&sim, WeChatCall::Reverse, &body).await
}

async fn wechat_refund(State(sim): State<Arc<ProviderSim>>, body: String) -> Response {
    wechat_api(&sim, WeChatCall::Refund, &body).await
}

fn xml_response(params: &Params) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], wechat::to_xml(params)).into_response()
}

fn wechat_fail(message: &str) -> Response {
    let mut params = Params::new();
    params.insert("return_code".into(), "FAIL".into());
    params.insert("return_msg".into(), message.into());
    xml_response(&params)
}

fn param<'a>(params: &'a Params, name: &str) -> &'a str {
    params.get(name).map_or("", String::as_str)
}

/// Checks a WeChat request: parsed, signed by the merchant key, for this merchant.
fn wechat_request(sim: &ProviderSim, body: &str) -> Result<(Params, SignType), &'static str> {
    let params = wechat::parse_xml(body).map_err(|_| "XML_FORMAT_ERROR")?;
    let sign_type = SignType::parse(param(&params, "sign_type")).ok_or("sign_type is not supported")?;
    if !wechat::verify(&params, &sim.wechat.key) {
        return Err("SIGNERROR: signature check failed");
    }
    if param(&params, "appid") != sim.wechat.appid || param(&params, "mch_id") != sim.wechat.mch_id {
        return Err("APPID_MCHID_NOT_MATCH");
    }
    Ok((params, sign_type))
}

fn wechat_answer(sim: &ProviderSim, fields: Params, sign_type: SignType, fate: Fate) -> Response {
    let mut params = fields;
    params.insert("return_code".into(), "SUCCESS".into());
    params.insert("return_msg".into(), "OK".into());
    params.insert("appid".into(), sim.wechat.appid.clone());
    params.insert("mch_id".into(), sim.wechat.mch_id.clone());
    params.insert("nonce_str".into(), wechat::nonce_str());
    let mut signature = wechat::sign(&params, &sim.wechat.key, sign_type);
    if fate.corrupt_sign {
        signature = corrupt(&signature);
    }
    params.insert("sign".into(), signature);
    if fate.drop {
        return dropped();
    }
    xml_response(&params)
}

/// Changes the first character of a signature (hex or base64) to another valid one.
fn corrupt(signature: &str) -> String {
    let mut chars: Vec<char> = signature.chars().collect();
    if let Some(first) = chars.first_mut() {
        *first = if *first == 'A' { 'B' } else { 'A' };
    }
    chars.into_iter().collect()
}

fn result_fail(err_code: &str, description: &str) -> Params {
    let mut params = Params::new();
    params.insert("result_code".into(), "FAIL".into());
    params.insert("err_code".into(), err_code.into());
    params.insert("err_code_des".into(), description.into());
    params
}

fn wechat_order_fields(params: &mut Params, order: &SimulatedOrder) {
    params.insert("out_trade_no".into(), order.out_trade_no.as_str().into());
    params.insert("transaction_id".into(), order.transaction_id.clone());
    params.insert("total_fee".into(), order.amount.minor_units.to_string());
    params.insert("fee_type".into(), order.amount.currency.as_str().into());
    params.insert("cash_fee".into(), order.amount.minor_units.to_string());
    params.insert("device_info".into(), order.terminal.clone());
    params.insert("openid".into(), format!("oSim{:04}", order.wallet));
    params.insert("trade_type".into(), "MICROPAY".into());
    params.insert("bank_type".into(), "OTHERS".into());
    if let Some(paid_at) = order.paid_at {
        params.insert("time_end".into(), compact_time(paid_at));
    }
}

/// `20261125184938`.
fn compact_time(at: UnixMillis) -> String {
    let (y, mo, d, h, mi, s) = alipay::china_time(at);
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
}

async fn wechat_api(sim: &ProviderSim, call: WeChatCall, body: &str) -> Response {
    let Some(fate) = sim.fate().await else { return outage() };
    let (request, sign_type) = match wechat_request(sim, body) {
        Ok(request) => request,
        Err(message) => return wechat_fail(message),
    };
    if fate.http_202 {
        return StatusCode::ACCEPTED.into_response();
    }
    if fate.error {
        return wechat_answer(sim, result_fail("SYSTEMERROR", "provider-sim: injected system error"), sign_type, fate);
    }
    let Ok(out_trade_no) = OutTradeNo::parse(param(&request, "out_trade_no")) else {
        return wechat_answer(sim, result_fail("PARAM_ERROR", "out_trade_no is missing or malformed"), sign_type, fate);
    };
    let books = sim.books();
    let fields = match call {
        WeChatCall::Micropay => {
            let Ok(fen) = param(&request, "total_fee").parse::<i64>() else {
                return wechat_answer(sim, result_fail("PARAM_ERROR", "total_fee is not fen"), sign_type, fate);
            };
            if fen <= 0 {
                return wechat_answer(sim, result_fail("PARAM_ERROR", "total_fee must be positive"), sign_type, fate);
            }
            let currency = match param(&request, "fee_type") {
                "" => Currency::CNY,
                other => Currency::parse(other).unwrap_or(Currency::CNY),
            };
            let outcome = match PaymentCode::parse(param(&request, "auth_code")) {
                Ok(code) => books.pay(
                    Provider::WeChatPay,
                    &out_trade_no,
                    &code,
                    Money::new(fen, currency),
                    param(&request, "device_info"),
                    param(&request, "body"),
                ),
                Err(_) => PayOutcome::Invalid,
            };
            let code = wechat::micropay_code_of(&outcome);
            match outcome {
                PayOutcome::Paid { .. } => {
                    let mut fields = Params::new();
                    fields.insert("result_code".into(), "SUCCESS".into());
                    if let Some(order) = books.order(&out_trade_no) {
                        wechat_order_fields(&mut fields, &order);
                    }
                    fields
                }
                _ => result_fail(code, wechat::micropay_answer(code).message.as_str()),
            }
        }
        WeChatCall::OrderQuery => {
            let order = books.order(&out_trade_no);
            match order {
                None => result_fail("ORDERNOTEXIST", "no such order"),
                Some(order) => {
                    let mut fields = Params::new();
                    fields.insert("result_code".into(), "SUCCESS".into());
                    wechat_order_fields(&mut fields, &order);
                    let state = wechat::trade_state_of(Some(&order));
                    fields.insert("trade_state".into(), state.into());
                    fields.insert("trade_state_desc".into(), state.into());
                    fields
                }
            }
        }
        WeChatCall::Reverse => {
            if fate.reverse_retry {
                let mut fields = result_fail("SYSTEMERROR", "provider-sim: call reverse again");
                fields.insert("recall".into(), "Y".into());
                fields
            } else {
                books.reverse_order(&out_trade_no);
                let mut fields = Params::new();
                fields.insert("result_code".into(), "SUCCESS".into());
                fields.insert("recall".into(), "N".into());
                fields
            }
        }
        WeChatCall::Refund => {
            let (Ok(refund_fee), Ok(total_fee)) =
                (param(&request, "refund_fee").parse::<i64>(), param(&request, "total_fee").parse::<i64>())
            else {
                return wechat_answer(
                    sim,
                    result_fail("PARAM_ERROR", "refund_fee and total_fee are fen"),
                    sign_type,
                    fate,
                );
            };
            let out_refund_no = param(&request, "out_refund_no");
            if out_refund_no.is_empty() {
                return wechat_answer(sim, result_fail("PARAM_ERROR", "out_refund_no is missing"), sign_type, fate);
            }
            if books.order(&out_trade_no).is_some_and(|o| o.amount.minor_units != total_fee) {
                return wechat_answer(sim, result_fail("PARAM_ERROR", "total_fee is not the order's"), sign_type, fate);
            }
            let outcome = books.refund_order(&out_trade_no, out_refund_no, refund_fee);
            match &outcome {
                RefundOutcome::Accepted { refund_id, .. } => {
                    let mut fields = Params::new();
                    fields.insert("result_code".into(), "SUCCESS".into());
                    fields.insert("out_trade_no".into(), out_trade_no.as_str().into());
                    fields.insert("out_refund_no".into(), out_refund_no.into());
                    fields.insert("refund_id".into(), refund_id.clone());
                    fields.insert("refund_fee".into(), refund_fee.to_string());
                    fields.insert("total_fee".into(), total_fee.to_string());
                    if let Some(order) = books.order(&out_trade_no) {
                        fields.insert("transaction_id".into(), order.transaction_id);
                    }
                    fields
                }
                other => result_fail(wechat::refund_code_of(other), "refund refused"),
            }
        }
    };
    wechat_answer(sim, fields, sign_type, fate)
}

async fn wechat_downloadbill(State(sim): State<Arc<ProviderSim>>, body: String) -> Response {
    if sim.faults().outage {
        return outage();
    }
    let (request, _) = match wechat_request(&sim, &body) {
        Ok(request) => request,
        Err(message) => return wechat_fail(message),
    };
    let date = param(&request, "bill_date");
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return wechat_fail("invalid bill_date");
    }
    let day = format!("{}-{}-{}", &date[..4], &date[4..6], &date[6..]);
    match wechat_bill(&sim, &day, param(&request, "bill_type")) {
        Some(csv) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], csv).into_response(),
        None => wechat_fail("No Bill Exist"),
    }
}

/// 0.6% service fee, rounded half up, in fen.
pub fn service_fee(fen: i64) -> i64 {
    (fen * 6 + 500) / 1000
}

/// One bill line: what happened to money on a day.
struct BillLine<'a> {
    at: UnixMillis,
    order: &'a SimulatedOrder,
    /// SUCCESS, REFUND or REVOKED.
    state: &'static str,
    refund: Option<(String, String, i64)>,
}

fn bill_lines<'a>(orders: &'a [SimulatedOrder], provider: Provider, day: &str) -> Vec<BillLine<'a>> {
    let mut lines = Vec::new();
    for order in orders.iter().filter(|o| o.provider == provider) {
        if let Some(paid_at) = order.paid_at
            && alipay::china_date(paid_at) == day
        {
            lines.push(BillLine { at: paid_at, order, state: "SUCCESS", refund: None });
        }
        for refund in &order.refunds {
            if alipay::china_date(refund.at) == day {
                let detail = (refund.refund_id.clone(), refund.out_refund_no.clone(), refund.amount);
                lines.push(BillLine { at: refund.at, order, state: "REFUND", refund: Some(detail) });
            }
        }
        if order.state == SimOrderState::Reversed
            && let Some(closed_at) = order.closed_at
            && alipay::china_date(closed_at) == day
        {
            let back = order.amount.minor_units - order.refunded;
            let detail = (format!("REV{}", order.transaction_id), String::new(), back);
            lines.push(BillLine { at: closed_at, order, state: "REVOKED", refund: Some(detail) });
        }
    }
    lines.sort_by_key(|l| (l.at, l.order.out_trade_no.clone()));
    lines
}

/// WeChat's daily bill (`bill_type` ALL, SUCCESS or REFUND): every field prefixed with a backtick, amounts in yuan, a totals row.
pub fn wechat_bill(sim: &ProviderSim, day: &str, bill_type: &str) -> Option<String> {
    let orders = sim.books.snapshot().orders;
    let lines: Vec<BillLine<'_>> = bill_lines(&orders, Provider::WeChatPay, day)
        .into_iter()
        .filter(|l| match bill_type {
            "SUCCESS" => l.state == "SUCCESS",
            "REFUND" => l.state != "SUCCESS",
            _ => true,
        })
        .collect();
    if lines.is_empty() {
        return None;
    }
    let yuan = alipay::fen_to_yuan;
    let mut csv = String::from(
        "Trade time,appid,mch_id,sub_mch_id,device_info,transaction_id,out_trade_no,openid,Trade type,Trade state,\
         Bank,Currency,Settlement amount,Coupon amount,refund_id,out_refund_no,Refund amount,Coupon refund amount,\
         Refund type,Refund status,Body,Attach,Fee,Fee rate\n",
    );
    let (mut paid, mut refunded, mut fees) = (0i64, 0i64, 0i64);
    for line in &lines {
        let order = line.order;
        let (settlement, fee) = match line.state {
            "SUCCESS" => (order.amount.minor_units, service_fee(order.amount.minor_units)),
            _ => (0, 0),
        };
        let (refund_id, out_refund_no, refund) = line.refund.clone().unwrap_or_default();
        paid += settlement;
        refunded += refund;
        fees += fee;
        let fields = [
            alipay::china_datetime(line.at),
            sim.wechat.appid.clone(),
            sim.wechat.mch_id.clone(),
            "0".into(),
            order.terminal.clone(),
            order.transaction_id.clone(),
            order.out_trade_no.as_str().into(),
            format!("oSim{:04}", order.wallet),
            "MICROPAY".into(),
            line.state.into(),
            "OTHERS".into(),
            order.amount.currency.as_str().into(),
            yuan(settlement),
            "0.00".into(),
            if refund_id.is_empty() { "0".into() } else { refund_id },
            if out_refund_no.is_empty() { "0".into() } else { out_refund_no },
            yuan(refund),
            "0.00".into(),
            if line.refund.is_some() { "ORIGINAL".into() } else { String::new() },
            if line.refund.is_some() { "SUCCESS".into() } else { String::new() },
            order.description.replace(',', " "),
            String::new(),
            yuan(fee),
            "0.60%".into(),
        ];
        csv.push_str(&fields.iter().map(|f| format!("`{f}")).collect::<Vec<_>>().join(","));
        csv.push('\n');
    }
    csv.push_str(
        "Total trades,Total settlement amount,Total refund amount,Total coupon refund amount,Total fees,\
         Total order amount,Total refund requested\n",
    );
    let totals =
        [lines.len().to_string(), yuan(paid), yuan(refunded), "0.00".into(), yuan(fees), yuan(paid), yuan(refunded)];
    csv.push_str(&totals.iter().map(|f| format!("`{f}")).collect::<Vec<_>>().join(","));
    csv.push('\n');
    Some(csv)
}

/// Alipay's trade bill of a day, as one UTF-8 CSV (Alipay ships a zip of GBK CSVs: not simulated).
pub fn alipay_bill_csv(sim: &ProviderSim, day: &str) -> String {
    let orders = sim.books.snapshot().orders;
    let yuan = alipay::fen_to_yuan;
    let mut csv = String::from(
        "trade_no,out_trade_no,business_type,subject,created,finished,store_id,operator,terminal_id,\
         order_amount,merchant_received,refund_batch_no,service_fee\n",
    );
    let (mut count, mut received, mut fees) = (0usize, 0i64, 0i64);
    for line in bill_lines(&orders, Provider::Alipay, day) {
        let order = line.order;
        let (kind, amount, fee) = match line.state {
            "SUCCESS" => ("sale", order.amount.minor_units, service_fee(order.amount.minor_units)),
            _ => ("refund", -line.refund.as_ref().map_or(0, |r| r.2), 0),
        };
        count += 1;
        received += amount;
        fees += fee;
        let batch = line.refund.as_ref().map(|r| r.1.clone()).unwrap_or_default();
        csv.push_str(&format!(
            "{},{},{kind},{},{},{},,,{},{},{},{batch},{}\n",
            order.transaction_id,
            order.out_trade_no,
            order.description.replace(',', " "),
            alipay::china_datetime(order.created_at),
            alipay::china_datetime(line.at),
            order.terminal,
            yuan(order.amount.minor_units),
            yuan(amount),
            yuan(-fee),
        ));
    }
    csv.push_str(&format!("# total,{count},{},{}\n", yuan(received), yuan(-fees)));
    csv
}

// ------------------------------------------------------------------- Alipay

fn alipay_json(sim: &ProviderSim, method: &str, content: serde_json::Value, fate: Fate) -> Response {
    // A request that cannot be read as any method (a bad signature) is answered as `error_response`.
    let key = if method.is_empty() { "error_response".to_owned() } else { alipay::response_key(method) };
    let content = content.to_string();
    let mut signature = alipay::rsa2_sign(&sim.alipay_key, &content);
    if fate.corrupt_sign {
        signature = corrupt(&signature);
    }
    if fate.drop {
        return dropped();
    }
    let body = format!("{{\"{key}\":{content},\"sign\":{}}}", serde_json::Value::String(signature));
    ([(header::CONTENT_TYPE, "application/json;charset=utf-8")], body).into_response()
}

fn business_fail(sub_code: &str, sub_msg: &str) -> serde_json::Value {
    serde_json::json!({ "code": "40004", "msg": "Business Failed", "sub_code": sub_code, "sub_msg": sub_msg })
}

async fn alipay_gateway(
    State(sim): State<Arc<ProviderSim>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(fate) = sim.fate().await else { return outage() };
    let params: Params = query.into_iter().chain(form).collect();
    let method = param(&params, "method").to_owned();
    if param(&params, "sign_type") != "RSA2"
        || !alipay::rsa2_verify(&sim.app_key, &alipay::request_content(&params), param(&params, "sign"))
    {
        let content = serde_json::json!({
            "code": "40002", "msg": "Invalid Arguments",
            "sub_code": "isv.invalid-signature", "sub_msg": "the request's signature does not verify",
        });
        return alipay_json(&sim, "", content, Fate::default());
    }
    if param(&params, "app_id") != sim.alipay_app_id {
        let content = serde_json::json!({
            "code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-app-id", "sub_msg": "unknown app_id",
        });
        return alipay_json(&sim, &method, content, Fate::default());
    }
    if fate.http_202 {
        return StatusCode::ACCEPTED.into_response();
    }
    if fate.error {
        let content = serde_json::json!({
            "code": "20000", "msg": "Service Currently Unavailable",
            "sub_code": "aop.ACQ.SYSTEM_ERROR", "sub_msg": "provider-sim: injected system error",
        });
        return alipay_json(&sim, &method, content, fate);
    }
    let biz: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(param(&params, "biz_content")).unwrap_or_default();
    let text = |name: &str| biz.get(name).and_then(serde_json::Value::as_str).unwrap_or("").to_owned();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_owned();
    let content = match method.as_str() {
        "alipay.data.dataservice.bill.downloadurl.query" => serde_json::json!({
            "code": "10000", "msg": "Success",
            "bill_download_url": format!("http://{host}/sim/alipay/bill?date={}", text("bill_date")),
        }),
        "alipay.trade.pay" | "alipay.trade.query" | "alipay.trade.cancel" | "alipay.trade.refund" => {
            match OutTradeNo::parse(&text("out_trade_no")) {
                Err(_) => business_fail("ACQ.INVALID_PARAMETER", "out_trade_no is missing or malformed"),
                Ok(out_trade_no) => alipay_trade(&sim, &method, &out_trade_no, &text, fate),
            }
        }
        _ => serde_json::json!({
            "code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-method", "sub_msg": "unknown method",
        }),
    };
    alipay_json(&sim, &method, content, fate)
}

fn alipay_trade(
    sim: &ProviderSim,
    method: &str,
    out_trade_no: &OutTradeNo,
    text: &dyn Fn(&str) -> String,
    fate: Fate,
) -> serde_json::Value {
    let books = sim.books();
    let order_json = |order: &SimulatedOrder| {
        serde_json::json!({
            "code": "10000", "msg": "Success",
            "trade_no": order.transaction_id,
            "out_trade_no": order.out_trade_no.as_str(),
            "buyer_logon_id": format!("sim***{:04}", order.wallet),
            "total_amount": alipay::fen_to_yuan(order.amount.minor_units),
        })
    };
    match method {
        "alipay.trade.pay" => {
            if text("scene") != "bar_code" {
                return business_fail("ACQ.INVALID_PARAMETER", "only scene=bar_code is simulated");
            }
            let Some(fen) = alipay::yuan_to_fen(&text("total_amount")).filter(|f| *f > 0) else {
                return business_fail("ACQ.INVALID_PARAMETER", "total_amount is not yuan with two decimals");
            };
            let outcome = match PaymentCode::parse(&text("auth_code")) {
                Ok(code) => books.pay(
                    Provider::Alipay,
                    out_trade_no,
                    &code,
                    Money::new(fen, Currency::CNY),
                    &text("terminal_id"),
                    &text("subject"),
                ),
                Err(_) => PayOutcome::Invalid,
            };
            let (code, sub_code) = alipay::pay_codes_of(&outcome);
            let order = books.order(out_trade_no);
            match (code, order) {
                ("10000", Some(order)) => {
                    let mut answer = order_json(&order);
                    answer["receipt_amount"] = answer["total_amount"].clone();
                    answer["gmt_payment"] = order.paid_at.map(alipay::china_datetime).unwrap_or_default().into();
                    answer
                }
                ("10003", Some(order)) => {
                    let mut answer = order_json(&order);
                    answer["code"] = "10003".into();
                    answer["msg"] = " order success pay inprocess".into();
                    answer
                }
                _ => business_fail(sub_code, &alipay::pay_answer(code, sub_code).message),
            }
        }
        "alipay.trade.query" => match books.order(out_trade_no) {
            None => business_fail("ACQ.TRADE_NOT_EXIST", "no such trade"),
            Some(order) => {
                let mut answer = order_json(&order);
                answer["trade_status"] = alipay::trade_status_of(Some(&order)).into();
                answer
            }
        },
        "alipay.trade.cancel" => {
            if fate.reverse_retry {
                let mut answer = business_fail("ACQ.SYSTEM_ERROR", "provider-sim: cancel again");
                answer["retry_flag"] = "Y".into();
                return answer;
            }
            let action = match books.reverse_order(out_trade_no) {
                ReverseOutcome::Closed => "close",
                ReverseOutcome::Refunded => "refund",
            };
            serde_json::json!({
                "code": "10000", "msg": "Success", "out_trade_no": out_trade_no.as_str(),
                "trade_no": books.order(out_trade_no).map(|o| o.transaction_id).unwrap_or_default(),
                "retry_flag": "N", "action": action,
            })
        }
        _ => {
            let Some(fen) = alipay::yuan_to_fen(&text("refund_amount")) else {
                return business_fail("ACQ.INVALID_PARAMETER", "refund_amount is not yuan with two decimals");
            };
            let mut out_request_no = text("out_request_no");
            if out_request_no.is_empty() {
                // Alipay: without out_request_no the refund is keyed by the order itself.
                out_request_no = out_trade_no.as_str().to_owned();
            }
            let outcome = books.refund_order(out_trade_no, &out_request_no, fen);
            match (&outcome, books.order(out_trade_no)) {
                (RefundOutcome::Accepted { repeated, .. }, Some(order)) => {
                    let mut answer = order_json(&order);
                    answer["fund_change"] = if *repeated { "N" } else { "Y" }.into();
                    answer["refund_fee"] = alipay::fen_to_yuan(order.refunded).into();
                    answer["out_request_no"] = out_request_no.into();
                    answer
                }
                (other, _) => {
                    let (_, sub_code) = alipay::refund_codes_of(other);
                    business_fail(sub_code, "refund refused")
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct BillQuery {
    date: String,
}

async fn alipay_bill(State(sim): State<Arc<ProviderSim>>, Query(query): Query<BillQuery>) -> Response {
    if sim.faults().outage {
        return outage();
    }
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], alipay_bill_csv(&sim, &query.date)).into_response()
}

// -------------------------------------------------------------------- admin

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
