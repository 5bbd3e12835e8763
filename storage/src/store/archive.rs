//! Closing a business day: its charges, sales and refunds move from the live ledger to its month's archive,
//! a [`ClosedDay`] with what they counted stays; and the reads that reach the archive.
//!
//! A close runs in four steps; the third is its commit point:
//!
//! 1. read the day's records through the indexes by time, refuse a day with a charge or refund not final,
//!    and sum them up into the [`ClosedDay`];
//! 2. write them into the month's database and the id index, and flush both;
//! 3. write the [`ClosedDay`] into the live ledger and commit it: the day is closed;
//! 4. remove the records (and their index entries) from the live ledger, and commit.
//!
//! A crash before step 3 leaves the day open with every record live: the copies step 2 made are never read
//! (archive reads answer only for closed days) and a later close writes them again; the close is undone.
//! A crash after step 3 leaves the day closed with every record in the archive (flushed before the commit
//! point); the records still live are skipped when the ledger opens, never counted, and removed: the
//! close is finished. Finishing is possible only from the commit point on, and undoing only before it,
//! because only then does one place hold every record; so a record in both places is counted by the side
//! the [`ClosedDay`] says owns its day, never twice.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    ops::Bound,
};

use super::{
    Result, StorageError, Store, all, encode, get, io, page_where, refund_index_key,
    scan::Leftovers,
    windows::{RecordTrees, time_key},
};
use crate::{
    BusinessDay, ChargeRecord, ChargeStatus, ClosedDay, DayClosure, LaneId, OutTradeNo, Provider, RefundRecord,
    RefundStatus, SaleRecord, UnixMillis,
    archive::{DayMark, check_month},
    summary::LedgerSummary,
};

/// The days closed and being closed, as the live ledger's writers and readers need them.
#[derive(Default)]
pub(super) struct DayStates {
    pub(super) closed: BTreeSet<BusinessDay>,
    closing: BTreeSet<BusinessDay>,
}

impl DayStates {
    pub(super) fn new(closed: BTreeSet<BusinessDay>) -> DayStates {
        DayStates { closed, closing: BTreeSet::new() }
    }
}

/// A day's records read from the live ledger, with what they count.
pub(super) struct DayMove {
    pub(super) records: Leftovers,
    pub(super) closed: ClosedDay,
    /// The day's payments that live records of other days (a sale finished after midnight, a refund)
    /// name: the live ledger keeps their provider, so that opening it never reads the archive.
    keep_providers: Vec<(OutTradeNo, Provider)>,
}

/// Writes to one tree, applied key by key: a close needs no atomic batch (its commit point is one record),
/// and sled 0.34 slows down badly on batches of thousands of keys.
#[derive(Default)]
struct Ops(Vec<(Vec<u8>, Option<Vec<u8>>)>);

impl Ops {
    fn insert(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.0.push((key.into(), Some(value.into())));
    }

    fn remove(&mut self, key: impl Into<Vec<u8>>) {
        self.0.push((key.into(), None));
    }

    fn apply(self, tree: &sled::Tree) -> std::result::Result<(), sled::Error> {
        for (key, value) in self.0 {
            match value {
                Some(value) => drop(tree.insert(key, value)?),
                None => drop(tree.remove(key)?),
            }
        }
        Ok(())
    }
}

fn day_of_key(tree: &'static str, id: &[u8], bytes: &[u8]) -> Result<BusinessDay> {
    let key: [u8; 4] = bytes.try_into().map_err(|_| StorageError::Corrupt {
        tree,
        key: String::from_utf8_lossy(id).into_owned(),
        reason: "a day of 4 bytes".to_owned(),
    })?;
    Ok(BusinessDay((u32::from_be_bytes(key) ^ 0x8000_0000) as i32))
}

impl Store {
    pub(super) fn days(&self) -> std::sync::MutexGuard<'_, DayStates> {
        self.days.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuses a write of a record of `day` once the day is closed or being closed.
    pub(super) fn admit(&self, day: BusinessDay, what: &'static str, id: &str) -> Result<()> {
        let days = self.days();
        if days.closed.contains(&day) || days.closing.contains(&day) {
            return Err(StorageError::DayClosed { day, what, id: id.to_owned() });
        }
        Ok(())
    }

    fn is_closed(&self, day: BusinessDay) -> bool {
        self.days().closed.contains(&day)
    }

