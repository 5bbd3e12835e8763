//! Matching the day's ledger lines against a bill's, line by line, in linear time: every difference sorted, and both sides' totals.
//!
//! Keys: a charge and a reversal by `out_trade_no`, a refund by `out_refund_no` (by `out_trade_no` when it
//! has none). The ledger's lines are put in one hash map by (kind, key); the bill's lines are walked once
//! against it. The bill's view of an order's state (paid, refunded, reversed) comes from its refund and
//! reversal lines for that `out_trade_no`, and is compared with the ledger's state on matched charges.
//! A ledger charge held as failed that the bill does not have is an agreement, not a difference.

use std::collections::{HashMap, HashSet, hash_map::Entry};

use super::{
    Bill, BillLine, DayTotals, Difference, DifferenceKind, LedgerLine, LineKind, OrderState, ReconcileError,
    Reconciliation, Side,
};

fn ledger_key(line: &LedgerLine) -> (LineKind, &str) {
    match (line.kind, &line.out_refund_no) {
        (LineKind::Refund, Some(number)) => (LineKind::Refund, number.as_str()),
        (kind, _) => (kind, line.out_trade_no.as_str()),
    }
}

fn bill_key(line: &BillLine) -> (LineKind, &str) {
    match (line.kind, &line.out_refund_no) {
        (LineKind::Refund, Some(number)) => (LineKind::Refund, number.as_str()),
        (kind, _) => (kind, line.out_trade_no.as_str()),
    }
}

fn add(sum: &mut i64, fen: i64, what: &'static str) -> Result<(), ReconcileError> {
    *sum = sum.checked_add(fen).ok_or(ReconcileError::Overflow(what))?;
    Ok(())
}

impl DayTotals {
    fn add(&mut self, kind: LineKind, amount: i64, fee: i64) -> Result<(), ReconcileError> {
        match kind {
            LineKind::Charge => {
                self.charges += 1;
                add(&mut self.charged, amount, "charges")?;
            }
            LineKind::Refund => {
                self.refunds += 1;
                add(&mut self.refunded, amount, "refunds")?;
            }
            LineKind::Reversal => {
                self.reversals += 1;
                add(&mut self.reversed, amount, "reversals")?;
            }
        }
        add(&mut self.fees, fee, "fees")
    }

    fn close(mut self) -> Result<DayTotals, ReconcileError> {
        let out = self.refunded.checked_add(self.reversed).and_then(|o| o.checked_add(self.fees));
        self.net = out.and_then(|o| self.charged.checked_sub(o)).ok_or(ReconcileError::Overflow("net"))?;
        Ok(self)
    }
}

fn difference(
    kind: DifferenceKind,
    line_kind: LineKind,
    out_trade_no: &str,
    out_refund_no: Option<&str>,
) -> Difference {
    Difference {
        kind,
        line_kind,
        out_trade_no: out_trade_no.to_owned(),
        out_refund_no: out_refund_no.map(str::to_owned),
        ledger_amount: None,
        bill_amount: None,
        ledger_state: None,
        bill_state: None,
        side: None,
    }
}

fn of_ledger(kind: DifferenceKind, line: &LedgerLine) -> Difference {
    Difference {
        ledger_amount: Some(line.amount),
        ..difference(kind, line.kind, &line.out_trade_no, line.out_refund_no.as_deref())
    }
}

fn of_bill(kind: DifferenceKind, line: &BillLine) -> Difference {
    Difference {
        bill_amount: Some(line.amount),
        ..difference(kind, line.kind, &line.out_trade_no, line.out_refund_no.as_deref())
    }
}

