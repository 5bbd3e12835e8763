//! The store's sled database: typed trees of products, lanes, sales and charges.
//!
//! Values are a one-byte record version followed by the record in postcard;
//! the `meta` tree names the data folder's format version, and a folder of
//! another version is refused on open rather than misread.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, mpsc},
};

use serde::{Serialize, de::DeserializeOwned};

use crate::{ChargeRecord, LaneId, LaneRecord, OutTradeNo, Product, ProductCode, RefundRecord, SaleId, SaleRecord};

/// The layout of a data folder this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// The file in a data folder that names its format, read before sled touches anything.
pub const FORMAT_FILE: &str = "CHECKOUT_FORMAT";
const RECORD_VERSION: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot open the data folder {path}: {source}")]
    Open { path: PathBuf, source: sled::Error },
    #[error("the data folder {path} holds format {found:?}; this build reads version {expected} (nothing was changed)")]
    FormatVersion { path: PathBuf, found: String, expected: u32 },
    #[error(
        "the data folder {path} holds files but no {FORMAT_FILE}: not a checkout data folder (nothing was changed)"
    )]
    NotCheckoutData { path: PathBuf },
    #[error("cannot {doing} {path}: {source}")]
    Folder { doing: &'static str, path: PathBuf, source: std::io::Error },
    #[error("storage I/O failed while {doing}: {source}")]
    Io { doing: &'static str, source: sled::Error },
    #[error("record in {tree} at key {key:?} cannot be read: {reason}")]
    Corrupt { tree: &'static str, key: String, reason: String },
    #[error("cannot encode a {what}: {source}")]
    Encode { what: &'static str, source: postcard::Error },
}

type Result<T, E = StorageError> = std::result::Result<T, E>;

type CommitWaiter = tokio::sync::oneshot::Sender<std::result::Result<(), String>>;

/// Group commit: callers queue up, one thread flushes once for everyone queued, then wakes them all.
///
/// A caller's writes happen before it queues, so the flush that follows covers
/// them; callers that queue during a flush wait for the next one. Under load
/// one `fsync` serves many acknowledged writes.
struct GroupCommit {
    queue: mpsc::Sender<CommitWaiter>,
}

impl GroupCommit {
    fn start(db: &sled::Db) -> std::io::Result<GroupCommit> {
        let (queue, waiting) = mpsc::channel::<CommitWaiter>();
        // The thread ends, closing its handle on the database, when the last Store is dropped.
        let db = db.clone();
        std::thread::Builder::new().name("sled-group-commit".into()).spawn(move || {
            while let Ok(first) = waiting.recv() {
                let mut batch = vec![first];
                batch.extend(waiting.try_iter());
                let result = db.flush().map(|_| ()).map_err(|e| e.to_string());
                if let Err(e) = &result {
                    tracing::error!(error = %e, "ledger flush failed");
                }
                for waiter in batch {
                    let _ = waiter.send(result.clone());
                }
            }
        })?;
        Ok(GroupCommit { queue })
    }
}

/// The opened data folder. Cheap to clone; every clone is the same database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    committer: Arc<GroupCommit>,
    products: sled::Tree,
    lanes: sled::Tree,
    sales: sled::Tree,
    charges: sled::Tree,
    refunds: sled::Tree,
    path: PathBuf,
}

fn io(doing: &'static str) -> impl FnOnce(sled::Error) -> StorageError {
    move |source| StorageError::Io { doing, source }
}

pub(crate) fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>> {
    let mut out = vec![RECORD_VERSION];
    postcard::to_io(value, &mut out).map_err(|source| StorageError::Encode { what, source })?;
    Ok(out)
}

pub(crate) fn decode<T: DeserializeOwned>(tree: &'static str, key: &[u8], bytes: &[u8]) -> Result<T> {
    let corrupt =
        |reason: String| StorageError::Corrupt { tree, key: String::from_utf8_lossy(key).into_owned(), reason };
    match bytes.split_first() {
        Some((&RECORD_VERSION, body)) => postcard::from_bytes(body).map_err(|e| corrupt(e.to_string())),
        Some((v, _)) => Err(corrupt(format!("record version {v}, expected {RECORD_VERSION}"))),
        None => Err(corrupt("empty record".to_owned())),
    }
}

fn all<T: DeserializeOwned>(tree: &sled::Tree, name: &'static str) -> Result<Vec<T>> {
    tree.iter()
        .map(|entry| {
            let (k, v) = entry.map_err(io("reading"))?;
            decode(name, &k, &v)
        })
        .collect()
}

fn get<T: DeserializeOwned>(tree: &sled::Tree, name: &'static str, key: &[u8]) -> Result<Option<T>> {
    match tree.get(key).map_err(io("reading"))? {
        Some(v) => decode(name, key, &v).map(Some),
        None => Ok(None),
    }
}

/// Inserts `value` under `key` unless a record is there; returns the one that was.
fn insert_if_absent<T: Serialize + DeserializeOwned>(
    tree: &sled::Tree,
    name: &'static str,
    key: &[u8],
    value: &T,
) -> Result<Option<T>> {
    let bytes = encode(name, value)?;
    match tree.compare_and_swap(key, None as Option<&[u8]>, Some(bytes)).map_err(io("writing"))? {
        Ok(()) => Ok(None),
        Err(cas) => match cas.current {
            Some(existing) => decode(name, key, &existing).map(Some),
            None => Ok(None),
        },
    }
}

/// Checks the format marker, then opens sled: the one way a data folder is opened.
pub(crate) fn open_checked(path: &Path, kind: &str) -> Result<sled::Db> {
    check_format(path, kind)?;
    open_db(path)
}

/// Checks the data folder's format file before sled opens (and so writes to) anything; marks a new folder.
fn check_format(path: &Path, kind: &str) -> Result<()> {
    let folder = |doing: &'static str| move |source| StorageError::Folder { doing, path: path.to_owned(), source };
    let expected = format!("{kind} {FORMAT_VERSION}\n");
    let marker = path.join(FORMAT_FILE);
    match std::fs::read(&marker) {
        Ok(found) if found == expected.as_bytes() => Ok(()),
        Ok(found) => Err(StorageError::FormatVersion {
            path: path.to_owned(),
            found: String::from_utf8_lossy(&found).trim().chars().take(60).collect(),
            expected: FORMAT_VERSION,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(path).map_err(folder("create"))?;
            if std::fs::read_dir(path).map_err(folder("list"))?.next().is_some() {
                return Err(StorageError::NotCheckoutData { path: path.to_owned() });
            }
            let mut file = std::fs::File::create(&marker).map_err(folder("mark"))?;
            std::io::Write::write_all(&mut file, expected.as_bytes()).map_err(folder("mark"))?;
            file.sync_all().map_err(folder("mark"))?;
            Ok(())
        }
        Err(e) => Err(folder("read the format of")(e)),
    }
}

/// Opens the sled database; waits briefly for the lock a closing handle in this process may still hold.
fn open_db(path: &Path) -> Result<sled::Db> {
    let mut tries = 0;
    loop {
        let opened = sled::Config::new().path(path).cache_capacity(64 * 1024 * 1024).open();
        match opened {
            Err(sled::Error::Io(e)) if tries < 30 && e.to_string().contains("lock") => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            other => return other.map_err(|source| StorageError::Open { path: path.to_owned(), source }),
        }
    }
}

impl Store {
    /// Opens (or creates) the data folder at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let db = open_checked(path, "checkout-ledger")?;
        let committer = Arc::new(
            GroupCommit::start(&db)
                .map_err(|e| StorageError::Open { path: path.to_owned(), source: sled::Error::Io(e) })?,
        );
        let tree = |name: &str| db.open_tree(name).map_err(io("opening a tree"));
        let store = Store {
            products: tree("products")?,
            lanes: tree("lanes")?,
            sales: tree("sales")?,
            charges: tree("charges")?,
            refunds: tree("refunds")?,
            path: path.to_owned(),
            db,
            committer,
        };
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes every write before this call durable. Concurrent callers share
    /// one flush (group commit): see [`GroupCommit`].
    pub async fn commit(&self) -> Result<()> {
        let (done, wait) = tokio::sync::oneshot::channel();
        let failed = |reason: String| StorageError::Io {
            doing: "flushing",
            source: sled::Error::Io(std::io::Error::other(reason)),
        };
        self.committer.queue.send(done).map_err(|_| failed("the group-commit thread is gone".into()))?;
        wait.await.map_err(|_| failed("the group-commit thread is gone".into()))?.map_err(failed)
    }

    /// Blocking form of [`Store::commit`], for start-up and shutdown.
    pub fn commit_blocking(&self) -> Result<()> {
        self.db.flush().map_err(io("flushing"))?;
        Ok(())
    }

    pub fn products(&self) -> Result<Vec<Product>> {
        all(&self.products, "products")
    }

    pub fn product(&self, gtin: &ProductCode) -> Result<Option<Product>> {
        get(&self.products, "products", gtin.as_str().as_bytes())
    }

    pub fn put_product(&self, product: &Product) -> Result<()> {
        let bytes = encode("product", product)?;
        self.products.insert(product.gtin.as_str().as_bytes(), bytes).map_err(io("writing a product"))?;
        Ok(())
    }

    /// Loads `catalog` when the store has no products yet; returns how many were loaded.
    pub fn seed_catalog_if_empty(&self, catalog: &[Product]) -> Result<usize> {
        if !self.products.is_empty() {
            return Ok(0);
        }
        for product in catalog {
            self.put_product(product)?;
        }
        self.commit_blocking()?;
        Ok(catalog.len())
    }

    pub fn lanes(&self) -> Result<Vec<LaneRecord>> {
        all(&self.lanes, "lanes")
    }

    pub fn lane(&self, lane_id: &LaneId) -> Result<Option<LaneRecord>> {
        get(&self.lanes, "lanes", lane_id.as_str().as_bytes())
    }

    pub fn put_lane(&self, lane: &LaneRecord) -> Result<()> {
        let bytes = encode("lane", lane)?;
        self.lanes.insert(lane.lane_id.as_str().as_bytes(), bytes).map_err(io("writing a lane"))?;
        Ok(())
    }

    pub fn charge(&self, out_trade_no: &OutTradeNo) -> Result<Option<ChargeRecord>> {
        get(&self.charges, "charges", out_trade_no.as_str().as_bytes())
    }

    /// Records a new charge intent; if one with the same `out_trade_no` exists, returns it instead.
    pub fn insert_charge_if_absent(&self, charge: &ChargeRecord) -> Result<Option<ChargeRecord>> {
        insert_if_absent(&self.charges, "charges", charge.out_trade_no.as_str().as_bytes(), charge)
    }

    pub fn put_charge(&self, charge: &ChargeRecord) -> Result<()> {
        let bytes = encode("charge", charge)?;
        self.charges.insert(charge.out_trade_no.as_str().as_bytes(), bytes).map_err(io("writing a charge"))?;
        Ok(())
    }

    pub fn charges(&self) -> Result<Vec<ChargeRecord>> {
        all(&self.charges, "charges")
    }

    /// Charges not yet in a final state: in flight, unknown, or owed a reversal.
    pub fn outstanding_charges(&self) -> Result<Vec<ChargeRecord>> {
        Ok(self.charges()?.into_iter().filter(|c| !c.status.is_final()).collect())
    }

    /// Charges whose `out_trade_no` starts with `prefix`: every attempt of one sale.
    pub fn charges_with_prefix(&self, prefix: &str) -> Result<Vec<ChargeRecord>> {
        self.charges
            .scan_prefix(prefix.as_bytes())
            .map(|entry| {
                let (k, v) = entry.map_err(io("reading"))?;
                decode("charges", &k, &v)
            })
            .collect()
    }

    pub fn refund(&self, out_refund_no: &str) -> Result<Option<RefundRecord>> {
        get(&self.refunds, "refunds", out_refund_no.as_bytes())
    }

    pub fn put_refund(&self, refund: &RefundRecord) -> Result<()> {
        let bytes = encode("refund", refund)?;
        self.refunds.insert(refund.out_refund_no.as_bytes(), bytes).map_err(io("writing a refund"))?;
        Ok(())
    }

    /// Records a new refund unless one with the same `out_refund_no` exists; returns that one.
    pub fn insert_refund_if_absent(&self, refund: &RefundRecord) -> Result<Option<RefundRecord>> {
        insert_if_absent(&self.refunds, "refunds", refund.out_refund_no.as_bytes(), refund)
    }

    pub fn refunds(&self) -> Result<Vec<RefundRecord>> {
        all(&self.refunds, "refunds")
    }

    pub fn sale(&self, sale_id: &SaleId) -> Result<Option<SaleRecord>> {
        get(&self.sales, "sales", sale_id.as_str().as_bytes())
    }

    /// Records a finished sale; returns false when it was already recorded.
    pub fn insert_sale_if_absent(&self, sale: &SaleRecord) -> Result<bool> {
        Ok(insert_if_absent(&self.sales, "sales", sale.sale_id.as_str().as_bytes(), sale)?.is_none())
    }

    pub fn sales(&self) -> Result<Vec<SaleRecord>> {
        all(&self.sales, "sales")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Currency, Money, sample_catalog};

    #[test]
    fn records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.seed_catalog_if_empty(&sample_catalog()).unwrap(), sample_catalog().len());
            store.commit_blocking().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.products().unwrap().len(), sample_catalog().len());
        assert_eq!(store.seed_catalog_if_empty(&sample_catalog()).unwrap(), 0);
        let first = &sample_catalog()[0];
        assert_eq!(store.product(&first.gtin).unwrap().as_ref(), Some(first));
    }

    #[test]
    fn another_format_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        std::fs::write(dir.path().join(FORMAT_FILE), "checkout-ledger 99\n").unwrap();
        let Err(err) = Store::open(dir.path()) else { panic!("opened a version 99 folder") };
        assert!(err.to_string().contains("checkout-ledger 99"), "{err}");

        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join("notes.txt"), "not a ledger").unwrap();
        let Err(err) = Store::open(other.path()) else { panic!("opened a folder of something else") };
        assert!(matches!(err, StorageError::NotCheckoutData { .. }), "{err}");
        assert_eq!(std::fs::read_dir(other.path()).unwrap().count(), 1, "nothing was added");
    }

    #[test]
    fn corrupt_records_are_reported_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.products.insert(b"4006381333931", b"\x01\xff\xff".as_slice()).unwrap();
        let err = store.products().unwrap_err();
        assert!(matches!(err, StorageError::Corrupt { tree: "products", .. }), "{err}");
        let _ = Money::zero(Currency::CNY);
    }
}

#[cfg(test)]
mod group_commit_tests {
    use super::*;
    use crate::sample_catalog;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commits_all_complete_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let tasks: Vec<_> = sample_catalog()
                .into_iter()
                .map(|product| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        store.put_product(&product).unwrap();
                        store.commit().await
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap().unwrap();
            }
        }
        // Reopening right away works: the commit thread let go of the database with the last Store.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.products().unwrap().len(), sample_catalog().len());
    }
}