    /// Closes the business day `day` (UTC+8): its charges (by when they were made), sales (by when they
    /// finished) and refunds (by when they were asked) move to the archive of its month, and the live
    /// ledger keeps a [`ClosedDay`] with what they counted, so every total stays the same. Refused for a
    /// day not over yet, a day already closed, and a day with a charge not final or a refund neither
    /// accepted nor refused. Blocking (it flushes three databases): run it on the blocking pool.
    pub fn archive_day(&self, day: BusinessDay, closure: DayClosure) -> Result<ClosedDay> {
        let _one_at_a_time = self.closing.lock().unwrap_or_else(|p| p.into_inner());
        self.begin_closing(day)?;
        let closed = self.close_marked_day(day, closure);
        self.days().closing.remove(&day);
        closed
    }

    fn close_marked_day(&self, day: BusinessDay, closure: DayClosure) -> Result<ClosedDay> {
        let moving = self.read_day(day, closure)?;
        self.copy_to_archive(&moving)?;
        self.commit_closed_day(&moving)?;
        self.remove_live(&moving.records)?;
        self.commit_blocking()?;
        tracing::info!(%day, charges = moving.closed.charges, sales = moving.closed.sales, refunds = moving.closed.refunds, "business day closed and archived");
        Ok(moving.closed)
    }

    /// Marks `day` as being closed: from here on its records take no write. Writes in flight finish first.
    pub(super) fn begin_closing(&self, day: BusinessDay) -> Result<()> {
        let today = BusinessDay::of(UnixMillis::now());
        if day >= today {
            return Err(StorageError::DayNotOver { day, today });
        }
        let _no_write_in_flight = self.gate.write().unwrap_or_else(|p| p.into_inner());
        let mut days = self.days();
        if days.closed.contains(&day) || days.closing.contains(&day) {
            return Err(StorageError::DayAlreadyClosed { day });
        }
        days.closing.insert(day);
        Ok(())
    }

    /// Step 1: the day's records, checked final, and what they count.
    pub(super) fn read_day(&self, day: BusinessDay, closure: DayClosure) -> Result<DayMove> {
        let range = |tree: &sled::Tree| tree.range(time_key(day.start(), "")..time_key(day.end(), ""));
        let id_of = |key: &[u8]| key.get(8..).unwrap_or_default().to_vec();
        let mut records = Leftovers::default();
        for entry in range(&self.charges_by_time) {
            let (key, _) = entry.map_err(io("reading"))?;
            records.charges.extend(get::<ChargeRecord>(&self.charges, "charges", &id_of(&key))?);
        }
        for entry in range(&self.sales_by_time) {
            let (key, _) = entry.map_err(io("reading"))?;
            records.sales.extend(get::<SaleRecord>(&self.sales, "sales", &id_of(&key))?);
        }
        for entry in range(&self.refunds_by_time) {
            let (key, _) = entry.map_err(io("reading"))?;
            records.refunds.extend(get::<RefundRecord>(&self.refunds, "refunds", &id_of(&key))?);
        }
        let unsettled: Vec<&str> =
            records.charges.iter().filter(|c| !c.status.is_final()).map(|c| c.out_trade_no.as_str()).collect();
        let unanswered: Vec<&str> = records
            .refunds
            .iter()
            .filter(|r| !matches!(r.status, RefundStatus::Accepted | RefundStatus::Refused))
            .map(|r| r.out_refund_no.as_str())
            .collect();
        if !unsettled.is_empty() || !unanswered.is_empty() {
            let few = |ids: &[&str]| ids.iter().take(5).copied().collect::<Vec<_>>().join(", ");
            return Err(StorageError::DayUnsettled {
                day,
                detail: format!(
                    "{} charges not final ({}), {} refunds neither accepted nor refused ({})",
                    unsettled.len(),
                    few(&unsettled),
                    unanswered.len(),
                    few(&unanswered)
                ),
            });
        }
        let mut part = LedgerSummary::default();
        let providers: HashMap<&OutTradeNo, Provider> =
            records.charges.iter().map(|c| (&c.out_trade_no, c.provider)).collect();
        let provider = |out_trade_no: &OutTradeNo| match providers.get(out_trade_no) {
            Some(provider) => Ok(Some(*provider)),
            None => self.provider_of(out_trade_no, false),
        };
        for charge in &records.charges {
            part.charge(charge, 1);
        }
        for sale in &records.sales {
            part.sale(sale, provider(&sale.out_trade_no)?);
        }
        for refund in &records.refunds {
            part.refund(refund, provider(&refund.out_trade_no)?, 1);
        }
        let keep_providers = self.providers_named_later(&records)?;
        let (by_lane, shifts) = part.into_day_parts();
        let counts = (records.charges.len() as u64, records.sales.len() as u64, records.refunds.len() as u64);
        let closed = ClosedDay { day, closure, charges: counts.0, sales: counts.1, refunds: counts.2, by_lane, shifts };
        Ok(DayMove { records, closed, keep_providers })
    }

