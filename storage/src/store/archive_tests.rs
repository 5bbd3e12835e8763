//! Tests of closing days: totals kept across the move and a reopening, reads that reach the archive, refusals,
//! and crashes between the steps of a close.

use super::*;
use crate::{
    Attempt, BusinessDay, CashierId, ChargeStatus, ClosedDay, Currency, DayClosure, MaskedCode, Money, Provider,
    RefundStatus, SaleLine, StoreId, TallyFilter, UnixMillis, basket_digest, sample_catalog,
};

const HOUR: i64 = 3_600_000;

fn day(text: &str) -> BusinessDay {
    BusinessDay::parse(text).unwrap()
}

/// `hours` (fractions allowed through millis) into `day`.
fn at(day: BusinessDay, millis: i64) -> UnixMillis {
    UnixMillis(day.start().0 + millis)
}

fn otn(sale: &str) -> OutTradeNo {
    OutTradeNo::derive(&StoreId::parse("S1").unwrap(), &SaleId::parse(sale).unwrap(), Attempt::new(1).unwrap())
}

fn charge(sale: &str, status: ChargeStatus, provider: Provider, amount: i64, when: UnixMillis) -> ChargeRecord {
    let product = &sample_catalog()[0];
    let sale_id = SaleId::parse(sale).unwrap();
    let mut fingerprint = [0u8; 16];
    fingerprint[..sale.len().min(16)].copy_from_slice(&sale.as_bytes()[..sale.len().min(16)]);
    ChargeRecord {
        out_trade_no: otn(sale),
        lane_id: LaneId::parse(sale.split('-').next().unwrap()).unwrap(),
        sale_id,
        attempt: Attempt::new(1).unwrap(),
        provider,
        masked_code: MaskedCode::of("2800000000000000"),
        code_fingerprint: CodeFingerprint(fingerprint),
        amount: Money::new(amount, Currency::CNY),
        status,
        provider_code: String::new(),
        message: String::new(),
        provider_transaction_id: String::new(),
        created_at: when,
        settled_at: Some(when),
        lines: vec![SaleLine {
            gtin: product.gtin.clone(),
            quantity: 2,
            unit_price: Money::new(amount / 2, Currency::CNY),
        }],
        basket_sha256: basket_digest(&[crate::OrderLine::catalog(product.gtin.clone(), 2)]),
        shift_id: Some(ShiftId::parse("L1-S1").unwrap()).filter(|_| sale.starts_with("L1-")),
        sale_started_at: when,
        superseded_by: None,
        events: Vec::new(),
    }
}

fn sale_of(charge: &ChargeRecord, finished_at: UnixMillis) -> SaleRecord {
    SaleRecord { started_at: charge.created_at, ..SaleRecord::paid_by(charge, finished_at) }
}

fn refund(no: &str, of: &ChargeRecord, amount: i64, status: RefundStatus, when: UnixMillis) -> RefundRecord {
    RefundRecord {
        out_refund_no: no.into(),
        out_trade_no: of.out_trade_no.clone(),
        lane_id: of.lane_id.clone(),
        amount: Money::new(amount, Currency::CNY),
        reason: "damaged".into(),
        status,
        provider_code: String::new(),
        message: String::new(),
        refund_id: String::new(),
        created_at: when,
        settled_at: Some(when),
    }
}

fn closure() -> DayClosure {
    DayClosure { closed_by: "manager ann".into(), closed_at: UnixMillis::now(), note: "reconciliation R-7".into() }
}