/// Matches the day's `ledger_lines` against `bill` (lines of other providers than the bill's are left out).
///
/// Linear in the lines on both sides (one hash map of the ledger's keys, one pass over the bill);
/// the differences come sorted (by kind, line kind, `out_trade_no`, `out_refund_no`, then the rest).
pub fn reconcile(ledger_lines: &[LedgerLine], bill: &Bill) -> Result<Reconciliation, ReconcileError> {
    let ledger: Vec<&LedgerLine> = ledger_lines.iter().filter(|l| l.provider == bill.provider).collect();
    let mut differences = Vec::new();
    let mut ledger_totals = DayTotals::default();
    let mut index: HashMap<(LineKind, &str), u32> = HashMap::with_capacity(ledger.len());
    for (i, line) in ledger.iter().enumerate() {
        if line.amount <= 0 {
            return Err(ReconcileError::BadAmount { out_trade_no: line.out_trade_no.clone(), amount: line.amount });
        }
        let moved = !(line.kind == LineKind::Charge && matches!(line.state, OrderState::Pending | OrderState::Failed));
        if moved {
            ledger_totals.add(line.kind, line.amount, 0)?;
        }
        let at = u32::try_from(i).map_err(|_| ReconcileError::Overflow("ledger lines"))?;
        match index.entry(ledger_key(line)) {
            Entry::Occupied(_) => {
                differences.push(Difference { side: Some(Side::Ledger), ..of_ledger(DifferenceKind::Duplicate, line) });
            }
            Entry::Vacant(slot) => {
                slot.insert(at);
            }
        }
    }
    // The bill's view of the orders it refunds or reverses; every other order it has is paid.
    let mut after: HashMap<&str, OrderState> = HashMap::new();
    for line in bill.lines.iter().filter(|l| l.kind != LineKind::Charge) {
        let state = if line.kind == LineKind::Reversal { OrderState::Reversed } else { OrderState::Refunded };
        after
            .entry(line.out_trade_no.as_str())
            .and_modify(|s| {
                if state == OrderState::Reversed {
                    *s = state;
                }
            })
            .or_insert(state);
    }
    let mut bill_totals = DayTotals::default();
    let mut matched = vec![false; ledger.len()];
    let mut clean = 0u64;
    let mut unknown: HashSet<(LineKind, &str)> = HashSet::new();
    for line in &bill.lines {
        bill_totals.add(line.kind, line.amount, line.fee)?;
        let key = bill_key(line);
        let Some(&at) = index.get(&key) else {
            let kind = if unknown.insert(key) { DifferenceKind::MissingInLedger } else { DifferenceKind::Duplicate };
            let side = (kind == DifferenceKind::Duplicate).then_some(Side::Bill);
            differences.push(Difference { side, ..of_bill(kind, line) });
            continue;
        };
        let at = at as usize;
        if matched[at] {
            differences.push(Difference { side: Some(Side::Bill), ..of_bill(DifferenceKind::Duplicate, line) });
            continue;
        }
        matched[at] = true;
        let ours = ledger[at];
        let mut agree = true;
        if ours.amount != line.amount {
            agree = false;
            differences
                .push(Difference { ledger_amount: Some(ours.amount), ..of_bill(DifferenceKind::AmountMismatch, line) });
        }
        if line.kind == LineKind::Charge {
            let theirs = after.get(line.out_trade_no.as_str()).copied().unwrap_or(OrderState::Paid);
            if ours.state != theirs {
                agree = false;
                differences.push(Difference {
                    ledger_amount: Some(ours.amount),
                    ledger_state: Some(ours.state),
                    bill_state: Some(theirs),
                    ..of_bill(DifferenceKind::StateMismatch, line)
                });
            }
        }
        if agree {
            clean += 1;
        }
    }
    for (at, line) in ledger.iter().enumerate() {
        let first = index.get(&ledger_key(line)) == Some(&(at as u32));
        let failed = line.kind == LineKind::Charge && line.state == OrderState::Failed;
        if !matched[at] && first && !failed {
            differences.push(of_ledger(DifferenceKind::MissingInBill, line));
        }
    }
    differences.sort_unstable();
    Ok(Reconciliation {
        provider: bill.provider,
        day: bill.day.clone(),
        differences,
        ledger: ledger_totals.close()?,
        bill: bill_totals.close()?,
        matched: clean,
    })
}

#[cfg(test)]
mod tests {
    use checkout_storage::{Provider, UnixMillis};

    use super::*;
    use crate::reconcile::BillTotals;

    fn ledger(kind: LineKind, out_trade_no: &str, refund: Option<&str>, amount: i64, state: OrderState) -> LedgerLine {
        LedgerLine {
            provider: Provider::WeChatPay,
            kind,
            out_trade_no: out_trade_no.into(),
            out_refund_no: refund.map(Into::into),
            amount,
            state,
            time: UnixMillis(0),
        }
    }

    fn billed(kind: LineKind, out_trade_no: &str, refund: Option<&str>, amount: i64) -> BillLine {
        BillLine {
            kind,
            out_trade_no: out_trade_no.into(),
            out_refund_no: refund.map(Into::into),
            amount,
            fee: if kind == LineKind::Charge { (amount * 6 + 500) / 1000 } else { 0 },
            time: UnixMillis(0),
            transaction_id: format!("T{out_trade_no}"),
        }
    }

    fn bill(lines: Vec<BillLine>) -> Bill {
        Bill { provider: Provider::WeChatPay, day: Some("2026-11-25".into()), lines, totals: BillTotals::default() }
    }

    use LineKind::{Charge, Refund, Reversal};
    use OrderState::{Failed, Paid, Pending, Refunded, Reversed};