    /// The payments among `records` that live records not among them name.
    fn providers_named_later(&self, records: &Leftovers) -> Result<Vec<(OutTradeNo, Provider)>> {
        let sales: HashSet<&str> = records.sales.iter().map(|s| s.sale_id.as_str()).collect();
        let refunds: HashSet<&str> = records.refunds.iter().map(|r| r.out_refund_no.as_str()).collect();
        let mut keep = Vec::new();
        for charge in &records.charges {
            let sold_later = !sales.contains(charge.sale_id.as_str())
                && get::<SaleRecord>(&self.sales, "sales", charge.sale_id.as_str().as_bytes())?
                    .is_some_and(|s| s.out_trade_no == charge.out_trade_no);
            let prefix = format!("{}/", charge.out_trade_no);
            let mut refunded_later = false;
            for entry in self.refunds_by_order.scan_prefix(prefix.as_bytes()) {
                let (key, _) = entry.map_err(io("reading"))?;
                refunded_later |= !refunds.contains(String::from_utf8_lossy(&key[prefix.len()..]).as_ref());
            }
            if sold_later || refunded_later {
                keep.push((charge.out_trade_no.clone(), charge.provider));
            }
        }
        Ok(keep)
    }

    /// Step 2: the day's records into its month's database and the id index, both flushed.
    pub(super) fn copy_to_archive(&self, moving: &DayMove) -> Result<()> {
        let day = moving.closed.day;
        let db = self.month_db(&day.month(), true)?;
        let trees = RecordTrees::of(&db)?;
        let (mut charges, mut charge_times) = (Ops::default(), Ops::default());
        for charge in &moving.records.charges {
            charges.insert(charge.out_trade_no.as_str().as_bytes(), encode("charge", charge)?);
            charge_times.insert(time_key(charge.created_at, charge.out_trade_no.as_str()), []);
        }
        let (mut sales, mut sale_times) = (Ops::default(), Ops::default());
        for sale in &moving.records.sales {
            sales.insert(sale.sale_id.as_str().as_bytes(), encode("sale", sale)?);
            sale_times.insert(time_key(sale.finished_at, sale.sale_id.as_str()), []);
        }
        let (mut refunds, mut refund_times) = (Ops::default(), Ops::default());
        for refund in &moving.records.refunds {
            refunds.insert(refund.out_refund_no.as_bytes(), encode("refund", refund)?);
            refund_times.insert(time_key(refund.created_at, &refund.out_refund_no), []);
        }
        let write = || io("writing the archive");
        for (tree, batch) in [
            (&trees.charges, charges),
            (&trees.charges_by_time, charge_times),
            (&trees.sales, sales),
            (&trees.sales_by_time, sale_times),
            (&trees.refunds, refunds),
            (&trees.refunds_by_time, refund_times),
        ] {
            batch.apply(tree).map_err(write())?;
        }
        let mark =
            DayMark { charges: moving.closed.charges, sales: moving.closed.sales, refunds: moving.closed.refunds };
        let mark = encode("day mark", &mark)?;
        db.open_tree("days").map_err(write())?.insert(day.key(), mark.clone()).map_err(write())?;
        db.flush().map_err(io("flushing the archive"))?;

        let index = self.archive_index()?;
        let tree = |name: &str| index.open_tree(name).map_err(write());
        let mut ids = [Ops::default(), Ops::default(), Ops::default(), Ops::default()];
        for charge in &moving.records.charges {
            ids[0].insert(charge.out_trade_no.as_str().as_bytes(), day.key());
        }
        for sale in &moving.records.sales {
            ids[1].insert(sale.sale_id.as_str().as_bytes(), day.key());
        }
        for refund in &moving.records.refunds {
            ids[2].insert(refund.out_refund_no.as_bytes(), day.key());
            ids[3].insert(refund_index_key(refund), day.key());
        }
        for (name, batch) in ["charges", "sales", "refunds", "refunds_by_order"].into_iter().zip(ids) {
            batch.apply(&tree(name)?).map_err(write())?;
        }
        tree("days")?.insert(day.key(), mark).map_err(write())?;
        index.flush().map_err(io("flushing the archive")).map(drop)
    }

