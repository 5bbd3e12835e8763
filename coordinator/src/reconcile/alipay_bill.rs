//! Alipay's trade bill (the zip behind `alipay.data.dataservice.bill.downloadurl.query`'s URL) read into a [`Bill`].
//!
//! The zip holds GBK-encoded CSV files: the details (`<account>_<yyyyMMdd>_业务明细.csv`) and the summary
//! (`<account>_<yyyyMMdd>_业务明细(汇总).csv`); an entry's name is taken as UTF-8 when it is, else as GBK.
//! Each file has `#` comment lines before its column row (`#支付宝业务明细查询`, `#账号：[...]`,
//! `#起始日期：[yyyy-MM-dd HH:mm:ss]   终止日期：[...]`, a `#-----...业务明细列表-----` rule) and after its
//! rows (the closing rule, `#交易合计：N笔，商家实收共X元，...`, `#退款合计：M笔，商家实收共Y元，...`,
//! `#导出时间：[...]`). Fields may be padded with spaces or tabs (Alipay pads numbers with a tab); columns
//! are found by name.
//!
//! Where the documents we could find are silent, this reads (and the simulator writes):
//! - a details row of 业务类型 `交易` is a charge of 订单金额（元）; `退款` is money given back, its
//!   订单金额（元） and 商家实收（元） negative; with a 退款批次号/请求号 it is a refund keyed by that number,
//!   without one it is the refund `alipay.trade.cancel` makes of a paid order: a reversal;
//! - 服务费（元） is negative when charged and positive when given back;
//! - the summary's column row has 门店编号, 门店名称, 交易订单总笔数, 退款订单总笔数, 订单金额（元）,
//!   商家实收（元）, ..., 服务费（元）, ...; its row whose 门店编号 is `合计` holds the day's totals (without
//!   one, its rows are summed).
//!
//! The footer lines and the summary must agree with the rows, or the bill is refused.

use std::io::{BufRead, BufReader, Cursor, Read};

use checkout_storage::Provider;

use super::{
    Bill, BillError, BillLimits, BillLine, BillTotals, LineKind,
    text::{LineReader, date_of, parse_china_datetime, parse_yuan, split_fields},
};

/// Reads an Alipay bill zip within the default [`BillLimits`].
pub fn parse_alipay_bill(bytes: &[u8]) -> Result<Bill, BillError> {
    parse_alipay_bill_with(bytes, &BillLimits::default())
}

/// Reads an Alipay bill zip within `limits`.
pub fn parse_alipay_bill_with(bytes: &[u8], limits: &BillLimits) -> Result<Bill, BillError> {
    if bytes.len() > limits.max_input_bytes {
        return Err(BillError::at(0, format!("{} bytes: more than {}", bytes.len(), limits.max_input_bytes)));
    }
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| BillError::at(0, format!("not a readable zip: {e}")))?;
    if archive.len() > limits.max_zip_entries {
        return Err(BillError::at(0, format!("{} zip entries: more than {}", archive.len(), limits.max_zip_entries)));
    }
    let (mut details, mut summary) = (None, None);
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).map_err(|e| BillError::at(0, format!("zip entry {index}: {e}")))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry_name(entry.name_raw());
        if entry.size() > limits.max_text_bytes {
            return Err(BillError::at(
                0,
                format!("{} bytes uncompressed: more than {}", entry.size(), limits.max_text_bytes),
            )
            .in_file(&name));
        }
        let slot = if name.contains("汇总") {
            &mut summary
        } else if name.ends_with(".csv") {
            &mut details
        } else {
            return Err(BillError::at(0, "neither the details nor the summary CSV").in_file(&name));
        };
        if slot.is_some() {
            return Err(BillError::at(0, "a second file of the same kind").in_file(&name));
        }
        *slot = Some((index, name));
    }
    let Some((details_index, details_name)) = details else {
        return Err(BillError::at(0, "no details file (…_业务明细.csv) in the zip"));
    };
    let Some((summary_index, summary_name)) = summary else {
        return Err(BillError::at(0, "no summary file (…_业务明细(汇总).csv) in the zip"));
    };
    let (lines, footer, day, used) = {
        let entry = archive
            .by_index(details_index)
            .map_err(|e| BillError::at(0, format!("cannot be opened: {e}")).in_file(&details_name))?;
        let reader = BufReader::with_capacity(64 * 1024, entry.take(limits.max_text_bytes + 1));
        let mut reader = LineReader::new(reader, *limits);
        let parsed = read_details(&mut reader).map_err(|e| e.in_file(&details_name))?;
        (parsed.0, parsed.1, parsed.2, reader.bytes_read())
    };
    let summary_limits = BillLimits { max_text_bytes: limits.max_text_bytes.saturating_sub(used), ..*limits };
    let entry = archive
        .by_index(summary_index)
        .map_err(|e| BillError::at(0, format!("cannot be opened: {e}")).in_file(&summary_name))?;
    let reader = BufReader::new(entry.take(summary_limits.max_text_bytes + 1));
    let summary = read_summary(LineReader::new(reader, summary_limits)).map_err(|e| e.in_file(&summary_name))?;
    let (summary_line, stated) = summary;
    let expected = StoreTotals {
        trades: footer.trades,
        refunds: footer.refunds,
        received: footer.trades_received.checked_add(footer.refunds_received).ok_or_else(overflow_in(&summary_name))?,
        fees: footer.fees,
    };
    if stated != expected {
        return Err(BillError::at(
            summary_line,
            format!("the summary {stated:?} disagrees with the details {expected:?}"),
        )
        .in_file(&summary_name));
    }
    let totals = BillTotals {
        lines: footer.trades + footer.refunds,
        charged: footer.trades_received,
        refunded: footer.refunds_received.checked_neg().ok_or_else(overflow_in(&summary_name))?,
        fees: footer.fees.checked_neg().ok_or_else(overflow_in(&summary_name))?,
    };
    Ok(Bill { provider: Provider::Alipay, day, lines, totals })
}

