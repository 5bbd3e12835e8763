//! A data folder on disk: its format marker, its commit watermark, the guarded open, and group commit.
//!
//! sled 0.34 recovers a damaged log by silently truncating it to its last
//! intact entry, and it writes to its files whenever it opens. On its own it
//! would turn "the disk lost our last hundred charges" into a quietly shorter
//! ledger. So every data folder keeps, beside sled's files:
//!
//! - `CHECKOUT_FORMAT`: what the folder is and its format version, read before
//!   sled touches anything;
//! - `COMMITTED`: the number of the last group commit sled reported durable.
//!   Every commit also writes its number inside sled, so a sled that reopens
//!   with a smaller number has lost acknowledged writes.
//!
//! Opening copies sled's files aside first (`.opening/`), opens and verifies,
//! and on any damage puts the copy back, so a damaged folder is refused with
//! its files exactly as they were. The archive of closed days (`archive/`,
//! see [`crate::archive`]) is not sled's live files: it is neither copied nor
//! read when the folder opens.
//!
//! One process per folder: `LOCK` is held with `flock` from before anything
//! in the folder is read or written (the copy-aside and the restore included)
//! until the folder is closed, so a second start is refused and changes
//! nothing. The folder is 0700 and its files 0600, whatever the umask: the
//! ledger holds the payment-code fingerprint key.

use std::{
    fs::File,
    os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt},
    path::Path,
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use crate::StorageError;

/// The layout of a data folder this build reads and writes.
pub const FORMAT_VERSION: u32 = 2;
/// The file in a data folder that names its format, read before sled touches anything.
pub const FORMAT_FILE: &str = "CHECKOUT_FORMAT";
/// The file holding the number of the last durable commit.
pub const COMMITTED_FILE: &str = "COMMITTED";
/// A folder beside sled's files for the owner's secrets (the coordinator's generated credentials).
pub const CREDENTIALS_DIR: &str = "credentials";
/// The folder, inside a data folder, of the archive of closed business days.
pub const ARCHIVE_DIR: &str = "archive";
/// The file whose `flock` the process using the folder holds.
pub const LOCK_FILE: &str = "LOCK";
/// How long an open waits for the lock (a handle closing in this process), before refusing.
const LOCK_PATIENCE: Duration = Duration::from_secs(3);
/// Where sled's files are copied while the folder is being opened. It exists only complete:
/// the copy is made under [`COPY_IN_PROGRESS`] and renamed, and it is renamed to
/// [`COPY_TO_DELETE`] before it is deleted, so a crash at any step leaves nothing half-restorable.
const OPENING_COPY: &str = ".opening";
const COPY_IN_PROGRESS: &str = ".opening-partial";
const COPY_TO_DELETE: &str = ".opening-done";
/// Inside the copy: the names of the files copied, so a restore can remove what sled added.
const COPY_MANIFEST: &str = "MANIFEST";
/// The key, in sled's default tree, of the last commit's number.
const COMMIT_KEY: &[u8] = b"checkout:commit";

type Result<T, E = StorageError> = std::result::Result<T, E>;

fn folder_error(path: &Path, doing: &'static str) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.to_owned();
    move |source| StorageError::Folder { doing, path, source }
}

/// An opened data folder: the sled database and its committer.
pub(crate) struct DataFolder {
    pub(crate) db: sled::Db,
    /// Held (`flock`) while the folder is open; closing the file lets go.
    _lock: File,
    committer: GroupCommit,
    /// Why the folder stopped taking writes, once a write or flush failed.
    ///
    /// After a failed write or `fsync` nobody knows what reached the disk, and
    /// sled refuses every later write anyway; so the folder fails for good and
    /// the process must restart (the lesson of PostgreSQL's "fsyncgate").
    failure: tokio::sync::watch::Sender<Option<String>>,
}

