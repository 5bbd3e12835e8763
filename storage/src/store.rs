//! The store's ledger on sled: typed trees of products, lanes, shifts, sales, charges and refunds.
//!
//! Values are a one-byte record version followed by the record in postcard.
//! The data folder around sled (format marker, commit watermark, the guarded
//! open, group commit) is [`crate::folder`]'s.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::{Serialize, de::DeserializeOwned};

use crate::{
    AuditRecord, ChargeRecord, CodeFingerprint, LaneId, LaneRecord, LaneTokenRecord, OutTradeNo, PaymentCode, Product,
    ProductCode, RefundRecord, SaleId, SaleRecord, ShiftId, ShiftRecord,
    folder::{CREDENTIALS_DIR, DataFolder, FORMAT_FILE},
};

/// How many audit entries the ledger keeps by default; the oldest go first.
pub const AUDIT_KEEP: u64 = 200_000;

/// A record kept in sled: the layout version this build writes, and how it reads earlier ones.
pub(crate) trait Record: Serialize + DeserializeOwned {
    /// Written as the first byte of every value.
    const VERSION: u8 = 1;
    /// Reads a value an earlier build wrote in layout `version`; `None` for a version it never wrote.
    fn upgrade(_version: u8, _body: &[u8]) -> Option<std::result::Result<Self, postcard::Error>> {
        None
    }
}

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
    #[error(
        "the data folder {path} is in use by another process (it holds the folder's LOCK): one process per data folder; nothing was changed"
    )]
    InUse { path: PathBuf },
    #[error("cannot {doing} {path}: {source}")]
    Folder { doing: &'static str, path: PathBuf, source: std::io::Error },
    #[error("storage I/O failed while {doing}: {source}")]
    Io { doing: &'static str, source: sled::Error },
    #[error("record in {tree} at key {key:?} cannot be read: {reason}")]
    Corrupt { tree: &'static str, key: String, reason: String },
    #[error(
        "the data folder {path} is damaged: {detail}. Nothing was changed; restore it from a backup (see the README)"
    )]
    Damaged { path: PathBuf, detail: String },
    #[error("the data folder failed earlier ({reason}) and takes no more writes: restart once the disk is fixed")]
    Failed { reason: String },
    #[error("cannot encode a {what}: {source}")]
    Encode { what: &'static str, source: postcard::Error },
}

type Result<T, E = StorageError> = std::result::Result<T, E>;

/// The opened data folder. Cheap to clone; every clone is the same database.
#[derive(Clone)]
pub struct Store {
    folder: Arc<DataFolder>,
    /// The key of payment-code fingerprints, made at random when the folder was created.
    code_key: Arc<[u8; 32]>,
    /// Payment code fingerprint -> the order it was first sent in: a code is single-use.
    code_uses: sled::Tree,
    products: sled::Tree,
    shifts: sled::Tree,
    lanes: sled::Tree,
    sales: sled::Tree,
    charges: sled::Tree,
    refunds: sled::Tree,
    lane_tokens: sled::Tree,
    /// Sequence number (big-endian) -> audit entry.
    audit: sled::Tree,
    audit_entries: Arc<std::sync::atomic::AtomicU64>,
    audit_keep: Arc<std::sync::atomic::AtomicU64>,
    path: PathBuf,
}

fn io(doing: &'static str) -> impl FnOnce(sled::Error) -> StorageError {
    move |source| StorageError::Io { doing, source }
}

pub(crate) fn encode<T: Record>(what: &'static str, value: &T) -> Result<Vec<u8>> {
    let mut out = vec![T::VERSION];
    postcard::to_io(value, &mut out).map_err(|source| StorageError::Encode { what, source })?;
    Ok(out)
}

pub(crate) fn decode<T: Record>(tree: &'static str, key: &[u8], bytes: &[u8]) -> Result<T> {
    let corrupt =
        |reason: String| StorageError::Corrupt { tree, key: String::from_utf8_lossy(key).into_owned(), reason };
    match bytes.split_first() {
        Some((&v, body)) if v == T::VERSION => postcard::from_bytes(body).map_err(|e| corrupt(e.to_string())),
        Some((&v, body)) => match T::upgrade(v, body) {
            Some(read) => read.map_err(|e| corrupt(e.to_string())),
            None => Err(corrupt(format!("record version {v}, expected {}", T::VERSION))),
        },
        None => Err(corrupt("empty record".to_owned())),
    }
}

fn all<T: Record>(tree: &sled::Tree, name: &'static str) -> Result<Vec<T>> {
    tree.iter()
        .map(|entry| {
            let (k, v) = entry.map_err(io("reading"))?;
            decode(name, &k, &v)
        })
        .collect()
}

fn get<T: Record>(tree: &sled::Tree, name: &'static str, key: &[u8]) -> Result<Option<T>> {
    match tree.get(key).map_err(io("reading"))? {
        Some(v) => decode(name, key, &v).map(Some),
        None => Ok(None),
    }
}

/// Inserts `value` under `key` unless a record is there; returns the one that was.
fn insert_if_absent<T: Record>(tree: &sled::Tree, name: &'static str, key: &[u8], value: &T) -> Result<Option<T>> {
    let bytes = encode(name, value)?;
    match tree.compare_and_swap(key, None as Option<&[u8]>, Some(bytes)).map_err(io("writing"))? {
        Ok(()) => Ok(None),
        Err(cas) => match cas.current {
            Some(existing) => decode(name, key, &existing).map(Some),
            None => Ok(None),
        },
    }
}

/// Reads every record of the ledger once: a record that does not decode refuses the folder.
fn verify_ledger(db: &sled::Db) -> Result<()> {
    fn check<T: Record>(db: &sled::Db, name: &'static str) -> Result<()> {
        all::<T>(&db.open_tree(name).map_err(io("opening a tree"))?, name).map(drop)
    }
    check::<Product>(db, "products")?;
    check::<LaneRecord>(db, "lanes")?;
    check::<ShiftRecord>(db, "shifts")?;
    check::<SaleRecord>(db, "sales")?;
    check::<ChargeRecord>(db, "charges")?;
    check::<RefundRecord>(db, "refunds")?;
    check::<LaneTokenRecord>(db, "lane_tokens")?;
    check::<AuditRecord>(db, "audit")?;
    check::<OutTradeNo>(db, "code_uses")
}

const CODE_KEY: &[u8] = b"checkout:code-key";

/// The folder's payment-code fingerprint key; a new folder gets one from the system's random source.
fn code_key(folder: &DataFolder, path: &Path) -> Result<[u8; 32]> {
    if let Some(key) = folder.db.get(CODE_KEY).map_err(io("reading the code key"))? {
        return key.as_ref().try_into().map_err(|_| StorageError::Damaged {
            path: path.to_owned(),
            detail: "its payment-code key is garbled".to_owned(),
        });
    }
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut key))
        .map_err(|source| StorageError::Folder {
            doing: "make a payment-code key for",
            path: path.to_owned(),
            source,
        })?;
    folder.write(|| folder.db.insert(CODE_KEY, key.as_slice()).map_err(io("writing the code key")))?;
    folder.commit_blocking()?;
    Ok(key)
}

