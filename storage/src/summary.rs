//! What the ledger sums up as records are written: totals per lane, takings per shift, refunds, the
//! unsettled queue and the open shifts, so that no read has to go through every record.
//!
//! Built once when the folder opens (one pass over the records, the pass that
//! also verifies them), then changed by every write of a charge, sale, refund
//! or shift: a write removes what the record it replaced counted and adds what
//! the new one counts. Removing and adding commute, so two writers of one
//! record may apply their changes in either order; membership (unsettled
//! charges, open shifts) is a count for the same reason.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::{
    BusinessDay, ChargeRecord, ChargeStatus, ClosedDay, Currency, LaneId, LaneProviderTally, Money, OutTradeNo,
    Provider, RefundRecord, RefundStatus, SaleRecord, ShiftId, ShiftRecord, UnixMillis,
};

/// Amounts summed per currency (a store has one; a record in another is kept apart, not mixed in).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sums(BTreeMap<Currency, i64>);

impl Sums {
    pub(crate) fn add(&mut self, amount: Money, sign: i64) {
        let sum = self.0.entry(amount.currency).or_insert(0);
        *sum = sum.saturating_add(amount.minor_units.saturating_mul(sign));
    }

    fn absorb(&mut self, other: &Sums) {
        for (currency, amount) in &other.0 {
            self.add(Money::new(*amount, *currency), 1);
        }
    }

    /// The sum in `currency`.
    pub fn of(&self, currency: Currency) -> Money {
        Money::new(self.0.get(&currency).copied().unwrap_or(0), currency)
    }
}

/// Sales and payments of the store or of one lane.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub sales: u64,
    pub items: u64,
    pub sales_total: Sums,
    pub payments_paid: u64,
    /// Charges that ended without money taken: a fresh code needed, failed, reversed.
    pub payments_declined: u64,
    pub paid_total: Sums,
    /// Accepted refunds.
    pub refunds: u64,
    pub refunded_total: Sums,
}

impl Tally {
    /// Adds `other` in.
    pub fn absorb(&mut self, other: &Tally) {
        self.sales = self.sales.saturating_add(other.sales);
        self.items = self.items.saturating_add(other.items);
        self.payments_paid = self.payments_paid.saturating_add(other.payments_paid);
        self.payments_declined = self.payments_declined.saturating_add(other.payments_declined);
        self.refunds = self.refunds.saturating_add(other.refunds);
        self.sales_total.absorb(&other.sales_total);
        self.paid_total.absorb(&other.paid_total);
        self.refunded_total.absorb(&other.refunded_total);
    }
}

/// Which records a tally counts: a lane's, a provider's (the sales and refunds of its charges), or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TallyFilter {
    pub lane_id: Option<LaneId>,
    pub provider: Option<Provider>,
}

impl TallyFilter {
    pub(crate) fn admits(&self, lane_id: &LaneId, provider: Option<Provider>) -> bool {
        self.lane_id.as_ref().is_none_or(|l| l == lane_id) && self.provider.is_none_or(|p| Some(p) == provider)
    }
}

/// What a cashier's shift took.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftTally {
    pub sales: u64,
    pub items: u64,
    pub sales_total: Sums,
    /// Charges of the shift's sales that needed a fresh code or failed.
    pub payments_declined: u64,
    /// Paid sales and their total, per provider.
    pub by_provider: BTreeMap<Provider, (u64, Sums)>,
}

impl ShiftTally {
    /// Adds `other` in.
    pub fn absorb(&mut self, other: &ShiftTally) {
        self.sales = self.sales.saturating_add(other.sales);
        self.items = self.items.saturating_add(other.items);
        self.payments_declined = self.payments_declined.saturating_add(other.payments_declined);
        self.sales_total.absorb(&other.sales_total);
        for (provider, (count, total)) in &other.by_provider {
            let (mine, sum) = self.by_provider.entry(*provider).or_default();
            *mine = mine.saturating_add(*count);
            sum.absorb(total);
        }
    }
}

/// Accepted refunds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefundTally {
    pub refunds: u64,
    pub refunded_total: Sums,
}

fn bump(count: &mut u64, sign: i64) {
    *count = if sign > 0 { count.saturating_add(1) } else { count.saturating_sub(1) };
}

fn bump_by(count: &mut u64, by: u64, sign: i64) {
    *count = if sign > 0 { count.saturating_add(by) } else { count.saturating_sub(by) };
}

/// A count of a membership that may go below zero while two changes cross; present above zero.
fn bump_member<K: Ord>(members: &mut BTreeMap<K, i64>, key: K, sign: i64) {
    let count = members.entry(key).or_insert(0);
    *count += sign;
}

