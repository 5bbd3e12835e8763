//! Alipay OpenAPI (`alipay`): the answer-code tables, RSA2 signatures, yuan amounts, and the adapter for `alipay.trade.pay` (bar code), query, cancel and refund.
//!
//! The tables are pure functions shared by the adapter, the in-process
//! simulator and `checkout provider-sim`. `provider_code` is the answer's
//! `code`, or `code/sub_code` when there is a sub code
//! (`40004/ACQ.BUYER_BALANCE_NOT_ENOUGH`). Anything unlisted is *unknown*.
//!
//! Requests are signed RSA2 (SHA256withRSA, PKCS#1 v1.5, base64) over the
//! sorted, non-empty `k=v` pairs without `sign`; an answer's signature covers
//! the exact text of its `*_response` JSON value and is checked with Alipay's
//! public key before anything in it is believed.

use std::{collections::BTreeMap, time::Duration};

use base64::Engine as _;
use checkout_storage::{ChargeStatus, Currency, Money, OutTradeNo, Provider, UnixMillis};
use rsa::{
    RsaPrivateKey, RsaPublicKey,
    pkcs1v15::{Signature, SigningKey, VerifyingKey},
    pkcs8::{DecodePrivateKey, DecodePublicKey},
    signature::{SignatureEncoding, Signer, Verifier},
};
use sha2::Sha256;

use crate::{
    http::{AdapterConfigError, HttpClient, HttpOutcome, TlsOptions},
    provider::{
        MicropayRequest, OrderState, PaymentProvider, ProviderAnswer, ProviderError, ProviderFuture, QueryAnswer,
        RefundAnswer, RefundRequest, ReverseAnswer, messages,
    },
    simulated::{PayOutcome, RefundOutcome, SimOrderState, SimulatedOrder},
    wechat::{HTTP_202, PASSWORD_QUERY_AFTER},
};

// ------------------------------------------------------------------- amounts

/// `1234` fen → `"12.34"`; integer arithmetic only.
pub fn fen_to_yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// `"12.34"`, `"12.3"`, `"12"` → fen; `None` for anything else (more than two decimals, signs, spaces).
pub fn yuan_to_fen(yuan: &str) -> Option<i64> {
    let (whole, fraction) = yuan.split_once('.').unwrap_or((yuan, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || whole.len() > 15 {
        return None;
    }
    if fraction.len() > 2 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let cents: i64 = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<i64>().ok()? * 10,
        _ => fraction.parse().ok()?,
    };
    whole.checked_mul(100)?.checked_add(cents)
}

/// `(yyyy, mm, dd, HH, MM, SS)` of `at` in China Standard Time (UTC+8), the providers' clock.
pub fn china_time(at: UnixMillis) -> (i64, u32, u32, u32, u32, u32) {
    let secs = at.0.div_euclid(1000) + 8 * 3600;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, (rest / 3600) as u32, (rest % 3600 / 60) as u32, (rest % 60) as u32)
}

