//! The bill parsers' tests: the simulator's bills read back line for line, reconciled against the books, and malformed bills refused at the right line.

use std::io::{Cursor, Write};

use checkout_storage::{Currency, Money, OutTradeNo, Provider, SimulatedWallet, UnixMillis};

use super::*;
use crate::{
    providers::alipay::china_date,
    sim::{
        SimulatedProvider,
        bills::{self, BillRow, RowRefund, RowState},
    },
};

const SEED: &[u8] = b"reconcile-tests";

fn row(i: u32, state: RowState, fen: i64, refund: Option<(&str, i64)>) -> BillRow {
    BillRow {
        at: UnixMillis(1_764_000_000_000 + i64::from(i) * 1000),
        created_at: UnixMillis(1_764_000_000_000 + i64::from(i) * 1000 - 500),
        state,
        out_trade_no: format!("S1-L01-{i:04}"),
        transaction_id: format!("4200{i:024}"),
        terminal: "L01".into(),
        wallet: 7,
        order_amount: fen,
        currency: "CNY".into(),
        description: "groceries, 3 items".into(),
        refund: refund.map(|(number, amount)| RowRefund {
            refund_id: format!("R{i}"),
            out_refund_no: number.into(),
            amount,
        }),
    }
}

/// A day: two charges, a refund of the first, a reversal of the second.
fn rows() -> Vec<BillRow> {
    vec![
        row(1, RowState::Success, 1234, None),
        row(2, RowState::Success, 1000, None),
        row(1, RowState::Refund, 1234, Some(("RF-1", 250))),
        row(2, RowState::Revoked, 1000, Some(("", 1000))),
    ]
}

fn day() -> String {
    china_date(UnixMillis(1_764_000_000_000))
}

fn wechat_csv(rows: Vec<BillRow>) -> String {
    let mut csv = Vec::new();
    bills::write_wechat_bill(&mut csv, "wxsim", "1900000001", rows).unwrap();
    String::from_utf8(csv).unwrap()
}

fn alipay_zip(rows: Vec<BillRow>) -> Vec<u8> {
    bills::write_alipay_bill(Cursor::new(Vec::new()), &day(), rows).unwrap().into_inner()
}

fn expected_lines() -> Vec<(LineKind, String, Option<String>, i64, i64)> {
    vec![
        (LineKind::Charge, "S1-L01-0001".into(), None, 1234, 7),
        (LineKind::Charge, "S1-L01-0002".into(), None, 1000, 6),
        (LineKind::Refund, "S1-L01-0001".into(), Some("RF-1".into()), 250, 0),
        (LineKind::Reversal, "S1-L01-0002".into(), None, 1000, 0),
    ]
}

fn summary(bill: &Bill) -> Vec<(LineKind, String, Option<String>, i64, i64)> {
    bill.lines.iter().map(|l| (l.kind, l.out_trade_no.clone(), l.out_refund_no.clone(), l.amount, l.fee)).collect()
}

#[test]
fn the_simulators_wechat_bill_reads_back_line_for_line() {
    let csv = wechat_csv(rows());
    let bill = parse_wechat_bill(csv.as_bytes()).unwrap();
    assert_eq!(bill.provider, Provider::WeChatPay);
    assert_eq!(summary(&bill), expected_lines());
    assert_eq!(bill.totals, BillTotals { lines: 4, charged: 2234, refunded: 1250, fees: 13 });
    assert_eq!(bill.day, Some(day()));
    assert_eq!(bill.lines[0].transaction_id, format!("4200{:024}", 1));
    assert_eq!(bill.lines[0].time, UnixMillis(1_764_000_001_000));
    // The same bill gzipped (tar_type=GZIP) reads the same.
    assert_eq!(parse_wechat_bill(&bills::gzip(csv.as_bytes()).unwrap()).unwrap(), bill);
}

#[test]
fn the_simulators_alipay_zip_reads_back_line_for_line() {
    let bill = parse_alipay_bill(&alipay_zip(rows())).unwrap();
    assert_eq!(bill.provider, Provider::Alipay);
    assert_eq!(summary(&bill), expected_lines());
    assert_eq!(bill.totals, BillTotals { lines: 4, charged: 2234, refunded: 1250, fees: 13 });
    assert_eq!(bill.day, Some(day()));
}

