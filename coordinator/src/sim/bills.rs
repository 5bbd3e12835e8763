//! The simulator's daily bills as the providers ship them: WeChat Pay's CSV (backtick-prefixed fields, a totals row; gzip on request) and Alipay's zip of two GBK CSV files (details and summary, `#` header and footer lines), from the books or from any rows.
//!
//! The writers take rows one at a time ([`BillRow`]), so a day of a million payments (`checkout bench
//! reconcile`) is written without holding it; the books' bills are the same writers over the books' rows.

use std::io::{self, Seek, Write};

use checkout_storage::{Provider, UnixMillis};

use super::{
    ProviderSim,
    books::{SimOrderState, SimulatedOrder},
};
use crate::providers::alipay::{china_date, china_datetime, fen_to_yuan};

/// 0.6% service fee, rounded half up, in fen.
pub fn service_fee(fen: i64) -> i64 {
    (fen * 6 + 500) / 1000
}

/// What a bill row records: WeChat's trade states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowState {
    /// Paid (WeChat `SUCCESS`, Alipay 交易).
    Success,
    /// Refunded in part or whole (WeChat `REFUND`, Alipay 退款 with its request number).
    Refund,
    /// A paid order reversed (WeChat `REVOKED`, Alipay 退款 without a request number).
    Revoked,
}

/// Money given back by a refund or a reversal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowRefund {
    pub refund_id: String,
    /// Empty for a reversal.
    pub out_refund_no: String,
    /// Fen.
    pub amount: i64,
}

/// One row of a bill: what happened to an order's money at one moment of the day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillRow {
    pub at: UnixMillis,
    pub created_at: UnixMillis,
    pub state: RowState,
    pub out_trade_no: String,
    pub transaction_id: String,
    pub terminal: String,
    pub wallet: u16,
    /// The order's amount in fen.
    pub order_amount: i64,
    pub currency: String,
    pub description: String,
    /// For a refund or a reversal.
    pub refund: Option<RowRefund>,
}

/// The rows of `provider`'s bill for `day` (`2026-11-25`, China Standard Time), from the books' orders, by time.
pub fn bill_rows(orders: &[SimulatedOrder], provider: Provider, day: &str) -> Vec<BillRow> {
    let mut rows = Vec::new();
    for order in orders.iter().filter(|o| o.provider == provider) {
        let row = |at: UnixMillis, state: RowState, refund: Option<RowRefund>| BillRow {
            at,
            created_at: order.created_at,
            state,
            out_trade_no: order.out_trade_no.as_str().to_owned(),
            transaction_id: order.transaction_id.clone(),
            terminal: order.terminal.clone(),
            wallet: order.wallet,
            order_amount: order.amount.minor_units,
            currency: order.amount.currency.as_str().to_owned(),
            description: order.description.clone(),
            refund,
        };
        if let Some(paid_at) = order.paid_at
            && china_date(paid_at) == day
        {
            rows.push(row(paid_at, RowState::Success, None));
        }
        for refund in order.refunds.iter().filter(|r| china_date(r.at) == day) {
            let detail = RowRefund {
                refund_id: refund.refund_id.clone(),
                out_refund_no: refund.out_refund_no.clone(),
                amount: refund.amount,
            };
            rows.push(row(refund.at, RowState::Refund, Some(detail)));
        }
        if order.state == SimOrderState::Reversed
            && let Some(closed_at) = order.closed_at
            && china_date(closed_at) == day
        {
            let back = order.amount.minor_units - order.refunded;
            let detail = RowRefund {
                refund_id: format!("REV{}", order.transaction_id),
                out_refund_no: String::new(),
                amount: back,
            };
            rows.push(row(closed_at, RowState::Revoked, Some(detail)));
        }
    }
    rows.sort_by(|a, b| (a.at, &a.out_trade_no).cmp(&(b.at, &b.out_trade_no)));
    rows
}

/// Whether a row belongs in a WeChat bill of `bill_type` (ALL, SUCCESS, REFUND).
pub fn in_wechat_bill(row: &BillRow, bill_type: &str) -> bool {
    match bill_type {
        "SUCCESS" => row.state == RowState::Success,
        "REFUND" => row.state != RowState::Success,
        _ => true,
    }
}

fn backticked(fields: &[String]) -> String {
    let mut line = fields.iter().map(|f| format!("`{f}")).collect::<Vec<_>>().join(",");
    line.push('\n');
    line
}