/// `2026-11-25 18:49:38` in China Standard Time (Alipay's `timestamp`, bills' times).
pub fn china_datetime(at: UnixMillis) -> String {
    let (y, mo, d, h, mi, s) = china_time(at);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// `2026-11-25`: the bill day of `at` in China Standard Time.
pub fn china_date(at: UnixMillis) -> String {
    let (y, mo, d, ..) = china_time(at);
    format!("{y:04}-{mo:02}-{d:02}")
}

// -------------------------------------------------------------------- tables

/// `code` or `code/sub_code`.
pub fn provider_code(code: &str, sub_code: &str) -> String {
    if sub_code.is_empty() { code.to_owned() } else { format!("{code}/{sub_code}") }
}

/// Sorts an `alipay.trade.pay` answer (`code`, `sub_code`; or [`HTTP_202`]) into what the store must do next.
pub fn pay_answer(code: &str, sub_code: &str) -> ProviderAnswer {
    use ChargeStatus::{Failed, NewCodeNeeded, Paid, Unknown};
    let (status, message, query_after) = match (code, sub_code) {
        ("10000", _) => (Paid, messages::PAID, Duration::ZERO),
        // WAIT_BUYER_PAY: the customer is confirming on the phone; poll the query.
        ("10003", _) => (Unknown, messages::CUSTOMER_CONFIRMING, PASSWORD_QUERY_AFTER),
        // Unknown: query at once, then cancel if not paid.
        ("20000", _) | (HTTP_202, _) => (Unknown, messages::UNCERTAIN, Duration::ZERO),
        ("40004", sub) => match sub {
            "ACQ.PAYMENT_AUTH_CODE_INVALID" | "ACQ.TRADE_BUYER_NOT_MATCH" | "ACQ.PAYMENT_FAIL" => {
                (NewCodeNeeded, messages::FRESH_CODE, Duration::ZERO)
            }
            "ACQ.BUYER_BALANCE_NOT_ENOUGH" | "ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH" => {
                (NewCodeNeeded, messages::NOT_ENOUGH, Duration::ZERO)
            }
            "ACQ.BUYER_ENABLE_STATUS_FORBID"
            | "ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR"
            | "ACQ.BUYER_PAYMENT_AMOUNT_MONTH_LIMIT_ERROR"
            | "ACQ.ERROR_BALANCE_PAYMENT_DISABLE"
            | "ACQ.MOBILE_PAYMENT_SWITCH_OFF"
            | "ACQ.PULL_MOBILE_CASHIER_FAIL"
            | "ACQ.PAYMENT_REQUEST_HAS_RISK" => (NewCodeNeeded, messages::OTHER_METHOD, Duration::ZERO),
            // "Already paid: treat as paid if it is this buyer" — only the query can tell, so query.
            "ACQ.TRADE_HAS_SUCCESS" | "ACQ.SYSTEM_ERROR" => (Unknown, messages::UNCERTAIN, Duration::ZERO),
            "ACQ.TRADE_HAS_CLOSE"
            | "ACQ.CONTEXT_INCONSISTENT"
            | "ACQ.TOTAL_FEE_EXCEED"
            | "ACQ.INVALID_PARAMETER"
            | "ACQ.ACCESS_FORBIDDEN"
            | "ACQ.EXIST_FORBIDDEN_WORD"
            | "ACQ.PARTNER_ERROR"
            | "ACQ.BUYER_SELLER_EQUAL"
            | "ACQ.SELLER_BEEN_BLOCKED" => (Failed, messages::FAILED, Duration::ZERO),
            // An unlisted business failure: do not guess; query.
            _ => (Unknown, messages::UNCERTAIN, Duration::ZERO),
        },
        // Refused at the gateway, before any trade: missing or invalid parameters
        // (signature included), no permission, bad authorisation.
        ("40001" | "40002" | "40006" | "20001", _) => (Failed, messages::FAILED, Duration::ZERO),
        _ => (Unknown, messages::UNCERTAIN, Duration::ZERO),
    };
    ProviderAnswer {
        status,
        provider_code: provider_code(code, sub_code),
        message: message.to_owned(),
        transaction_id: String::new(),
        query_after,
    }
}

/// The `alipay.trade.pay` codes the simulator answers for what its books did.
pub fn pay_codes_of(outcome: &PayOutcome) -> (&'static str, &'static str) {
    match outcome {
        PayOutcome::Paid { .. } => ("10000", ""),
        PayOutcome::Paying { .. } => ("10003", ""),
        PayOutcome::Expired | PayOutcome::Invalid | PayOutcome::Used => ("40004", "ACQ.PAYMENT_AUTH_CODE_INVALID"),
        PayOutcome::NotEnough => ("40004", "ACQ.BUYER_BALANCE_NOT_ENOUGH"),
        PayOutcome::OrderExists(SimOrderState::Paid) => ("40004", "ACQ.TRADE_HAS_SUCCESS"),
        PayOutcome::OrderExists(SimOrderState::Closed | SimOrderState::Reversed) => ("40004", "ACQ.TRADE_HAS_CLOSE"),
        PayOutcome::OrderExists(SimOrderState::Paying | SimOrderState::NotPaid) => {
            ("40004", "ACQ.CONTEXT_INCONSISTENT")
        }
    }
}

/// Sorts an `alipay.trade.query` `trade_status` (or `ACQ.TRADE_NOT_EXIST`); `None` for anything else.
pub fn query_state(trade_status: &str, trade_no: &str, amount: Money) -> Option<OrderState> {
    Some(match trade_status {
        "TRADE_SUCCESS" | "TRADE_FINISHED" => OrderState::Paid { transaction_id: trade_no.to_owned(), amount },
        "WAIT_BUYER_PAY" => OrderState::Paying,
        "TRADE_CLOSED" => OrderState::Closed,
        "ACQ.TRADE_NOT_EXIST" => OrderState::NotFound,
        _ => return None,
    })
}

/// The `trade_status` of a booked order (`ACQ.TRADE_NOT_EXIST` for none). A partly refunded trade stays TRADE_SUCCESS.
pub fn trade_status_of(order: Option<&SimulatedOrder>) -> &'static str {
    match order {
        None => "ACQ.TRADE_NOT_EXIST",
        Some(order) => match order.state {
            SimOrderState::Paying => "WAIT_BUYER_PAY",
            SimOrderState::Paid if order.refunded >= order.amount.minor_units => "TRADE_CLOSED",
            SimOrderState::Paid => "TRADE_SUCCESS",
            SimOrderState::NotPaid | SimOrderState::Closed | SimOrderState::Reversed => "TRADE_CLOSED",
        },
    }
}

