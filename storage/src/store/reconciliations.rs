//! Reconciliations kept: each day's run against a provider's bill, and its differences a page at a time.

use super::{Result, Store, decode, encode, get, io};
use crate::{BusinessDay, Provider, ReconciliationRecord};

fn difference_key(id: u64, number: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&id.to_be_bytes());
    key[8..].copy_from_slice(&number.to_be_bytes());
    key
}

impl Store {
    /// Keeps a reconciliation and its differences (each the coordinator's JSON), durable with the next
    /// commit; returns it with its id.
    pub fn put_reconciliation(
        &self,
        mut record: ReconciliationRecord,
        differences: impl IntoIterator<Item = String>,
    ) -> Result<ReconciliationRecord> {
        record.id = self.folder.db.generate_id().map_err(io("numbering a reconciliation"))?;
        let mut count = 0u64;
        for (number, difference) in differences.into_iter().enumerate() {
            let key = difference_key(record.id, number as u64);
            let bytes = encode("difference", &difference)?;
            self.folder.write(|| {
                self.reconciliation_differences.insert(key, bytes).map(drop).map_err(io("keeping a difference"))
            })?;
            count += 1;
        }
        record.differences = count;
        self.put(
            &self.reconciliations,
            ("reconciliation", "keeping a reconciliation"),
            &record.id.to_be_bytes(),
            &record,
        )?;
        Ok(record)
    }

    pub fn reconciliation(&self, id: u64) -> Result<Option<ReconciliationRecord>> {
        get(&self.reconciliations, "reconciliations", &id.to_be_bytes())
    }

    /// Up to `limit` reconciliations after the id `after`, oldest first.
    pub fn reconciliations_page(&self, after: Option<u64>, limit: usize) -> Result<Vec<ReconciliationRecord>> {
        let start = after.map_or(Some(0), |after| after.checked_add(1));
        let Some(start) = start else { return Ok(Vec::new()) };
        self.reconciliations
            .range(start.to_be_bytes()..)
            .take(limit)
            .map(|entry| {
                let (k, v) = entry.map_err(io("reading"))?;
                decode("reconciliations", &k, &v)
            })
            .collect()
    }

    /// The latest reconciliation of `day` against `provider`'s bill.
    pub fn latest_reconciliation(&self, day: BusinessDay, provider: Provider) -> Result<Option<ReconciliationRecord>> {
        for entry in self.reconciliations.iter().rev() {
            let (k, v) = entry.map_err(io("reading"))?;
            let record: ReconciliationRecord = decode("reconciliations", &k, &v)?;
            if record.day == day && record.provider == provider {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    /// Up to `limit` differences of reconciliation `id` after the number `after`, with their numbers.
    pub fn reconciliation_differences(&self, id: u64, after: Option<u64>, limit: usize) -> Result<Vec<(u64, String)>> {
        let first = after.map_or(Some(0), |after| after.checked_add(1));
        let Some(first) = first else { return Ok(Vec::new()) };
        self.reconciliation_differences
            .range(difference_key(id, first)..difference_key(id, u64::MAX))
            .take(limit)
            .map(|entry| {
                let (k, v) = entry.map_err(io("reading"))?;
                let number = u64::from_be_bytes(k[8..16].try_into().unwrap_or_default());
                Ok((number, decode("reconciliation_differences", &k, &v)?))
            })
            .collect()
    }
}