    /// Step 3, the commit point: the [`ClosedDay`] in the live ledger, committed.
    pub(super) fn commit_closed_day(&self, moving: &DayMove) -> Result<()> {
        self.folder.write(|| {
            for (out_trade_no, provider) in &moving.keep_providers {
                let bytes = encode("provider", provider)?;
                self.charge_providers
                    .insert(out_trade_no.as_str().as_bytes(), bytes)
                    .map_err(io("keeping a provider"))?;
            }
            let bytes = encode("closed day", &moving.closed)?;
            self.closed_days.insert(moving.closed.day.key(), bytes).map_err(io("closing a day")).map(drop)
        })?;
        self.commit_blocking()?;
        self.days().closed.insert(moving.closed.day);
        Ok(())
    }

    /// Step 4: removes archived records from the live ledger, with their index entries and their codes'
    /// claims (a payment code lives a minute: one of a closed day can no longer be shown).
    pub(super) fn remove_live(&self, records: &Leftovers) -> Result<()> {
        let mut batches: [Ops; 8] = Default::default();
        for charge in &records.charges {
            batches[0].remove(charge.out_trade_no.as_str().as_bytes());
            batches[1].remove(time_key(charge.created_at, charge.out_trade_no.as_str()));
            if let Some(reversed_at) = charge.settled_at.filter(|_| charge.status == ChargeStatus::Reversed) {
                batches[7].remove(time_key(reversed_at, charge.out_trade_no.as_str()));
            }
        }
        for sale in &records.sales {
            batches[2].remove(sale.sale_id.as_str().as_bytes());
            batches[3].remove(time_key(sale.finished_at, sale.sale_id.as_str()));
        }
        for refund in &records.refunds {
            batches[4].remove(refund.out_refund_no.as_bytes());
            batches[5].remove(time_key(refund.created_at, &refund.out_refund_no));
            batches[6].remove(refund_index_key(refund));
        }
        let trees = [
            &self.charges,
            &self.charges_by_time,
            &self.sales,
            &self.sales_by_time,
            &self.refunds,
            &self.refunds_by_time,
            &self.refunds_by_order,
            &self.reversals_by_time,
        ];
        self.folder.write(|| {
            for (tree, batch) in trees.into_iter().zip(batches) {
                batch.apply(tree).map_err(io("removing archived records"))?;
            }
            for charge in &records.charges {
                let claim = encode("code use", &charge.out_trade_no)?;
                let _ = self
                    .code_uses
                    .compare_and_swap(charge.code_fingerprint.0, Some(claim), None as Option<&[u8]>)
                    .map_err(io("removing archived records"))?;
            }
            Ok(())
        })
    }

    /// The id index, opened (and checked against the closed days) on first use; made by the first close.
    fn archive_index(&self) -> Result<sled::Db> {
        let closed: Vec<BusinessDay> = self.days().closed.iter().copied().collect();
        let opened = self.archive.index(true)?;
        self.checked(opened, crate::archive::INDEX_DB, &closed)
    }

    /// The database of `month`, opened (and checked against the month's closed days) on first use; made
    /// when `create`.
    pub(super) fn month_db(&self, month: &str, create: bool) -> Result<sled::Db> {
        let closed: Vec<BusinessDay> = self.days().closed.iter().filter(|d| d.month() == month).copied().collect();
        let opened = self.archive.month(month, create)?;
        self.checked(opened, month, &closed)
    }