impl DataFolder {
    /// Opens the folder at `path` holding data of `kind` ("checkout-ledger", "checkout-lane"),
    /// creating it when it does not exist. `verify` reads every record once the
    /// database is open (and returns what it learnt of them); an error from it refuses the folder
    /// and restores its files.
    pub(crate) fn open<T>(
        path: &Path,
        kind: &str,
        verify: impl FnOnce(&sled::Db) -> Result<T>,
    ) -> Result<(DataFolder, T)> {
        refuse_foreign_folder(path)?;
        let lock = lock_folder(path)?;
        check_format(path, kind)?;
        remove_leftover_copies(path)?;
        restore_opening_copy(path)?;
        let acknowledged = read_committed(path);
        copy_sled_files(path)?;
        match open_and_verify(path, acknowledged, verify) {
            Ok((db, committed, verified)) => {
                let cleanup = folder_error(path, "clean up after opening");
                std::fs::rename(path.join(OPENING_COPY), path.join(COPY_TO_DELETE))
                    .and_then(|()| std::fs::remove_dir_all(path.join(COPY_TO_DELETE)))
                    .map_err(cleanup)?;
                let watermark = Watermark::start(path, committed)?;
                let committer = GroupCommit::start(&db, watermark).map_err(folder_error(path, "start committing"))?;
                restrict_permissions(path).map_err(folder_error(path, "restrict the permissions of"))?;
                let folder = DataFolder { db, _lock: lock, committer, failure: tokio::sync::watch::Sender::new(None) };
                Ok((folder, verified))
            }
            Err(error) => {
                restore_opening_copy(path)?;
                Err(error)
            }
        }
    }

    /// Makes every write before this call durable; concurrent callers share one flush.
    pub(crate) async fn commit(&self) -> Result<()> {
        self.refuse_if_failed()?;
        let (done, wait) = tokio::sync::oneshot::channel();
        let committed = match self.committer.queue.send(done) {
            Err(_) => Err(commit_failed("the group-commit thread is gone".into())),
            Ok(()) => match wait.await {
                Err(_) => Err(commit_failed("the group-commit thread is gone".into())),
                Ok(result) => result.map_err(commit_failed),
            },
        };
        self.noting_failure(committed)
    }

    /// Blocking form of [`DataFolder::commit`].
    pub(crate) fn commit_blocking(&self) -> Result<()> {
        self.refuse_if_failed()?;
        let committed = match self.committer.watermark.lock() {
            Ok(mut watermark) => watermark.commit(&self.db),
            Err(_) => Err(commit_failed("a commit panicked".into())),
        };
        self.noting_failure(committed)
    }

    /// Runs a write unless the folder has failed; a write that fails with an I/O error fails the folder.
    pub(crate) fn write<T>(&self, write: impl FnOnce() -> Result<T>) -> Result<T> {
        self.refuse_if_failed()?;
        self.noting_failure(write())
    }

    fn refuse_if_failed(&self) -> Result<()> {
        match &*self.failure.borrow() {
            Some(reason) => Err(StorageError::Failed { reason: reason.clone() }),
            None => Ok(()),
        }
    }