/// Three days: 2025-01-31 and 2025-02-01 (two months) to close, 2025-02-02 to keep open.
fn three_days(store: &Store) -> Vec<ChargeRecord> {
    let (a, b, c) = (day("2025-01-31"), day("2025-02-01"), day("2025-02-02"));
    store
        .put_shift(&ShiftRecord {
            shift_id: ShiftId::parse("L1-S1").unwrap(),
            lane_id: LaneId::parse("L1").unwrap(),
            cashier: CashierId::parse("ann").unwrap(),
            opened_at: at(a, 8 * HOUR),
            closed_at: None,
            closed_how: String::new(),
        })
        .unwrap();
    let paid = |sale, provider, amount, when| charge(sale, ChargeStatus::Paid, provider, amount, when);
    let charges = vec![
        paid("L1-A1", Provider::Alipay, 1000, at(a, 10 * HOUR)),
        charge("L1-A2", ChargeStatus::NewCodeNeeded, Provider::WeChatPay, 700, at(a, 11 * HOUR)),
        paid("L2-A3", Provider::WeChatPay, 500, at(a, 12 * HOUR)),
        // Paid a moment before midnight, its sale finished just after: the sale is the next day's.
        paid("L1-A4", Provider::UnionPay, 300, at(a, 24 * HOUR - 100)),
        paid("L1-B1", Provider::Alipay, 800, at(b, 9 * HOUR)),
        charge("L2-B2", ChargeStatus::Reversed, Provider::WeChatPay, 900, at(b, 9 * HOUR)),
        paid("L1-C1", Provider::Alipay, 400, at(c, 9 * HOUR)),
    ];
    for charge in &charges {
        assert!(store.insert_charge_if_absent(charge).unwrap().is_none());
        store.claim_code(charge.code_fingerprint, &charge.out_trade_no).unwrap();
        if charge.status == ChargeStatus::Paid {
            let finished = if charge.sale_id.as_str() == "L1-A4" { at(b, 100) } else { charge.created_at };
            assert!(store.insert_sale_if_absent(&sale_of(charge, finished)).unwrap());
        }
    }
    store.insert_refund_if_absent(&refund("RF-1", &charges[0], 300, RefundStatus::Accepted, at(b, 10 * HOUR))).unwrap();
    store.insert_refund_if_absent(&refund("RF-2", &charges[2], 500, RefundStatus::Refused, at(b, 11 * HOUR))).unwrap();
    store.insert_refund_if_absent(&refund("RF-3", &charges[0], 100, RefundStatus::Accepted, at(c, 10 * HOUR))).unwrap();
    store.commit_blocking().unwrap();
    charges
}

/// Every total the ledger answers, over the three days' filters and windows.
fn totals_of(store: &Store) -> Vec<String> {
    let (a, b, c) = (day("2025-01-31"), day("2025-02-01"), day("2025-02-02"));
    let mut out = vec![
        format!("{:?}", store.totals()),
        format!("{:?}", store.shift_tally(&ShiftId::parse("L1-S1").unwrap())),
        format!("{:?}", store.refund_tally()),
        format!("{:?}", store.lane_tally(&LaneId::parse("L2").unwrap())),
    ];
    let filters = [
        TallyFilter::default(),
        TallyFilter { lane_id: Some(LaneId::parse("L1").unwrap()), provider: None },
        TallyFilter { lane_id: None, provider: Some(Provider::WeChatPay) },
        TallyFilter { lane_id: Some(LaneId::parse("L1").unwrap()), provider: Some(Provider::Alipay) },
    ];
    let windows = [
        (None, None),
        (Some(a.start()), Some(c.end())),
        (Some(at(a, 11 * HOUR)), Some(at(b, 10 * HOUR + 1))),
        (Some(at(a, 23 * HOUR)), Some(at(b, HOUR))),
        (Some(b.start()), Some(at(b, 9 * HOUR + 1))),
        (Some(at(a, 10 * HOUR)), Some(at(c, 12 * HOUR))),
    ];
    for filter in &filters {
        for (start, end) in windows {
            out.push(format!("{filter:?} {start:?}..{end:?}: {:?}", store.tally_between(filter, start, end).unwrap()));
        }
    }
    out
}

fn reopen(dir: &Path, store: Store) -> Store {
    drop(store);
    Store::open(dir).unwrap()
}

