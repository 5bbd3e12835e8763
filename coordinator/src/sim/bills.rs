//! The simulator's daily bills: WeChat Pay's CSV (backtick-prefixed fields, a totals row) and Alipay's, from the books.

use checkout_storage::{Provider, UnixMillis};

use super::{
    ProviderSim,
    books::{SimOrderState, SimulatedOrder},
};
use crate::providers::alipay;

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