/// What `alipay.trade.query` of the simulator's books answers, sorted.
pub fn query_answer_of(order: Option<&SimulatedOrder>) -> QueryAnswer {
    let code = trade_status_of(order);
    let (trade_no, amount) =
        order.map_or((String::new(), Money::zero(Currency::CNY)), |o| (o.transaction_id.clone(), o.amount));
    let state = query_state(code, &trade_no, amount).unwrap_or(OrderState::NotFound);
    QueryAnswer { state, provider_code: code.to_owned() }
}

/// Sorts an `alipay.trade.cancel` answer.
pub fn cancel_answer(code: &str, sub_code: &str, action: &str, retry_flag: &str) -> ReverseAnswer {
    if retry_flag == "Y" {
        return ReverseAnswer::CallAgain;
    }
    match (code, sub_code) {
        ("10000", _) => ReverseAnswer::Reversed { refunded: action == "refund" },
        // Nothing under this number: nothing moved.
        ("40004", "ACQ.TRADE_NOT_EXIST") => ReverseAnswer::Reversed { refunded: false },
        // Past the 24-hour window, a frozen trade, or a request Alipay will never take: refund instead.
        ("40004", "ACQ.TRADE_CANCEL_TIME_OUT" | "ACQ.REASON_TRADE_BEEN_FREEZEN" | "ACQ.INVALID_PARAMETER")
        | ("40001" | "40002" | "40006" | "20001", _) => {
            ReverseAnswer::Refused { provider_code: provider_code(code, sub_code) }
        }
        // 20000, ACQ.SYSTEM_ERROR, an HTTP 202 and anything unlisted: call again.
        _ => ReverseAnswer::CallAgain,
    }
}