#[test]
fn closing_days_keeps_every_total_before_and_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let charges = three_days(&store);
    let store = reopen(dir.path(), store);
    let before = totals_of(&store);

    let closed = store.archive_day(day("2025-01-31"), closure()).unwrap();
    assert_eq!((closed.charges, closed.sales, closed.refunds), (4, 2, 0));
    assert_eq!(closed.tally().payments_paid, 3);
    assert_eq!(closed.tally().payments_declined, 1);
    assert_eq!(totals_of(&store), before, "right after closing");
    let store = reopen(dir.path(), store);
    assert_eq!(totals_of(&store), before, "after reopening");
    store.archive_day(day("2025-02-01"), closure()).unwrap();
    let store = reopen(dir.path(), store);
    assert_eq!(totals_of(&store), before, "two days closed, in two months");

    // The live ledger holds only the open day's records, and none of the closed days' code claims.
    let live: Vec<_> = store.charges().unwrap().into_iter().map(|c| c.sale_id.to_string()).collect();
    assert_eq!(live, ["L1-C1"]);
    assert_eq!(store.sales().unwrap().len(), 1);
    assert_eq!(store.refunds().unwrap().len(), 1);
    assert_eq!(store.code_uses.len(), 1);
    assert_eq!(store.claim_code(charges[0].code_fingerprint, &otn("L9-Z")).unwrap(), otn("L9-Z"));

    // Found by id, wherever they are.
    assert_eq!(store.charge(&charges[0].out_trade_no).unwrap().as_ref(), Some(&charges[0]));
    assert_eq!(store.sale(&SaleId::parse("L1-A4").unwrap()).unwrap().unwrap().finished_at, at(day("2025-02-01"), 100));
    assert_eq!(store.refund("RF-2").unwrap().unwrap().status, RefundStatus::Refused);
    let of_first: Vec<_> =
        store.refunds_of(&charges[0].out_trade_no).unwrap().into_iter().map(|r| r.out_refund_no).collect();
    assert_eq!(of_first, ["RF-1", "RF-3"], "one archived, one live, in key order");
    let page = store.refunds_of_page(&charges[0].out_trade_no, None, 1).unwrap();
    assert_eq!(
        store.refunds_of_page(&charges[0].out_trade_no, Some(&page[0].0), 5).unwrap()[0].1.out_refund_no,
        "RF-3"
    );

    let attempts = store.charges_with_prefix("S1-L1-A").unwrap();
    assert_eq!(attempts.iter().map(|c| c.sale_id.as_str()).collect::<Vec<_>>(), ["L1-A1", "L1-A2", "L1-A4"]);
    assert_eq!(store.charges_with_prefix("S1-L1-C1-").unwrap().len(), 1, "a live one");

    // By month, with the live lists' key paging.
    assert_eq!(store.archived_months(), ["2025-01", "2025-02"]);
    let january = store.archived_charges_page("2025-01", "", None, 2).unwrap();
    let more = store.archived_charges_page("2025-01", "", Some(&january[1].0), 10).unwrap();
    let ids: Vec<_> = january.iter().chain(&more).map(|(_, c)| c.sale_id.to_string()).collect();
    assert_eq!(ids, ["L1-A1", "L1-A2", "L1-A4", "L2-A3"]);
    let l1 = LaneId::parse("L1").unwrap();
    let sales: Vec<_> = store
        .archived_sales_page("2025-02", Some(&l1), None, 10)
        .unwrap()
        .into_iter()
        .map(|(_, s)| s.sale_id.to_string())
        .collect();
    assert_eq!(sales, ["L1-A4", "L1-B1"]);
    assert_eq!(store.archived_refunds_page("2025-02", None, 10).unwrap().len(), 2);
    assert!(store.archived_sales_page("2025-03", None, None, 10).unwrap().is_empty());
    assert!(matches!(store.archived_sales_page("2025-3", None, None, 10), Err(StorageError::InvalidMonth { .. })));

    let days: Vec<ClosedDay> = store.closed_days().unwrap();
    assert_eq!(days.iter().map(|d| d.day.to_string()).collect::<Vec<_>>(), ["2025-01-31", "2025-02-01"]);
    assert_eq!(store.closed_day(day("2025-01-31")).unwrap().unwrap().closure.note, "reconciliation R-7");
    assert!(store.closed_day(day("2025-02-02")).unwrap().is_none());

    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for file in crate::folder::files_below(&dir.path().join(crate::ARCHIVE_DIR)).keys() {
        assert_eq!(mode(file.parent().unwrap()), 0o700, "{}", file.display());
    }
}

