//! The store's sled database: typed trees of products, lanes, sales and charges.
//!
//! Values are a one-byte record version followed by the record in postcard;
//! the `meta` tree names the data folder's format version, and a folder of
//! another version is refused on open rather than misread.

use std::path::{Path, PathBuf};

use serde::{Serialize, de::DeserializeOwned};

use crate::{ChargeRecord, LaneId, LaneRecord, OutTradeNo, Product, ProductCode, SaleId, SaleRecord};

/// The layout of a data folder this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
const FORMAT_KEY: &[u8] = b"format";
const FORMAT_MAGIC: &[u8] = b"checkout-ledger/";
const RECORD_VERSION: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot open the data folder {path}: {source}")]
    Open { path: PathBuf, source: sled::Error },
    #[error("the data folder {path} holds format version {found}; this build reads version {expected}")]
    FormatVersion { path: PathBuf, found: String, expected: u32 },
    #[error("the data folder {path} holds data but no checkout format marker: not a checkout data folder")]
    NotCheckoutData { path: PathBuf },
    #[error("storage I/O failed while {doing}: {source}")]
    Io { doing: &'static str, source: sled::Error },
    #[error("record in {tree} at key {key:?} cannot be read: {reason}")]
    Corrupt { tree: &'static str, key: String, reason: String },
    #[error("cannot encode a {what}: {source}")]
    Encode { what: &'static str, source: postcard::Error },
}

type Result<T, E = StorageError> = std::result::Result<T, E>;

/// The opened data folder. Cheap to clone; every clone is the same database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    products: sled::Tree,
    lanes: sled::Tree,
    sales: sled::Tree,
    charges: sled::Tree,
    path: PathBuf,
}

fn io(doing: &'static str) -> impl FnOnce(sled::Error) -> StorageError {
    move |source| StorageError::Io { doing, source }
}

fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>> {
    let mut out = vec![RECORD_VERSION];
    postcard::to_io(value, &mut out).map_err(|source| StorageError::Encode { what, source })?;
    Ok(out)
}

fn decode<T: DeserializeOwned>(tree: &'static str, key: &[u8], bytes: &[u8]) -> Result<T> {
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

impl Store {
    /// Opens (or creates) the data folder at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(64 * 1024 * 1024)
            .open()
            .map_err(|source| StorageError::Open { path: path.to_owned(), source })?;
        let tree = |name: &str| db.open_tree(name).map_err(io("opening a tree"));
        let store = Store {
            products: tree("products")?,
            lanes: tree("lanes")?,
            sales: tree("sales")?,
            charges: tree("charges")?,
            path: path.to_owned(),
            db,
        };
        store.check_format()?;
        Ok(store)
    }

    fn check_format(&self) -> Result<()> {
        let meta = self.db.open_tree("meta").map_err(io("opening a tree"))?;
        let expected = [FORMAT_MAGIC, FORMAT_VERSION.to_string().as_bytes()].concat();
        match meta.get(FORMAT_KEY).map_err(io("reading the format"))? {
            Some(found) if found.as_ref() == expected.as_slice() => Ok(()),
            Some(found) => Err(StorageError::FormatVersion {
                path: self.path.clone(),
                found: String::from_utf8_lossy(found.strip_prefix(FORMAT_MAGIC).unwrap_or(&found)).into_owned(),
                expected: FORMAT_VERSION,
            }),
            None => {
                let empty = [&self.products, &self.lanes, &self.sales, &self.charges].iter().all(|t| t.is_empty());
                if !empty {
                    return Err(StorageError::NotCheckoutData { path: self.path.clone() });
                }
                meta.insert(FORMAT_KEY, expected).map_err(io("writing the format"))?;
                self.db.flush().map_err(io("flushing"))?;
                Ok(())
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes every write before this call durable. Concurrent callers share
    /// sled's flushes: one flush covers every write that came before it.
    pub async fn commit(&self) -> Result<()> {
        self.db.flush_async().await.map_err(io("flushing"))?;
        Ok(())
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
        {
            let db = sled::open(dir.path()).unwrap();
            db.open_tree("meta").unwrap().insert(FORMAT_KEY, b"checkout-ledger/99".as_slice()).unwrap();
            db.flush().unwrap();
        }
        let Err(err) = Store::open(dir.path()) else { panic!("opened a version 99 folder") };
        assert!(err.to_string().contains("format version 99"), "{err}");
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