    fn noting_failure<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(StorageError::Io { doing, source }) = &result {
            let reason = format!("{doing}: {source}");
            self.failure.send_if_modified(|failure| {
                let first = failure.is_none();
                if first {
                    tracing::error!(%reason, "the data folder failed: it takes no more writes until the process restarts");
                    *failure = Some(reason.clone());
                }
                first
            });
        }
        result
    }

    /// Completes when the folder fails, with the reason.
    pub(crate) async fn failed(&self) -> String {
        let mut failure = self.failure.subscribe();
        loop {
            if let Some(reason) = &*failure.borrow_and_update() {
                return reason.clone();
            }
            if failure.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

fn commit_failed(reason: String) -> StorageError {
    StorageError::Io { doing: "flushing", source: sled::Error::Io(std::io::Error::other(reason)) }
}

/// Opens sled and checks it holds every acknowledged commit and that `verify` passes; returns it with
/// the number of the last commit it holds.
fn open_and_verify<T>(
    path: &Path,
    acknowledged: Option<u64>,
    verify: impl FnOnce(&sled::Db) -> Result<T>,
) -> Result<(sled::Db, u64, T)> {
    let damaged = |detail: String| StorageError::Damaged { path: path.to_owned(), detail };
    let db = open_db(path).map_err(|e| match e {
        StorageError::Open { source, .. } if !is_lock_error(&source) => {
            damaged(format!("sled cannot read it: {source}"))
        }
        other => other,
    })?;
    let found = stored_commit(&db).map_err(&damaged)?;
    if let Some(acknowledged) = acknowledged
        && found < acknowledged
    {
        return Err(damaged(format!(
            "it holds commits up to #{found} but #{acknowledged} were acknowledged, so acknowledged writes are missing"
        )));
    }
    let verified = verify(&db).map_err(|e| damaged(e.to_string()))?;
    Ok((db, found, verified))
}

pub(crate) fn is_lock_error(error: &sled::Error) -> bool {
    matches!(error, sled::Error::Io(e) if e.to_string().contains("lock"))
}

fn stored_commit(db: &sled::Db) -> std::result::Result<u64, String> {
    match db.get(COMMIT_KEY).map_err(|e| format!("sled cannot read it: {e}"))? {
        None => Ok(0),
        Some(bytes) => {
            let bytes: [u8; 8] = bytes.as_ref().try_into().map_err(|_| "its commit number is garbled".to_owned())?;
            Ok(u64::from_be_bytes(bytes))
        }
    }
}

/// The last acknowledged commit, from `COMMITTED`; `None` when there is none to check against.
fn read_committed(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path.join(COMMITTED_FILE)).ok()?;
    match text.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => {
            tracing::warn!(folder = %path.display(), "{COMMITTED_FILE} is unreadable; lost writes cannot be checked this time");
            None
        }
    }
}

/// Is `name`, in the top of a data folder, one of sled's files (as opposed to ours)?
fn is_sled_file(name: &std::ffi::OsStr) -> bool {
    ![
        FORMAT_FILE,
        COMMITTED_FILE,
        LOCK_FILE,
        CREDENTIALS_DIR,
        ARCHIVE_DIR,
        OPENING_COPY,
        COPY_IN_PROGRESS,
        COPY_TO_DELETE,
    ]
    .iter()
    .any(|ours| name == *ours)
}

/// Refuses, before anything is added to it, a folder holding files of something else.
fn refuse_foreign_folder(path: &Path) -> Result<()> {
    if path.join(FORMAT_FILE).exists() {
        return Ok(());
    }
    match std::fs::read_dir(path) {
        Ok(mut entries) => {
            if entries.any(|e| e.is_ok_and(|e| e.file_name() != LOCK_FILE)) {
                return Err(StorageError::NotCheckoutData { path: path.to_owned() });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(folder_error(path, "create"))
        }
        Err(e) => Err(folder_error(path, "list")(e)),
    }
}

/// Takes the folder's lock, waiting briefly for a handle this process is still closing.
fn lock_folder(path: &Path) -> Result<File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path.join(LOCK_FILE))
        .map_err(folder_error(path, "open the lock of"))?;
    let give_up = std::time::Instant::now() + LOCK_PATIENCE;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < give_up => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => return Err(StorageError::InUse { path: path.to_owned() }),
            Err(std::fs::TryLockError::Error(e)) => return Err(folder_error(path, "lock")(e)),
        }
    }
}

/// The folder 0700, everything in it 0600 (folders 0700), whatever the umask sled's files were made under.
pub(crate) fn restrict_permissions(path: &Path) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    let mut pending = vec![path.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o700))?;
                pending.push(entry.path());
            } else if kind.is_file() {
                std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    Ok(())
}

