//! The simulator's Alipay OpenAPI gateway (`/gateway.do`): trade pay, query, cancel, refund and the bill's download URL.

use std::{collections::HashMap, sync::Arc};

use axum::{
    extract::{Form, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use checkout_storage::{Currency, Money, OutTradeNo, PaymentCode, Provider};
use serde::Deserialize;

use super::{
    Params, ProviderSim, answers, bills,
    books::{Fate, PayOutcome, RefundOutcome, ReverseOutcome, SimulatedOrder},
    corrupt, dropped, outage, param,
};
use crate::providers::alipay;

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

pub(super) async fn gateway(
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
            let (code, sub_code) = answers::alipay::pay_codes_of(&outcome);
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
                answer["trade_status"] = answers::alipay::trade_status_of(Some(&order)).into();
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
                ReverseOutcome::TooOld => {
                    let mut answer =
                        business_fail("ACQ.TRADE_CANCEL_TIME_OUT", "the trade is older than 24 hours: refund it");
                    answer["retry_flag"] = "N".into();
                    return answer;
                }
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
                    let (_, sub_code) = answers::alipay::refund_codes_of(other);
                    business_fail(sub_code, "refund refused")
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub(super) struct BillQuery {
    date: String,
}

pub(super) async fn bill(State(sim): State<Arc<ProviderSim>>, Query(query): Query<BillQuery>) -> Response {
    if sim.faults().outage {
        return outage();
    }
    let Some(day) = bills::alipay_day(&query.date) else {
        return (StatusCode::BAD_REQUEST, "date: yyyy-MM-dd").into_response();
    };
    match bills::alipay_bill(&sim, &day) {
        Ok(zip) => ([(header::CONTENT_TYPE, "application/zip")], zip).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("provider-sim: the bill's zip: {e}")).into_response(),
    }
}