#[test]
fn an_empty_day_reads_as_a_bill_without_lines() {
    let bill = parse_wechat_bill(wechat_csv(Vec::new()).as_bytes()).unwrap();
    assert!(bill.lines.is_empty());
    assert_eq!((bill.totals, bill.day), (BillTotals::default(), None));
    let bill = parse_alipay_bill(&alipay_zip(Vec::new())).unwrap();
    assert!(bill.lines.is_empty());
    assert_eq!((bill.totals, bill.day.clone()), (BillTotals::default(), Some(day())));
    let reconciled = reconcile(&[], &bill).unwrap();
    assert!(reconciled.is_clean());
}

#[test]
fn a_real_wechat_header_in_chinese_is_read_too() {
    let csv = "\u{feff}交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,\
               应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,\
               手续费,费率,订单金额,申请退款金额,费率备注\r\n\
               `2026-11-25 09:00:00,`wx1,`19,`0,`L1,`4200001,`S1-1,`o1,`MICROPAY,`SUCCESS,`CMC,`CNY,`9.00,`1.00,`0,`0,`0.00,`0.00,`,`,`milk,`,`0.05,`0.60%,`10.00,`0.00,`\r\n\
               `2026-11-25 10:00:00,`wx1,`19,`0,`L1,`4200001,`S1-1,`o1,`MICROPAY,`REFUND,`CMC,`CNY,`0.00,`0.00,`5000001,`RF1,`2.00,`0.00,`ORIGINAL,`SUCCESS,`milk,`,`-0.01,`0.60%,`10.00,`2.00,`\r\n\
               总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n\
               `2,`9.00,`2.00,`0.00,`0.04,`10.00,`2.00\r\n";
    let bill = parse_wechat_bill(csv.as_bytes()).unwrap();
    let lines = summary(&bill);
    assert_eq!(lines[0], (LineKind::Charge, "S1-1".into(), None, 1000, 5));
    assert_eq!(lines[1], (LineKind::Refund, "S1-1".into(), Some("RF1".into()), 200, -1));
    assert_eq!(bill.totals, BillTotals { lines: 2, charged: 900, refunded: 200, fees: 4 });
}

/// Replaces the first `from` on line `line` (1-based) of `csv`.
fn edit_line(csv: &str, line: usize, from: &str, to: &str) -> String {
    csv.lines()
        .enumerate()
        .map(|(i, l)| if i + 1 == line { l.replacen(from, to, 1) } else { l.to_owned() })
        .map(|l| l + "\n")
        .collect()
}

fn refused_wechat(csv: &str) -> BillError {
    parse_wechat_bill(csv.as_bytes()).unwrap_err()
}

#[test]
fn malformed_wechat_bills_are_refused_at_their_line() {
    let csv = wechat_csv(rows());
    let error = refused_wechat(&edit_line(&csv, 2, "`12.34,", "`12.3,"));
    assert_eq!(error.line, 2, "{error}");
    assert!(error.reason.contains("12.3"), "{error}");
    assert_eq!(refused_wechat(&edit_line(&csv, 3, "`10.00,", "`1e3,")).line, 3);
    // A missing column: in the header, or in a row.
    let error = refused_wechat(&edit_line(&csv, 1, "Trade state,", ""));
    assert_eq!((error.line, error.reason.as_str()), (1, "no 交易状态 column"));
    assert_eq!(refused_wechat(&edit_line(&csv, 4, "`OTHERS,", "")).line, 4);
    assert_eq!(refused_wechat(&edit_line(&csv, 2, "`SUCCESS", "`PAID")).line, 2);
    assert_eq!(refused_wechat(&edit_line(&csv, 3, "`MICROPAY", "MICROPAY")).line, 3);
    // The totals row disagrees with the rows.
    let error = refused_wechat(&edit_line(&csv, 7, "`4,", "`5,"));
    assert_eq!(error.line, 7, "{error}");
    assert!(error.reason.contains("disagrees"), "{error}");
    assert_eq!(refused_wechat(&edit_line(&csv, 7, "`0.13,", "`0.14,")).line, 7);
    // Cut short: no totals.
    let cut: String = csv.lines().take(5).map(|l| format!("{l}\n")).collect();
    assert_eq!(refused_wechat(&cut).line, 6);
    // Not UTF-8, a line too long, an XML answer.
    let mut bytes = csv.clone().into_bytes();
    let at = csv.lines().take(2).map(|l| l.len() + 1).sum::<usize>() + 3;
    bytes[at] = 0xff;
    assert_eq!(parse_wechat_bill(&bytes).unwrap_err().line, 3);
    let long = edit_line(&csv, 4, "`MICROPAY", &format!("`{}", "M".repeat(20_000)));
    assert!(refused_wechat(&long).reason.contains("longer than"));
    assert_eq!(refused_wechat("<xml><return_code>FAIL</return_code></xml>").line, 1);
    assert_eq!(refused_wechat("").line, 1);
}