    /// A database just opened must have the mark of every day in `closed`: else the archive lost
    /// acknowledged writes (or is missing).
    fn checked(&self, opened: Option<(sled::Db, bool)>, name: &str, closed: &[BusinessDay]) -> Result<sled::Db> {
        let damaged = |detail: String| StorageError::Damaged { path: self.archive.path_of(name), detail };
        let Some((db, fresh)) = opened else {
            let days: Vec<String> = closed.iter().take(5).map(|d| d.to_string()).collect();
            return Err(damaged(format!("it is missing, and it holds the closed days {}", days.join(", "))));
        };
        if !fresh {
            return Ok(db);
        }
        let marks = db.open_tree("days").map_err(io("opening a tree"))?;
        for day in closed {
            if !marks.contains_key(day.key()).map_err(io("reading the archive"))? {
                self.archive.forget(name);
                return Err(damaged(format!("the archive has no record of the closed day {day}: it lost writes")));
            }
        }
        Ok(db)
    }

    /// The archived record `id` of `tree` ("charges", "sales", "refunds"), if its day is closed.
    fn archived<T: super::Record>(&self, tree: &'static str, id: &[u8]) -> Result<Option<T>> {
        let Some(day) = self.archived_day(tree, id)? else { return Ok(None) };
        get(&self.month_db(&day.month(), false)?.open_tree(tree).map_err(io("opening a tree"))?, tree, id)
    }

    /// The closed day of the archived record `id` of `tree`.
    fn archived_day(&self, tree: &'static str, id: &[u8]) -> Result<Option<BusinessDay>> {
        if self.days().closed.is_empty() {
            return Ok(None);
        }
        let index = self.archive_index()?.open_tree(tree).map_err(io("opening a tree"))?;
        let Some(bytes) = index.get(id).map_err(io("reading the archive"))? else { return Ok(None) };
        let day = day_of_key(tree, id, &bytes)?;
        Ok(self.is_closed(day).then_some(day))
    }

    pub(super) fn archived_charge(&self, out_trade_no: &OutTradeNo) -> Result<Option<ChargeRecord>> {
        self.archived("charges", out_trade_no.as_str().as_bytes())
    }

    /// The archived charges whose `out_trade_no` starts with `prefix`, through the id index.
    pub(super) fn archived_charges_with_prefix(&self, prefix: &str) -> Result<Vec<ChargeRecord>> {
        if self.days().closed.is_empty() {
            return Ok(Vec::new());
        }
        let index = self.archive_index()?.open_tree("charges").map_err(io("opening a tree"))?;
        let mut out = Vec::new();
        for entry in index.scan_prefix(prefix.as_bytes()) {
            let (key, _) = entry.map_err(io("reading the archive"))?;
            out.extend(self.archived::<ChargeRecord>("charges", &key)?);
        }
        Ok(out)
    }

    pub(super) fn archived_sale(&self, sale_id: &[u8]) -> Result<Option<SaleRecord>> {
        self.archived("sales", sale_id)
    }

    pub(super) fn archived_refund(&self, out_refund_no: &str) -> Result<Option<RefundRecord>> {
        self.archived("refunds", out_refund_no.as_bytes())
    }

    /// The provider of a payment: live, kept for an archived one, or read from the archive (and kept, with
    /// `keep`, so that the next opening counts the record naming it the same way without reading the archive).
    pub(super) fn provider_of(&self, out_trade_no: &OutTradeNo, keep: bool) -> Result<Option<Provider>> {
        let key = out_trade_no.as_str().as_bytes();
        if let Some(charge) = get::<ChargeRecord>(&self.charges, "charges", key)? {
            return Ok(Some(charge.provider));
        }
        if let Some(provider) = get::<Provider>(&self.charge_providers, "charge_providers", key)? {
            return Ok(Some(provider));
        }
        let Some(charge) = self.archived_charge(out_trade_no)? else { return Ok(None) };
        if keep {
            let bytes = encode("provider", &charge.provider)?;
            self.folder
                .write(|| self.charge_providers.insert(key, bytes).map(drop).map_err(io("keeping a provider")))?;
        }
        Ok(Some(charge.provider))
    }

    /// Up to `limit` refunds of one payment, after the index key `after`: live and archived, in key order.
    pub fn refunds_of_page(
        &self,
        out_trade_no: &OutTradeNo,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, RefundRecord)>> {
        let prefix = format!("{out_trade_no}/");
        let mut out = self.archived_refunds_of(out_trade_no, after, limit)?;
        let keys = match after {
            Some(after) => self.refunds_by_order.range::<&[u8], _>((Bound::Excluded(after), Bound::Unbounded)),
            None => self.refunds_by_order.range::<&[u8], _>(prefix.as_bytes()..),
        };
        let mut live = 0;
        for entry in keys {
            let (k, _) = entry.map_err(io("reading"))?;
            if !k.starts_with(prefix.as_bytes()) || live >= limit {
                break;
            }
            // A refund number given again for another payment is indexed under both: only its own counts.
            let refund_no = std::str::from_utf8(&k[prefix.len()..]).unwrap_or_default();
            if let Some(refund) = get::<RefundRecord>(&self.refunds, "refunds", refund_no.as_bytes())?
                .filter(|r| &r.out_trade_no == out_trade_no)
            {
                out.push((k.to_vec(), refund));
                live += 1;
            }
        }
        // A close interrupted after its commit point may leave a record in both places for a while.
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        out.truncate(limit);
        Ok(out)
    }

