//! WeChat Pay v2 (`wechat-v2`): the answer-code tables, XML and signatures of the protocol, and the adapter that speaks it over HTTP or HTTPS.
//!
//! The tables are pure functions from the provider's codes to the engine's
//! outcomes, shared by the adapter, the in-process simulator and
//! `checkout provider-sim`. Every code the domain notes list is sorted as they
//! say; anything unlisted is *unknown* (query, then reverse), never *failed*.
//!
//! Signing (the documented algorithm): drop empty values and `sign`, sort the
//! rest by key, join as `k=v&k=v`, append `&key=MERCHANT_KEY`, then MD5 or
//! HMAC-SHA256 (keyed with the merchant key), upper-case hex.

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use checkout_storage::{ChargeStatus, Currency, Money, OutTradeNo, Provider};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::{
    provider::{
        MicropayRequest, OrderState, PaymentProvider, ProviderAnswer, ProviderError, ProviderFuture, QueryAnswer,
        RefundAnswer, RefundRequest, ReverseAnswer, messages,
    },
    simulated::{PayOutcome, RefundOutcome, SimOrderState, SimulatedOrder},
};

pub use crate::http::AdapterConfigError;
use crate::http::{HttpClient, HttpOutcome, TlsOptions, invalid};

/// How long to let a customer type a password before the first query (USERPAYING).
pub const PASSWORD_QUERY_AFTER: Duration = Duration::from_secs(5);

/// The provider code an HTTP 202 is booked under: the request was taken, the outcome is not known.
pub const HTTP_202: &str = "HTTP_202";

fn answer(status: ChargeStatus, code: &str, message: &str, query_after: Duration) -> ProviderAnswer {
    ProviderAnswer {
        status,
        provider_code: code.to_owned(),
        message: message.to_owned(),
        transaction_id: String::new(),
        query_after,
    }
}

/// Sorts a micropay answer code (`err_code`, or `SUCCESS`, or [`HTTP_202`]) into what the store must do next.
pub fn micropay_answer(code: &str) -> ProviderAnswer {
    use ChargeStatus::{Failed, NewCodeNeeded, Paid, Unknown};
    let now = Duration::ZERO;
    match code {
        "SUCCESS" => answer(Paid, code, messages::PAID, now),
        // The customer is entering the password: wait, then query.
        "USERPAYING" => answer(Unknown, code, messages::CUSTOMER_CONFIRMING, PASSWORD_QUERY_AFTER),
        // The outcome is unknown: query at once.
        "SYSTEMERROR" | "BANKERROR" | HTTP_202 => answer(Unknown, code, messages::UNCERTAIN, now),
        // WeChat documents ORDERPAID with the definite failures, but it says this
        // order number *was paid*: a retried request after a lost answer gets it.
        // Calling that "failed, nothing charged" would lose the customer's money,
        // so it is unknown and the query settles it.
        "ORDERPAID" => answer(Unknown, code, messages::UNCERTAIN, now),
        "AUTHCODEEXPIRE" | "AUTH_CODE_INVALID" | "BUYER_MISMATCH" => {
            answer(NewCodeNeeded, code, messages::FRESH_CODE, now)
        }
        "AUTH_CODE_ERROR" => answer(NewCodeNeeded, code, messages::CODE_USED, now),
        "NOTENOUGH" => answer(NewCodeNeeded, code, messages::NOT_ENOUGH, now),
        "NOTSUPORTCARD" => answer(NewCodeNeeded, code, messages::OTHER_METHOD, now),
        "PARAM_ERROR"
        | "ORDERCLOSED"
        | "ORDERREVERSED"
        | "OUT_TRADE_NO_USED"
        | "NOAUTH"
        | "INVALID_REQUEST"
        | "TRADE_ERROR"
        | "SIGNERROR"
        | "XML_FORMAT_ERROR"
        | "LACK_PARAMS"
        | "APPID_NOT_EXIST"
        | "MCHID_NOT_EXIST"
        | "APPID_MCHID_NOT_MATCH"
        | "REQUIRE_POST_METHOD"
        | "POST_DATA_EMPTY"
        | "NOT_UTF8" => answer(Failed, code, messages::FAILED, now),
        // Unlisted: never guess "failed".
        _ => answer(Unknown, code, messages::UNCERTAIN, now),
    }
}