fn overflow_in(file: &str) -> impl FnOnce() -> BillError + '_ {
    move || BillError::at(0, "the amounts overflow").in_file(file)
}

/// A zip entry's name: UTF-8 when it is, else GBK (as Alipay writes it), else lossy.
fn entry_name(raw: &[u8]) -> String {
    if let Ok(name) = std::str::from_utf8(raw) {
        return name.to_owned();
    }
    match encoding_rs::GBK.decode_without_bom_handling_and_without_replacement(raw) {
        Some(name) => name.into_owned(),
        None => String::from_utf8_lossy(raw).into_owned(),
    }
}

/// One line as text: GBK decoded, refused with its number when it is not GBK.
fn gbk(bytes: &[u8], line: usize) -> Result<String, BillError> {
    encoding_rs::GBK
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(std::borrow::Cow::into_owned)
        .ok_or_else(|| BillError::at(line, "not GBK text"))
}

/// A column name with ASCII parentheses made full-width, as Alipay writes them.
fn column_name(name: &str) -> String {
    name.trim().replace('(', "（").replace(')', "）")
}

fn fields_of(text: &str, line: usize) -> Result<Vec<String>, BillError> {
    let fields = split_fields(text).ok_or_else(|| BillError::at(line, "a quote is left open"))?;
    Ok(fields.iter().map(|f| f.trim_matches(|c: char| c == ' ' || c == '\t').to_owned()).collect())
}

fn position(header: &[String], name: &str, line: usize) -> Result<usize, BillError> {
    header.iter().position(|h| h == name).ok_or_else(|| BillError::at(line, format!("no {name} column")))
}

fn yuan(text: &str, column: &str, line: usize) -> Result<i64, BillError> {
    parse_yuan(text).ok_or_else(|| BillError::at(line, format!("{column} {text:?} is not yuan with two decimals")))
}

fn add(sum: &mut i64, fen: i64, line: usize) -> Result<(), BillError> {
    *sum = sum.checked_add(fen).ok_or_else(|| BillError::at(line, "the amounts overflow"))?;
    Ok(())
}

/// What the details' rows add up to, checked against its footer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Footer {
    trades: u64,
    trades_received: i64,
    refunds: u64,
    /// Negative.
    refunds_received: i64,
    /// As written: negative when charged.
    fees: i64,
}

/// The summary's totals (or what the details make of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StoreTotals {
    trades: u64,
    refunds: u64,
    received: i64,
    fees: i64,
}