#[derive(Debug, Default)]
pub(crate) struct LedgerSummary {
    store: Tally,
    lanes: BTreeMap<LaneId, Tally>,
    shifts: HashMap<ShiftId, ShiftTally>,
    refunds: RefundTally,
    /// Charges not yet final, by (created, out_trade_no): oldest first.
    unsettled: BTreeMap<(UnixMillis, OutTradeNo), i64>,
    /// Shifts not closed, with their lane.
    open_shifts: BTreeMap<(LaneId, ShiftId), i64>,
    /// Per business day, lane and provider: sales by when they finished, charges by when they were made,
    /// refunds by when they were asked.
    days: BTreeMap<(BusinessDay, LaneId, Option<Provider>), Tally>,
}

impl LedgerSummary {
    /// Counts (`sign` 1) or uncounts (-1) a charge.
    pub(crate) fn charge(&mut self, charge: &ChargeRecord, sign: i64) {
        let paid = charge.status == ChargeStatus::Paid;
        let declined =
            matches!(charge.status, ChargeStatus::NewCodeNeeded | ChargeStatus::Failed | ChargeStatus::Reversed);
        let day = (BusinessDay::of(charge.created_at), charge.lane_id.clone(), Some(charge.provider));
        for tally in
            [&mut self.store, self.lanes.entry(charge.lane_id.clone()).or_default(), self.days.entry(day).or_default()]
        {
            if paid {
                bump(&mut tally.payments_paid, sign);
                tally.paid_total.add(charge.amount, sign);
            } else if declined {
                bump(&mut tally.payments_declined, sign);
            }
        }
        if matches!(charge.status, ChargeStatus::NewCodeNeeded | ChargeStatus::Failed)
            && let Some(shift) = &charge.shift_id
        {
            bump(&mut self.shifts.entry(shift.clone()).or_default().payments_declined, sign);
        }
        if !charge.status.is_final() {
            bump_member(&mut self.unsettled, (charge.created_at, charge.out_trade_no.clone()), sign);
        }
    }

    /// Counts a sale, paid through `provider` (when its charge is known).
    pub(crate) fn sale(&mut self, sale: &SaleRecord, provider: Option<Provider>) {
        let items = sale.items();
        let day = (BusinessDay::of(sale.finished_at), sale.lane_id.clone(), provider);
        for tally in
            [&mut self.store, self.lanes.entry(sale.lane_id.clone()).or_default(), self.days.entry(day).or_default()]
        {
            bump(&mut tally.sales, 1);
            bump_by(&mut tally.items, items, 1);
            tally.sales_total.add(sale.total, 1);
        }
        if let Some(shift) = &sale.shift_id {
            let tally = self.shifts.entry(shift.clone()).or_default();
            bump(&mut tally.sales, 1);
            bump_by(&mut tally.items, items, 1);
            tally.sales_total.add(sale.total, 1);
            if let Some(provider) = provider {
                let (count, total) = tally.by_provider.entry(provider).or_default();
                bump(count, 1);
                total.add(sale.total, 1);
            }
        }
    }

    /// Counts (`sign` 1) or uncounts (-1) a refund of a charge of `provider`.
    pub(crate) fn refund(&mut self, refund: &RefundRecord, provider: Option<Provider>, sign: i64) {
        if refund.status == RefundStatus::Accepted {
            bump(&mut self.refunds.refunds, sign);
            self.refunds.refunded_total.add(refund.amount, sign);
            let day = (BusinessDay::of(refund.created_at), refund.lane_id.clone(), provider);
            for tally in [
                &mut self.store,
                self.lanes.entry(refund.lane_id.clone()).or_default(),
                self.days.entry(day).or_default(),
            ] {
                bump(&mut tally.refunds, sign);
                tally.refunded_total.add(refund.amount, sign);
            }
        }
    }

    /// What the whole business days `from` to `until` (not included) counted, of the records `filter` admits.
    pub(crate) fn days_tally(&self, from: BusinessDay, until: BusinessDay, filter: &TallyFilter) -> Tally {
        let mut out = Tally::default();
        if from >= until {
            return out;
        }
        let low = (from, LaneId::lowest(), None);
        for ((_, lane_id, provider), tally) in self.days.range(low..).take_while(|((day, _, _), _)| *day < until) {
            if filter.admits(lane_id, *provider) {
                out.absorb(tally);
            }
        }
        out
    }

    /// Adds in what `other` counted (a part of the records summed apart, on another thread).
    pub(crate) fn absorb(&mut self, other: LedgerSummary) {
        self.store.absorb(&other.store);
        for (lane, tally) in other.lanes {
            self.lanes.entry(lane).or_default().absorb(&tally);
        }
        for (shift, tally) in other.shifts {
            self.shifts.entry(shift).or_default().absorb(&tally);
        }
        self.refunds.refunds = self.refunds.refunds.saturating_add(other.refunds.refunds);
        self.refunds.refunded_total.absorb(&other.refunds.refunded_total);
        for (key, count) in other.unsettled {
            bump_member(&mut self.unsettled, key, count);
        }
        for (key, count) in other.open_shifts {
            bump_member(&mut self.open_shifts, key, count);
        }
        for (key, tally) in other.days {
            self.days.entry(key).or_default().absorb(&tally);
        }
    }

