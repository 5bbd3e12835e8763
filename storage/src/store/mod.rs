//! The store's ledger on sled: typed trees of products, lanes, shifts, sales, charges and refunds.
//!
//! Values are a one-byte record version followed by the record in postcard.
//! The data folder around sled (format marker, commit watermark, the guarded
//! open, group commit) is [`crate::folder`]'s.

use std::{
    ops::Bound,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
};

use serde::{Serialize, de::DeserializeOwned};

use crate::{
    AuditRecord, BusinessDay, ChargeRecord, CodeFingerprint, LaneClosure, LaneId, LaneRecord, LaneTokenRecord,
    OutTradeNo, PaymentCode, Product, ProductCode, RefundRecord, SaleId, SaleRecord, ShiftId, ShiftRecord,
    archive::Archive,
    folder::{CREDENTIALS_DIR, DataFolder, FORMAT_FILE},
    summary::{LedgerSummary, RefundTally, ShiftTally, Tally},
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
    #[error("the business day {day} is not over yet (today is {today}, UTC+8): only a past day can be closed")]
    DayNotOver { day: BusinessDay, today: BusinessDay },
    #[error("the business day {day} is already closed (or being closed)")]
    DayAlreadyClosed { day: BusinessDay },
    #[error("the business day {day} cannot be closed yet: {detail}; settle them first")]
    DayUnsettled { day: BusinessDay, detail: String },
    #[error(
        "{what} {id} belongs to the business day {day}, which is closed: its records are archived and final, and take no more writes"
    )]
    DayClosed { day: BusinessDay, what: &'static str, id: String },
    #[error("{month:?} is not a month of the archive: a month is YYYY-MM")]
    InvalidMonth { month: String },
}

type Result<T, E = StorageError> = std::result::Result<T, E>;