/// Writes WeChat Pay's bill CSV of `rows` for the merchant (`appid`, `mch_id`); returns how many rows.
pub fn write_wechat_bill<W: Write>(
    out: &mut W,
    appid: &str,
    mch_id: &str,
    rows: impl IntoIterator<Item = BillRow>,
) -> io::Result<u64> {
    let yuan = fen_to_yuan;
    out.write_all(
        b"Trade time,appid,mch_id,sub_mch_id,device_info,transaction_id,out_trade_no,openid,Trade type,Trade state,\
          Bank,Currency,Settlement amount,Coupon amount,refund_id,out_refund_no,Refund amount,Coupon refund amount,\
          Refund type,Refund status,Body,Attach,Fee,Fee rate\n",
    )?;
    let (mut count, mut paid, mut refunded, mut fees) = (0u64, 0i64, 0i64, 0i64);
    for row in rows {
        let (settlement, fee) = match row.state {
            RowState::Success => (row.order_amount, service_fee(row.order_amount)),
            _ => (0, 0),
        };
        let refund = row.refund.as_ref();
        let back = refund.map_or(0, |r| r.amount);
        count += 1;
        paid += settlement;
        refunded += back;
        fees += fee;
        let zero_if_empty = |text: Option<&String>| match text {
            Some(text) if !text.is_empty() => text.clone(),
            _ => "0".to_owned(),
        };
        let fields = [
            china_datetime(row.at),
            appid.to_owned(),
            mch_id.to_owned(),
            "0".into(),
            row.terminal,
            row.transaction_id,
            row.out_trade_no,
            format!("oSim{:04}", row.wallet),
            "MICROPAY".into(),
            match row.state {
                RowState::Success => "SUCCESS",
                RowState::Refund => "REFUND",
                RowState::Revoked => "REVOKED",
            }
            .into(),
            "OTHERS".into(),
            row.currency,
            yuan(settlement),
            "0.00".into(),
            zero_if_empty(refund.map(|r| &r.refund_id)),
            zero_if_empty(refund.map(|r| &r.out_refund_no)),
            yuan(back),
            "0.00".into(),
            if refund.is_some() { "ORIGINAL".into() } else { String::new() },
            if refund.is_some() { "SUCCESS".into() } else { String::new() },
            row.description.replace(',', " "),
            String::new(),
            yuan(fee),
            "0.60%".into(),
        ];
        out.write_all(backticked(&fields).as_bytes())?;
    }
    out.write_all(
        b"Total trades,Total settlement amount,Total refund amount,Total coupon refund amount,Total fees,\
          Total order amount,Total refund requested\n",
    )?;
    let totals = [count.to_string(), yuan(paid), yuan(refunded), "0.00".into(), yuan(fees), yuan(paid), yuan(refunded)];
    out.write_all(backticked(&totals).as_bytes())?;
    Ok(count)
}

/// WeChat's daily bill (`bill_type` ALL, SUCCESS or REFUND) from the books; `None` when the day has no row.
pub fn wechat_bill(sim: &ProviderSim, day: &str, bill_type: &str) -> Option<String> {
    let orders = sim.books.snapshot().orders;
    let rows: Vec<BillRow> =
        bill_rows(&orders, Provider::WeChatPay, day).into_iter().filter(|r| in_wechat_bill(r, bill_type)).collect();
    if rows.is_empty() {
        return None;
    }
    let mut csv = Vec::new();
    write_wechat_bill(&mut csv, &sim.wechat.appid, &sim.wechat.mch_id, rows).ok()?;
    String::from_utf8(csv).ok()
}

/// Writes WeChat Pay's bill CSV of `rows` gzipped into `out` as it goes (a large day is never held as text).
pub fn write_wechat_bill_gzip<W: Write>(
    out: W,
    appid: &str,
    mch_id: &str,
    rows: impl IntoIterator<Item = BillRow>,
) -> io::Result<W> {
    let encoder = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    let mut buffered = io::BufWriter::with_capacity(256 * 1024, encoder);
    write_wechat_bill(&mut buffered, appid, mch_id, rows)?;
    buffered.into_inner().map_err(io::IntoInnerError::into_error)?.finish()
}