    /// Counts what a closed day's records counted, kept in its [`ClosedDay`] once they left for the archive.
    pub(crate) fn closed_day(&mut self, closed: &ClosedDay) {
        for part in &closed.by_lane {
            self.store.absorb(&part.tally);
            self.lanes.entry(part.lane_id.clone()).or_default().absorb(&part.tally);
            self.days.entry((closed.day, part.lane_id.clone(), part.provider)).or_default().absorb(&part.tally);
            self.refunds.refunds = self.refunds.refunds.saturating_add(part.tally.refunds);
            self.refunds.refunded_total.absorb(&part.tally.refunded_total);
        }
        for (shift, part) in &closed.shifts {
            self.shifts.entry(shift.clone()).or_default().absorb(part);
        }
    }

    /// What this summary holds per (lane, provider) and per shift: the parts of a [`ClosedDay`] when it
    /// summed only that day's records.
    pub(crate) fn into_day_parts(self) -> (Vec<LaneProviderTally>, Vec<(ShiftId, ShiftTally)>) {
        let by_lane = self
            .days
            .into_iter()
            .map(|((_, lane_id, provider), tally)| LaneProviderTally { lane_id, provider, tally })
            .collect();
        let mut shifts: Vec<_> = self.shifts.into_iter().collect();
        shifts.sort_by(|a, b| a.0.cmp(&b.0));
        (by_lane, shifts)
    }

    pub(crate) fn shift(&mut self, shift: &ShiftRecord, sign: i64) {
        if shift.closed_at.is_none() {
            bump_member(&mut self.open_shifts, (shift.lane_id.clone(), shift.shift_id.clone()), sign);
        }
    }

    pub(crate) fn totals(&self) -> (Tally, BTreeMap<LaneId, Tally>) {
        (self.store.clone(), self.lanes.clone())
    }

    pub(crate) fn lane(&self, lane_id: &LaneId) -> Tally {
        self.lanes.get(lane_id).cloned().unwrap_or_default()
    }

    pub(crate) fn shift_tally(&self, shift_id: &ShiftId) -> ShiftTally {
        self.shifts.get(shift_id).cloned().unwrap_or_default()
    }

    pub(crate) fn refunds(&self) -> RefundTally {
        self.refunds.clone()
    }

    pub(crate) fn unsettled_count(&self) -> usize {
        self.unsettled.values().filter(|n| **n > 0).count()
    }

    /// Up to `limit` unsettled charges after `after`, oldest first.
    pub(crate) fn unsettled_after(
        &self,
        after: Option<&(UnixMillis, OutTradeNo)>,
        limit: usize,
    ) -> Vec<(UnixMillis, OutTradeNo)> {
        let present = |(key, count): (&(UnixMillis, OutTradeNo), &i64)| (*count > 0).then(|| key.clone());
        match after {
            None => self.unsettled.iter().filter_map(present).take(limit).collect(),
            Some(after) => self
                .unsettled
                .range((std::ops::Bound::Excluded(after.clone()), std::ops::Bound::Unbounded))
                .filter_map(present)
                .take(limit)
                .collect(),
        }
    }

    /// The open shifts of `lane_id`, or of every lane.
    pub(crate) fn open_shifts(&self, lane_id: Option<&LaneId>) -> Vec<ShiftId> {
        self.open_shifts
            .iter()
            .filter(|((lane, _), count)| **count > 0 && lane_id.is_none_or(|l| l == lane))
            .map(|((_, shift), _)| shift.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossing_changes_of_one_record_end_where_they_would_in_order() {
        let mut summary = LedgerSummary::default();
        let key = (UnixMillis(5), OutTradeNo::parse("S1-L1-A-1").unwrap());
        // Pending -> Unknown -> Paid, the two changes applied in the wrong order.
        bump_member(&mut summary.unsettled, key.clone(), 1); // Pending written
        bump_member(&mut summary.unsettled, key.clone(), -1); // Unknown replaces Pending ...
        bump_member(&mut summary.unsettled, key.clone(), 1); // ... (its own count)
        bump_member(&mut summary.unsettled, key.clone(), -1); // Paid replaces Unknown
        assert_eq!(summary.unsettled_count(), 0);
        bump_member(&mut summary.unsettled, key.clone(), -1);
        bump_member(&mut summary.unsettled, key.clone(), 1);
        assert_eq!(summary.unsettled_count(), 0, "a removal before its addition cancels out");
    }
}