/// The opened data folder. Cheap to clone; every clone is the same database.
#[derive(Clone)]
pub struct Store {
    folder: Arc<DataFolder>,
    /// The key of payment-code fingerprints, made at random when the folder was created.
    code_key: Arc<[u8; 32]>,
    /// The key that signs member codes, made at random when first needed.
    member_key: Arc<crate::MemberKey>,
    /// Member id -> the member.
    members: sled::Tree,
    /// Member, sale and reason -> a movement of the member's points (see `members.rs`).
    member_points: sled::Tree,
    /// Sale id -> the member attached to it.
    sale_members: sled::Tree,
    /// Coupon id -> the coupon and where it stands (see `coupons.rs`).
    coupons: sled::Tree,
    /// Sale id -> the coupon that goes with it (taken off its payment).
    sale_coupons: sled::Tree,
    /// Sale id -> the coupon it last held (applied or not), so that paying the sale lets go of one not applied.
    sale_held_coupons: sled::Tree,
    /// Promotion id -> the promotion (see `promotions.rs`).
    promotions: sled::Tree,
    /// Sale id -> what promotions and a coupon took off the paid sale, for the totals.
    sale_discounts: sled::Tree,
    /// Bumped when a promotion is created or ended: lanes compare it with theirs. Starts at the process's
    /// start time, so that a restarted coordinator never repeats a version a lane saw.
    promotions_version: Arc<std::sync::atomic::AtomicU64>,
    /// The promotions not over as last read, with the version they were read at: every charge prices with
    /// them, and the tree is read again only when the version moved (or the earliest end passed).
    promotions_cache: Arc<Mutex<Option<promotions::Cached>>>,
    /// Payment code fingerprint -> the order it was first sent in: a code is single-use.
    code_uses: sled::Tree,
    products: sled::Tree,
    shifts: sled::Tree,
    lanes: sled::Tree,
    sales: sled::Tree,
    charges: sled::Tree,
    refunds: sled::Tree,
    /// `out_trade_no` `/` `out_refund_no` -> nothing: the refunds of each payment.
    refunds_by_order: sled::Tree,
    lane_tokens: sled::Tree,
    /// Sequence number (big-endian) -> audit entry.
    audit: sled::Tree,
    /// Caller, method and `request_id` -> the first answer (see `requests.rs`).
    requests: sled::Tree,
    /// Lane id -> the manager's closure of that lane, while it is closed.
    lane_closures: sled::Tree,
    /// Indexes by time (see `windows.rs`): moment and key -> nothing.
    charges_by_time: sled::Tree,
    sales_by_time: sled::Tree,
    refunds_by_time: sled::Tree,
    reversals_by_time: sled::Tree,
    /// Reconciliation id -> a day's reconciliation against a bill; id and number -> each difference.
    reconciliations: sled::Tree,
    reconciliation_differences: sled::Tree,
    /// Shift id -> the lane's count of the shift against the ledger's.
    shift_settlements: sled::Tree,
    /// Business day -> its [`crate::ClosedDay`]: what its archived records counted.
    closed_days: sled::Tree,
    /// Archived payment -> its provider, for the live sales and refunds that name it (see `archive.rs`).
    charge_providers: sled::Tree,
    /// The archive of closed days, opened when read.
    archive: Arc<Archive>,
    /// The days closed and being closed.
    days: Arc<Mutex<archive::DayStates>>,
    /// Held (shared) by each write of a charge, sale or refund, and (alone) to start closing a day.
    gate: Arc<RwLock<()>>,
    /// One close at a time.
    closing: Arc<Mutex<()>>,
    audit_entries: Arc<std::sync::atomic::AtomicU64>,
    audit_keep: Arc<std::sync::atomic::AtomicU64>,
    /// Totals, takings, the unsettled queue and open shifts, kept as records are written.
    summary: Arc<Mutex<LedgerSummary>>,
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

/// Up to `limit` records of `tree` whose keys start with `prefix`, after the key `after` (from the
/// first when `None`), in key order, with their keys.
fn page<T: Record>(
    tree: &sled::Tree,
    name: &'static str,
    prefix: &[u8],
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, T)>> {
    page_where(tree, name, prefix, after, limit, |_| true)
}

/// [`page`] of the records `keep` admits.
fn page_where<T: Record>(
    tree: &sled::Tree,
    name: &'static str,
    prefix: &[u8],
    after: Option<&[u8]>,
    limit: usize,
    keep: impl Fn(&T) -> bool,
) -> Result<Vec<(Vec<u8>, T)>> {
    let entries = match after {
        Some(after) => tree.range::<&[u8], _>((Bound::Excluded(after), Bound::Unbounded)),
        None => tree.range::<&[u8], _>(prefix..),
    };
    let mut out = Vec::new();
    for entry in entries {
        let (k, v) = entry.map_err(io("reading"))?;
        if !k.starts_with(prefix) || out.len() >= limit {
            break;
        }
        let record = decode(name, &k, &v)?;
        if keep(&record) {
            out.push((k.to_vec(), record));
        }
    }
    Ok(out)
}

fn get<T: Record>(tree: &sled::Tree, name: &'static str, key: &[u8]) -> Result<Option<T>> {
    match tree.get(key).map_err(io("reading"))? {
        Some(v) => decode(name, key, &v).map(Some),
        None => Ok(None),
    }
}

/// The number after the highest of `tree`'s keys, which are a letter and zero-padded digits (`M00000012`):
/// 1 for an empty tree.
fn next_number(tree: &sled::Tree, name: &'static str, letter: char) -> Result<u64> {
    let Some((key, _)) = tree.last().map_err(io("reading"))? else { return Ok(1) };
    std::str::from_utf8(&key)
        .ok()
        .and_then(|id| id.strip_prefix(letter))
        .and_then(|digits| digits.parse::<u64>().ok())
        .map(|n| n + 1)
        .ok_or_else(|| StorageError::Corrupt {
            tree: name,
            key: String::from_utf8_lossy(&key).into_owned(),
            reason: format!("not a number after {letter}"),
        })
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

/// The key of a refund in the index of each payment's refunds.
fn refund_index_key(refund: &RefundRecord) -> Vec<u8> {
    format!("{}/{}", refund.out_trade_no, refund.out_refund_no).into_bytes()
}

const CODE_KEY: &[u8] = b"checkout:code-key";

/// One of the folder's secret keys (`name`, under `what`); made from the system's random source when the
/// folder has none yet.
fn folder_key(folder: &DataFolder, path: &Path, name: &[u8], what: &'static str) -> Result<[u8; 32]> {
    if let Some(key) = folder.db.get(name).map_err(io("reading a key"))? {
        return key
            .as_ref()
            .try_into()
            .map_err(|_| StorageError::Damaged { path: path.to_owned(), detail: format!("its {what} is garbled") });
    }
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut key))
        .map_err(|source| StorageError::Folder { doing: "make a key for", path: path.to_owned(), source })?;
    folder.write(|| folder.db.insert(name, key.as_slice()).map_err(io("writing a key")))?;
    folder.commit_blocking()?;
    Ok(key)
}