fn sled_file_names(path: &Path) -> std::io::Result<Vec<std::ffi::OsString>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let name = entry?.file_name();
        if is_sled_file(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// A copy being made, or one whose open succeeded, is never restored: a crash left it.
fn remove_leftover_copies(path: &Path) -> Result<()> {
    for leftover in [COPY_IN_PROGRESS, COPY_TO_DELETE] {
        let leftover = path.join(leftover);
        if leftover.exists() {
            std::fs::remove_dir_all(&leftover).map_err(folder_error(path, "remove a copy left by a crash in"))?;
        }
    }
    Ok(())
}

fn copy_sled_files(path: &Path) -> Result<()> {
    let partial = path.join(COPY_IN_PROGRESS);
    let copied = copy_into(path, &partial);
    if copied.is_err() {
        // A copy that could not be finished (a full disk, most likely) must not hold on to the space.
        let _ = std::fs::remove_dir_all(&partial);
    }
    copied.map_err(folder_error(path, "copy aside before opening"))
}

fn copy_into(path: &Path, partial: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(partial)?;
    let names = sled_file_names(path)?;
    for name in &names {
        copy_recursively(&path.join(name), &partial.join(name))?;
    }
    let manifest: Vec<&str> = names.iter().filter_map(|n| n.to_str()).collect();
    std::fs::write(partial.join(COPY_MANIFEST), manifest.join("\n"))?;
    std::fs::rename(partial, path.join(OPENING_COPY))
}

fn copy_recursively(from: &Path, to: &Path) -> std::io::Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_recursively(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        std::fs::copy(from, to).map(|_| ())
    }
}

/// Puts back the copy taken before an open that failed (or crashed), so the folder is as it was.
/// Every step can be repeated: a crash part-way leaves a restore the next start finishes.
fn restore_opening_copy(path: &Path) -> Result<()> {
    let copy = path.join(OPENING_COPY);
    if !copy.exists() {
        return Ok(());
    }
    let fail = |doing| folder_error(path, doing);
    let manifest = std::fs::read_to_string(copy.join(COPY_MANIFEST)).map_err(fail("read the copy's manifest in"))?;
    let copied: Vec<&str> = manifest.lines().filter(|l| !l.is_empty()).collect();
    // What sled added while the failed open ran goes; what was copied comes back.
    for name in sled_file_names(path).map_err(fail("list"))? {
        if !copied.iter().any(|c| name == **c) {
            remove_entry(&path.join(name)).map_err(fail("restore"))?;
        }
    }
    for name in copied {
        let (from, to) = (copy.join(name), path.join(name));
        if from.exists() {
            if to.is_dir() {
                std::fs::remove_dir_all(&to).map_err(fail("restore"))?;
            }
            std::fs::rename(&from, &to).map_err(fail("restore"))?;
        }
    }
    std::fs::remove_dir_all(&copy).map_err(fail("restore"))
}

fn remove_entry(entry: &Path) -> std::io::Result<()> {
    if entry.is_dir() { std::fs::remove_dir_all(entry) } else { std::fs::remove_file(entry) }
}

/// Checks the data folder's format file before sled opens (and so writes to) anything; marks a new folder.
fn check_format(path: &Path, kind: &str) -> Result<()> {
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
            let mut file = std::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(&marker)
                .map_err(folder_error(path, "mark"))?;
            std::io::Write::write_all(&mut file, expected.as_bytes()).map_err(folder_error(path, "mark"))?;
            file.sync_all().map_err(folder_error(path, "mark"))?;
            Ok(())
        }
        Err(e) => Err(folder_error(path, "read the format of")(e)),
    }
}

/// Opens the sled database; waits briefly for the lock a closing handle in this process may still hold.
fn open_db(path: &Path) -> Result<sled::Db> {
    let mut tries = 0;
    loop {
        let opened = sled::Config::new().path(path).cache_capacity(64 * 1024 * 1024).open();
        match opened {
            Err(e) if tries < 30 && is_lock_error(&e) => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            other => return other.map_err(|source| StorageError::Open { path: path.to_owned(), source }),
        }
    }
}

