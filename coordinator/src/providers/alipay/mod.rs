//! Alipay OpenAPI (`alipay`): the app's configuration and the adapter for `alipay.trade.pay` (bar code), query, cancel and refund.
//!
//! `codes.rs` sorts the answer codes into the engine's outcomes, `sign.rs`
//! holds the RSA2 signatures and the answers' JSON framing, `time.rs` yuan
//! amounts and China time.

mod codes;
mod sign;
mod time;

use std::{collections::BTreeMap, time::Duration};

use checkout_storage::{ChargeStatus, Currency, Money, OutTradeNo, Provider, UnixMillis};
use rsa::{RsaPrivateKey, RsaPublicKey};

pub use codes::{cancel_answer, pay_answer, provider_code, query_state, refund_answer};
pub use sign::{
    KeyError, private_key, public_key, request_content, response_key, response_parts, rsa2_sign, rsa2_verify,
};
pub use time::{ChinaTime, china_date, china_datetime, china_time, fen_to_yuan, yuan_to_fen};

use super::{
    HTTP_202, MicropayRequest, PaymentProvider, ProviderAnswer, ProviderError, ProviderFuture, QueryAnswer,
    RefundAnswer, RefundRequest, ReverseAnswer,
    http::{AdapterConfigError, BytesOutcome, HttpClient, TlsOptions},
};

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
    /// An app at `gateway_url` (`https://openapi.alipay.com/gateway.do`) with its keys (PEM or bare base64),
    /// 10 s a call; the store id and an extra CA are set on the result when needed.
    pub fn new(gateway_url: &str, app_id: &str, app_private_key: &str, alipay_public_key: &str) -> AlipayConfig {
        AlipayConfig {
            gateway_url: gateway_url.to_owned(),
            app_id: app_id.to_owned(),
            app_private_key: app_private_key.to_owned(),
            alipay_public_key: alipay_public_key.to_owned(),
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
    /// bill itself from the URL it gives: the zip's bytes (read them with `crate::reconcile::parse_alipay_bill`),
    /// at most [`MAX_BILL_BYTES`](crate::providers::MAX_BILL_BYTES).
    pub async fn download_bill(&self, bill_date: &str) -> Result<Vec<u8>, ProviderError> {
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
        match self.http.get_bill(url).await {
            BytesOutcome::Answer { status: 200, body } => Ok(body),
            BytesOutcome::Answer { status, .. } => {
                Err(ProviderError::unreachable(Provider::Alipay, format!("HTTP {status}")))
            }
            BytesOutcome::NoAnswer(reason) => Err(ProviderError::unreachable(Provider::Alipay, reason)),
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

    fn download_bill(&self, _: Provider, day: &str) -> ProviderFuture<'_, Result<Option<Vec<u8>>, ProviderError>> {
        let bill_date = day.to_owned();
        Box::pin(async move { AlipayAdapter::download_bill(self, &bill_date).await.map(Some) })
    }
}