/// Sorts an `alipay.trade.refund` answer.
pub fn refund_answer(code: &str, sub_code: &str, refund_id: &str) -> RefundAnswer {
    match (code, sub_code) {
        ("10000", _) => RefundAnswer::Accepted { refund_id: refund_id.to_owned() },
        ("20000", _) | ("40004", "ACQ.SYSTEM_ERROR") | (HTTP_202, _) => {
            RefundAnswer::Unknown { provider_code: provider_code(code, sub_code) }
        }
        ("40004", sub) => {
            let message = match sub {
                "ACQ.TRADE_NOT_EXIST" => "the provider has no paid order under this number",
                "ACQ.TRADE_STATUS_ERROR" => "the order is not paid (or already closed): nothing to refund",
                "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL" => "the refund is more than what is left of the payment",
                "ACQ.TRADE_NOT_ALLOW_REFUND" => "the order can take no more refunds",
                "ACQ.SELLER_BALANCE_NOT_ENOUGH" => "the merchant account cannot cover the refund",
                "ACQ.INVALID_PARAMETER" => "the refund number was used for another refund",
                _ => "the provider refused the refund",
            };
            RefundAnswer::Refused { provider_code: provider_code(code, sub), message: message.into() }
        }
        ("40001" | "40002" | "40006" | "20001", _) => RefundAnswer::Refused {
            provider_code: provider_code(code, sub_code),
            message: "the provider refused the request".into(),
        },
        _ => RefundAnswer::Unknown { provider_code: provider_code(code, sub_code) },
    }
}

