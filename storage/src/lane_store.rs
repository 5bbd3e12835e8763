//! A lane's own small sled store: the outbox of finished sales not yet delivered to the coordinator.
//!
//! A sale paid while the coordinator cannot be reached must not be lost: the
//! lane writes it here (flushed) before it forgets the basket, and delivers
//! the outbox in order when the coordinator answers again. The coordinator
//! records each sale once (by sale id), so delivering twice is harmless.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{LaneId, Money, OutTradeNo, ProductCode, SaleId, StorageError, UnixMillis, store::open_checked};

/// A paid sale as the lane reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishedSale {
    pub lane_id: LaneId,
    pub sale_id: SaleId,
    pub lines: Vec<(ProductCode, u32)>,
    pub total: Money,
    pub out_trade_no: OutTradeNo,
    pub started_at: UnixMillis,
    pub finished_at: UnixMillis,
}

/// The lane's data folder.
#[derive(Clone)]
pub struct LaneStore {
    db: sled::Db,
    outbox: sled::Tree,
    path: PathBuf,
}

type Result<T, E = StorageError> = std::result::Result<T, E>;

fn io(doing: &'static str) -> impl FnOnce(sled::Error) -> StorageError {
    move |source| StorageError::Io { doing, source }
}

impl LaneStore {
    pub fn open(path: &Path) -> Result<LaneStore> {
        let db = open_checked(path, "checkout-lane")?;
        let outbox = db.open_tree("outbox").map_err(io("opening a tree"))?;
        Ok(LaneStore { db, outbox, path: path.to_owned() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues a finished sale, durably, after every sale queued before it.
    pub fn push(&self, sale: &FinishedSale) -> Result<u64> {
        let seq = self.db.generate_id().map_err(io("numbering an outbox item"))?;
        let bytes = crate::store::encode("finished sale", sale)?;
        self.outbox.insert(seq.to_be_bytes(), bytes).map_err(io("queueing a sale"))?;
        self.db.flush().map_err(io("flushing the outbox"))?;
        Ok(seq)
    }

    /// Every queued sale, oldest first.
    pub fn pending(&self) -> Result<Vec<(u64, FinishedSale)>> {
        self.outbox
            .iter()
            .map(|entry| {
                let (k, v) = entry.map_err(io("reading the outbox"))?;
                let mut seq = [0u8; 8];
                if k.len() == 8 {
                    seq.copy_from_slice(&k);
                }
                Ok((u64::from_be_bytes(seq), crate::store::decode("outbox", &k, &v)?))
            })
            .collect()
    }

    /// Forgets a delivered sale.
    pub fn delivered(&self, seq: u64) -> Result<()> {
        self.outbox.remove(seq.to_be_bytes()).map_err(io("clearing the outbox"))?;
        self.db.flush().map_err(io("flushing the outbox"))?;
        Ok(())
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
            lines: vec![(ProductCode::parse("4006381333931").unwrap(), n)],
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
                store.push(&sale(n)).unwrap();
            }
            let first = store.pending().unwrap()[0].0;
            store.delivered(first).unwrap();
        }
        let store = LaneStore::open(dir.path()).unwrap();
        let pending: Vec<FinishedSale> = store.pending().unwrap().into_iter().map(|(_, s)| s).collect();
        assert_eq!(pending, vec![sale(2), sale(3)]);
    }

    #[test]
    fn a_coordinator_folder_is_not_a_lane_folder() {
        let dir = tempfile::tempdir().unwrap();
        drop(crate::Store::open(dir.path()).unwrap());
        assert!(LaneStore::open(dir.path()).is_err());
    }
}