/// The micropay code the simulator answers for what its books did.
pub fn micropay_code_of(outcome: &PayOutcome) -> &'static str {
    match outcome {
        PayOutcome::Paid { .. } => "SUCCESS",
        PayOutcome::Paying { .. } => "USERPAYING",
        PayOutcome::Expired => "AUTHCODEEXPIRE",
        PayOutcome::Invalid => "AUTH_CODE_INVALID",
        PayOutcome::Used => "AUTH_CODE_ERROR",
        PayOutcome::NotEnough => "NOTENOUGH",
        PayOutcome::OrderExists(SimOrderState::Paid) => "ORDERPAID",
        PayOutcome::OrderExists(SimOrderState::Closed) => "ORDERCLOSED",
        PayOutcome::OrderExists(SimOrderState::Reversed) => "ORDERREVERSED",
        PayOutcome::OrderExists(SimOrderState::Paying | SimOrderState::NotPaid) => "OUT_TRADE_NO_USED",
    }
}

/// Sorts an orderquery `trade_state` (or `ORDERNOTEXIST`); `None` for a state the protocol does not have.
pub fn query_state(trade_state: &str, transaction_id: &str, amount: Money) -> Option<OrderState> {
    Some(match trade_state {
        "SUCCESS" => OrderState::Paid { transaction_id: transaction_id.to_owned(), amount },
        "REFUND" => OrderState::Refunded,
        "NOTPAY" | "PAYERROR" => OrderState::NotPaid,
        "CLOSED" | "REVOKED" => OrderState::Closed,
        "USERPAYING" => OrderState::Paying,
        "ORDERNOTEXIST" => OrderState::NotFound,
        _ => return None,
    })
}

/// The orderquery `trade_state` of a booked order (`ORDERNOTEXIST` for none).
pub fn trade_state_of(order: Option<&SimulatedOrder>) -> &'static str {
    match order {
        None => "ORDERNOTEXIST",
        Some(order) => match order.state {
            SimOrderState::Paying => "USERPAYING",
            SimOrderState::Paid if order.refunded > 0 => "REFUND",
            SimOrderState::Paid => "SUCCESS",
            SimOrderState::NotPaid => "PAYERROR",
            SimOrderState::Closed | SimOrderState::Reversed => "REVOKED",
        },
    }
}

/// What an orderquery of the simulator's books answers, sorted.
pub fn query_answer_of(order: Option<&SimulatedOrder>) -> QueryAnswer {
    let code = trade_state_of(order);
    let (transaction_id, amount) =
        order.map_or((String::new(), Money::zero(Currency::CNY)), |o| (o.transaction_id.clone(), o.amount));
    let state = query_state(code, &transaction_id, amount).unwrap_or(OrderState::NotFound);
    QueryAnswer { state, provider_code: code.to_owned() }
}

/// Sorts a reverse answer: `result_code`, `err_code` and `recall`; `refunded` says whether the order had been paid.
pub fn reverse_answer(result_code: &str, err_code: &str, recall: &str, refunded: bool) -> ReverseAnswer {
    if recall == "Y" {
        return ReverseAnswer::CallAgain;
    }
    if result_code == "SUCCESS" {
        return ReverseAnswer::Reversed { refunded };
    }
    match err_code {
        // Nothing to close: no money moved under this number.
        "ORDERNOTEXIST" => ReverseAnswer::Reversed { refunded: false },
        // Older than the 7-day window, or a request WeChat will never take: refund instead.
        "REVERSE_EXPIRE"
        | "TRADE_OVERDUE"
        | "INVALID_TRANSACTIONID"
        | "PARAM_ERROR"
        | "REQUIRE_POST_METHOD"
        | "SIGNERROR"
        | "INVALID_REQUEST"
        | "TRADE_ERROR"
        | "NOAUTH" => ReverseAnswer::Refused { provider_code: err_code.to_owned() },
        // SYSTEMERROR, USERPAYING, BANKERROR and anything unlisted: the order may still move; call again.
        _ => ReverseAnswer::CallAgain,
    }
}

