//! WeChat Pay v2 (`wechat-v2`): the merchant's configuration and the adapter that speaks the protocol over HTTP or HTTPS.
//!
//! `codes.rs` sorts the provider's answer codes into the engine's outcomes;
//! `sign.rs` holds the XML and the signatures.

use std::{collections::BTreeMap, time::Duration};

use checkout_storage::{Currency, Money, OutTradeNo, Provider};

mod codes;
mod sign;

pub use codes::{micropay_answer, query_state, refund_answer, reverse_answer};
pub use sign::{SignType, nonce_str, parse_xml, sign, string_to_sign, to_xml, verify, verify_with};

use super::{
    AdapterConfigError, HTTP_202, MicropayRequest, OrderState, PaymentProvider, ProviderAnswer, ProviderError,
    ProviderFuture, QueryAnswer, RefundAnswer, RefundRequest, ReverseAnswer,
    http::{BytesOutcome, HttpClient, TlsOptions, invalid},
    messages,
};

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
    /// A merchant at `base_url` (`https://api.mch.weixin.qq.com`), signing HMAC-SHA256, 10 s a call; the
    /// TLS client certificate and extra CA are set on the result when needed.
    pub fn new(base_url: &str, appid: &str, mch_id: &str, key: &str) -> WeChatConfig {
        WeChatConfig {
            base_url: base_url.to_owned(),
            appid: appid.to_owned(),
            mch_id: mch_id.to_owned(),
            key: key.to_owned(),
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
    /// `pay/downloadbill` with `tar_type=GZIP`: the day's bill (`bill_date` as `yyyyMMdd`, `bill_type` ALL, SUCCESS
    /// or REFUND) as WeChat sends it, gzip bytes (read them with `crate::reconcile::parse_wechat_bill`), at most
    /// [`MAX_BILL_BYTES`](crate::providers::MAX_BILL_BYTES); `Ok(None)` when there is no bill for that day.
    pub async fn download_bill(&self, bill_date: &str, bill_type: &str) -> Result<Option<Vec<u8>>, ProviderError> {
        let mut params = self.common();
        params.insert("bill_date".into(), bill_date.into());
        params.insert("bill_type".into(), bill_type.into());
        params.insert("tar_type".into(), "GZIP".into());
        let signature = sign(&params, &self.config.key, self.config.sign_type);
        params.insert("sign".into(), signature);
        let url = format!("{}/pay/downloadbill", self.base_url);
        match self.http.post_bill(&url, "text/xml; charset=utf-8", to_xml(&params)).await {
            BytesOutcome::NoAnswer(reason) => Err(ProviderError::unreachable(Provider::WeChatPay, reason)),
            // An error comes as XML (`return_code` FAIL), a bill as gzip (or CSV text).
            BytesOutcome::Answer { status: 200, body } if body.trim_ascii_start().starts_with(b"<xml>") => {
                let body = String::from_utf8(body).map_err(|_| {
                    ProviderError::bad_answer(Provider::WeChatPay, "downloadbill: XML that is not UTF-8")
                })?;
                let answer = parse_xml(&body).map_err(|e| ProviderError::bad_answer(Provider::WeChatPay, e))?;
                match field(&answer, "return_msg") {
                    "No Bill Exist" => Ok(None),
                    other => Err(ProviderError::bad_answer(Provider::WeChatPay, format!("downloadbill: {other}"))),
                }
            }
            BytesOutcome::Answer { status: 200, body } => Ok(Some(body)),
            BytesOutcome::Answer { status, .. } => {
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

    fn download_bill(&self, _: Provider, day: &str) -> ProviderFuture<'_, Result<Option<Vec<u8>>, ProviderError>> {
        let bill_date = day.replace('-', "");
        Box::pin(async move { WeChatPayV2::download_bill(self, &bill_date, "ALL").await })
    }
}
