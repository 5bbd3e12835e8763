//! A lane's own small sled store: the outbox of finished sales not yet delivered to the coordinator.
//!
//! A sale paid while the coordinator cannot be reached must not be lost: the
//! lane writes it here (flushed) before it forgets the basket, and delivers
//! the outbox in order when the coordinator answers again. The coordinator
//! records each sale once (by sale id), so delivering twice is harmless.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{
    LaneId, Money, OrderLine, OutTradeNo, ProductCode, SaleId, ShiftId, ShiftRecord, StorageError, UnixMillis,
    folder::DataFolder,
    store::{decode, encode},
};

/// A paid sale as the lane reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishedSale {
    pub lane_id: LaneId,
    pub sale_id: SaleId,
    pub shift_id: Option<ShiftId>,
    /// The basket as it was charged, typed prices of open-price items included.
    pub lines: Vec<OrderLine>,
    pub total: Money,
    pub out_trade_no: OutTradeNo,
    pub started_at: UnixMillis,
    pub finished_at: UnixMillis,
}

/// What a lane tells the coordinator, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutboxItem {
    Sale(FinishedSale),
    /// A cashier signed on; `closed_at` is `None`.
    ShiftOpened(ShiftRecord),
    /// The cashier signed off (as an earlier build queued it, without the lane's own count).
    ShiftClosed {
        lane_id: LaneId,
        shift_id: ShiftId,
        closed_at: UnixMillis,
    },
    /// The cashier signed off, with what the lane itself counted in the shift, for the store to settle.
    ShiftClosedCounted {
        lane_id: LaneId,
        shift_id: ShiftId,
        closed_at: UnixMillis,
        counted: ShiftCount,
    },
}

/// What a lane itself counted in a shift: each sale paid and its total.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftCount {
    pub sales: Vec<(SaleId, Money)>,
}

impl crate::store::Record for OutboxItem {
    /// 2 added the typed prices of open-price items to a sale's lines.
    const VERSION: u8 = 2;

    fn upgrade(version: u8, body: &[u8]) -> Option<Result<OutboxItem, postcard::Error>> {
        (version == 1).then(|| postcard::from_bytes::<OutboxItemV1>(body).map(OutboxItem::from))
    }
}