    /// Up to `limit` archived refunds of one payment after the index key `after`, with their keys.
    fn archived_refunds_of(
        &self,
        out_trade_no: &OutTradeNo,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, RefundRecord)>> {
        if self.days().closed.is_empty() {
            return Ok(Vec::new());
        }
        let index = self.archive_index()?.open_tree("refunds_by_order").map_err(io("opening a tree"))?;
        let prefix = format!("{out_trade_no}/");
        let keys = match after {
            Some(after) => index.range::<&[u8], _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
            None => index.range::<&[u8], _>(prefix.as_bytes()..),
        };
        let mut out = Vec::new();
        for entry in keys {
            let (key, _) = entry.map_err(io("reading the archive"))?;
            if !key.starts_with(prefix.as_bytes()) || out.len() >= limit {
                break;
            }
            let refund_no = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            if let Some(refund) = self.archived_refund(&refund_no)?.filter(|r| &r.out_trade_no == out_trade_no) {
                out.push((key.to_vec(), refund));
            }
        }
        Ok(out)
    }

    /// Every closed day, oldest first.
    pub fn closed_days(&self) -> Result<Vec<ClosedDay>> {
        all(&self.closed_days, "closed_days")
    }

    /// The closed day `day`, if it is closed.
    pub fn closed_day(&self, day: BusinessDay) -> Result<Option<ClosedDay>> {
        get(&self.closed_days, "closed_days", &day.key())
    }

    /// The months (`2026-11`) whose archive holds closed days, oldest first.
    pub fn archived_months(&self) -> Vec<String> {
        let mut months: Vec<String> = self.days().closed.iter().map(|d| d.month()).collect();
        months.dedup();
        months
    }

    /// The database of `month` when it holds a closed day; `None` (nothing archived) otherwise.
    fn archived_month(&self, month: &str) -> Result<Option<sled::Db>> {
        check_month(month)?;
        if !self.days().closed.iter().any(|d| d.month() == month) {
            return Ok(None);
        }
        self.month_db(month, false).map(Some)
    }

    /// [`Store::sales_page`] over the archive of `month` (`2026-11`).
    pub fn archived_sales_page(
        &self,
        month: &str,
        lane_id: Option<&LaneId>,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, SaleRecord)>> {
        let Some(db) = self.archived_month(month)? else { return Ok(Vec::new()) };
        let prefix = lane_id.map(|l| format!("{l}-")).unwrap_or_default();
        let tree = db.open_tree("sales").map_err(io("opening a tree"))?;
        page_where(&tree, "sales", prefix.as_bytes(), after, limit, |s: &SaleRecord| {
            self.is_closed(BusinessDay::of(s.finished_at))
        })
    }

    /// [`Store::charges_page`] over the archive of `month`.
    pub fn archived_charges_page(
        &self,
        month: &str,
        prefix: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, ChargeRecord)>> {
        let Some(db) = self.archived_month(month)? else { return Ok(Vec::new()) };
        let tree = db.open_tree("charges").map_err(io("opening a tree"))?;
        page_where(&tree, "charges", prefix.as_bytes(), after, limit, |c: &ChargeRecord| {
            self.is_closed(BusinessDay::of(c.created_at))
        })
    }

    /// [`Store::refunds_page`] over the archive of `month`.
    pub fn archived_refunds_page(
        &self,
        month: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, RefundRecord)>> {
        let Some(db) = self.archived_month(month)? else { return Ok(Vec::new()) };
        let tree = db.open_tree("refunds").map_err(io("opening a tree"))?;
        page_where(&tree, "refunds", b"", after, limit, |r: &RefundRecord| {
            self.is_closed(BusinessDay::of(r.created_at))
        })
    }
}
