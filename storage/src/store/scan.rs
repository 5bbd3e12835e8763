//! Opening the ledger: one pass that reads every live record (refusing the folder if one does not decode),
//! sums them up, and adds what each closed day counted from its [`ClosedDay`].
//!
//! The records of a closed day found still live were left by a close that stopped after its commit point
//! (see `archive.rs`): they are in the archive already, so they are not counted, and they are removed.

use std::collections::{BTreeSet, HashMap};

use super::{Result, Store, decode, io, refund_index_key};
use crate::{
    AnsweredRequest, AuditRecord, BusinessDay, ChargeRecord, ClosedDay, LaneClosure, LaneRecord, LaneTokenRecord,
    OutTradeNo, Product, Provider, RefundRecord, SaleRecord, ShiftRecord, summary::LedgerSummary,
};

/// The names of the trees of live records.
pub(super) const CLOSED_DAYS: &str = "closed_days";
pub(super) const CHARGE_PROVIDERS: &str = "charge_providers";

/// Records of closed days that are still live, to remove.
#[derive(Default)]
pub(super) struct Leftovers {
    pub(super) charges: Vec<ChargeRecord>,
    pub(super) sales: Vec<SaleRecord>,
    pub(super) refunds: Vec<RefundRecord>,
}

impl Leftovers {
    pub(super) fn is_empty(&self) -> bool {
        self.charges.is_empty() && self.sales.is_empty() && self.refunds.is_empty()
    }
}

/// What the pass found.
pub(super) struct Scan {
    pub(super) summary: LedgerSummary,
    pub(super) closed: BTreeSet<BusinessDay>,
    pub(super) leftovers: Leftovers,
    /// Keys of refunds missing from `refunds_by_order` (a folder of an earlier build).
    pub(super) unindexed_refunds: Vec<Vec<u8>>,
}

fn each<T: super::Record>(db: &sled::Db, name: &'static str, mut f: impl FnMut(T) -> Result<()>) -> Result<()> {
    for entry in db.open_tree(name).map_err(io("opening a tree"))?.iter() {
        let (k, v) = entry.map_err(io("reading"))?;
        f(decode(name, &k, &v)?)?;
    }
    Ok(())
}

/// Reads every live record once: a record that does not decode refuses the folder.
pub(super) fn scan_ledger(db: &sled::Db) -> Result<Scan> {
    let mut summary = LedgerSummary::default();
    let mut closed = BTreeSet::new();
    each::<ClosedDay>(db, CLOSED_DAYS, |day| {
        summary.closed_day(&day);
        closed.insert(day.day);
        Ok(())
    })?;
    // The provider of each payment a live sale or refund may name: live charges, and the archived ones
    // that live records name (kept when their day closed, or when a refund of them was recorded).
    let mut providers: HashMap<OutTradeNo, Provider> = HashMap::new();
    for entry in db.open_tree(CHARGE_PROVIDERS).map_err(io("opening a tree"))?.iter() {
        let (k, v) = entry.map_err(io("reading"))?;
        let provider: Provider = decode(CHARGE_PROVIDERS, &k, &v)?;
        let out_trade_no =
            OutTradeNo::parse(&String::from_utf8_lossy(&k)).map_err(|e| super::StorageError::Corrupt {
                tree: CHARGE_PROVIDERS,
                key: String::from_utf8_lossy(&k).into_owned(),
                reason: e.to_string(),
            })?;
        providers.insert(out_trade_no, provider);
    }
    let mut leftovers = Leftovers::default();
    each::<ChargeRecord>(db, "charges", |charge| {
        if closed.contains(&BusinessDay::of(charge.created_at)) {
            leftovers.charges.push(charge);
        } else {
            summary.charge(&charge, 1);
            providers.insert(charge.out_trade_no.clone(), charge.provider);
        }
        Ok(())
    })?;
    each::<SaleRecord>(db, "sales", |sale| {
        if closed.contains(&BusinessDay::of(sale.finished_at)) {
            leftovers.sales.push(sale);
        } else {
            summary.sale(&sale, providers.get(&sale.out_trade_no).copied());
        }
        Ok(())
    })?;
    let refunds_by_order = db.open_tree("refunds_by_order").map_err(io("opening a tree"))?;
    let mut unindexed_refunds = Vec::new();
    each::<RefundRecord>(db, "refunds", |refund| {
        if closed.contains(&BusinessDay::of(refund.created_at)) {
            leftovers.refunds.push(refund);
            return Ok(());
        }
        summary.refund(&refund, providers.get(&refund.out_trade_no).copied(), 1);
        let key = refund_index_key(&refund);
        if !refunds_by_order.contains_key(&key).map_err(io("reading"))? {
            unindexed_refunds.push(key);
        }
        Ok(())
    })?;
    each::<ShiftRecord>(db, "shifts", |shift| {
        summary.shift(&shift, 1);
        Ok(())
    })?;
    each::<Product>(db, "products", |_| Ok(()))?;
    each::<LaneRecord>(db, "lanes", |_| Ok(()))?;
    each::<LaneTokenRecord>(db, "lane_tokens", |_| Ok(()))?;
    each::<AuditRecord>(db, "audit", |_| Ok(()))?;
    each::<AnsweredRequest>(db, "requests", |_| Ok(()))?;
    each::<LaneClosure>(db, "lane_closures", |_| Ok(()))?;
    each::<OutTradeNo>(db, "code_uses", |_| Ok(()))?;
    Ok(Scan { summary, closed, leftovers, unindexed_refunds })
}

impl Store {
    /// Finishes what the pass found: indexes unindexed refunds, removes leftovers of closed days, and builds
    /// the indexes by time of a folder of an earlier build.
    pub(super) fn after_scan(&self, leftovers: Leftovers, unindexed_refunds: Vec<Vec<u8>>) -> Result<()> {
        let mut changed = !unindexed_refunds.is_empty();
        for key in unindexed_refunds {
            self.folder.write(|| self.refunds_by_order.insert(key, &[]).map(drop).map_err(io("indexing refunds")))?;
        }
        if !leftovers.is_empty() {
            tracing::info!(
                charges = leftovers.charges.len(),
                sales = leftovers.sales.len(),
                refunds = leftovers.refunds.len(),
                "finishing the close of a day interrupted after its commit: its records are archived, removing them from the live ledger"
            );
            self.remove_live(&leftovers)?;
            changed = true;
        }
        // A folder of an earlier build has no indexes by time: they are built once.
        if !self.folder.db.contains_key(super::windows::TIME_INDEXES_BUILT).map_err(io("reading"))? {
            for charge in self.charges()? {
                self.index_charge_time(&charge)?;
            }
            for sale in self.sales()? {
                self.index_sale_time(&sale)?;
            }
            for refund in self.refunds()? {
                self.index_refund_time(&refund)?;
            }
            self.folder.write(|| {
                self.folder
                    .db
                    .insert(super::windows::TIME_INDEXES_BUILT, &[])
                    .map(drop)
                    .map_err(io("noting the indexes"))
            })?;
            changed = true;
        }
        if changed { self.commit_blocking() } else { Ok(()) }
    }
}
