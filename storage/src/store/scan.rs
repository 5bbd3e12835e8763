//! Opening the ledger: one pass that reads every live record (refusing the folder if one does not decode),
//! sums them up, and adds what each closed day counted from its [`ClosedDay`]. The charges, then the sales,
//! are read by two threads, a half of their keys each.
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

/// Half of a tree's keys, by a key between its first and its last.
#[derive(Clone, Copy)]
enum Half {
    Low,
    High,
}

/// A key between `low` and `high` (bytewise): their common prefix, then the mean of the next eight bytes.
fn middle_key(low: &[u8], high: &[u8]) -> Vec<u8> {
    let common = low.iter().zip(high).take_while(|(a, b)| a == b).count();
    let word = |key: &[u8]| {
        let mut bytes = [0u8; 8];
        for (to, from) in bytes.iter_mut().zip(key.iter().skip(common)) {
            *to = *from;
        }
        u64::from_be_bytes(bytes)
    };
    let (a, b) = (word(low), word(high));
    let mean = a / 2 + b / 2 + (a % 2 + b % 2) / 2;
    let mut key = low[..common].to_vec();
    key.extend_from_slice(&mean.to_be_bytes());
    key
}

/// Reads the records of `half` of `tree`, in key order.
fn each_in<T: super::Record>(
    tree: &sled::Tree,
    name: &'static str,
    half: Half,
    mut f: impl FnMut(T) -> Result<()>,
) -> Result<()> {
    let (Some((low, _)), Some((high, _))) = (tree.first().map_err(io("reading"))?, tree.last().map_err(io("reading"))?)
    else {
        return Ok(());
    };
    let middle = middle_key(&low, &high);
    let entries = match half {
        Half::Low => tree.range::<&[u8], _>(..middle.as_slice()),
        Half::High => tree.range::<&[u8], _>(middle.as_slice()..),
    };
    for entry in entries {
        let (k, v) = entry.map_err(io("reading"))?;
        f(decode(name, &k, &v)?)?;
    }
    Ok(())
}

/// What one thread found in its half of the charges.
#[derive(Default)]
struct ChargesPart {
    summary: LedgerSummary,
    providers: HashMap<OutTradeNo, Provider>,
    leftovers: Vec<ChargeRecord>,
}

fn scan_charges(db: &sled::Db, closed: &BTreeSet<BusinessDay>, half: Half) -> Result<ChargesPart> {
    let tree = db.open_tree("charges").map_err(io("opening a tree"))?;
    let mut part = ChargesPart::default();
    each_in::<ChargeRecord>(&tree, "charges", half, |charge| {
        if closed.contains(&BusinessDay::of(charge.created_at)) {
            part.leftovers.push(charge);
        } else {
            part.summary.charge(&charge, 1);
            part.providers.insert(charge.out_trade_no.clone(), charge.provider);
        }
        Ok(())
    })?;
    Ok(part)
}

fn scan_sales(
    db: &sled::Db,
    closed: &BTreeSet<BusinessDay>,
    providers: &HashMap<OutTradeNo, Provider>,
    half: Half,
) -> Result<(LedgerSummary, Vec<SaleRecord>)> {
    let tree = db.open_tree("sales").map_err(io("opening a tree"))?;
    let (mut summary, mut leftovers) = (LedgerSummary::default(), Vec::new());
    each_in::<SaleRecord>(&tree, "sales", half, |sale| {
        if closed.contains(&BusinessDay::of(sale.finished_at)) {
            leftovers.push(sale);
        } else {
            summary.sale(&sale, providers.get(&sale.out_trade_no).copied());
        }
        Ok(())
    })?;
    Ok((summary, leftovers))
}

/// Reads every record that is not a charge, a sale or a refund.
fn verify_the_rest(db: &sled::Db) -> Result<LedgerSummary> {
    let mut summary = LedgerSummary::default();
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
    each::<crate::ShiftSettlement>(db, "shift_settlements", |_| Ok(()))?;
    each::<crate::ReconciliationRecord>(db, "reconciliations", |_| Ok(()))?;
    each::<OutTradeNo>(db, "code_uses", |_| Ok(()))?;
    Ok(summary)
}

/// A thread's result, its panic turned into an error that refuses the folder.
fn joined<T>(thread: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    thread.join().unwrap_or_else(|_| {
        Err(super::StorageError::Corrupt {
            tree: "ledger",
            key: String::new(),
            reason: "reading it panicked".to_owned(),
        })
    })
}

/// Reads every live record once, on two threads (charges, then sales, split in two by key): a record that
/// does not decode refuses the folder.
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
    let (low, high) = std::thread::scope(|s| {
        let high = s.spawn(|| scan_charges(db, &closed, Half::High));
        (scan_charges(db, &closed, Half::Low), joined(high))
    });
    for part in [low?, high?] {
        summary.absorb(part.summary);
        providers.extend(part.providers);
        leftovers.charges.extend(part.leftovers);
    }
    let (low, high) = std::thread::scope(|s| {
        let high = s.spawn(|| {
            let (summary, leftovers) = scan_sales(db, &closed, &providers, Half::High)?;
            Ok((summary, leftovers, verify_the_rest(db)?))
        });
        (scan_sales(db, &closed, &providers, Half::Low), joined(high))
    });
    let (low, (high, high_leftovers, rest)) = (low?, high?);
    for (part, sales) in [low, (high, high_leftovers)] {
        summary.absorb(part);
        leftovers.sales.extend(sales);
    }
    summary.absorb(rest);
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
                self.index_reversal_time(&charge)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_middle_key_splits_the_keys_between_the_first_and_the_last() {
        for (low, high) in [
            (&b"S1-L1-A-1"[..], &b"S1-L8-Z-1"[..]),
            (b"a", b"a"),
            (b"a", b"ab"),
            (b"", b"\xff\xff"),
            (b"L1-0000", b"L1-0001"),
        ] {
            let middle = middle_key(low, high);
            assert!(
                low <= middle.as_slice() && middle.as_slice() <= high || low == high,
                "{low:?} {middle:?} {high:?}"
            );
        }
        assert!(middle_key(b"S1-L1-A-1", b"S1-L8-Z-1").starts_with(b"S1-L4"));
    }
}
