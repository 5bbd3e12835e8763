//! Totals of a time window: whole business days from the ledger's summary, the hours at either end from indexes of charges, sales and refunds by time (a closed day's in its month's archive).

use std::collections::BTreeSet;

use super::{Result, Store, get, io};
use crate::{
    BusinessDay, ChargeRecord, ChargeStatus, RefundRecord, RefundStatus, SaleRecord, UnixMillis,
    summary::{Tally, TallyFilter},
};

/// The key of a record in an index by time: the moment (so that keys sort by it), then the record's key.
pub(super) fn time_key(at: UnixMillis, id: &str) -> Vec<u8> {
    let mut key = ((at.0 as u64) ^ (1 << 63)).to_be_bytes().to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

/// The ledger's own key under which the indexes by time are known to hold every record.
pub(super) const TIME_INDEXES_BUILT: &[u8] = b"checkout:time-indexes-built-2";

impl Store {
    /// Indexes a charge by when it was made (idempotent: a charge's creation never changes).
    pub(super) fn index_charge_time(&self, charge: &ChargeRecord) -> Result<()> {
        let key = time_key(charge.created_at, charge.out_trade_no.as_str());
        self.folder.write(|| self.charges_by_time.insert(key, &[]).map(drop).map_err(io("indexing a charge")))
    }

    /// Indexes a reversed charge by when its reversal was confirmed (a bill shows it that day).
    pub(super) fn index_reversal_time(&self, charge: &ChargeRecord) -> Result<()> {
        let (ChargeStatus::Reversed, Some(at)) = (charge.status, charge.settled_at) else { return Ok(()) };
        let key = time_key(at, charge.out_trade_no.as_str());
        self.folder.write(|| self.reversals_by_time.insert(key, &[]).map(drop).map_err(io("indexing a reversal")))
    }

    /// Hands each charge made from `start` until `end` (not included) to `visit`, one at a time (a busy day's charges are
    /// never all held at once).
    pub fn each_charge_made_between(
        &self,
        start: UnixMillis,
        end: UnixMillis,
        mut visit: impl FnMut(ChargeRecord) -> Result<()>,
    ) -> Result<()> {
        for entry in self.charges_by_time.range(time_key(start, "")..time_key(end, "")) {
            let (key, _) = entry.map_err(io("reading"))?;
            if let Some(charge) = get::<ChargeRecord>(&self.charges, "charges", key.get(8..).unwrap_or_default())? {
                visit(charge)?;
            }
        }
        Ok(())
    }

    /// Charges whose reversal was confirmed from `start` until `end`.
    pub fn charges_reversed_between(&self, start: UnixMillis, end: UnixMillis) -> Result<Vec<ChargeRecord>> {
        self.read_between(&self.reversals_by_time, &self.charges, "charges", start, end)
    }

    /// Refunds asked from `start` until `end`.
    pub fn refunds_asked_between(&self, start: UnixMillis, end: UnixMillis) -> Result<Vec<RefundRecord>> {
        self.read_between(&self.refunds_by_time, &self.refunds, "refunds", start, end)
    }

    fn read_between<T: super::Record>(
        &self,
        index: &sled::Tree,
        records: &sled::Tree,
        name: &'static str,
        start: UnixMillis,
        end: UnixMillis,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for entry in index.range(time_key(start, "")..time_key(end, "")) {
            let (key, _) = entry.map_err(io("reading"))?;
            if let Some(record) = get::<T>(records, name, key.get(8..).unwrap_or_default())? {
                out.push(record);
            }
        }
        Ok(out)
    }

    pub(super) fn index_sale_time(&self, sale: &SaleRecord) -> Result<()> {
        let key = time_key(sale.finished_at, sale.sale_id.as_str());
        self.folder.write(|| self.sales_by_time.insert(key, &[]).map(drop).map_err(io("indexing a sale")))
    }

    pub(super) fn index_refund_time(&self, refund: &RefundRecord) -> Result<()> {
        let key = time_key(refund.created_at, &refund.out_refund_no);
        self.folder.write(|| self.refunds_by_time.insert(key, &[]).map(drop).map_err(io("indexing a refund")))
    }

    /// What the ledger counted of the records `filter` admits, made from `start` until `end` (not included;
    /// either open): sales by when they finished, charges by when they were made, refunds by when they were
    /// asked. Whole business days come from the summary; only the hours at either end are read record by
    /// record.
    pub fn tally_between(
        &self,
        filter: &TallyFilter,
        start: Option<UnixMillis>,
        end: Option<UnixMillis>,
    ) -> Result<Tally> {
        let start = start.unwrap_or(UnixMillis(i64::MIN));
        let end = end.unwrap_or(UnixMillis(i64::MAX));
        if start >= end {
            return Ok(Tally::default());
        }
        let first_day = BusinessDay::of(start);
        let first_whole = if first_day.start() == start { first_day } else { first_day.next() };
        let after_whole = BusinessDay::of(end);
        if first_whole >= after_whole {
            return self.read_tally(filter, start, end);
        }
        let mut tally = self.summary().days_tally(first_whole, after_whole, filter);
        if start < first_whole.start() {
            tally.absorb(&self.read_tally(filter, start, first_whole.start())?);
        }
        if after_whole.start() < end {
            tally.absorb(&self.read_tally(filter, after_whole.start(), end)?);
        }
        Ok(tally)
    }

    /// A window's tally read record by record through the indexes by time: the live ledger's, and for the
    /// closed days it covers, their month's archive.
    fn read_tally(&self, filter: &TallyFilter, start: UnixMillis, end: UnixMillis) -> Result<Tally> {
        let closed = self.days().closed.clone();
        let mut tally = self.read_tally_in(&self.live_trees(), filter, start, end, &closed)?;
        let last = BusinessDay::of(UnixMillis(end.0.saturating_sub(1)));
        for day in closed.range(BusinessDay::of(start)..=last) {
            let trees = RecordTrees::of(&self.month_db(&day.month(), false)?)?;
            let (from, until) = (start.max(day.start()), end.min(day.end()));
            tally.absorb(&self.read_tally_in(&trees, filter, from, until, &BTreeSet::new())?);
        }
        Ok(tally)
    }

    /// The tally of the records of `trees` in the window, but those of the days `skip` (closed days whose
    /// records a close not yet finished left in the live ledger: the archive counts them).
    fn read_tally_in(
        &self,
        trees: &RecordTrees,
        filter: &TallyFilter,
        start: UnixMillis,
        end: UnixMillis,
        skip: &BTreeSet<BusinessDay>,
    ) -> Result<Tally> {
        let mut tally = Tally::default();
        let range = |tree: &sled::Tree| tree.range(time_key(start, "")..time_key(end, ""));
        let id_of = |key: &[u8]| String::from_utf8_lossy(key.get(8..).unwrap_or_default()).into_owned();
        let skipped = |at: UnixMillis| skip.contains(&BusinessDay::of(at));
        for entry in range(&trees.charges_by_time) {
            let (key, _) = entry.map_err(io("reading"))?;
            let Some(charge) = get::<ChargeRecord>(&trees.charges, "charges", id_of(&key).as_bytes())? else {
                continue;
            };
            if skipped(charge.created_at) || !filter.admits(&charge.lane_id, Some(charge.provider)) {
                continue;
            }
            match charge.status {
                ChargeStatus::Paid => {
                    tally.payments_paid += 1;
                    tally.paid_total.add(charge.amount, 1);
                }
                ChargeStatus::NewCodeNeeded | ChargeStatus::Failed | ChargeStatus::Reversed => {
                    tally.payments_declined += 1;
                }
                ChargeStatus::Pending | ChargeStatus::Unknown | ChargeStatus::Reversing => {}
            }
        }
        for entry in range(&trees.sales_by_time) {
            let (key, _) = entry.map_err(io("reading"))?;
            let Some(sale) = get::<SaleRecord>(&trees.sales, "sales", id_of(&key).as_bytes())? else { continue };
            if skipped(sale.finished_at) {
                continue;
            }
            let provider = self.provider_of(&sale.out_trade_no, false)?;
            if filter.admits(&sale.lane_id, provider) {
                tally.sales += 1;
                tally.items = tally.items.saturating_add(sale.items());
                tally.sales_total.add(sale.total, 1);
            }
        }
        for entry in range(&trees.refunds_by_time) {
            let (key, _) = entry.map_err(io("reading"))?;
            let Some(refund) = get::<RefundRecord>(&trees.refunds, "refunds", id_of(&key).as_bytes())? else {
                continue;
            };
            if skipped(refund.created_at) {
                continue;
            }
            let provider = self.provider_of(&refund.out_trade_no, false)?;
            if refund.status == RefundStatus::Accepted && filter.admits(&refund.lane_id, provider) {
                tally.refunds += 1;
                tally.refunded_total.add(refund.amount, 1);
            }
        }
        Ok(tally)
    }

    /// The live ledger's trees of charges, sales and refunds.
    pub(super) fn live_trees(&self) -> RecordTrees {
        RecordTrees {
            charges: self.charges.clone(),
            sales: self.sales.clone(),
            refunds: self.refunds.clone(),
            charges_by_time: self.charges_by_time.clone(),
            sales_by_time: self.sales_by_time.clone(),
            refunds_by_time: self.refunds_by_time.clone(),
        }
    }
}

/// The trees of charges, sales and refunds and their indexes by time, of the live ledger or of a month's
/// archive (the same names, the same keys).
pub(super) struct RecordTrees {
    pub(super) charges: sled::Tree,
    pub(super) sales: sled::Tree,
    pub(super) refunds: sled::Tree,
    pub(super) charges_by_time: sled::Tree,
    pub(super) sales_by_time: sled::Tree,
    pub(super) refunds_by_time: sled::Tree,
}

impl RecordTrees {
    pub(super) fn of(db: &sled::Db) -> Result<RecordTrees> {
        let tree = |name: &str| db.open_tree(name).map_err(io("opening a tree"));
        Ok(RecordTrees {
            charges: tree("charges")?,
            sales: tree("sales")?,
            refunds: tree("refunds")?,
            charges_by_time: tree("charges_by_time")?,
            sales_by_time: tree("sales_by_time")?,
            refunds_by_time: tree("refunds_by_time")?,
        })
    }
}