#[test]
fn a_refund_of_an_archived_payment_works_and_counts_and_closed_records_take_no_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let charges = three_days(&store);
    store.archive_day(day("2025-01-31"), closure()).unwrap();
    let refunds_before = store.refund_tally();
    let wechat = TallyFilter { lane_id: None, provider: Some(Provider::WeChatPay) };
    let wechat_before = store.tally_between(&wechat, None, None).unwrap();

    let late = refund("RF-9", &charges[2], 200, RefundStatus::Pending, UnixMillis::now());
    assert!(store.insert_refund_if_absent(&late).unwrap().is_none());
    store.put_refund(&RefundRecord { status: RefundStatus::Accepted, ..late.clone() }).unwrap();
    store.commit_blocking().unwrap();
    let check = |store: &Store| {
        let tally = store.refund_tally();
        assert_eq!(tally.refunds, refunds_before.refunds + 1);
        let after = store.tally_between(&wechat, None, None).unwrap();
        assert_eq!(after.refunds, wechat_before.refunds + 1, "counted under the archived payment's provider");
        let of_it: Vec<_> =
            store.refunds_of(&charges[2].out_trade_no).unwrap().into_iter().map(|r| r.out_refund_no).collect();
        assert_eq!(of_it, ["RF-2", "RF-9"], "the refused one of the open day, the new one");
    };
    check(&store);
    let store = reopen(dir.path(), store);
    check(&store);

    // An archived charge is final: rewriting it is refused; recording it again answers the archived one.
    let mut reversed = charges[0].clone();
    reversed.status = ChargeStatus::Reversing;
    let err = store.put_charge(&reversed).unwrap_err();
    assert!(matches!(err, StorageError::DayClosed { what: "charge", .. }), "{err}");
    assert!(err.to_string().contains("2025-01-31") && err.to_string().contains("closed"), "{err}");
    let again = ChargeRecord { created_at: UnixMillis::now(), ..charges[0].clone() };
    assert_eq!(store.insert_charge_if_absent(&again).unwrap().as_ref(), Some(&charges[0]));
    assert!(!store.insert_sale_if_absent(&sale_of(&charges[0], UnixMillis::now())).unwrap());
    let unknown = charge("L3-LATE", ChargeStatus::Paid, Provider::Alipay, 100, at(day("2025-01-31"), HOUR));
    assert!(matches!(store.insert_charge_if_absent(&unknown), Err(StorageError::DayClosed { .. })));
    assert_eq!(store.charges().unwrap().len(), 3, "nothing was added");
}

#[test]
fn a_day_not_over_unsettled_or_closed_already_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let today = BusinessDay::of(UnixMillis::now());
    assert!(matches!(store.archive_day(today, closure()), Err(StorageError::DayNotOver { .. })));
    assert!(matches!(store.archive_day(today.next(), closure()), Err(StorageError::DayNotOver { .. })));

    let d = day("2025-03-10");
    let unknown = charge("L1-U1", ChargeStatus::Unknown, Provider::Alipay, 100, at(d, HOUR));
    store.put_charge(&unknown).unwrap();
    let err = store.archive_day(d, closure()).unwrap_err();
    assert!(matches!(err, StorageError::DayUnsettled { .. }), "{err}");
    assert!(err.to_string().contains(unknown.out_trade_no.as_str()), "{err}");
    store.put_charge(&ChargeRecord { status: ChargeStatus::Paid, ..unknown.clone() }).unwrap();
    let asked = refund("RF-U", &unknown, 50, RefundStatus::Unknown, at(d, 2 * HOUR));
    store.put_refund(&asked).unwrap();
    let err = store.archive_day(d, closure()).unwrap_err();
    assert!(err.to_string().contains("RF-U"), "{err}");
    assert!(store.closed_days().unwrap().is_empty(), "a refused close leaves nothing");
    // The refusal did not leave the day marked: once settled it closes, once.
    store.put_refund(&RefundRecord { status: RefundStatus::Accepted, ..asked }).unwrap();
    store.archive_day(d, closure()).unwrap();
    let err = store.archive_day(d, closure()).unwrap_err();
    assert!(matches!(err, StorageError::DayAlreadyClosed { .. }), "{err}");
    let store = reopen(dir.path(), store);
    assert!(matches!(store.archive_day(d, closure()), Err(StorageError::DayAlreadyClosed { .. })));
    // An empty past day closes too (its ClosedDay says nothing moved).
    let empty = store.archive_day(day("2025-03-11"), closure()).unwrap();
    assert_eq!((empty.charges, empty.sales, empty.refunds), (0, 0, 0));
}