/// `#交易合计：5笔，商家实收共27.34元，商家优惠共0.00元` → (5, 2734).
fn footer_totals(text: &str, line: usize) -> Result<(u64, i64), BillError> {
    let bad = || BillError::at(line, format!("{text:?} is not `#…合计：N笔，商家实收共X元，…`"));
    let (_, rest) = text.split_once('：').or_else(|| text.split_once(':')).ok_or_else(bad)?;
    let mut parts = rest.split(['，', ',']);
    let count = parts.next().and_then(|p| p.trim().strip_suffix('笔')).ok_or_else(bad)?;
    let received = parts
        .next()
        .and_then(|p| p.trim().strip_prefix("商家实收共"))
        .and_then(|p| p.strip_suffix('元'))
        .ok_or_else(bad)?;
    Ok((count.parse().map_err(|_| bad())?, parse_yuan(received).ok_or_else(bad)?))
}

/// `#起始日期：[2026-11-25 00:00:00]   终止日期：[...]` → `2026-11-25`.
fn start_day(text: &str) -> Option<String> {
    let start = text.split_once("起始日期")?.1;
    let inside = start.split_once('[')?.1.split_once(']')?.0;
    date_of(inside)
}

type Details = (Vec<BillLine>, Footer, Option<String>);

fn read_details<R: BufRead>(reader: &mut LineReader<R>) -> Result<Details, BillError> {
    let mut day = None;
    let (header, header_line) = loop {
        let line = reader.line + 1;
        let Some(bytes) = reader.next_line()? else {
            return Err(BillError::at(line, "the file ends before its column row"));
        };
        let text = gbk(bytes, line)?;
        if text.starts_with('#') {
            if day.is_none() {
                day = start_day(&text);
            }
            continue;
        }
        if !text.trim().is_empty() {
            let header: Vec<String> = fields_of(&text, line)?.iter().map(|f| column_name(f)).collect();
            break (header, line);
        }
    };
    let at = |name: &str| position(&header, name, header_line);
    let (trade_no, out_trade_no, kind) = (at("支付宝交易号")?, at("商户订单号")?, at("业务类型")?);
    let (created, finished, order_amount) = (at("创建时间")?, at("完成时间")?, at("订单金额（元）")?);
    let (received_at, batch, fee_at) = (at("商家实收（元）")?, at("退款批次号/请求号")?, at("服务费（元）")?);
    let mut lines = Vec::new();
    let mut sums = Footer::default();
    let (mut trades_footer, mut refunds_footer) = (None, None);
    let mut in_footer = false;
    loop {
        let line = reader.line + 1;
        let Some(bytes) = reader.next_line()? else { break };
        let text = gbk(bytes, line)?;
        if text.starts_with('#') {
            in_footer = true;
            if text.starts_with("#交易合计") {
                trades_footer = Some((footer_totals(&text, line)?, line));
            } else if text.starts_with("#退款合计") {
                refunds_footer = Some((footer_totals(&text, line)?, line));
            }
            continue;
        }
        if text.trim().is_empty() {
            continue;
        }
        if in_footer {
            return Err(BillError::at(line, "a row after the footer"));
        }
        let fields = fields_of(&text, line)?;
        if fields.len() != header.len() {
            return Err(BillError::at(line, format!("{} fields, the column row has {}", fields.len(), header.len())));
        }
        let when = if fields[finished].is_empty() { &fields[created] } else { &fields[finished] };
        let time = parse_china_datetime(when)
            .ok_or_else(|| BillError::at(line, format!("完成时间 {when:?} is not yyyy-MM-dd HH:mm:ss")))?;
        let amount = yuan(&fields[order_amount], "订单金额（元）", line)?;
        let received = yuan(&fields[received_at], "商家实收（元）", line)?;
        let fee = yuan(&fields[fee_at], "服务费（元）", line)?;
        if fields[out_trade_no].is_empty() {
            return Err(BillError::at(line, "商户订单号 is empty"));
        }
        add(&mut sums.fees, fee, line)?;
        let (kind, amount, out_refund_no) = match fields[kind].as_str() {
            "交易" => {
                sums.trades += 1;
                add(&mut sums.trades_received, received, line)?;
                (LineKind::Charge, amount, None)
            }
            "退款" => {
                sums.refunds += 1;
                add(&mut sums.refunds_received, received, line)?;
                let amount = amount.checked_neg().ok_or_else(|| BillError::at(line, "the amounts overflow"))?;
                match fields[batch].as_str() {
                    "" => (LineKind::Reversal, amount, None),
                    number => (LineKind::Refund, amount, Some(number.to_owned())),
                }
            }
            other => return Err(BillError::at(line, format!("业务类型 {other:?} is neither 交易 nor 退款"))),
        };
        if amount <= 0 {
            return Err(BillError::at(line, format!("a {kind:?} of {amount} fen")));
        }
        lines.push(BillLine {
            kind,
            out_trade_no: fields[out_trade_no].clone(),
            out_refund_no,
            amount,
            fee: fee.checked_neg().ok_or_else(|| BillError::at(line, "the amounts overflow"))?,
            time,
            transaction_id: fields[trade_no].clone(),
        });
    }
    let end = reader.line + 1;
    let Some(((trades, trades_received), trades_line)) = trades_footer else {
        return Err(BillError::at(end, "the file ends without its #交易合计 line (truncated?)"));
    };
    let Some(((refunds, refunds_received), refunds_line)) = refunds_footer else {
        return Err(BillError::at(end, "the file ends without its #退款合计 line (truncated?)"));
    };
    if (trades, trades_received) != (sums.trades, sums.trades_received) {
        return Err(BillError::at(
            trades_line,
            format!(
                "#交易合计 says {trades} trades, {trades_received} fen; the rows add up to {} and {}",
                sums.trades, sums.trades_received
            ),
        ));
    }
    if (refunds, refunds_received) != (sums.refunds, sums.refunds_received) {
        return Err(BillError::at(
            refunds_line,
            format!(
                "#退款合计 says {refunds} refunds, {refunds_received} fen; the rows add up to {} and {}",
                sums.refunds, sums.refunds_received
            ),
        ));
    }
    Ok((lines, sums, day))
}