/// Sorts a refund answer (`SUCCESS` or the `err_code`).
pub fn refund_answer(code: &str, refund_id: &str) -> RefundAnswer {
    match code {
        "SUCCESS" => RefundAnswer::Accepted { refund_id: refund_id.to_owned() },
        "SYSTEMERROR" | "BIZERR_NEED_RETRY" | "FREQUENCY_LIMITED" | HTTP_202 => {
            RefundAnswer::Unknown { provider_code: code.to_owned() }
        }
        "TRADE_OVERDUE"
        | "ERROR"
        | "USER_ACCOUNT_ABNORMAL"
        | "INVALID_REQ_TOO_MUCH"
        | "NOTENOUGH"
        | "INVALID_TRANSACTIONID"
        | "PARAM_ERROR"
        | "ORDERNOTEXIST"
        | "REFUND_FEE_INVALID"
        | "SIGNERROR"
        | "NOAUTH" => RefundAnswer::Refused { provider_code: code.to_owned(), message: refund_message(code).into() },
        _ => RefundAnswer::Unknown { provider_code: code.to_owned() },
    }
}

fn refund_message(code: &str) -> &'static str {
    match code {
        "TRADE_OVERDUE" => "the order is too old to refund",
        "INVALID_REQ_TOO_MUCH" => "the order has had too many refunds (at most 50)",
        "NOTENOUGH" => "the merchant account cannot cover the refund",
        "ORDERNOTEXIST" | "INVALID_TRANSACTIONID" => "the provider has no paid order under this number",
        "REFUND_FEE_INVALID" => "the refund is more than what is left of the payment",
        "USER_ACCOUNT_ABNORMAL" => "the customer's account cannot take refunds: refund another way",
        _ => "the provider refused the refund",
    }
}

/// The refund code the simulator answers for what its books did.
pub fn refund_code_of(outcome: &RefundOutcome) -> &'static str {
    match outcome {
        RefundOutcome::Accepted { .. } => "SUCCESS",
        RefundOutcome::NoSuchOrder => "ORDERNOTEXIST",
        RefundOutcome::NotPaid => "ERROR",
        RefundOutcome::TooMuch => "REFUND_FEE_INVALID",
        RefundOutcome::TooMany => "INVALID_REQ_TOO_MUCH",
        RefundOutcome::Mismatch => "PARAM_ERROR",
    }
}

/// What a refund of the simulator's books answers, sorted.
pub fn refund_answer_of(outcome: &RefundOutcome) -> RefundAnswer {
    let refund_id = match outcome {
        RefundOutcome::Accepted { refund_id, .. } => refund_id.as_str(),
        _ => "",
    };
    refund_answer(refund_code_of(outcome), refund_id)
}

// ---------------------------------------------------------------- signatures

/// The two documented signature types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignType {
    Md5,
    HmacSha256,
}

impl SignType {
    /// The `sign_type` field's value (absent means MD5).
    pub fn name(self) -> &'static str {
        match self {
            SignType::Md5 => "MD5",
            SignType::HmacSha256 => "HMAC-SHA256",
        }
    }

    pub fn parse(name: &str) -> Option<SignType> {
        match name {
            "" | "MD5" => Some(SignType::Md5),
            "HMAC-SHA256" => Some(SignType::HmacSha256),
            _ => None,
        }
    }
}

/// The string that is signed: sorted non-empty `k=v` pairs without `sign`, then `&key=KEY`.
pub fn string_to_sign(params: &BTreeMap<String, String>, key: &str) -> String {
    let mut text = String::new();
    for (k, v) in params.iter().filter(|(k, v)| k.as_str() != "sign" && !v.is_empty()) {
        text.push_str(k);
        text.push('=');
        text.push_str(v);
        text.push('&');
    }
    text.push_str("key=");
    text.push_str(key);
    text
}