#[test]
fn bills_beyond_the_limits_are_refused_whole() {
    let csv = wechat_csv(rows());
    let small = BillLimits { max_input_bytes: 100, ..BillLimits::default() };
    assert_eq!(parse_wechat_bill_with(csv.as_bytes(), &small).unwrap_err().line, 0);
    // A gzip bomb: small to download, too much text once inflated.
    let bomb = bills::gzip(&vec![b'`'; 4 * 1024 * 1024]).unwrap();
    let limits = BillLimits { max_text_bytes: 1024 * 1024, max_line_bytes: 8 * 1024 * 1024, ..BillLimits::default() };
    assert!(bomb.len() < 64 * 1024);
    let error = parse_wechat_bill_with(&bomb, &limits).unwrap_err();
    assert!(error.reason.contains("bytes of text") || error.reason.contains("longer than"), "{error}");
    // A truncated gzip.
    let gzip = bills::gzip(csv.as_bytes()).unwrap();
    let error = parse_wechat_bill(&gzip[..gzip.len() - 12]).unwrap_err();
    assert!(error.reason.contains("cannot be read"), "{error}");
}

/// Rewrites one file of an Alipay zip (by a part of its name) with `edit` applied to its GBK bytes.
fn edit_zip(zip_bytes: &[u8], part: &str, edit: impl Fn(Vec<u8>) -> Vec<u8>) -> Vec<u8> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(Cursor::new(zip_bytes)).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().unwrap().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        if name.contains(part) {
            bytes = edit(bytes);
        }
        out.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        out.write_all(&bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
}

fn gbk_lines(bytes: Vec<u8>, edit: impl Fn(usize, String) -> String) -> Vec<u8> {
    let (text, _, _) = encoding_rs::GBK.decode(&bytes);
    let edited: String = text.lines().enumerate().map(|(i, l)| edit(i + 1, l.to_owned()) + "\n").collect();
    encoding_rs::GBK.encode(&edited).0.into_owned()
}

#[test]
fn malformed_alipay_bills_are_refused_at_their_line() {
    let zip_bytes = alipay_zip(rows());
    let details = "业务明细.csv";
    let refused = |part: &str, edit: &dyn Fn(usize, String) -> String| {
        parse_alipay_bill(&edit_zip(&zip_bytes, part, |b| gbk_lines(b, edit))).unwrap_err()
    };
    // Lines: 4 header comments, the column row (5), rows 6 to 9, the footer.
    let error = refused(details, &|n, l| if n == 7 { l.replacen(",10.00,", ",10.0,", 1) } else { l });
    assert_eq!((error.line, error.file.as_deref().map(|f| f.ends_with(details))), (7, Some(true)), "{error}");
    let error = refused(details, &|n, l| if n == 5 { l.replace("商户订单号", "订单号") } else { l });
    assert_eq!((error.line, error.reason.as_str()), (5, "no 商户订单号 column"));
    let error = refused(details, &|n, l| if n == 8 { l.replacen("退款", "冲正", 1) } else { l });
    assert_eq!(error.line, 8, "{error}");
    // The footer and the summary must agree with the rows.
    let error = refused(details, &|_, l| l.replace("#交易合计：2笔", "#交易合计：3笔"));
    assert_eq!(error.line, 11, "{error}");
    let error = refused("汇总", &|_, l| l.replacen("2,2,", "2,1,", 1));
    assert_eq!(error.line, 7, "{error}");
    assert!(error.file.as_deref().is_some_and(|f| f.contains("汇总")), "{error}");
    // Cut short: no footer.
    let error = refused(details, &|n, l| if n >= 10 { String::new() } else { l });
    assert!(error.reason.contains("#交易合计"), "{error}");
    // Bytes that are not GBK.
    let not_gbk = edit_zip(&zip_bytes, details, |mut bytes| {
        let at = bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(6).map_or(0, |(i, _)| i) + 2;
        bytes[at] = 0x81;
        bytes[at + 1] = 0x20;
        bytes
    });
    assert_eq!(parse_alipay_bill(&not_gbk).unwrap_err().line, 8);
}