/// The refund codes the simulator answers for what its books did.
pub fn refund_codes_of(outcome: &RefundOutcome) -> (&'static str, &'static str) {
    match outcome {
        RefundOutcome::Accepted { .. } => ("10000", ""),
        RefundOutcome::NoSuchOrder => ("40004", "ACQ.TRADE_NOT_EXIST"),
        RefundOutcome::NotPaid => ("40004", "ACQ.TRADE_STATUS_ERROR"),
        RefundOutcome::TooMuch => ("40004", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"),
        RefundOutcome::TooMany => ("40004", "ACQ.TRADE_NOT_ALLOW_REFUND"),
        RefundOutcome::Mismatch => ("40004", "ACQ.INVALID_PARAMETER"),
    }
}

/// What a refund of the simulator's books answers, sorted.
pub fn refund_answer_of(outcome: &RefundOutcome) -> RefundAnswer {
    let refund_id = match outcome {
        RefundOutcome::Accepted { refund_id, .. } => refund_id.as_str(),
        _ => "",
    };
    let (code, sub_code) = refund_codes_of(outcome);
    refund_answer(code, sub_code, refund_id)
}

// ---------------------------------------------------------------- signatures

/// Why a key cannot be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot read the {which} key: {reason}")]
pub struct KeyError {
    pub which: &'static str,
    pub reason: String,
}

fn pem_or_bare(text: &str, label: &str) -> String {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        return text.to_owned();
    }
    // Alipay's console hands keys out as bare base64: wrap them.
    let body: String = text.split_whitespace().collect();
    let lines: Vec<&str> =
        body.as_bytes().chunks(64).map(|chunk| std::str::from_utf8(chunk).unwrap_or_default()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// A PKCS#8 private key, PEM or bare base64.
pub fn private_key(text: &str) -> Result<RsaPrivateKey, KeyError> {
    RsaPrivateKey::from_pkcs8_pem(&pem_or_bare(text, "PRIVATE KEY"))
        .map_err(|e| KeyError { which: "private", reason: e.to_string() })
}

/// A SubjectPublicKeyInfo public key, PEM or bare base64.
pub fn public_key(text: &str) -> Result<RsaPublicKey, KeyError> {
    RsaPublicKey::from_public_key_pem(&pem_or_bare(text, "PUBLIC KEY"))
        .map_err(|e| KeyError { which: "public", reason: e.to_string() })
}

/// RSA2: SHA256withRSA (PKCS#1 v1.5) of `content`, base64.
pub fn rsa2_sign(key: &RsaPrivateKey, content: &str) -> String {
    let signer = SigningKey::<Sha256>::new(key.clone());
    let signature = signer.sign(content.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(signature.to_bytes())
}

/// Whether `signature` (base64) is RSA2 of `content` under `key`.
pub fn rsa2_verify(key: &RsaPublicKey, content: &str, signature: &str) -> bool {
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else { return false };
    let Ok(signature) = Signature::try_from(bytes.as_slice()) else { return false };
    VerifyingKey::<Sha256>::new(key.clone()).verify(content.as_bytes(), &signature).is_ok()
}

/// The request's string to sign: sorted non-empty `k=v` pairs without `sign`, joined by `&`, values not encoded.
pub fn request_content(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .filter(|(k, v)| k.as_str() != "sign" && !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `alipay.trade.pay` → `alipay_trade_pay_response`.
pub fn response_key(method: &str) -> String {
    format!("{}_response", method.replace('.', "_"))
}

/// The exact text of `body[key]` (or of `error_response`) and the `sign` beside it.
pub fn response_parts<'a>(body: &'a str, key: &str) -> Result<(&'a str, Option<String>), String> {
    let top: BTreeMap<String, &serde_json::value::RawValue> =
        serde_json::from_str(body).map_err(|e| format!("the answer is not a JSON object: {e}"))?;
    let content =
        top.get(key).or_else(|| top.get("error_response")).ok_or_else(|| format!("the answer has no {key}"))?;
    let sign = match top.get("sign") {
        Some(raw) => Some(serde_json::from_str::<String>(raw.get()).map_err(|_| "sign is not a string".to_owned())?),
        None => None,
    };
    Ok((content.get(), sign))
}

/// Percent-encodes for `application/x-www-form-urlencoded` (unreserved characters kept).
pub(crate) fn form_encode(params: &BTreeMap<String, String>) -> String {
    fn encode(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for b in text.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }
    params.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

// ------------------------------------------------------------------- adapter

/// How to reach Alipay's OpenAPI as one app. Pointing at the real gateway is a change of these values.
#[derive(Clone)]
pub struct AlipayConfig {
    /// The gateway, e.g. `http://127.0.0.1:7000/gateway.do` for `checkout provider-sim`.
    pub gateway_url: String,
    pub app_id: String,
    /// The app's private key (PKCS#8, PEM or bare base64): signs requests. Never logged.
    pub app_private_key: String,
    /// Alipay's public key (PEM or bare base64): verifies answers.
    pub alipay_public_key: String,
    /// The store as Alipay knows it (`store_id`), optional.
    pub store_id: String,
    pub timeout: Duration,
    /// PEM certificates trusted for https:// in addition to the public web roots (a private gateway, a test CA).
    pub extra_root_ca_pem: Option<String>,
}

impl std::fmt::Debug for AlipayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlipayConfig")
            .field("gateway_url", &self.gateway_url)
            .field("app_id", &self.app_id)
            .field("store_id", &self.store_id)
            .field("timeout", &self.timeout)
            .field("extra_root_ca", &self.extra_root_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl AlipayConfig {
    /// The app `checkout provider-sim` serves by default, with the test-only keys of `coordinator/testdata`.
    pub fn for_simulator(gateway_url: &str) -> AlipayConfig {
        AlipayConfig {
            gateway_url: gateway_url.to_owned(),
            app_id: "2021000000000001".into(),
            app_private_key: crate::provider_sim::test_keys::MERCHANT_PRIVATE_PEM.into(),
            alipay_public_key: crate::provider_sim::test_keys::ALIPAY_PUBLIC_PEM.into(),
            store_id: String::new(),
            timeout: Duration::from_secs(10),
            extra_root_ca_pem: None,
        }
    }
}

/// The `alipay` adapter: `alipay.trade.pay` (bar code), `.query`, `.cancel`, `.refund` over HTTP or HTTPS.
pub struct AlipayAdapter {
    config: AlipayConfig,
    gateway_url: String,
    signing_key: RsaPrivateKey,
    alipay_key: RsaPublicKey,
    http: HttpClient,
}

impl AlipayAdapter {
    pub fn new(config: AlipayConfig) -> Result<AlipayAdapter, AdapterConfigError> {
        let gateway_url = HttpClient::check_base_url(&config.gateway_url)?;
        let signing_key = private_key(&config.app_private_key)
            .map_err(|e| AdapterConfigError::Invalid { field: "app_private_key", reason: e.to_string() })?;
        let alipay_key = public_key(&config.alipay_public_key)
            .map_err(|e| AdapterConfigError::Invalid { field: "alipay_public_key", reason: e.to_string() })?;
        let tls = TlsOptions { extra_root_ca_pem: config.extra_root_ca_pem.as_deref(), client_identity: None };
        let http = HttpClient::new(config.timeout, tls)?;
        Ok(AlipayAdapter { http, gateway_url, signing_key, alipay_key, config })
    }

    /// Signs and posts one OpenAPI call; the verified `*_response` object, or `Ok(None)` for an HTTP 202.
    async fn call(
        &self,
        method: &str,
        biz_content: serde_json::Value,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, ProviderError> {
        let mut params = BTreeMap::new();
        params.insert("app_id".to_owned(), self.config.app_id.clone());
        params.insert("method".to_owned(), method.to_owned());
        params.insert("format".to_owned(), "JSON".to_owned());
        params.insert("charset".to_owned(), "utf-8".to_owned());
        params.insert("sign_type".to_owned(), "RSA2".to_owned());
        params.insert("timestamp".to_owned(), china_datetime(UnixMillis::now()));
        params.insert("version".to_owned(), "1.0".to_owned());
        params.insert("biz_content".to_owned(), biz_content.to_string());
        let signature = rsa2_sign(&self.signing_key, &request_content(&params));
        params.insert("sign".to_owned(), signature);
        let body = form_encode(&params);
        let outcome = self.http.post(&self.gateway_url, "application/x-www-form-urlencoded;charset=utf-8", body).await;
        let Some(body) = outcome.body_of(Provider::Alipay)? else { return Ok(None) };
        let (content, sign) =
            response_parts(&body, &response_key(method)).map_err(|e| ProviderError::bad_answer(Provider::Alipay, e))?;
        let Some(sign) = sign else {
            return Err(ProviderError::bad_answer(Provider::Alipay, "the answer is not signed"));
        };
        if !rsa2_verify(&self.alipay_key, content, &sign) {
            tracing::warn!(method, "Alipay answer with a wrong signature: not trusted");
            return Err(ProviderError::bad_answer(Provider::Alipay, "the answer's signature does not verify"));
        }
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(content)
            .map_err(|e| ProviderError::bad_answer(Provider::Alipay, format!("the answer is not an object: {e}")))?;
        Ok(Some(object))
    }
}

impl AlipayAdapter {
    /// `alipay.data.dataservice.bill.downloadurl.query` for a trade bill (`bill_date` as `yyyy-MM-dd`), then the
    /// bill itself from the URL it gives.
    pub async fn download_bill(&self, bill_date: &str) -> Result<String, ProviderError> {
        let biz = serde_json::json!({ "bill_type": "trade", "bill_date": bill_date });
        let answer = self
            .call("alipay.data.dataservice.bill.downloadurl.query", biz)
            .await?
            .ok_or_else(|| ProviderError::unreachable(Provider::Alipay, "HTTP 202"))?;
        let url = text(&answer, "bill_download_url");
        if text(&answer, "code") != "10000" || url.is_empty() {
            return Err(ProviderError::bad_answer(
                Provider::Alipay,
                format!("no bill: {}", provider_code(text(&answer, "code"), text(&answer, "sub_code"))),
            ));
        }
        match self.http.get(url).await {
            HttpOutcome::Answer { status: 200, body } => Ok(body),
            HttpOutcome::Answer { status, .. } => {
                Err(ProviderError::unreachable(Provider::Alipay, format!("HTTP {status}")))
            }
            HttpOutcome::NoAnswer(reason) => Err(ProviderError::unreachable(Provider::Alipay, reason)),
        }
    }
}

fn text<'a>(object: &'a serde_json::Map<String, serde_json::Value>, name: &str) -> &'a str {
    object.get(name).and_then(serde_json::Value::as_str).unwrap_or("")
}

impl PaymentProvider for AlipayAdapter {
    fn micropay(&self, request: MicropayRequest) -> ProviderFuture<'_, Result<ProviderAnswer, ProviderError>> {
        Box::pin(async move {
            let mut biz = serde_json::json!({
                "out_trade_no": request.out_trade_no.as_str(),
                "scene": "bar_code",
                "auth_code": request.code.expose_digits(),
                "subject": request.description,
                "total_amount": fen_to_yuan(request.amount.minor_units),
                "terminal_id": request.terminal.as_str(),
            });
            if !self.config.store_id.is_empty() {
                biz["store_id"] = serde_json::Value::String(self.config.store_id.clone());
            }
            if request.amount.currency != Currency::CNY {
                biz["trans_currency"] = serde_json::Value::String(request.amount.currency.as_str().to_owned());
            }
            tracing::debug!(out_trade_no = %request.out_trade_no, code = %request.code, "alipay.trade.pay");
            let Some(answer) = self.call("alipay.trade.pay", biz).await? else {
                return Ok(pay_answer(HTTP_202, ""));
            };
            let code = text(&answer, "code");
            let mut sorted = pay_answer(code, text(&answer, "sub_code"));
            if sorted.status == ChargeStatus::Paid {
                if yuan_to_fen(text(&answer, "total_amount")) != Some(request.amount.minor_units) {
                    return Err(ProviderError::bad_answer(Provider::Alipay, "paid, but not the amount asked for"));
                }
                sorted.transaction_id = text(&answer, "trade_no").to_owned();
            }
            Ok(sorted)
        })
    }

    fn query(
        &self,
        _provider: Provider,
        out_trade_no: &OutTradeNo,
    ) -> ProviderFuture<'_, Result<QueryAnswer, ProviderError>> {
        let out_trade_no = out_trade_no.clone();
        Box::pin(async move {
            let biz = serde_json::json!({ "out_trade_no": out_trade_no.as_str() });
            let answer = self
                .call("alipay.trade.query", biz)
                .await?
                .ok_or_else(|| ProviderError::unreachable(Provider::Alipay, "HTTP 202"))?;
            let code = text(&answer, "code");
            let status = if code == "10000" { text(&answer, "trade_status") } else { text(&answer, "sub_code") };
            let fen = yuan_to_fen(text(&answer, "total_amount")).unwrap_or(0);
            match query_state(status, text(&answer, "trade_no"), Money::new(fen, Currency::CNY)) {
                Some(state) => Ok(QueryAnswer { state, provider_code: status.to_owned() }),
                None => Err(ProviderError::unreachable(
                    Provider::Alipay,
                    format!("alipay.trade.query answered {}", provider_code(code, status)),
                )),
            }
        })
    }

    fn reverse(
        &self,
        _provider: Provider,
        out_trade_no: &OutTradeNo,
    ) -> ProviderFuture<'_, Result<ReverseAnswer, ProviderError>> {
        let out_trade_no = out_trade_no.clone();
        Box::pin(async move {
            let biz = serde_json::json!({ "out_trade_no": out_trade_no.as_str() });
            let Some(answer) = self.call("alipay.trade.cancel", biz).await? else {
                return Ok(ReverseAnswer::CallAgain);
            };
            Ok(cancel_answer(
                text(&answer, "code"),
                text(&answer, "sub_code"),
                text(&answer, "action"),
                text(&answer, "retry_flag"),
            ))
        })
    }

    fn refund(&self, request: RefundRequest) -> ProviderFuture<'_, Result<RefundAnswer, ProviderError>> {
        Box::pin(async move {
            let biz = serde_json::json!({
                "out_trade_no": request.out_trade_no.as_str(),
                "out_request_no": request.out_refund_no,
                "refund_amount": fen_to_yuan(request.refund_amount.minor_units),
                "refund_reason": request.reason,
            });
            let Some(answer) = self.call("alipay.trade.refund", biz).await? else {
                return Ok(refund_answer(HTTP_202, "", ""));
            };
            let refund_id = format!("{}/{}", text(&answer, "trade_no"), request.out_refund_no);
            Ok(refund_answer(text(&answer, "code"), text(&answer, "sub_code"), &refund_id))
        })
    }
}