/// `bytes` gzipped, as WeChat answers `tar_type=GZIP`.
pub fn gzip(bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// The Alipay account (PID) the simulator's bills are for.
pub const ALIPAY_ACCOUNT: &str = "2088000000000001";

const DETAILS_COLUMNS: &str = "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,\
     对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,\
     券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注";

const SUMMARY_COLUMNS: &str = "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,\
     商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）";

/// Writes `text` GBK-encoded (every character the simulator writes has a GBK form).
fn write_gbk<W: Write>(out: &mut W, text: &str) -> io::Result<()> {
    let (bytes, _, _) = encoding_rs::GBK.encode(text);
    out.write_all(&bytes)
}

/// The lines before a file's column row.
fn alipay_header(title: &str, list: &str, day: &str) -> String {
    let start = crate::reconcile::parse_china_datetime(&format!("{day} 00:00:00")).unwrap_or(UnixMillis(0));
    let end = china_date(UnixMillis(start.0 + 86_400_000));
    format!(
        "#{title}\n#账号：[{ALIPAY_ACCOUNT}0156]\n#起始日期：[{day} 00:00:00]   终止日期：[{end} 00:00:00]\n\
         #-----------------------------------------{list}----------------------------------------\n"
    )
}

/// Writes Alipay's trade bill for `day` (`2026-11-25`) as it ships it: a zip of the details and the summary,
/// GBK-encoded CSV with `#` header and footer lines. The rows' `refund` of a reversal has no request number.
pub fn write_alipay_bill<W: Write + Seek>(
    out: W,
    day: &str,
    rows: impl IntoIterator<Item = BillRow>,
) -> zip::result::ZipResult<W> {
    use zip::write::SimpleFileOptions;
    let yuan = fen_to_yuan;
    let stem = format!("{ALIPAY_ACCOUNT}0156_{}", day.replace('-', ""));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut zip = zip::ZipWriter::new(out);
    zip.start_file(format!("{stem}_业务明细.csv"), options)?;
    let mut details = io::BufWriter::with_capacity(256 * 1024, &mut zip);
    write_gbk(&mut details, &alipay_header("支付宝业务明细查询", "业务明细列表", day))?;
    write_gbk(&mut details, DETAILS_COLUMNS)?;
    details.write_all(b"\n")?;
    let (mut trades, mut trades_received, mut refunds, mut refunds_received) = (0u64, 0i64, 0u64, 0i64);
    let (mut ordered, mut fees) = (0i64, 0i64);
    for row in rows {
        let (kind, amount, fee, batch) = match (&row.state, &row.refund) {
            (RowState::Success, _) | (_, None) => {
                trades += 1;
                trades_received += row.order_amount;
                ("交易", row.order_amount, -service_fee(row.order_amount), "")
            }
            (_, Some(refund)) => {
                refunds += 1;
                refunds_received -= refund.amount;
                ("退款", -refund.amount, 0, refund.out_refund_no.as_str())
            }
        };
        ordered += amount;
        fees += fee;
        // Alipay pads its long numbers with a tab, so spreadsheets keep them as text.
        let line = format!(
            "{}\t,{}\t,{kind},{},{},{},,,,{},sim***{:04},{},{},0.00,0.00,0.00,0.00,0.00,,0.00,0.00,{batch},{},0.00,\n",
            row.transaction_id,
            row.out_trade_no,
            row.description.replace(',', " "),
            china_datetime(row.created_at),
            china_datetime(row.at),
            row.terminal,
            row.wallet,
            yuan(amount),
            yuan(amount),
            yuan(fee),
        );
        write_gbk(&mut details, &line)?;
    }
    let exported = china_datetime(UnixMillis::now());
    let footer = format!(
        "#-----------------------------------------业务明细列表结束------------------------------------\n\
         #交易合计：{trades}笔，商家实收共{}元，商家优惠共0.00元\n\
         #退款合计：{refunds}笔，商家实收共{}元，商家优惠共0.00元\n\
         #导出时间：[{exported}]\n",
        yuan(trades_received),
        yuan(refunds_received),
    );
    write_gbk(&mut details, &footer)?;
    details.flush()?;
    drop(details);
    zip.start_file(format!("{stem}_业务明细(汇总).csv"), options)?;
    let received = trades_received + refunds_received;
    let mut summary = alipay_header("支付宝业务汇总查询", "业务汇总列表", day);
    summary.push_str(SUMMARY_COLUMNS);
    summary.push('\n');
    let totals = format!(
        "{trades},{refunds},{},{},0.00,0.00,0.00,{},0.00,{}\n",
        yuan(ordered),
        yuan(received),
        yuan(fees),
        yuan(received + fees)
    );
    if trades + refunds > 0 {
        summary.push_str(&format!(",,{totals}"));
    }
    summary.push_str(&format!("合计,,{totals}"));
    summary.push_str(&format!(
        "#-----------------------------------------业务汇总列表结束------------------------------------\n\
         #导出时间：[{exported}]\n"
    ));
    write_gbk(&mut zip, &summary)?;
    zip.finish()
}

/// Alipay's trade bill of `day` from the books: the zip of GBK CSV files (a day without rows has empty lists).
pub fn alipay_bill(sim: &ProviderSim, day: &str) -> zip::result::ZipResult<Vec<u8>> {
    let orders = sim.books.snapshot().orders;
    let rows = bill_rows(&orders, Provider::Alipay, day);
    Ok(write_alipay_bill(io::Cursor::new(Vec::new()), day, rows)?.into_inner())
}

/// `alipay.data.dataservice.bill.downloadurl.query`'s day (`yyyy-MM-dd`), checked.
pub fn alipay_day(text: &str) -> Option<String> {
    crate::reconcile::parse_china_datetime(&format!("{text} 00:00:00"))?;
    Some(text.to_owned())
}