/// Numbers commits: inside sled with the commit, then in `COMMITTED` once sled says it is durable.
struct Watermark {
    file: File,
    committed: u64,
}

impl Watermark {
    /// Starts numbering after `committed`, the last commit sled holds.
    fn start(path: &Path, committed: u64) -> Result<Watermark> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path.join(COMMITTED_FILE))
            .map_err(folder_error(path, "open the commit mark of"))?;
        let watermark = Watermark { file, committed };
        watermark.mark();
        Ok(watermark)
    }

    fn commit(&mut self, db: &sled::Db) -> Result<()> {
        let next = self.committed + 1;
        db.insert(COMMIT_KEY, &next.to_be_bytes()).map_err(|source| StorageError::Io { doing: "flushing", source })?;
        db.flush().map_err(|source| StorageError::Io { doing: "flushing", source })?;
        self.committed = next;
        self.mark();
        Ok(())
    }

    /// Records the durable commit's number. Fixed width, so one small write replaces it in place.
    /// Losing this write only weakens the next check; it never makes a sound folder look damaged.
    fn mark(&self) {
        if let Err(e) = self.file.write_all_at(format!("{:020}\n", self.committed).as_bytes(), 0) {
            tracing::warn!(error = %e, "cannot update {COMMITTED_FILE}; lost writes cannot be checked on the next start");
        }
    }
}

type CommitWaiter = tokio::sync::oneshot::Sender<std::result::Result<(), String>>;

/// Group commit: callers queue up, one thread flushes once for everyone queued, then wakes them all.
///
/// A caller's writes happen before it queues, so the flush that follows covers
/// them; callers that queue during a flush wait for the next one. Under load
/// one `fsync` serves many acknowledged writes.
struct GroupCommit {
    queue: mpsc::Sender<CommitWaiter>,
    watermark: Arc<Mutex<Watermark>>,
}

impl GroupCommit {
    fn start(db: &sled::Db, watermark: Watermark) -> std::io::Result<GroupCommit> {
        let (queue, waiting) = mpsc::channel::<CommitWaiter>();
        let watermark = Arc::new(Mutex::new(watermark));
        // The thread ends, closing its handle on the database, when the last handle on the folder is dropped.
        let db = db.clone();
        let shared = Arc::clone(&watermark);
        std::thread::Builder::new().name("sled-group-commit".into()).spawn(move || {
            while let Ok(first) = waiting.recv() {
                let mut batch = vec![first];
                batch.extend(waiting.try_iter());
                let result = match shared.lock() {
                    Ok(mut watermark) => watermark.commit(&db).map_err(|e| e.to_string()),
                    Err(_) => Err("a commit panicked".to_owned()),
                };
                if let Err(e) = &result {
                    tracing::error!(error = %e, "ledger flush failed");
                }
                for waiter in batch {
                    let _ = waiter.send(result.clone());
                }
            }
        })?;
        Ok(GroupCommit { queue, watermark })
    }
}

