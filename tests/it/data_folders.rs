//! Data folders the coordinator must refuse: another format version, a corrupted ledger, something else entirely.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use checkout_storage::{COMMITTED_FILE, FORMAT_FILE, StorageError, Store, sample_catalog};

/// Every file below `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
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

fn ledger_with_products(dir: &Path) {
    let store = Store::open(dir).unwrap();
    store.seed_catalog_if_empty(&sample_catalog()).unwrap();
    store.commit_blocking().unwrap();
}

#[test]
fn a_folder_of_another_format_version_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    ledger_with_products(dir.path());
    std::fs::write(dir.path().join(FORMAT_FILE), "checkout-ledger 1\n").unwrap();
    let before = snapshot(dir.path());
    let err = Store::open(dir.path()).err().expect("a version 1 folder must not open");
    assert!(matches!(err, StorageError::FormatVersion { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("checkout-ledger 1") && message.contains("reads version 2"), "{message}");
    assert_eq!(snapshot(dir.path()), before, "the folder was changed");
}

/// Damages every ledger file but the format marker and commit mark with `damage`, then opens it.
fn damaged_ledger_is_refused_unchanged(damage: impl Fn(&mut Vec<u8>)) {
    let dir = tempfile::tempdir().unwrap();
    ledger_with_products(dir.path());
    for (path, mut bytes) in snapshot(dir.path()) {
        if path.ends_with(FORMAT_FILE) || path.ends_with(COMMITTED_FILE) || bytes.len() < 64 {
            continue;
        }
        damage(&mut bytes);
        std::fs::write(&path, bytes).unwrap();
    }
    let before = snapshot(dir.path());
    let err = Store::open(dir.path()).err().expect("a damaged ledger must not open");
    eprintln!("damaged ledger refused: {err}");
    assert!(matches!(err, StorageError::Damaged { .. }), "{err}");
    assert!(err.to_string().contains("restore it from a backup"), "the error says what to do: {err}");
    assert_eq!(snapshot(dir.path()), before, "the refused folder was changed");
}

#[test]
fn a_scribbled_ledger_is_refused_with_its_files_untouched() {
    damaged_ledger_is_refused_unchanged(|bytes| {
        let middle = bytes.len() / 2;
        let end = (middle + 4096).min(bytes.len());
        bytes[middle..end].iter_mut().for_each(|b| *b ^= 0xA5);
    });
}

#[test]
fn a_truncated_ledger_is_refused_with_its_files_untouched() {
    damaged_ledger_is_refused_unchanged(|bytes| bytes.truncate(bytes.len() / 3));
}

#[test]
fn a_folder_holding_something_else_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("photos.zip"), b"PK\x03\x04").unwrap();
    let before = snapshot(dir.path());
    let err = Store::open(dir.path()).err().expect("must not open");
    assert!(err.to_string().contains("not a checkout data folder"), "{err}");
    assert_eq!(snapshot(dir.path()), before);
}