impl Store {
    /// Opens (or creates) the data folder at `path`. A folder of another format, of
    /// something else, or one that lost acknowledged writes is refused, unchanged.
    pub fn open(path: &Path) -> Result<Store> {
        let (folder, scan) = DataFolder::open(path, "checkout-ledger", scan::scan_ledger)?;
        let tree = |name: &str| folder.db.open_tree(name).map_err(io("opening a tree"));
        let code_key = Arc::new(folder_key(&folder, path, CODE_KEY, "payment-code key")?);
        let member_key = folder_key(&folder, path, members::MEMBER_KEY, "member-code key")?;
        let member_key =
            Arc::new(crate::MemberKey::from_bytes(&member_key).unwrap_or_else(|| unreachable!("32 bytes")));
        let audit = tree("audit")?;
        let audit_entries = Arc::new(std::sync::atomic::AtomicU64::new(audit.len() as u64));
        let store = Store {
            summary: Arc::new(Mutex::new(scan.summary)),
            closed_days: tree(scan::CLOSED_DAYS)?,
            charge_providers: tree(scan::CHARGE_PROVIDERS)?,
            archive: Arc::new(Archive::new(path)),
            days: Arc::new(Mutex::new(archive::DayStates::new(scan.closed))),
            gate: Arc::new(RwLock::new(())),
            closing: Arc::new(Mutex::new(())),
            refunds_by_order: tree("refunds_by_order")?,
            audit,
            requests: tree("requests")?,
            lane_closures: tree("lane_closures")?,
            charges_by_time: tree("charges_by_time")?,
            sales_by_time: tree("sales_by_time")?,
            refunds_by_time: tree("refunds_by_time")?,
            reversals_by_time: tree("reversals_by_time")?,
            reconciliations: tree("reconciliations")?,
            reconciliation_differences: tree("reconciliation_differences")?,
            shift_settlements: tree("shift_settlements")?,
            audit_entries,
            audit_keep: Arc::new(std::sync::atomic::AtomicU64::new(AUDIT_KEEP)),
            lane_tokens: tree("lane_tokens")?,
            code_key,
            member_key,
            members: tree("members")?,
            member_points: tree("member_points")?,
            sale_members: tree("sale_members")?,
            coupons: tree("coupons")?,
            sale_coupons: tree("sale_coupons")?,
            sale_held_coupons: tree("sale_held_coupons")?,
            promotions: tree("promotions")?,
            sale_discounts: tree("sale_discounts")?,
            promotions_version: Arc::new(std::sync::atomic::AtomicU64::new(crate::UnixMillis::now().0.max(0) as u64)),
            promotions_cache: Arc::new(Mutex::new(None)),
            code_uses: tree("code_uses")?,
            products: tree("products")?,
            shifts: tree("shifts")?,
            lanes: tree("lanes")?,
            sales: tree("sales")?,
            charges: tree("charges")?,
            refunds: tree("refunds")?,
            path: path.to_owned(),
            folder: Arc::new(folder),
        };
        store.after_scan(scan.leftovers, scan.unindexed_refunds)?;
        Ok(store)
    }

    fn summary(&self) -> std::sync::MutexGuard<'_, LedgerSummary> {
        self.summary.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The store's totals and each lane's.
    pub fn totals(&self) -> (Tally, std::collections::BTreeMap<LaneId, Tally>) {
        self.summary().totals()
    }

    pub fn lane_tally(&self, lane_id: &LaneId) -> Tally {
        self.summary().lane(lane_id)
    }

    /// What the shift took.
    pub fn shift_tally(&self, shift_id: &ShiftId) -> ShiftTally {
        self.summary().shift_tally(shift_id)
    }

    /// Accepted refunds and their total.
    pub fn refund_tally(&self) -> RefundTally {
        self.summary().refunds()
    }

    /// How many charges are not final yet.
    pub fn unsettled_count(&self) -> usize {
        self.summary().unsettled_count()
    }