fn upper_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The `sign` of `params` under the merchant key.
pub fn sign(params: &BTreeMap<String, String>, key: &str, sign_type: SignType) -> String {
    let text = string_to_sign(params, key);
    match sign_type {
        SignType::Md5 => upper_hex(&md5::Md5::digest(text.as_bytes())),
        SignType::HmacSha256 => {
            let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()) {
                Ok(mac) => mac,
                Err(e) => unreachable!("HMAC takes keys of any length: {e}"),
            };
            mac.update(text.as_bytes());
            upper_hex(&mac.finalize().into_bytes())
        }
    }
}

/// Whether a request's `params["sign"]` is right (the sign type is read from `sign_type`, MD5 when absent).
pub fn verify(params: &BTreeMap<String, String>, key: &str) -> bool {
    match SignType::parse(params.get("sign_type").map_or("", String::as_str)) {
        Some(sign_type) => verify_with(params, key, sign_type),
        None => false,
    }
}

/// Whether `params["sign"]` is right under `sign_type` (answers carry no `sign_type`: they use the request's).
pub fn verify_with(params: &BTreeMap<String, String>, key: &str, sign_type: SignType) -> bool {
    let Some(given) = params.get("sign") else { return false };
    let expected = sign(params, key, sign_type);
    // Compare without an early exit.
    expected.len() == given.len() && expected.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

// ----------------------------------------------------------------------- XML

/// `<xml><k><![CDATA[v]]></k>...</xml>`, the flat form every v2 API uses.
pub fn to_xml(params: &BTreeMap<String, String>) -> String {
    let mut xml = String::from("<xml>");
    for (k, v) in params {
        // "]]>" cannot appear inside CDATA: split it.
        let v = v.replace("]]>", "]]]]><![CDATA[>");
        xml.push_str(&format!("<{k}><![CDATA[{v}]]></{k}>"));
    }
    xml.push_str("</xml>");
    xml
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

/// Parses the flat `<xml>` body: each child element's text (CDATA or escaped text) by name.
pub fn parse_xml(body: &str) -> Result<BTreeMap<String, String>, String> {
    let body = body.trim();
    let body = match body.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map(|(_, r)| r.trim_start()).ok_or("unterminated XML declaration")?,
        None => body,
    };
    let inner = body
        .strip_prefix("<xml>")
        .and_then(|b| b.strip_suffix("</xml>"))
        .ok_or("the body is not a flat <xml> document")?;
    let mut params = BTreeMap::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let open = rest.strip_prefix('<').ok_or("text outside an element")?;
        let (name, after) = open.split_once('>').ok_or("unterminated tag")?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("unexpected tag <{name}>"));
        }
        let close = format!("</{name}>");
        let (content, after) = after.split_once(&close).ok_or_else(|| format!("<{name}> is not closed"))?;
        let mut value = String::new();
        let mut content = content;
        while !content.is_empty() {
            if let Some(cdata) = content.strip_prefix("<![CDATA[") {
                let (text, more) = cdata.split_once("]]>").ok_or("unterminated CDATA")?;
                value.push_str(text);
                content = more;
            } else {
                let end = content.find("<![CDATA[").unwrap_or(content.len());
                if content[..end].contains('<') {
                    return Err(format!("<{name}> has nested elements"));
                }
                value.push_str(&unescape(&content[..end]));
                content = &content[end..];
            }
        }
        params.insert(name.to_owned(), value);
        rest = after.trim_start();
    }
    Ok(params)
}

// ------------------------------------------------------------------- adapter

