//! A cashier's shift settled: the lane's own count of its sales against the ledger's, kept with the shift.

use super::{Result, Store, get, io, windows::time_key};
use crate::{SaleRecord, ShiftId, ShiftRecord, ShiftSettlement, UnixMillis};

/// How far a sale's time (the lane's clock) may stand outside its shift's and still be looked for.
const CLOCK_SLACK_MILLIS: i64 = 24 * 3_600_000;

/// The longest stretch of sales a shift's settlement reads (its slack included): three days.
const LONGEST_SHIFT_MILLIS: i64 = 3 * 24 * 3_600_000;

impl Store {
    /// The sales the ledger holds for `shift`, by when they finished (read through the index by time).
    pub fn sales_of_shift(&self, shift: &ShiftRecord) -> Result<Vec<SaleRecord>> {
        let end = UnixMillis(shift.closed_at.unwrap_or_else(UnixMillis::now).0.saturating_add(CLOCK_SLACK_MILLIS));
        // The times are the lane's: a shift is looked for over at most `LONGEST_SHIFT_MILLIS` before its end,
        // whatever opening time a lane claims.
        let start = UnixMillis(
            shift.opened_at.0.saturating_sub(CLOCK_SLACK_MILLIS).max(end.0.saturating_sub(LONGEST_SHIFT_MILLIS)),
        );
        let mut sales = Vec::new();
        for entry in self.sales_by_time.range(time_key(start, "")..time_key(end, "")) {
            let (key, _) = entry.map_err(io("reading"))?;
            let sale_id = String::from_utf8_lossy(key.get(8..).unwrap_or_default()).into_owned();
            if let Some(sale) = get::<SaleRecord>(&self.sales, "sales", sale_id.as_bytes())?
                && sale.shift_id.as_ref() == Some(&shift.shift_id)
            {
                sales.push(sale);
            }
        }
        Ok(sales)
    }

    /// Keeps a shift's settlement (durable with the next commit).
    pub fn put_shift_settlement(&self, settlement: &ShiftSettlement) -> Result<()> {
        let key = settlement.shift_id.as_str().as_bytes();
        self.put(&self.shift_settlements, ("shift settlement", "writing a shift's settlement"), key, settlement)
    }

    pub fn shift_settlement(&self, shift_id: &ShiftId) -> Result<Option<ShiftSettlement>> {
        get(&self.shift_settlements, "shift_settlements", shift_id.as_str().as_bytes())
    }
}