/// The folder's files, for tests that damage them.
#[cfg(test)]
pub(crate) fn files_below(dir: &Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, sample_catalog};

    fn ledger_with_catalog(dir: &Path) {
        let store = Store::open(dir).unwrap();
        for product in sample_catalog() {
            store.put_product(&product).unwrap();
            store.commit_blocking().unwrap();
        }
    }

    #[test]
    fn a_ledger_that_lost_acknowledged_writes_is_refused_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        ledger_with_catalog(dir.path());
        let db = dir.path().join("db");
        let bytes = std::fs::read(&db).unwrap();
        std::fs::write(&db, &bytes[..bytes.len() / 2]).unwrap();
        let before = files_below(dir.path());
        let Err(err) = Store::open(dir.path()) else { panic!("opened a ledger cut in half") };
        assert!(matches!(err, StorageError::Damaged { .. }), "{err}");
        assert!(err.to_string().contains("acknowledged"), "{err}");
        assert_eq!(files_below(dir.path()), before, "a refused folder is left as it was");
        // Refused again, the same way: the first refusal changed nothing.
        assert!(matches!(Store::open(dir.path()), Err(StorageError::Damaged { .. })));
    }

    #[test]
    fn an_open_interrupted_by_a_crash_is_undone_before_the_next() {
        let dir = tempfile::tempdir().unwrap();
        ledger_with_catalog(dir.path());
        // A crash between copying aside and finishing the open leaves the copy; sled's files may be
        // half-written, and sled may have added files of its own.
        copy_sled_files(dir.path()).unwrap();
        std::fs::write(dir.path().join("db"), b"half-written").unwrap();
        std::fs::write(dir.path().join("snap.00000000DEADBEEF"), b"sled's own").unwrap();
        // A crash part-way through an earlier restore: one file already back in place.
        std::fs::rename(dir.path().join(OPENING_COPY).join("conf"), dir.path().join("conf")).unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.products().unwrap().len(), sample_catalog().len());
        assert!(!dir.path().join(OPENING_COPY).exists());
        assert!(!dir.path().join("snap.00000000DEADBEEF").exists());
    }

    #[test]
    fn a_copy_left_half_made_or_after_a_good_open_is_never_restored() {
        let dir = tempfile::tempdir().unwrap();
        ledger_with_catalog(dir.path());
        for leftover in [COPY_IN_PROGRESS, COPY_TO_DELETE] {
            std::fs::create_dir_all(dir.path().join(leftover)).unwrap();
            std::fs::write(dir.path().join(leftover).join("db"), b"stale").unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.products().unwrap().len(), sample_catalog().len());
        for leftover in [COPY_IN_PROGRESS, COPY_TO_DELETE] {
            assert!(!dir.path().join(leftover).exists());
        }
    }

    #[test]
    fn a_second_open_of_a_folder_in_use_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        ledger_with_catalog(dir.path());
        let first = Store::open(dir.path()).unwrap();
        first.commit_blocking().unwrap();
        let before = files_below(dir.path());
        let Err(err) = Store::open(dir.path()) else { panic!("a folder in use opened twice") };
        assert!(matches!(err, StorageError::InUse { .. }), "{err}");
        assert!(err.to_string().contains("another process"), "{err}");
        assert_eq!(files_below(dir.path()), before, "the refused open touched the folder");
        // The first goes on writing, durably, to the same files.
        first.put_product(&sample_catalog()[0]).unwrap();
        first.commit_blocking().unwrap();
        drop(first);
        assert_eq!(Store::open(dir.path()).unwrap().products().unwrap().len(), sample_catalog().len());
    }

    #[test]
    fn the_folder_and_its_files_are_private_whatever_the_umask() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("ledger");
        ledger_with_catalog(&dir);
        let _open = Store::open(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for file in files_below(&dir).keys() {
            assert_eq!(mode(file), 0o600, "{}", file.display());
        }
    }

    #[test]
    fn commits_are_numbered_inside_and_outside_sled() {
        let dir = tempfile::tempdir().unwrap();
        let created = {
            drop(Store::open(dir.path()).unwrap());
            read_committed(dir.path()).unwrap()
        };
        ledger_with_catalog(dir.path());
        let outside = read_committed(dir.path()).unwrap();
        assert_eq!(outside, created + sample_catalog().len() as u64, "one number per commit");
        let store = Store::open(dir.path()).unwrap();
        store.commit_blocking().unwrap();
        assert_eq!(read_committed(dir.path()), Some(outside + 1));
        // A lost or garbled mark only weakens the check: the folder still opens.
        drop(store);
        std::fs::write(dir.path().join(COMMITTED_FILE), "garbled").unwrap();
        assert!(Store::open(dir.path()).is_ok());
    }
}