/// A 32-character nonce: unique per process and call, unpredictable enough for a nonce (not a secret).
pub(crate) fn nonce_str() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let digest = Sha256::new()
        .chain_update(now.as_nanos().to_be_bytes())
        .chain_update(n.to_be_bytes())
        .chain_update(std::process::id().to_be_bytes())
        .finalize();
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// How to reach WeChat Pay v2 as one merchant. Pointing at the real service is a change of these values.
#[derive(Clone)]
pub struct WeChatConfig {
    /// `http://127.0.0.1:7000` for `checkout provider-sim`; the API paths are appended.
    pub base_url: String,
    pub appid: String,
    pub mch_id: String,
    /// The merchant API key (signs requests and answers). Never logged.
    pub key: String,
    pub sign_type: SignType,
    /// The store's IP as the provider sees it (`spbill_create_ip`).
    pub spbill_create_ip: String,
    /// The whole call: connect, send, answer.
    pub timeout: Duration,
    /// PEM certificates trusted for https:// in addition to the public web roots (a private gateway, a test CA).
    pub extra_root_ca_pem: Option<String>,
    /// The merchant's API certificate (`apiclient_cert.pem`), presented for TLS client authentication on
    /// every call; WeChat Pay requires it on `secapi/pay/reverse` and `secapi/pay/refund`.
    pub client_cert_pem: Option<String>,
    /// The private key of `client_cert_pem` (`apiclient_key.pem`). Never logged.
    pub client_key_pem: Option<String>,
}

