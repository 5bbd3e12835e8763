//! The simulator's WeChat Pay v2 endpoints: micropay, orderquery, reverse, refund and downloadbill over the books.

use std::sync::Arc;

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use checkout_storage::{Currency, Money, OutTradeNo, PaymentCode, Provider, UnixMillis};

use super::{
    Params, ProviderSim, answers, bills,
    books::{Fate, PayOutcome, RefundOutcome, ReverseOutcome, SimulatedOrder},
    corrupt, dropped, outage, param,
};
use crate::providers::{
    alipay,
    wechat::{self, SignType},
};

enum WeChatCall {
    Micropay,
    OrderQuery,
    Reverse,
    Refund,
}

pub(super) async fn micropay(State(sim): State<Arc<ProviderSim>>, body: String) -> Response {
    wechat_api(&sim, WeChatCall::Micropay, &body).await
}

pub(super) async fn orderquery(State(sim): State<Arc<ProviderSim>>, body: String) -> Response {
    wechat_api(&sim, WeChatCall::OrderQuery, &body).await
}

pub(super) async fn reverse(State(sim): State<Arc<ProviderSim>>, body: String) -> Response {
    wechat_api(&sim, WeChatCall::Reverse, &body).await
}

pub(super) async fn refund(State(sim): State<Arc<ProviderSim>>, body: String) -> Response {
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
    let t = alipay::china_time(at);
    format!("{:04}{:02}{:02}{:02}{:02}{:02}", t.year, t.month, t.day, t.hour, t.minute, t.second)
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
    let fields = if fate.error {
        result_fail("SYSTEMERROR", "provider-sim: injected system error")
    } else {
        call_fields(sim, call, &request, fate)
    };
    wechat_answer(sim, fields, sign_type, fate)
}

/// The answer's fields for one call on the books (a refusal's fields when the request is not usable).
fn call_fields(sim: &ProviderSim, call: WeChatCall, request: &Params, fate: Fate) -> Params {
    let Ok(out_trade_no) = OutTradeNo::parse(param(request, "out_trade_no")) else {
        return result_fail("PARAM_ERROR", "out_trade_no is missing or malformed");
    };
    let books = sim.books();
    match call {
        WeChatCall::Micropay => {
            let Ok(fen) = param(request, "total_fee").parse::<i64>() else {
                return result_fail("PARAM_ERROR", "total_fee is not fen");
            };
            if fen <= 0 {
                return result_fail("PARAM_ERROR", "total_fee must be positive");
            }
            let currency = match param(request, "fee_type") {
                "" => Currency::CNY,
                other => Currency::parse(other).unwrap_or(Currency::CNY),
            };
            let outcome = match PaymentCode::parse(param(request, "auth_code")) {
                Ok(code) => books.pay(
                    Provider::WeChatPay,
                    &out_trade_no,
                    &code,
                    Money::new(fen, currency),
                    param(request, "device_info"),
                    param(request, "body"),
                ),
                Err(_) => PayOutcome::Invalid,
            };
            let code = answers::wechat::micropay_code_of(&outcome);
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
                    let state = answers::wechat::trade_state_of(Some(&order));
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
                if books.reverse_order(&out_trade_no) == ReverseOutcome::TooOld {
                    let mut fields = result_fail("REVERSE_EXPIRE", "the order is older than 7 days: refund it");
                    fields.insert("recall".into(), "N".into());
                    return fields;
                }
                let mut fields = Params::new();
                fields.insert("result_code".into(), "SUCCESS".into());
                fields.insert("recall".into(), "N".into());
                fields
            }
        }
        WeChatCall::Refund => {
            let (Ok(refund_fee), Ok(total_fee)) =
                (param(request, "refund_fee").parse::<i64>(), param(request, "total_fee").parse::<i64>())
            else {
                return result_fail("PARAM_ERROR", "refund_fee and total_fee are fen");
            };
            let out_refund_no = param(request, "out_refund_no");
            if out_refund_no.is_empty() {
                return result_fail("PARAM_ERROR", "out_refund_no is missing");
            }
            if books.order(&out_trade_no).is_some_and(|o| o.amount.minor_units != total_fee) {
                return result_fail("PARAM_ERROR", "total_fee is not the order's");
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
                other => result_fail(answers::wechat::refund_code_of(other), "refund refused"),
            }
        }
    }
}

pub(super) async fn downloadbill(State(sim): State<Arc<ProviderSim>>, body: String) -> Response {
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
    let Some(csv) = bills::wechat_bill(&sim, &day, param(&request, "bill_type")) else {
        return wechat_fail("No Bill Exist");
    };
    match param(&request, "tar_type") {
        "" => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], csv).into_response(),
        "GZIP" => match bills::gzip(csv.as_bytes()) {
            Ok(gzip) => ([(header::CONTENT_TYPE, "application/x-gzip")], gzip).into_response(),
            Err(_) => wechat_fail("SYSTEMERROR"),
        },
        _ => wechat_fail("invalid tar_type"),
    }
}