/// A close stopped after `steps` of its four steps (the writes before durable, the process gone).
fn crash_after(steps: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let charges = three_days(&store);
    let store = reopen(dir.path(), store);
    let before = totals_of(&store);
    let a = day("2025-01-31");
    store.begin_closing(a).unwrap();
    let moving = store.read_day(a, closure()).unwrap();
    if steps >= 2 {
        store.copy_to_archive(&moving).unwrap();
    }
    if steps >= 3 {
        store.commit_closed_day(&moving).unwrap();
    }
    if steps >= 4 {
        // Part of step 4: the charges go, the sales stay.
        let charges_only = scan::Leftovers { charges: moving.records.charges.clone(), ..Default::default() };
        store.remove_live(&charges_only).unwrap();
        store.commit_blocking().unwrap();
    }
    let store = reopen(dir.path(), store);
    assert_eq!(totals_of(&store), before, "after a crash after step {steps}: nothing lost, nothing counted twice");
    let closed = store.closed_day(a).unwrap().is_some();
    assert_eq!(closed, steps >= 3, "closed exactly when the commit point was passed");
    let live_charges = store.charges().unwrap().len();
    assert_eq!(live_charges, if closed { 3 } else { 7 }, "a half-moved day is finished or undone");
    assert_eq!(store.sales().unwrap().len(), if closed { 3 } else { 5 });
    assert_eq!(store.archived_charges_page("2025-01", "", None, 10).unwrap().len(), if closed { 4 } else { 0 });
    assert_eq!(store.charge(&charges[1].out_trade_no).unwrap().as_ref(), Some(&charges[1]));
    if !closed {
        // The copies the stopped close left are written again by the next one.
        store.archive_day(a, closure()).unwrap();
        assert_eq!(totals_of(&store), before);
        assert_eq!(store.archived_charges_page("2025-01", "", None, 10).unwrap().len(), 4);
    }
    let store = reopen(dir.path(), store);
    assert_eq!(totals_of(&store), before);
    assert_eq!(store.charges().unwrap().len(), 3);
}

#[test]
fn a_close_stopped_before_its_commit_point_is_undone() {
    crash_after(1);
    crash_after(2);
}

#[test]
fn a_close_stopped_after_its_commit_point_is_finished() {
    crash_after(3);
    crash_after(4);
}

#[test]
fn an_archive_that_lost_a_closed_day_is_reported_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let charges = three_days(&store);
    store.archive_day(day("2025-01-31"), closure()).unwrap();
    drop(store);
    std::fs::remove_dir_all(dir.path().join(crate::ARCHIVE_DIR).join("2025-01")).unwrap();
    // The ledger opens (its totals do not need the archive); reading the lost month says what happened.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.totals().0.payments_paid, 5);
    let err = store.charge(&charges[0].out_trade_no).unwrap_err();
    assert!(matches!(err, StorageError::Damaged { .. }), "{err}");
    assert!(err.to_string().contains("2025-01-31"), "{err}");
}