impl std::fmt::Debug for WeChatConfig {
    /// Everything but the keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeChatConfig")
            .field("base_url", &self.base_url)
            .field("appid", &self.appid)
            .field("mch_id", &self.mch_id)
            .field("sign_type", &self.sign_type)
            .field("spbill_create_ip", &self.spbill_create_ip)
            .field("timeout", &self.timeout)
            .field("extra_root_ca", &self.extra_root_ca_pem.is_some())
            .field("client_certificate", &self.client_cert_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl WeChatConfig {
    /// The simulator's default merchant (see `checkout provider-sim --help`).
    pub fn for_simulator(base_url: &str) -> WeChatConfig {
        WeChatConfig {
            base_url: base_url.to_owned(),
            appid: "wxsim0000000000001".into(),
            mch_id: "1900000001".into(),
            key: "checkout-provider-sim-wechat-key1".into(),
            sign_type: SignType::HmacSha256,
            spbill_create_ip: "127.0.0.1".into(),
            timeout: Duration::from_secs(10),
            extra_root_ca_pem: None,
            client_cert_pem: None,
            client_key_pem: None,
        }
    }
}

/// The `wechat-v2` adapter: WeChat Pay v2 micropay, orderquery, reverse and refund over HTTP or HTTPS.
pub struct WeChatPayV2 {
    config: WeChatConfig,
    base_url: String,
    http: HttpClient,
}

impl WeChatPayV2 {
    pub fn new(config: WeChatConfig) -> Result<WeChatPayV2, AdapterConfigError> {
        let base_url = HttpClient::check_base_url(&config.base_url)?;
        if config.key.is_empty() {
            return Err(AdapterConfigError::Invalid { field: "key", reason: "the merchant key is empty".into() });
        }
        let client_identity = match (&config.client_cert_pem, &config.client_key_pem) {
            (Some(certificate), Some(key)) => Some((certificate.as_str(), key.as_str())),
            (None, None) => None,
            (Some(_), None) => return Err(invalid("client_key_pem", "a client certificate needs its private key")),
            (None, Some(_)) => return Err(invalid("client_cert_pem", "a client key needs its certificate")),
        };
        let tls = TlsOptions { extra_root_ca_pem: config.extra_root_ca_pem.as_deref(), client_identity };
        let http = HttpClient::new(config.timeout, tls)?;
        Ok(WeChatPayV2 { http, base_url, config })
    }

    fn common(&self) -> BTreeMap<String, String> {
        let mut params = BTreeMap::new();
        params.insert("appid".into(), self.config.appid.clone());
        params.insert("mch_id".into(), self.config.mch_id.clone());
        params.insert("nonce_str".into(), nonce_str());
        params.insert("sign_type".into(), self.config.sign_type.name().into());
        params
    }

    /// Signs and posts `params` to `path`; returns the verified answer fields, or `Ok(None)` for an HTTP 202.
    async fn call(
        &self,
        path: &str,
        mut params: BTreeMap<String, String>,
    ) -> Result<Option<BTreeMap<String, String>>, ProviderError> {
        let signature = sign(&params, &self.config.key, self.config.sign_type);
        params.insert("sign".into(), signature);
        let url = format!("{}/{path}", self.base_url);
        let outcome = self.http.post(&url, "text/xml; charset=utf-8", to_xml(&params)).await;
        match outcome.body_of(Provider::WeChatPay)? {
            None => Ok(None),
            Some(body) => {
                let answer = parse_xml(&body).map_err(|e| ProviderError::bad_answer(Provider::WeChatPay, e))?;
                let return_code = answer.get("return_code").map_or("", String::as_str);
                if return_code == "SUCCESS" {
                    if !verify_with(&answer, &self.config.key, self.config.sign_type) {
                        tracing::warn!(path, "WeChat Pay answer with a wrong signature: not trusted");
                        return Err(ProviderError::bad_answer(
                            Provider::WeChatPay,
                            "the answer's signature does not verify",
                        ));
                    }
                    if answer.get("mch_id") != Some(&self.config.mch_id) {
                        return Err(ProviderError::bad_answer(
                            Provider::WeChatPay,
                            "the answer is for another merchant",
                        ));
                    }
                }
                Ok(Some(answer))
            }
        }
    }
}

impl WeChatPayV2 {
    /// `pay/downloadbill`: the day's bill (`bill_date` as `yyyyMMdd`, `bill_type` ALL, SUCCESS or REFUND) as
    /// WeChat's CSV text; `Ok(None)` when there is no bill for that day.
    pub async fn download_bill(&self, bill_date: &str, bill_type: &str) -> Result<Option<String>, ProviderError> {
        let mut params = self.common();
        params.insert("bill_date".into(), bill_date.into());
        params.insert("bill_type".into(), bill_type.into());
        let signature = sign(&params, &self.config.key, self.config.sign_type);
        params.insert("sign".into(), signature);
        let url = format!("{}/pay/downloadbill", self.base_url);
        match self.http.post(&url, "text/xml; charset=utf-8", to_xml(&params)).await {
            HttpOutcome::NoAnswer(reason) => Err(ProviderError::unreachable(Provider::WeChatPay, reason)),
            HttpOutcome::Answer { status: 200, body } if body.trim_start().starts_with("<xml>") => {
                let answer = parse_xml(&body).map_err(|e| ProviderError::bad_answer(Provider::WeChatPay, e))?;
                match field(&answer, "return_msg") {
                    "No Bill Exist" => Ok(None),
                    other => Err(ProviderError::bad_answer(Provider::WeChatPay, format!("downloadbill: {other}"))),
                }
            }
            HttpOutcome::Answer { status: 200, body } => Ok(Some(body)),
            HttpOutcome::Answer { status, .. } => {
                Err(ProviderError::unreachable(Provider::WeChatPay, format!("HTTP {status}")))
            }
        }
    }
}

fn field<'a>(answer: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    answer.get(name).map_or("", String::as_str)
}

impl PaymentProvider for WeChatPayV2 {
    fn micropay(&self, request: MicropayRequest) -> ProviderFuture<'_, Result<ProviderAnswer, ProviderError>> {
        Box::pin(async move {
            let mut params = self.common();
            params.insert("device_info".into(), request.terminal.as_str().into());
            params.insert("body".into(), request.description.clone());
            params.insert("out_trade_no".into(), request.out_trade_no.as_str().into());
            params.insert("total_fee".into(), request.amount.minor_units.to_string());
            params.insert("fee_type".into(), request.amount.currency.as_str().into());
            params.insert("spbill_create_ip".into(), self.config.spbill_create_ip.clone());
            params.insert("auth_code".into(), request.code.expose_digits().into());
            tracing::debug!(out_trade_no = %request.out_trade_no, code = %request.code, "WeChat Pay micropay");
            let Some(answer) = self.call("pay/micropay", params).await? else {
                return Ok(micropay_answer(HTTP_202));
            };
            if field(&answer, "return_code") != "SUCCESS" {
                // Not processed as far as the answer tells; the query settles it.
                return Ok(ProviderAnswer {
                    message: format!("{} ({})", messages::UNCERTAIN, field(&answer, "return_msg")),
                    ..micropay_answer("FAIL")
                });
            }
            if field(&answer, "result_code") == "SUCCESS" {
                if field(&answer, "total_fee") != request.amount.minor_units.to_string() {
                    return Err(ProviderError::bad_answer(Provider::WeChatPay, "paid, but not the amount asked for"));
                }
                let mut paid = micropay_answer("SUCCESS");
                paid.transaction_id = field(&answer, "transaction_id").to_owned();
                return Ok(paid);
            }
            Ok(micropay_answer(field(&answer, "err_code")))
        })
    }

