//! WeChat Pay v2 `pay/downloadbill`: the day's CSV (or its gzip, `tar_type=GZIP`) read into a [`Bill`].
//!
//! The layout: a header row naming the columns; one row a trade, every field prefixed with a backtick
//! (so spreadsheets keep the numbers as text), amounts in yuan with two decimals; then a summary header
//! row (总交易单数, 应结订单总金额, 退款总金额, 充值券退款总金额, 手续费总金额, ...) and the totals row,
//! backticked too. Columns are found by name, in Chinese as WeChat writes them or in the English the
//! simulator writes, so the order and the extra columns of each `bill_type` (ALL, SUCCESS, REFUND) do not
//! matter. Trade states: `SUCCESS` a charge, `REFUND` a refund (keyed by 商户退款单号), `REVOKED` a
//! reversal (its 退款金额 is what went back; a revoked order that was never paid carries no money and
//! only counts towards the totals row's count). A refund row's fee may be negative (a fee given back).
//! The totals row must agree with the rows: count, settlement, refunds and fees.

use std::io::{BufRead, BufReader};

use checkout_storage::Provider;

use super::{
    Bill, BillError, BillLimits, BillLine, BillTotals, LineKind,
    text::{LineReader, date_of, parse_china_datetime, parse_yuan, split_fields},
};

/// Reads a WeChat Pay bill (CSV text, or gzip of it) within the default [`BillLimits`].
pub fn parse_wechat_bill(bytes: &[u8]) -> Result<Bill, BillError> {
    parse_wechat_bill_with(bytes, &BillLimits::default())
}

/// Reads a WeChat Pay bill (CSV text, or gzip of it: recognised by its magic bytes) within `limits`.
pub fn parse_wechat_bill_with(bytes: &[u8], limits: &BillLimits) -> Result<Bill, BillError> {
    if bytes.len() > limits.max_input_bytes {
        return Err(BillError::at(0, format!("{} bytes: more than {}", bytes.len(), limits.max_input_bytes)));
    }
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let reader = BufReader::with_capacity(64 * 1024, flate2::bufread::GzDecoder::new(bytes));
        read_bill(LineReader::new(reader, *limits))
    } else {
        read_bill(LineReader::new(bytes, *limits))
    }
}

/// Where each needed column is in the header.
struct Columns {
    count: usize,
    time: usize,
    transaction_id: usize,
    out_trade_no: usize,
    state: usize,
    settlement: usize,
    fee: usize,
    coupon: Option<usize>,
    out_refund_no: Option<usize>,
    refund: Option<usize>,
    order_amount: Option<usize>,
}

fn find(header: &[String], names: &[&str]) -> Option<usize> {
    header.iter().position(|h| names.contains(&h.as_str()))
}

impl Columns {
    fn of(header: &[String]) -> Result<Columns, String> {
        let need = |names: &[&str]| find(header, names).ok_or_else(|| format!("no {} column", names[0]));
        Ok(Columns {
            count: header.len(),
            time: need(&["交易时间", "Trade time"])?,
            transaction_id: need(&["微信订单号", "transaction_id"])?,
            out_trade_no: need(&["商户订单号", "out_trade_no"])?,
            state: need(&["交易状态", "Trade state"])?,
            settlement: need(&["应结订单金额", "Settlement amount"])?,
            fee: need(&["手续费", "Fee"])?,
            coupon: find(header, &["代金券金额", "代金券或立减优惠金额", "Coupon amount"]),
            out_refund_no: find(header, &["商户退款单号", "out_refund_no"]),
            refund: find(header, &["退款金额", "Refund amount"]),
            order_amount: find(header, &["订单金额"]),
        })
    }
}

/// Running sums of the rows, to check the totals row against.
#[derive(Default)]
struct Sums {
    rows: u64,
    settlement: i64,
    refund: i64,
    fees: i64,
}

fn add(sum: &mut i64, fen: i64, line: usize) -> Result<(), BillError> {
    *sum = sum.checked_add(fen).ok_or_else(|| BillError::at(line, "the amounts overflow"))?;
    Ok(())
}

fn text_of(bytes: &[u8], line: usize) -> Result<&str, BillError> {
    std::str::from_utf8(bytes).map_err(|_| BillError::at(line, "not UTF-8 text"))
}

/// A row's fields without their backtick; every field must have one.
fn backticked(text: &str, line: usize) -> Result<Vec<String>, BillError> {
    let fields = split_fields(text).ok_or_else(|| BillError::at(line, "a quote is left open"))?;
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            f.strip_prefix('`')
                .map(str::to_owned)
                .ok_or_else(|| BillError::at(line, format!("field {} has no backtick", i + 1)))
        })
        .collect()
}