#[test]
fn broken_and_hostile_zips_are_refused() {
    let zip_bytes = alipay_zip(rows());
    let error = parse_alipay_bill(&zip_bytes[..zip_bytes.len() / 2]).unwrap_err();
    assert_eq!(error.line, 0, "{error}");
    assert!(error.reason.contains("not a readable zip"), "{error}");
    assert!(parse_alipay_bill(b"not a zip").is_err());
    // Too many entries.
    let mut many = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..5 {
        many.start_file(format!("{i}.csv"), zip::write::SimpleFileOptions::default()).unwrap();
    }
    let error = parse_alipay_bill(&many.finish().unwrap().into_inner()).unwrap_err();
    assert!(error.reason.contains("zip entries"), "{error}");
    // A bomb: a details file that inflates beyond the limit.
    let bomb = edit_zip(&zip_bytes, "业务明细.csv", |mut bytes| {
        bytes.extend(std::iter::repeat_n(b'#', 3 * 1024 * 1024));
        bytes
    });
    let limits = BillLimits { max_text_bytes: 1024 * 1024, max_line_bytes: 4 * 1024 * 1024, ..BillLimits::default() };
    assert!(parse_alipay_bill_with(&bomb, &limits).unwrap_err().reason.contains("bytes"));
    // One file missing.
    let mut one = zip::ZipWriter::new(Cursor::new(Vec::new()));
    one.start_file("x_业务明细.csv", zip::write::SimpleFileOptions::default()).unwrap();
    let error = parse_alipay_bill(&one.finish().unwrap().into_inner()).unwrap_err();
    assert!(error.reason.contains("no summary"), "{error}");
}

#[test]
fn the_books_bill_reconciles_with_a_ledger_that_agrees_and_shows_what_differs() {
    let books = SimulatedProvider::new(SEED, 1_000_000);
    let now = UnixMillis::now();
    let pay = |wallet: u16, no: &str, fen: i64| {
        let code = SimulatedWallet::new(SEED, Provider::WeChatPay, wallet).issue_code(now);
        let no = OutTradeNo::parse(no).unwrap();
        books.pay(Provider::WeChatPay, &no, &code, Money::new(fen, Currency::CNY), "L01", "basket");
        no
    };
    let a = pay(1, "S1-L01-A", 1234);
    let b = pay(2, "S1-L01-B", 500);
    let _c = pay(3, "S1-L01-C", 700);
    books.refund_order(&a, "RF-A", 234);
    books.reverse_order(&b);
    let rows = bills::bill_rows(&books.snapshot().orders, Provider::WeChatPay, &china_date(now));
    let bill = parse_wechat_bill(&bills::gzip(wechat_csv(rows).as_bytes()).unwrap()).unwrap();
    let line = |kind, no: &str, refund: Option<&str>, amount, state| LedgerLine {
        provider: Provider::WeChatPay,
        kind,
        out_trade_no: no.into(),
        out_refund_no: refund.map(Into::into),
        amount,
        state,
        time: now,
    };
    let mut ledger = vec![
        line(LineKind::Charge, "S1-L01-A", None, 1234, OrderState::Refunded),
        line(LineKind::Refund, "S1-L01-A", Some("RF-A"), 234, OrderState::Refunded),
        line(LineKind::Charge, "S1-L01-B", None, 500, OrderState::Reversed),
        line(LineKind::Reversal, "S1-L01-B", None, 500, OrderState::Reversed),
        line(LineKind::Charge, "S1-L01-C", None, 700, OrderState::Paid),
    ];
    let clean = reconcile(&ledger, &bill).unwrap();
    assert!(clean.is_clean(), "{:?}", clean.differences);
    assert_eq!(clean.ledger.charged, clean.bill.charged);
    assert_eq!(clean.bill.fees, bill.totals.fees);
    ledger[4].amount = 701;
    ledger[2].state = OrderState::Paid;
    ledger.remove(3);
    let differs = reconcile(&ledger, &bill).unwrap();
    let kinds: Vec<DifferenceKind> = differs.differences.iter().map(|d| d.kind).collect();
    assert_eq!(
        kinds,
        [DifferenceKind::MissingInLedger, DifferenceKind::AmountMismatch, DifferenceKind::StateMismatch],
        "{:?}",
        differs.differences
    );
}