impl Store {
    /// Opens (or creates) the data folder at `path`. A folder of another format, of
    /// something else, or one that lost acknowledged writes is refused, unchanged.
    pub fn open(path: &Path) -> Result<Store> {
        let folder = DataFolder::open(path, "checkout-ledger", verify_ledger)?;
        let tree = |name: &str| folder.db.open_tree(name).map_err(io("opening a tree"));
        let code_key = Arc::new(code_key(&folder, path)?);
        let audit = tree("audit")?;
        let audit_entries = Arc::new(std::sync::atomic::AtomicU64::new(audit.len() as u64));
        Ok(Store {
            audit,
            audit_entries,
            audit_keep: Arc::new(std::sync::atomic::AtomicU64::new(AUDIT_KEEP)),
            lane_tokens: tree("lane_tokens")?,
            code_key,
            code_uses: tree("code_uses")?,
            products: tree("products")?,
            shifts: tree("shifts")?,
            lanes: tree("lanes")?,
            sales: tree("sales")?,
            charges: tree("charges")?,
            refunds: tree("refunds")?,
            path: path.to_owned(),
            folder: Arc::new(folder),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder for the owner's secrets beside the ledger (created 0700): held under the same lock.
    pub fn credentials_dir(&self) -> Result<PathBuf> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = self.path.join(CREDENTIALS_DIR);
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|source| StorageError::Folder {
            doing: "create the credentials folder in",
            path: self.path.clone(),
            source,
        })?;
        Ok(dir)
    }

    pub fn lane_tokens(&self) -> Result<Vec<LaneTokenRecord>> {
        all(&self.lane_tokens, "lane_tokens")
    }

    pub fn lane_token(&self, lane_id: &LaneId) -> Result<Option<LaneTokenRecord>> {
        get(&self.lane_tokens, "lane_tokens", lane_id.as_str().as_bytes())
    }

    pub fn put_lane_token(&self, record: &LaneTokenRecord) -> Result<()> {
        self.put(&self.lane_tokens, ("lane token", "writing a lane token"), record.lane_id.as_str().as_bytes(), record)
    }

    /// How many audit entries to keep; the oldest beyond it are dropped as new ones come.
    pub fn keep_audit_entries(&self, keep: u64) {
        self.audit_keep.store(keep.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Appends an audit entry (durable with the next commit); returns its sequence number.
    pub fn append_audit(&self, entry: &AuditRecord) -> Result<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let sequence = self.folder.db.generate_id().map_err(io("numbering an audit entry"))?;
        self.put(&self.audit, ("audit entry", "writing an audit entry"), &sequence.to_be_bytes(), entry)?;
        let entries = self.audit_entries.fetch_add(1, Relaxed) + 1;
        if entries > self.audit_keep.load(Relaxed) {
            let dropped = self.folder.write(|| self.audit.pop_min().map_err(io("dropping an old audit entry")))?;
            if dropped.is_some() {
                self.audit_entries.fetch_sub(1, Relaxed);
            }
        }
        Ok(sequence)
    }

    /// Up to `limit` audit entries after sequence number `after` (from the first when `None`), oldest first.
    pub fn audit_page(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, AuditRecord)>> {
        let start = match after {
            Some(after) => match after.checked_add(1) {
                Some(next) => next,
                None => return Ok(Vec::new()),
            },
            None => 0,
        };
        self.audit
            .range(start.to_be_bytes()..)
            .take(limit)
            .map(|entry| {
                let (k, v) = entry.map_err(io("reading"))?;
                let sequence = k.as_ref().try_into().map(u64::from_be_bytes).map_err(|_| StorageError::Corrupt {
                    tree: "audit",
                    key: format!("{k:?}"),
                    reason: "a key of 8 bytes".to_owned(),
                })?;
                Ok((sequence, decode("audit", &k, &v)?))
            })
            .collect()
    }

    /// The keyed fingerprint of `code` in this store.
    pub fn fingerprint(&self, code: &PaymentCode) -> CodeFingerprint {
        CodeFingerprint::of(code, self.code_key.as_slice())
    }

    /// Records that the code with `fingerprint` is sent in order `out_trade_no`, unless it was sent
    /// in another order before; returns the order that has it (`out_trade_no` when newly recorded).
    pub fn claim_code(&self, fingerprint: CodeFingerprint, out_trade_no: &OutTradeNo) -> Result<OutTradeNo> {
        let owner =
            self.folder.write(|| insert_if_absent(&self.code_uses, "code_uses", &fingerprint.0, out_trade_no))?;
        Ok(owner.unwrap_or_else(|| out_trade_no.clone()))
    }

    /// Completes when the ledger fails, with the reason: the process should stop and be restarted.
    pub async fn failed(&self) -> String {
        self.folder.failed().await
    }

    /// Writes `value` under `key`; `what` names the record ("charge") and the write ("writing a charge").
    fn put<T: Record>(
        &self,
        tree: &sled::Tree,
        (what, doing): (&'static str, &'static str),
        key: &[u8],
        value: &T,
    ) -> Result<()> {
        self.folder.write(|| {
            let bytes = encode(what, value)?;
            tree.insert(key, bytes).map_err(io(doing))?;
            Ok(())
        })
    }

    /// Makes every write before this call durable. Concurrent callers share
    /// one flush (group commit).
    pub async fn commit(&self) -> Result<()> {
        self.folder.commit().await
    }

    /// Blocking form of [`Store::commit`], for start-up and shutdown.
    pub fn commit_blocking(&self) -> Result<()> {
        self.folder.commit_blocking()
    }

    pub fn products(&self) -> Result<Vec<Product>> {
        all(&self.products, "products")
    }

    pub fn product(&self, gtin: &ProductCode) -> Result<Option<Product>> {
        get(&self.products, "products", gtin.as_str().as_bytes())
    }

    pub fn put_product(&self, product: &Product) -> Result<()> {
        self.put(&self.products, ("product", "writing a product"), product.gtin.as_str().as_bytes(), product)
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
        self.put(&self.lanes, ("lane", "writing a lane"), lane.lane_id.as_str().as_bytes(), lane)
    }

    pub fn charge(&self, out_trade_no: &OutTradeNo) -> Result<Option<ChargeRecord>> {
        get(&self.charges, "charges", out_trade_no.as_str().as_bytes())
    }

    /// Records a new charge intent; if one with the same `out_trade_no` exists, returns it instead.
    pub fn insert_charge_if_absent(&self, charge: &ChargeRecord) -> Result<Option<ChargeRecord>> {
        self.folder
            .write(|| insert_if_absent(&self.charges, "charges", charge.out_trade_no.as_str().as_bytes(), charge))
    }

    pub fn put_charge(&self, charge: &ChargeRecord) -> Result<()> {
        self.put(&self.charges, ("charge", "writing a charge"), charge.out_trade_no.as_str().as_bytes(), charge)
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
        self.put(&self.refunds, ("refund", "writing a refund"), refund.out_refund_no.as_bytes(), refund)
    }

    /// Records a new refund unless one with the same `out_refund_no` exists; returns that one.
    pub fn insert_refund_if_absent(&self, refund: &RefundRecord) -> Result<Option<RefundRecord>> {
        self.folder.write(|| insert_if_absent(&self.refunds, "refunds", refund.out_refund_no.as_bytes(), refund))
    }

    pub fn refunds(&self) -> Result<Vec<RefundRecord>> {
        all(&self.refunds, "refunds")
    }

    pub fn sale(&self, sale_id: &SaleId) -> Result<Option<SaleRecord>> {
        get(&self.sales, "sales", sale_id.as_str().as_bytes())
    }

    /// Records a finished sale; returns false when it was already recorded.
    pub fn insert_sale_if_absent(&self, sale: &SaleRecord) -> Result<bool> {
        let existing =
            self.folder.write(|| insert_if_absent(&self.sales, "sales", sale.sale_id.as_str().as_bytes(), sale))?;
        Ok(existing.is_none())
    }

    pub fn sales(&self) -> Result<Vec<SaleRecord>> {
        all(&self.sales, "sales")
    }

    pub fn shift(&self, shift_id: &ShiftId) -> Result<Option<ShiftRecord>> {
        get(&self.shifts, "shifts", shift_id.as_str().as_bytes())
    }

    pub fn put_shift(&self, shift: &ShiftRecord) -> Result<()> {
        self.put(&self.shifts, ("shift", "writing a shift"), shift.shift_id.as_str().as_bytes(), shift)
    }

    pub fn shifts(&self) -> Result<Vec<ShiftRecord>> {
        all(&self.shifts, "shifts")
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
        store.commit_blocking().unwrap();
        drop(store);
        let before = crate::folder::files_below(dir.path());
        let Err(err) = Store::open(dir.path()) else { panic!("opened a ledger holding an unreadable record") };
        assert!(matches!(err, StorageError::Damaged { .. }), "{err}");
        assert!(err.to_string().contains("4006381333931"), "the error names the record: {err}");
        assert_eq!(crate::folder::files_below(dir.path()), before, "a refused folder is left as it was");
    }
}

#[cfg(test)]
mod code_tests {
    use super::*;
    use crate::{Attempt, Provider, SimulatedWallet, StoreId, UnixMillis};

    fn order(sale: &str) -> OutTradeNo {
        OutTradeNo::derive(&StoreId::parse("S1").unwrap(), &SaleId::parse(sale).unwrap(), Attempt::new(1).unwrap())
    }

    #[test]
    fn a_code_is_claimed_by_one_order_and_recognised_without_being_kept() {
        let (dir, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let code = SimulatedWallet::new(b"k", Provider::Alipay, 1).issue_code(UnixMillis::now());
        let fresh = SimulatedWallet::new(b"k", Provider::Alipay, 2).issue_code(UnixMillis::now());
        let key_of_first;
        {
            let store = Store::open(dir.path()).unwrap();
            let fingerprint = store.fingerprint(&code);
            key_of_first = fingerprint;
            assert_ne!(fingerprint, store.fingerprint(&fresh));
            assert_eq!(store.claim_code(fingerprint, &order("L1-A")).unwrap(), order("L1-A"));
            assert_eq!(store.claim_code(fingerprint, &order("L1-A")).unwrap(), order("L1-A"), "the same order again");
            assert_eq!(store.claim_code(fingerprint, &order("L1-B")).unwrap(), order("L1-A"), "another order");
            store.commit_blocking().unwrap();
        }
        // The key stays with the folder, and another folder has its own.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.fingerprint(&code), key_of_first);
        assert_eq!(store.claim_code(key_of_first, &order("L1-C")).unwrap(), order("L1-A"));
        assert_ne!(Store::open(other.path()).unwrap().fingerprint(&code), key_of_first);
        let shown = format!("{key_of_first:?}");
        assert!(!shown.contains(code.expose_digits()) && shown.len() < 12, "{shown}");
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