    fn query(
        &self,
        _provider: Provider,
        out_trade_no: &OutTradeNo,
    ) -> ProviderFuture<'_, Result<QueryAnswer, ProviderError>> {
        let out_trade_no = out_trade_no.clone();
        Box::pin(async move {
            let mut params = self.common();
            params.insert("out_trade_no".into(), out_trade_no.as_str().into());
            let answer = self
                .call("pay/orderquery", params)
                .await?
                .ok_or_else(|| ProviderError::unreachable(Provider::WeChatPay, "HTTP 202"))?;
            if field(&answer, "return_code") != "SUCCESS" {
                return Err(ProviderError::unreachable(
                    Provider::WeChatPay,
                    format!("return_code FAIL: {}", field(&answer, "return_msg")),
                ));
            }
            let code = if field(&answer, "result_code") == "SUCCESS" {
                field(&answer, "trade_state")
            } else {
                field(&answer, "err_code")
            };
            let fen: i64 = field(&answer, "total_fee").parse().unwrap_or(0);
            let currency = Currency::parse(field(&answer, "fee_type")).unwrap_or(Currency::CNY);
            match query_state(code, field(&answer, "transaction_id"), Money::new(fen, currency)) {
                Some(state) => Ok(QueryAnswer { state, provider_code: code.to_owned() }),
                // SYSTEMERROR and the like: ask again.
                None => Err(ProviderError::unreachable(Provider::WeChatPay, format!("orderquery answered {code}"))),
            }
        })
    }

    fn reverse(
        &self,
        provider: Provider,
        out_trade_no: &OutTradeNo,
    ) -> ProviderFuture<'_, Result<ReverseAnswer, ProviderError>> {
        let out_trade_no = out_trade_no.clone();
        Box::pin(async move {
            // The reverse answer does not say whether money went back: ask first (best effort).
            let was_paid = matches!(
                self.query(provider, &out_trade_no).await,
                Ok(QueryAnswer { state: OrderState::Paid { .. } | OrderState::Refunded, .. })
            );
            let mut params = self.common();
            params.insert("out_trade_no".into(), out_trade_no.as_str().into());
            let Some(answer) = self.call("secapi/pay/reverse", params).await? else {
                return Ok(ReverseAnswer::CallAgain);
            };
            if field(&answer, "return_code") != "SUCCESS" {
                return Ok(ReverseAnswer::CallAgain);
            }
            Ok(reverse_answer(
                field(&answer, "result_code"),
                field(&answer, "err_code"),
                field(&answer, "recall"),
                was_paid,
            ))
        })
    }

    fn refund(&self, request: RefundRequest) -> ProviderFuture<'_, Result<RefundAnswer, ProviderError>> {
        Box::pin(async move {
            let mut params = self.common();
            params.insert("out_trade_no".into(), request.out_trade_no.as_str().into());
            params.insert("out_refund_no".into(), request.out_refund_no.clone());
            params.insert("total_fee".into(), request.order_amount.minor_units.to_string());
            params.insert("refund_fee".into(), request.refund_amount.minor_units.to_string());
            params.insert("refund_fee_type".into(), request.refund_amount.currency.as_str().into());
            params.insert("refund_desc".into(), request.reason.clone());
            let Some(answer) = self.call("secapi/pay/refund", params).await? else {
                return Ok(refund_answer(HTTP_202, ""));
            };
            if field(&answer, "return_code") != "SUCCESS" {
                return Ok(RefundAnswer::Unknown { provider_code: "FAIL".into() });
            }
            let code = if field(&answer, "result_code") == "SUCCESS" { "SUCCESS" } else { field(&answer, "err_code") };
            Ok(refund_answer(code, field(&answer, "refund_id")))
        })
    }
}