/// An outbox item as layout 1 kept it: a sale's lines were `(GTIN, quantity)`, all priced from the catalog.
/// The variants must stay in layout 1's order (postcard numbers them).
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
enum OutboxItemV1 {
    Sale(FinishedSaleV1),
    ShiftOpened(ShiftRecord),
    ShiftClosed { lane_id: LaneId, shift_id: ShiftId, closed_at: UnixMillis },
    ShiftClosedCounted { lane_id: LaneId, shift_id: ShiftId, closed_at: UnixMillis, counted: ShiftCount },
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct FinishedSaleV1 {
    lane_id: LaneId,
    sale_id: SaleId,
    shift_id: Option<ShiftId>,
    lines: Vec<(ProductCode, u32)>,
    total: Money,
    out_trade_no: OutTradeNo,
    started_at: UnixMillis,
    finished_at: UnixMillis,
}

impl From<OutboxItemV1> for OutboxItem {
    fn from(v1: OutboxItemV1) -> OutboxItem {
        match v1 {
            OutboxItemV1::Sale(sale) => OutboxItem::Sale(FinishedSale {
                lane_id: sale.lane_id,
                sale_id: sale.sale_id,
                shift_id: sale.shift_id,
                lines: sale.lines.into_iter().map(OrderLine::from).collect(),
                total: sale.total,
                out_trade_no: sale.out_trade_no,
                started_at: sale.started_at,
                finished_at: sale.finished_at,
            }),
            OutboxItemV1::ShiftOpened(shift) => OutboxItem::ShiftOpened(shift),
            OutboxItemV1::ShiftClosed { lane_id, shift_id, closed_at } => {
                OutboxItem::ShiftClosed { lane_id, shift_id, closed_at }
            }
            OutboxItemV1::ShiftClosedCounted { lane_id, shift_id, closed_at, counted } => {
                OutboxItem::ShiftClosedCounted { lane_id, shift_id, closed_at, counted }
            }
        }
    }
}

/// The lane's data folder.
#[derive(Clone)]
pub struct LaneStore {
    folder: std::sync::Arc<DataFolder>,
    outbox: sled::Tree,
    meta: sled::Tree,
    /// Shift id `/` sale id -> total: the current shift's sales as the lane counts them.
    shift_sales: sled::Tree,
    path: PathBuf,
}

type Result<T, E = StorageError> = std::result::Result<T, E>;

fn io(doing: &'static str) -> impl FnOnce(sled::Error) -> StorageError {
    move |source| StorageError::Io { doing, source }
}

const CURRENT_SHIFT: &[u8] = b"current-shift";
const LANE_TOKEN: &[u8] = b"lane-token";
const ENROLLING_TOKEN: &[u8] = b"enrolling-token";

fn verify_lane_folder(db: &sled::Db) -> Result<()> {
    for entry in db.open_tree("outbox").map_err(io("opening a tree"))?.iter() {
        let (k, v) = entry.map_err(io("reading the outbox"))?;
        decode::<OutboxItem>("outbox", &k, &v)?;
    }
    let meta = db.open_tree("meta").map_err(io("opening a tree"))?;
    if let Some(v) = meta.get(CURRENT_SHIFT).map_err(io("reading"))? {
        decode::<ShiftRecord>("meta", CURRENT_SHIFT, &v)?;
    }
    for key in [LANE_TOKEN, ENROLLING_TOKEN] {
        if let Some(v) = meta.get(key).map_err(io("reading"))? {
            decode::<String>("meta", key, &v)?;
        }
    }
    Ok(())
}

impl LaneStore {
    pub fn open(path: &Path) -> Result<LaneStore> {
        let (folder, ()) = DataFolder::open(path, "checkout-lane", verify_lane_folder)?;
        let outbox = folder.db.open_tree("outbox").map_err(io("opening a tree"))?;
        let meta = folder.db.open_tree("meta").map_err(io("opening a tree"))?;
        let shift_sales = folder.db.open_tree("shift_sales").map_err(io("opening a tree"))?;
        Ok(LaneStore { folder: std::sync::Arc::new(folder), outbox, meta, shift_sales, path: path.to_owned() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues an item, durably, after every item queued before it. A sale of a shift is also counted in
    /// that shift (see [`ShiftCount`]).
    pub fn push(&self, item: &OutboxItem) -> Result<u64> {
        let seq = self.folder.write(|| {
            let seq = self.folder.db.generate_id().map_err(io("numbering an outbox item"))?;
            let bytes = encode("outbox item", item)?;
            self.outbox.insert(seq.to_be_bytes(), bytes).map_err(io("queueing an outbox item"))?;
            if let OutboxItem::Sale(sale) = item
                && let Some(shift_id) = &sale.shift_id
            {
                let key = format!("{shift_id}/{}", sale.sale_id);
                let total = postcard::to_allocvec(&sale.total)
                    .map_err(|source| StorageError::Encode { what: "a sale's total", source })?;
                self.shift_sales.insert(key.as_bytes(), total).map_err(io("counting a sale in its shift"))?;
            }
            Ok(seq)
        })?;
        self.folder.commit_blocking()?;
        Ok(seq)
    }

    /// Every queued item, oldest first.
    pub fn pending(&self) -> Result<Vec<(u64, OutboxItem)>> {
        self.outbox
            .iter()
            .map(|entry| {
                let (k, v) = entry.map_err(io("reading the outbox"))?;
                let mut seq = [0u8; 8];
                if k.len() == 8 {
                    seq.copy_from_slice(&k);
                }
                Ok((u64::from_be_bytes(seq), decode("outbox", &k, &v)?))
            })
            .collect()
    }

    /// Forgets a delivered item.
    pub fn delivered(&self, seq: u64) -> Result<()> {
        self.folder.write(|| self.outbox.remove(seq.to_be_bytes()).map_err(io("clearing the outbox")))?;
        self.folder.commit_blocking()
    }

    /// The lane's bearer token for the coordinator, once it has one (the folder is 0700, the file 0600).
    pub fn lane_token(&self) -> Result<Option<String>> {
        self.text(LANE_TOKEN)
    }

    /// Keeps the lane's token, durably; `None` forgets it.
    pub fn set_lane_token(&self, token: Option<&str>) -> Result<()> {
        self.set_text(LANE_TOKEN, token)
    }

    /// A token the lane made and is enrolling, kept until the store has taken it.
    pub fn enrolling_token(&self) -> Result<Option<String>> {
        self.text(ENROLLING_TOKEN)
    }

    pub fn set_enrolling_token(&self, token: Option<&str>) -> Result<()> {
        self.set_text(ENROLLING_TOKEN, token)
    }

    fn text(&self, key: &'static [u8]) -> Result<Option<String>> {
        match self.meta.get(key).map_err(io("reading the lane's metadata"))? {
            Some(v) => decode("meta", key, &v).map(Some),
            None => Ok(None),
        }
    }

    fn set_text(&self, key: &'static [u8], text: Option<&str>) -> Result<()> {
        self.folder.write(|| match text {
            Some(text) => {
                let bytes = encode("text", &text.to_owned())?;
                self.meta.insert(key, bytes).map(drop).map_err(io("writing the lane's metadata"))
            }
            None => self.meta.remove(key).map(drop).map_err(io("writing the lane's metadata")),
        })?;
        self.folder.commit_blocking()
    }

    /// The shift open at this lane, kept across restarts so a lane that crashed resumes it.
    pub fn current_shift(&self) -> Result<Option<ShiftRecord>> {
        match self.meta.get(CURRENT_SHIFT).map_err(io("reading the current shift"))? {
            Some(v) => decode("meta", CURRENT_SHIFT, &v).map(Some),
            None => Ok(None),
        }
    }

    /// Opens `shift`: it becomes the current shift and its opening is queued for the store, durably.
    pub fn open_shift(&self, shift: &ShiftRecord) -> Result<()> {
        self.folder.write(|| {
            self.meta.insert(CURRENT_SHIFT, encode("shift", shift)?).map_err(io("writing the current shift"))
        })?;
        self.push(&OutboxItem::ShiftOpened(shift.clone())).map(drop)
    }

    /// Closes the current shift, if any, and queues its closing for the store with what the lane counted in
    /// it; returns it.
    pub fn close_shift(&self, closed_at: UnixMillis) -> Result<Option<ShiftRecord>> {
        let Some(mut shift) = self.current_shift()? else { return Ok(None) };
        let prefix = format!("{}/", shift.shift_id);
        let counted = self.shift_count(&prefix)?;
        self.folder.write(|| self.meta.remove(CURRENT_SHIFT).map_err(io("clearing the current shift")))?;
        self.push(&OutboxItem::ShiftClosedCounted {
            lane_id: shift.lane_id.clone(),
            shift_id: shift.shift_id.clone(),
            closed_at,
            counted,
        })?;
        // Counted and queued: the shift's own list is no longer needed.
        self.folder.write(|| {
            for entry in self.shift_sales.scan_prefix(prefix.as_bytes()) {
                let (key, _) = entry.map_err(io("reading the shift's sales"))?;
                self.shift_sales.remove(key).map_err(io("clearing the shift's sales"))?;
            }
            Ok(())
        })?;
        self.folder.commit_blocking()?;
        shift.closed_at = Some(closed_at);
        Ok(Some(shift))
    }

    /// The sales counted under `prefix` (a shift id and a slash).
    fn shift_count(&self, prefix: &str) -> Result<ShiftCount> {
        let mut count = ShiftCount::default();
        for entry in self.shift_sales.scan_prefix(prefix.as_bytes()) {
            let (key, value) = entry.map_err(io("reading the shift's sales"))?;
            let corrupt = |reason: String| StorageError::Corrupt {
                tree: "shift_sales",
                key: String::from_utf8_lossy(&key).into_owned(),
                reason,
            };
            let sale_id = std::str::from_utf8(&key[prefix.len()..])
                .ok()
                .and_then(|id| SaleId::parse(id).ok())
                .ok_or_else(|| corrupt("not a sale id".to_owned()))?;
            let total: Money = postcard::from_bytes(&value).map_err(|e| corrupt(e.to_string()))?;
            count.sales.push((sale_id, total));
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Attempt, Currency, StoreId};

    fn sale(n: u32) -> FinishedSale {
        let sale_id = SaleId::parse(&format!("L1-{n}")).unwrap();
        FinishedSale {
            lane_id: LaneId::parse("L1").unwrap(),
            out_trade_no: OutTradeNo::derive(&StoreId::parse("S1").unwrap(), &sale_id, Attempt::new(1).unwrap()),
            sale_id,
            shift_id: None,
            lines: vec![OrderLine::catalog(ProductCode::parse("4006381333931").unwrap(), n)],
            total: Money::new(i64::from(n) * 100, Currency::CNY),
            started_at: UnixMillis(1),
            finished_at: UnixMillis(2),
        }
    }

    #[test]
    fn the_outbox_keeps_order_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = LaneStore::open(dir.path()).unwrap();
            for n in 1..=3 {
                store.push(&OutboxItem::Sale(sale(n))).unwrap();
            }
            let first = store.pending().unwrap()[0].0;
            store.delivered(first).unwrap();
        }
        let store = LaneStore::open(dir.path()).unwrap();
        let pending: Vec<OutboxItem> = store.pending().unwrap().into_iter().map(|(_, s)| s).collect();
        assert_eq!(pending, vec![OutboxItem::Sale(sale(2)), OutboxItem::Sale(sale(3))]);
    }

    #[test]
    fn a_coordinator_folder_is_not_a_lane_folder() {
        let dir = tempfile::tempdir().unwrap();
        drop(crate::Store::open(dir.path()).unwrap());
        assert!(LaneStore::open(dir.path()).is_err());
    }

    #[test]
    fn a_shift_stays_open_across_restarts_until_closed() {
        let dir = tempfile::tempdir().unwrap();
        let shift = ShiftRecord {
            shift_id: ShiftId::parse("L1-SHIFT1").unwrap(),
            lane_id: LaneId::parse("L1").unwrap(),
            cashier: crate::CashierId::parse("anna").unwrap(),
            opened_at: UnixMillis(10),
            closed_at: None,
            closed_how: String::new(),
        };
        let in_shift = |n| FinishedSale { shift_id: Some(shift.shift_id.clone()), ..sale(n) };
        {
            let store = LaneStore::open(dir.path()).unwrap();
            assert_eq!(store.current_shift().unwrap(), None);
            store.open_shift(&shift).unwrap();
            store.push(&OutboxItem::Sale(in_shift(2))).unwrap();
            store.push(&OutboxItem::Sale(sale(9))).unwrap();
        }
        let store = LaneStore::open(dir.path()).unwrap();
        assert_eq!(store.current_shift().unwrap().as_ref(), Some(&shift));
        store.push(&OutboxItem::Sale(in_shift(3))).unwrap();
        let closed = store.close_shift(UnixMillis(20)).unwrap().unwrap();
        assert_eq!(closed.closed_at, Some(UnixMillis(20)));
        assert_eq!(store.current_shift().unwrap(), None);
        let queued: Vec<OutboxItem> = store.pending().unwrap().into_iter().map(|(_, item)| item).collect();
        // The lane's own count: the shift's sales, across the restart, and no other.
        let counted = ShiftCount { sales: [2, 3].map(|n| (in_shift(n).sale_id, in_shift(n).total)).to_vec() };
        assert_eq!(queued[0], OutboxItem::ShiftOpened(shift.clone()));
        assert_eq!(
            queued.last().unwrap(),
            &OutboxItem::ShiftClosedCounted {
                lane_id: shift.lane_id.clone(),
                shift_id: shift.shift_id.clone(),
                closed_at: UnixMillis(20),
                counted
            }
        );
        assert_eq!(store.shift_count(&format!("{}/", shift.shift_id)).unwrap(), ShiftCount::default(), "cleared");
    }

    #[test]
    fn an_outbox_written_by_the_previous_build_is_still_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let old = sale(4);
        let v1_sale = OutboxItemV1::Sale(FinishedSaleV1 {
            lane_id: old.lane_id.clone(),
            sale_id: old.sale_id.clone(),
            shift_id: old.shift_id.clone(),
            lines: vec![(ProductCode::parse("4006381333931").unwrap(), 4)],
            total: old.total,
            out_trade_no: old.out_trade_no.clone(),
            started_at: old.started_at,
            finished_at: old.finished_at,
        });
        let closed = OutboxItemV1::ShiftClosed {
            lane_id: old.lane_id.clone(),
            shift_id: ShiftId::parse("L1-SHIFT1").unwrap(),
            closed_at: UnixMillis(3),
        };
        {
            // What the previous build wrote: layout byte 1, then the item.
            let store = LaneStore::open(dir.path()).unwrap();
            for item in [&v1_sale, &closed] {
                let mut bytes = vec![1u8];
                postcard::to_io(item, &mut bytes).unwrap();
                let seq = store.folder.db.generate_id().unwrap();
                store.outbox.insert(seq.to_be_bytes(), bytes).unwrap();
            }
            store.folder.commit_blocking().unwrap();
        }
        // The folder opens (every item is read to check it) and the items come back in the new layout.
        let store = LaneStore::open(dir.path()).unwrap();
        let typed = FinishedSale {
            lines: vec![OrderLine::open_price(
                ProductCode::parse("2000000000015").unwrap(),
                1,
                Money::new(1250, Currency::CNY),
            )],
            ..sale(5)
        };
        store.push(&OutboxItem::Sale(typed.clone())).unwrap();
        let pending: Vec<OutboxItem> = store.pending().unwrap().into_iter().map(|(_, item)| item).collect();
        assert_eq!(
            pending,
            vec![
                OutboxItem::Sale(old.clone()),
                OutboxItem::ShiftClosed {
                    lane_id: old.lane_id,
                    shift_id: ShiftId::parse("L1-SHIFT1").unwrap(),
                    closed_at: UnixMillis(3)
                },
                OutboxItem::Sale(typed),
            ]
        );
    }
}
