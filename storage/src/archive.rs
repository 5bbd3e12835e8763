//! The archive of closed business days: one sled database a month under `<data folder>/archive/`, and one
//! index from record ids to their day, each opened only when first read.
//!
//! A month's database (`archive/2026-11/`) holds the same trees, keyed the same way, as the live ledger
//! for charges, sales and refunds and their indexes by time, plus `days`: a mark per day written in it.
//! The index (`archive/index/`) maps each archived charge, sale and refund id (and each refund under its
//! payment) to its day. Neither is read when the data folder opens: the live ledger keeps a
//! [`ClosedDay`] per closed day with everything its totals need.

use std::{
    collections::HashMap,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    sync::Mutex,
};

use serde::{Deserialize, Serialize};

use crate::{
    BusinessDay, LaneId, Provider, ShiftId, StorageError, UnixMillis,
    folder::restrict_permissions,
    summary::{ShiftTally, Tally},
};

/// The folder of the id index inside the archive.
pub(crate) const INDEX_DB: &str = "index";
/// A month's cache: the archive is read a page or a record at a time.
const CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// Who closed a day, when, and a free note (the coordinator puts the reconciliation ids there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayClosure {
    /// "manager ann".
    pub closed_by: String,
    pub closed_at: UnixMillis,
    pub note: String,
}

/// What one lane took through one provider on a closed day (`None`: sales whose payment is unknown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneProviderTally {
    pub lane_id: LaneId,
    pub provider: Option<Provider>,
    pub tally: Tally,
}

/// A closed business day, kept in the live ledger once its records moved to the archive: what they
/// counted, so that every total stays what it was without reading them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedDay {
    pub day: BusinessDay,
    pub closure: DayClosure,
    /// How many records moved to the archive.
    pub charges: u64,
    pub sales: u64,
    pub refunds: u64,
    /// The day's tallies by (lane, provider): sales by when they finished, charges by when they were
    /// made, refunds by when they were asked.
    pub by_lane: Vec<LaneProviderTally>,
    /// What the day's records counted for each shift (a shift across midnight has a part in each day).
    pub shifts: Vec<(ShiftId, ShiftTally)>,
}

impl ClosedDay {
    /// The day's tally over every lane and provider.
    pub fn tally(&self) -> Tally {
        let mut out = Tally::default();
        for part in &self.by_lane {
            out.absorb(&part.tally);
        }
        out
    }
}

/// The mark a month's database keeps of each day written into it: a day closed in the live ledger
/// whose mark is missing means the archive lost acknowledged writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DayMark {
    pub(crate) charges: u64,
    pub(crate) sales: u64,
    pub(crate) refunds: u64,
}

impl crate::store::Record for DayClosure {}
impl crate::store::Record for ClosedDay {}
impl crate::store::Record for DayMark {}
impl crate::store::Record for Provider {}

/// `2026-11`, checked: the name of a month's archive.
pub(crate) fn check_month(month: &str) -> Result<(), StorageError> {
    let bytes = month.as_bytes();
    let ok = bytes.len() == 7
        && bytes[4] == b'-'
        && bytes.iter().enumerate().all(|(i, b)| i == 4 || b.is_ascii_digit())
        && matches!(month[5..].parse::<u32>(), Ok(1..=12));
    if ok { Ok(()) } else { Err(StorageError::InvalidMonth { month: month.chars().take(20).collect() }) }
}

/// The archive's databases, opened when first read and kept open.
pub(crate) struct Archive {
    dir: PathBuf,
    index: Mutex<Option<sled::Db>>,
    months: Mutex<HashMap<String, sled::Db>>,
}

impl Archive {
    pub(crate) fn new(data_folder: &Path) -> Archive {
        Archive {
            dir: data_folder.join(crate::folder::ARCHIVE_DIR),
            index: Mutex::new(None),
            months: Mutex::new(HashMap::new()),
        }
    }

    /// The id index, `true` with it when this call opened it; `None` when it does not exist and `create`
    /// is false.
    pub(crate) fn index(&self, create: bool) -> Result<Option<(sled::Db, bool)>, StorageError> {
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(db) = &*index {
            return Ok(Some((db.clone(), false)));
        }
        let Some(db) = self.open_db(INDEX_DB, create)? else { return Ok(None) };
        *index = Some(db.clone());
        Ok(Some((db, true)))
    }

    /// The database of `month` (`2026-11`), as [`Archive::index`].
    pub(crate) fn month(&self, month: &str, create: bool) -> Result<Option<(sled::Db, bool)>, StorageError> {
        check_month(month)?;
        let mut months = self.months.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(db) = months.get(month) {
            return Ok(Some((db.clone(), false)));
        }
        let Some(db) = self.open_db(month, create)? else { return Ok(None) };
        months.insert(month.to_owned(), db.clone());
        Ok(Some((db, true)))
    }

    /// Where the archive of `name` (a month, or the index) lives.
    pub(crate) fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Forgets a database that failed its check, so that the next read checks it again.
    pub(crate) fn forget(&self, name: &str) {
        if name == INDEX_DB {
            *self.index.lock().unwrap_or_else(|p| p.into_inner()) = None;
        } else {
            self.months.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
        }
    }

    fn open_db(&self, name: &str, create: bool) -> Result<Option<sled::Db>, StorageError> {
        let path = self.dir.join(name);
        let folder = |doing| {
            let path = path.clone();
            move |source| StorageError::Folder { doing, path, source }
        };
        let fresh = !path.exists();
        if fresh && !create {
            return Ok(None);
        }
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&path).map_err(folder("create"))?;
        // A handle this process is still closing may hold sled's lock a moment.
        let mut tries = 0;
        let db = loop {
            match sled::Config::new().path(&path).cache_capacity(CACHE_BYTES).flush_every_ms(None).open() {
                Err(e) if tries < 30 && crate::folder::is_lock_error(&e) => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                opened => break opened.map_err(|source| StorageError::Open { path: path.clone(), source })?,
            }
        };
        if fresh {
            restrict_permissions(&self.dir).map_err(folder("restrict the permissions of"))?;
        }
        Ok(Some(db))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_is_named_as_its_days_name_it() {
        for good in ["2026-11", "1999-01", "2026-12"] {
            assert!(check_month(good).is_ok(), "{good}");
        }
        for bad in ["2026-13", "2026-00", "2026-1", "202611", "2026-11-01", "../etc", "index", "２026-11"] {
            assert!(check_month(bad).is_err(), "{bad}");
        }
        assert!(check_month(&BusinessDay::parse("2026-02-28").unwrap().month()).is_ok());
    }
}