fn read_bill<R: BufRead>(mut reader: LineReader<R>) -> Result<Bill, BillError> {
    let header_line = match reader.next_line()? {
        Some(bytes) => text_of(bytes, 1)?.to_owned(),
        None => return Err(BillError::at(1, "empty: no header row")),
    };
    if header_line.trim_start().starts_with("<xml>") {
        return Err(BillError::at(1, "an XML answer, not a bill (no bill for that day?)"));
    }
    let header: Vec<String> = split_fields(&header_line)
        .ok_or_else(|| BillError::at(1, "a quote is left open"))?
        .iter()
        .map(|f| f.trim().trim_start_matches('`').to_owned())
        .collect();
    let columns = Columns::of(&header).map_err(|reason| BillError::at(1, reason))?;
    let mut lines = Vec::new();
    let mut sums = Sums::default();
    let summary_header = loop {
        let line = reader.line + 1;
        let Some(bytes) = reader.next_line()? else {
            return Err(BillError::at(line, "the bill ends without its totals rows (truncated?)"));
        };
        let text = text_of(bytes, line)?;
        if text.trim().is_empty() {
            continue;
        }
        if !text.starts_with('`') {
            break text.split(',').map(|f| f.trim().to_owned()).collect::<Vec<String>>();
        }
        let fields = backticked(text, line)?;
        if fields.len() != columns.count {
            return Err(BillError::at(line, format!("{} fields, the header has {}", fields.len(), columns.count)));
        }
        if let Some(bill_line) = row(&columns, &fields, line, &mut sums)? {
            lines.push(bill_line);
        }
    };
    let summary_line = reader.line;
    let total = |names: &[&str]| {
        find(&summary_header, names).ok_or_else(|| BillError::at(summary_line, format!("no {} column", names[0])))
    };
    let (count_at, settlement_at) =
        (total(&["总交易单数", "Total trades"])?, total(&["应结订单总金额", "Total settlement amount"])?);
    let (refund_at, fee_at) = (total(&["退款总金额", "Total refund amount"])?, total(&["手续费总金额", "Total fees"])?);
    let totals_line = summary_line + 1;
    let totals = match reader.next_line()? {
        Some(bytes) => backticked(text_of(bytes, totals_line)?, totals_line)?,
        None => return Err(BillError::at(totals_line, "the bill ends without its totals row (truncated?)")),
    };
    if totals.len() != summary_header.len() {
        return Err(BillError::at(
            totals_line,
            format!("{} totals, the header has {}", totals.len(), summary_header.len()),
        ));
    }
    while let Some(bytes) = reader.next_line()? {
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(BillError::at(reader.line, "text after the totals row"));
        }
    }
    let stated = BillTotals {
        lines: totals[count_at].parse().map_err(|_| BillError::at(totals_line, "总交易单数 is not a count"))?,
        charged: yuan(&totals[settlement_at], "应结订单总金额", totals_line)?,
        refunded: yuan(&totals[refund_at], "退款总金额", totals_line)?,
        fees: yuan(&totals[fee_at], "手续费总金额", totals_line)?,
    };
    let counted = BillTotals { lines: sums.rows, charged: sums.settlement, refunded: sums.refund, fees: sums.fees };
    if stated != counted {
        return Err(BillError::at(
            totals_line,
            format!("the totals row {stated:?} disagrees with the rows {counted:?}"),
        ));
    }
    let day = lines.first().and_then(|l: &BillLine| date_of(&crate::providers::alipay::china_datetime(l.time)));
    Ok(Bill { provider: Provider::WeChatPay, day, lines, totals: stated })
}

fn yuan(text: &str, column: &str, line: usize) -> Result<i64, BillError> {
    parse_yuan(text).ok_or_else(|| BillError::at(line, format!("{column} {text:?} is not yuan with two decimals")))
}

/// One trade row as a bill line (`None` for a revoked order that moved no money).
fn row(columns: &Columns, fields: &[String], line: usize, sums: &mut Sums) -> Result<Option<BillLine>, BillError> {
    let field = |at: usize| fields[at].as_str();
    let optional = |at: Option<usize>, column: &str| -> Result<i64, BillError> {
        at.map_or(Ok(0), |at| yuan(field(at), column, line))
    };
    let time = parse_china_datetime(field(columns.time))
        .ok_or_else(|| BillError::at(line, format!("交易时间 {:?} is not yyyy-MM-dd HH:mm:ss", field(columns.time))))?;
    let settlement = yuan(field(columns.settlement), "应结订单金额", line)?;
    let fee = yuan(field(columns.fee), "手续费", line)?;
    let refund = optional(columns.refund, "退款金额")?;
    let out_trade_no = field(columns.out_trade_no);
    if out_trade_no.is_empty() {
        return Err(BillError::at(line, "商户订单号 is empty"));
    }
    sums.rows += 1;
    add(&mut sums.settlement, settlement, line)?;
    add(&mut sums.refund, refund, line)?;
    add(&mut sums.fees, fee, line)?;
    let (kind, amount, out_refund_no) = match field(columns.state) {
        "SUCCESS" => {
            let amount = match columns.order_amount {
                Some(at) => yuan(field(at), "订单金额", line)?,
                None => settlement
                    .checked_add(optional(columns.coupon, "代金券金额")?)
                    .ok_or_else(|| BillError::at(line, "the amounts overflow"))?,
            };
            (LineKind::Charge, amount, None)
        }
        "REFUND" => {
            let number = columns.out_refund_no.map(field).unwrap_or("");
            if number.is_empty() || number == "0" {
                return Err(BillError::at(line, "a REFUND row without 商户退款单号"));
            }
            if columns.refund.is_none() {
                return Err(BillError::at(line, "a REFUND row in a bill without 退款金额"));
            }
            (LineKind::Refund, refund, Some(number.to_owned()))
        }
        "REVOKED" if refund == 0 => return Ok(None),
        "REVOKED" => (LineKind::Reversal, refund, None),
        other => return Err(BillError::at(line, format!("交易状态 {other:?} is not SUCCESS, REFUND or REVOKED"))),
    };
    if amount <= 0 {
        return Err(BillError::at(line, format!("a {kind:?} of {amount} fen")));
    }
    Ok(Some(BillLine {
        kind,
        out_trade_no: out_trade_no.to_owned(),
        out_refund_no,
        amount,
        fee,
        time,
        transaction_id: field(columns.transaction_id).to_owned(),
    }))
}