    /// Up to `limit` charges not final yet, oldest first, after the one created at `after`.
    pub fn unsettled_page(
        &self,
        after: Option<&(crate::UnixMillis, OutTradeNo)>,
        limit: usize,
    ) -> Result<Vec<ChargeRecord>> {
        let keys = self.summary().unsettled_after(after, limit);
        let mut charges = Vec::with_capacity(keys.len());
        for (_, out_trade_no) in keys {
            // Settled since the summary was read: not listed.
            if let Some(charge) = self.charge(&out_trade_no)?.filter(|c| !c.status.is_final()) {
                charges.push(charge);
            }
        }
        Ok(charges)
    }

    /// The shifts not closed yet, of `lane_id` or of every lane.
    pub fn open_shifts(&self, lane_id: Option<&LaneId>) -> Result<Vec<ShiftRecord>> {
        let ids = self.summary().open_shifts(lane_id);
        let mut shifts = Vec::with_capacity(ids.len());
        for id in ids {
            shifts.extend(self.shift(&id)?.filter(|s| s.closed_at.is_none()));
        }
        Ok(shifts)
    }

    /// Up to `limit` sales after the sale id `after`, in sale-id order (a lane's sales in the order it
    /// made them); only `lane_id`'s when given.
    pub fn sales_page(
        &self,
        lane_id: Option<&LaneId>,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, SaleRecord)>> {
        let prefix = lane_id.map(|l| format!("{l}-")).unwrap_or_default();
        page(&self.sales, "sales", prefix.as_bytes(), after, limit)
    }

    /// Up to `limit` charges whose `out_trade_no` starts with `prefix`, after `after`, in order.
    pub fn charges_page(
        &self,
        prefix: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, ChargeRecord)>> {
        page(&self.charges, "charges", prefix.as_bytes(), after, limit)
    }

    /// Up to `limit` refunds after the refund number `after`, in refund-number order.
    pub fn refunds_page(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, RefundRecord)>> {
        page(&self.refunds, "refunds", b"", after, limit)
    }

    /// Every refund of one payment (at most 50 by the providers' rules).
    pub fn refunds_of(&self, out_trade_no: &OutTradeNo) -> Result<Vec<RefundRecord>> {
        Ok(self.refunds_of_page(out_trade_no, None, usize::MAX)?.into_iter().map(|(_, r)| r).collect())
    }

    /// Up to `limit` shifts after the shift id `after`, in shift-id order; only `lane_id`'s when given.
    pub fn shifts_page(
        &self,
        lane_id: Option<&LaneId>,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, ShiftRecord)>> {
        let prefix = lane_id.map(|l| format!("{l}-")).unwrap_or_default();
        page(&self.shifts, "shifts", prefix.as_bytes(), after, limit)
    }

    /// Up to `limit` lanes after the lane id `after`.
    pub fn lanes_page(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, LaneRecord)>> {
        page(&self.lanes, "lanes", b"", after, limit)
    }