    #[test]
    fn a_clean_day_has_no_differences_and_equal_totals() {
        let ours = vec![
            ledger(Charge, "A", None, 1000, Refunded),
            ledger(Refund, "A", Some("RA"), 250, Refunded),
            ledger(Charge, "B", None, 500, Reversed),
            ledger(Reversal, "B", None, 500, Reversed),
            ledger(Charge, "C", None, 700, Paid),
            ledger(Charge, "D", None, 900, Failed),
            LedgerLine { provider: Provider::Alipay, ..ledger(Charge, "Z", None, 1, Paid) },
        ];
        let theirs = bill(vec![
            billed(Charge, "A", None, 1000),
            billed(Charge, "B", None, 500),
            billed(Refund, "A", Some("RA"), 250),
            billed(Reversal, "B", None, 500),
            billed(Charge, "C", None, 700),
        ]);
        let result = reconcile(&ours, &theirs).unwrap();
        assert!(result.is_clean(), "{:?}", result.differences);
        assert_eq!(result.matched, 5);
        assert_eq!((result.ledger.charged, result.ledger.refunded, result.ledger.reversed), (2200, 250, 500));
        assert_eq!((result.bill.charged, result.bill.refunded, result.bill.reversed), (2200, 250, 500));
        assert_eq!(result.bill.fees, 6 + 3 + 4);
        assert_eq!(result.bill.net, 2200 - 250 - 500 - 13);
        assert_eq!(result.ledger.net, 2200 - 250 - 500);
    }

    #[test]
    fn every_kind_of_difference_is_found_and_sorted() {
        let ours = vec![
            ledger(Charge, "PAID", None, 1000, Paid),
            ledger(Charge, "AMOUNT", None, 1000, Paid),
            ledger(Charge, "REVERSED-BY-THEM", None, 300, Paid),
            ledger(Charge, "PENDING", None, 400, Pending),
            ledger(Charge, "FAILED-BUT-PAID", None, 450, Failed),
            ledger(Charge, "ONLY-OURS", None, 200, Paid),
            ledger(Charge, "TWICE-OURS", None, 100, Paid),
            ledger(Charge, "TWICE-OURS", None, 100, Paid),
            ledger(Refund, "PAID", Some("R-ONLY-OURS"), 100, Refunded),
        ];
        let theirs = bill(vec![
            billed(Charge, "PAID", None, 1000),
            billed(Charge, "AMOUNT", None, 999),
            billed(Charge, "REVERSED-BY-THEM", None, 300),
            billed(Reversal, "REVERSED-BY-THEM", None, 300),
            billed(Charge, "PENDING", None, 400),
            billed(Charge, "FAILED-BUT-PAID", None, 450),
            billed(Charge, "ONLY-THEIRS", None, 800),
            billed(Charge, "TWICE-OURS", None, 100),
            billed(Charge, "PAID", None, 1000),
            billed(Refund, "X", Some("R-ONLY-THEIRS"), 50),
            billed(Refund, "X", Some("R-ONLY-THEIRS"), 50),
        ]);
        let result = reconcile(&ours, &theirs).unwrap();
        let summary: Vec<(DifferenceKind, LineKind, &str, Option<Side>)> =
            result.differences.iter().map(|d| (d.kind, d.line_kind, d.out_trade_no.as_str(), d.side)).collect();
        use DifferenceKind::*;
        assert_eq!(
            summary,
            [
                (MissingInLedger, Charge, "ONLY-THEIRS", None),
                (MissingInLedger, Refund, "X", None),
                (MissingInLedger, Reversal, "REVERSED-BY-THEM", None),
                (MissingInBill, Charge, "ONLY-OURS", None),
                (MissingInBill, Refund, "PAID", None),
                (AmountMismatch, Charge, "AMOUNT", None),
                (StateMismatch, Charge, "FAILED-BUT-PAID", None),
                (StateMismatch, Charge, "PENDING", None),
                (StateMismatch, Charge, "REVERSED-BY-THEM", None),
                (Duplicate, Charge, "PAID", Some(Side::Bill)),
                (Duplicate, Charge, "TWICE-OURS", Some(Side::Ledger)),
                (Duplicate, Refund, "X", Some(Side::Bill)),
            ]
        );
        let amount = &result.differences[5];
        assert_eq!((amount.ledger_amount, amount.bill_amount), (Some(1000), Some(999)));
        let reversed = &result.differences[8];
        assert_eq!((reversed.ledger_state, reversed.bill_state), (Some(Paid), Some(Reversed)));
        assert_eq!(result.differences[6].ledger_state, Some(Failed));
        // Pending and failed charges are not money the ledger counts.
        assert_eq!(result.ledger.charges, 6);
        assert_eq!(result.matched, 2);
    }

    #[test]
    fn an_empty_day_is_clean_and_bad_ledger_amounts_are_refused() {
        let result = reconcile(&[], &bill(Vec::new())).unwrap();
        assert!(result.is_clean());
        assert_eq!(result.bill, DayTotals::default());
        let error = reconcile(&[ledger(Charge, "A", None, 0, Paid)], &bill(Vec::new())).unwrap_err();
        assert!(matches!(error, ReconcileError::BadAmount { amount: 0, .. }));
        let huge = vec![ledger(Charge, "A", None, i64::MAX, Paid), ledger(Charge, "B", None, 1, Paid)];
        assert_eq!(reconcile(&huge, &bill(Vec::new())).unwrap_err(), ReconcileError::Overflow("charges"));
    }
}