/// The summary's totals and the line they were read from.
fn read_summary<R: BufRead>(mut reader: LineReader<R>) -> Result<(usize, StoreTotals), BillError> {
    let mut header: Option<(Vec<String>, [usize; 5])> = None;
    let mut summed: Option<StoreTotals> = None;
    let mut total_row = None;
    loop {
        let line = reader.line + 1;
        let Some(bytes) = reader.next_line()? else { break };
        let text = gbk(bytes, line)?;
        if text.starts_with('#') || text.trim().is_empty() {
            continue;
        }
        let fields = fields_of(&text, line)?;
        let Some((names, at)) = &header else {
            let names: Vec<String> = fields.iter().map(|f| column_name(f)).collect();
            let at = [
                position(&names, "门店编号", line)?,
                position(&names, "交易订单总笔数", line)?,
                position(&names, "退款订单总笔数", line)?,
                position(&names, "商家实收（元）", line)?,
                position(&names, "服务费（元）", line)?,
            ];
            header = Some((names, at));
            continue;
        };
        if fields.len() != names.len() {
            return Err(BillError::at(line, format!("{} fields, the column row has {}", fields.len(), names.len())));
        }
        let count = |at: usize, column: &str| {
            fields[at]
                .parse::<u64>()
                .map_err(|_| BillError::at(line, format!("{column} {:?} is not a count", fields[at])))
        };
        let row = StoreTotals {
            trades: count(at[1], "交易订单总笔数")?,
            refunds: count(at[2], "退款订单总笔数")?,
            received: yuan(&fields[at[3]], "商家实收（元）", line)?,
            fees: yuan(&fields[at[4]], "服务费（元）", line)?,
        };
        if fields[at[0]] == "合计" {
            if total_row.is_some() {
                return Err(BillError::at(line, "a second 合计 row"));
            }
            total_row = Some((line, row));
            continue;
        }
        let sum = summed.get_or_insert(StoreTotals { trades: 0, refunds: 0, received: 0, fees: 0 });
        sum.trades = sum.trades.checked_add(row.trades).ok_or_else(|| BillError::at(line, "the counts overflow"))?;
        sum.refunds = sum.refunds.checked_add(row.refunds).ok_or_else(|| BillError::at(line, "the counts overflow"))?;
        add(&mut sum.received, row.received, line)?;
        add(&mut sum.fees, row.fees, line)?;
    }
    if header.is_none() {
        return Err(BillError::at(reader.line + 1, "the file ends before its column row"));
    }
    match (total_row, summed) {
        (Some((line, total)), Some(sum)) if sum != total => {
            Err(BillError::at(line, format!("the 合计 row {total:?} disagrees with the stores' rows {sum:?}")))
        }
        (Some(total), _) => Ok(total),
        (None, Some(sum)) => Ok((reader.line, sum)),
        (None, None) => Err(BillError::at(reader.line + 1, "no totals: neither a 合计 row nor a store's")),
    }
}