    /// Up to `limit` products after the GTIN `after`.
    pub fn products_page(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Product)>> {
        page(&self.products, "products", b"", after, limit)
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

    /// Every lane a manager has closed (and not opened again).
    pub fn lane_closures(&self) -> Result<Vec<LaneClosure>> {
        all(&self.lane_closures, "lane_closures")
    }

    /// Closes a lane (`Some`) or opens it again (`None`); durable with the next commit.
    pub fn set_lane_closure(&self, lane_id: &LaneId, closure: Option<&LaneClosure>) -> Result<()> {
        let key = lane_id.as_str().as_bytes();
        match closure {
            Some(closure) => self.put(&self.lane_closures, ("lane closure", "closing a lane"), key, closure),
            None => self.folder.write(|| self.lane_closures.remove(key).map(drop).map_err(io("opening a lane"))),
        }
    }

    /// The charge `out_trade_no`, live or archived.
    pub fn charge(&self, out_trade_no: &OutTradeNo) -> Result<Option<ChargeRecord>> {
        match get(&self.charges, "charges", out_trade_no.as_str().as_bytes())? {
            Some(charge) => Ok(Some(charge)),
            None => self.archived_charge(out_trade_no),
        }
    }

    fn gate(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a new charge intent; if one with the same `out_trade_no` exists (live or archived), returns it
    /// instead.
    pub fn insert_charge_if_absent(&self, charge: &ChargeRecord) -> Result<Option<ChargeRecord>> {
        let _gate = self.gate();
        let key = charge.out_trade_no.as_str().as_bytes();
        if !self.charges.contains_key(key).map_err(io("reading"))?
            && let Some(archived) = self.archived_charge(&charge.out_trade_no)?
        {
            return Ok(Some(archived));
        }
        self.admit(BusinessDay::of(charge.created_at), "charge", charge.out_trade_no.as_str())?;
        self.index_charge_time(charge)?;
        let existing = self
            .folder
            .write(|| insert_if_absent(&self.charges, "charges", charge.out_trade_no.as_str().as_bytes(), charge))?;
        if existing.is_none() {
            self.summary().charge(charge, 1);
        }
        Ok(existing)
    }

    /// Writes a charge; refused for one of a closed day (archived charges are final).
    pub fn put_charge(&self, charge: &ChargeRecord) -> Result<()> {
        let _gate = self.gate();
        let key = charge.out_trade_no.as_str().as_bytes();
        self.admit(BusinessDay::of(charge.created_at), "charge", charge.out_trade_no.as_str())?;
        if !self.charges.contains_key(key).map_err(io("reading"))?
            && let Some(archived) = self.archived_charge(&charge.out_trade_no)?
        {
            let day = BusinessDay::of(archived.created_at);
            return Err(StorageError::DayClosed { day, what: "charge", id: charge.out_trade_no.to_string() });
        }
        self.index_charge_time(charge)?;
        self.index_reversal_time(charge)?;
        let old = self.replace(&self.charges, ("charges", "writing a charge"), key, charge)?;
        let mut summary = self.summary();
        if let Some(old) = &old {
            summary.charge(old, -1);
        }
        summary.charge(charge, 1);
        Ok(())
    }

    /// Writes `value` under `key` and returns the record it replaced.
    fn replace<T: Record>(
        &self,
        tree: &sled::Tree,
        (name, doing): (&'static str, &'static str),
        key: &[u8],
        value: &T,
    ) -> Result<Option<T>> {
        self.folder.write(|| {
            let bytes = encode(name, value)?;
            match tree.insert(key, bytes).map_err(io(doing))? {
                Some(old) => decode(name, key, &old).map(Some),
                None => Ok(None),
            }
        })
    }

    /// Every live charge (the open days'; a closed day's are in the archive).
    pub fn charges(&self) -> Result<Vec<ChargeRecord>> {
        all(&self.charges, "charges")
    }

    /// Charges not yet in a final state: in flight, unknown, or owed a reversal; oldest first.
    pub fn outstanding_charges(&self) -> Result<Vec<ChargeRecord>> {
        self.unsettled_page(None, usize::MAX)
    }

    /// Charges whose `out_trade_no` starts with `prefix`: every attempt of one sale, live or archived.
    pub fn charges_with_prefix(&self, prefix: &str) -> Result<Vec<ChargeRecord>> {
        let mut charges = self.archived_charges_with_prefix(prefix)?;
        for entry in self.charges.scan_prefix(prefix.as_bytes()) {
            let (k, v) = entry.map_err(io("reading"))?;
            charges.push(decode("charges", &k, &v)?);
        }
        charges.sort_by(|a, b| a.out_trade_no.cmp(&b.out_trade_no));
        charges.dedup_by(|a, b| a.out_trade_no == b.out_trade_no);
        Ok(charges)
    }

    /// The refund `out_refund_no`, live or archived.
    pub fn refund(&self, out_refund_no: &str) -> Result<Option<RefundRecord>> {
        match get(&self.refunds, "refunds", out_refund_no.as_bytes())? {
            Some(refund) => Ok(Some(refund)),
            None => self.archived_refund(out_refund_no),
        }
    }

    /// Writes a refund (of a live or an archived payment); refused for one of a closed day.
    pub fn put_refund(&self, refund: &RefundRecord) -> Result<()> {
        let _gate = self.gate();
        self.admit(BusinessDay::of(refund.created_at), "refund", &refund.out_refund_no)?;
        if !self.refunds.contains_key(refund.out_refund_no.as_bytes()).map_err(io("reading"))?
            && let Some(archived) = self.archived_refund(&refund.out_refund_no)?
        {
            let day = BusinessDay::of(archived.created_at);
            return Err(StorageError::DayClosed { day, what: "refund", id: refund.out_refund_no.clone() });
        }
        let provider = self.provider_of(&refund.out_trade_no, true)?;
        self.index_refund(refund)?;
        let old =
            self.replace(&self.refunds, ("refunds", "writing a refund"), refund.out_refund_no.as_bytes(), refund)?;
        let mut summary = self.summary();
        if let Some(old) = &old {
            summary.refund(old, provider, -1);
        }
        summary.refund(refund, provider, 1);
        Ok(())
    }

    /// Records a new refund unless one with the same `out_refund_no` exists; returns that one.
    pub fn insert_refund_if_absent(&self, refund: &RefundRecord) -> Result<Option<RefundRecord>> {
        let _gate = self.gate();
        if !self.refunds.contains_key(refund.out_refund_no.as_bytes()).map_err(io("reading"))?
            && let Some(archived) = self.archived_refund(&refund.out_refund_no)?
        {
            return Ok(Some(archived));
        }
        self.admit(BusinessDay::of(refund.created_at), "refund", &refund.out_refund_no)?;
        let provider = self.provider_of(&refund.out_trade_no, true)?;
        self.index_refund(refund)?;
        let existing = self
            .folder
            .write(|| insert_if_absent(&self.refunds, "refunds", refund.out_refund_no.as_bytes(), refund))?;
        if existing.is_none() {
            self.summary().refund(refund, provider, 1);
        }
        Ok(existing)
    }

    /// Indexes a refund under its payment and by time (before the refund itself, so no refund is ever
    /// unindexed).
    fn index_refund(&self, refund: &RefundRecord) -> Result<()> {
        self.index_refund_time(refund)?;
        self.folder.write(|| {
            self.refunds_by_order.insert(refund_index_key(refund), &[]).map(drop).map_err(io("indexing a refund"))
        })
    }

    /// Every live refund.
    pub fn refunds(&self) -> Result<Vec<RefundRecord>> {
        all(&self.refunds, "refunds")
    }

    /// The sale `sale_id`, live or archived.
    pub fn sale(&self, sale_id: &SaleId) -> Result<Option<SaleRecord>> {
        match get(&self.sales, "sales", sale_id.as_str().as_bytes())? {
            Some(sale) => Ok(Some(sale)),
            None => self.archived_sale(sale_id.as_str().as_bytes()),
        }
    }

    /// Records a finished sale; returns false when it was already recorded (live or archived). Refused for a
    /// sale that finished on a closed day.
    pub fn insert_sale_if_absent(&self, sale: &SaleRecord) -> Result<bool> {
        let _gate = self.gate();
        let key = sale.sale_id.as_str().as_bytes();
        if !self.sales.contains_key(key).map_err(io("reading"))? && self.archived_sale(key)?.is_some() {
            return Ok(false);
        }
        self.admit(BusinessDay::of(sale.finished_at), "sale", sale.sale_id.as_str())?;
        let provider = self.provider_of(&sale.out_trade_no, true)?;
        self.index_sale_time(sale)?;
        let existing = self.folder.write(|| insert_if_absent(&self.sales, "sales", key, sale))?;
        if existing.is_none() {
            self.summary().sale(sale, provider);
        }
        Ok(existing.is_none())
    }

    /// Every live sale.
    pub fn sales(&self) -> Result<Vec<SaleRecord>> {
        all(&self.sales, "sales")
    }

    pub fn shift(&self, shift_id: &ShiftId) -> Result<Option<ShiftRecord>> {
        get(&self.shifts, "shifts", shift_id.as_str().as_bytes())
    }

    pub fn put_shift(&self, shift: &ShiftRecord) -> Result<()> {
        let old =
            self.replace(&self.shifts, ("shifts", "writing a shift"), shift.shift_id.as_str().as_bytes(), shift)?;
        let mut summary = self.summary();
        if let Some(old) = &old {
            summary.shift(old, -1);
        }
        summary.shift(shift, 1);
        Ok(())
    }

    pub fn shifts(&self) -> Result<Vec<ShiftRecord>> {
        all(&self.shifts, "shifts")
    }
}

mod archive;
mod coupons;
mod members;
mod promotions;
mod reconciliations;
mod requests;
mod scan;
mod settlements;
mod windows;

pub use requests::REQUEST_KEEP_MILLIS;

#[cfg(test)]
mod archive_tests;
#[cfg(test)]
mod tests;
