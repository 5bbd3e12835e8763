//! Cashiers' shifts: sign-on and sign-off at a lane, and the end-of-shift report computed from the ledger.
//!
//! A lane makes the shift id when its cashier signs on and sends the opening
//! and the closing through its outbox, so both arrive once and in order even
//! after an outage. Sales carry their shift id from the Pay request, so a
//! shift's takings are exactly the paid sales rung up in it.

use std::collections::BTreeMap;

use checkout_storage::{ChargeStatus, Currency, LaneId, Money, Provider, ShiftId, ShiftRecord, Store, UnixMillis};

use crate::error::CoordinatorError;

pub const SIGNED_OFF: &str = "signed off";
pub const NEXT_SHIFT_OPENED: &str = "the next shift on the lane opened";

/// A shift and what was taken in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftReport {
    pub shift: ShiftRecord,
    pub sales: u64,
    pub items: u64,
    pub sales_total: Money,
    pub payments_declined: u64,
    /// Paid sales and their total, per provider.
    pub by_provider: BTreeMap<Provider, (u64, Money)>,
}

/// Records a cashier signing on; a shift still open on the lane is closed by it. Idempotent by shift id.
pub async fn open_shift(store: &Store, shift: ShiftRecord) -> Result<ShiftRecord, CoordinatorError> {
    if let Some(existing) = store.shift(&shift.shift_id)? {
        if existing.lane_id != shift.lane_id || existing.cashier != shift.cashier {
            return Err(CoordinatorError::FailedPrecondition(format!(
                "shift {} is already open for cashier {} at lane {}",
                existing.shift_id, existing.cashier, existing.lane_id
            )));
        }
        return Ok(existing);
    }
    for mut earlier in store.shifts()? {
        if earlier.lane_id == shift.lane_id && earlier.closed_at.is_none() {
            tracing::warn!(lane_id = %earlier.lane_id, shift_id = %earlier.shift_id, "shift never closed: the next one closes it");
            earlier.closed_at = Some(shift.opened_at.max(earlier.opened_at));
            earlier.closed_how = NEXT_SHIFT_OPENED.to_owned();
            store.put_shift(&earlier)?;
        }
    }
    let shift = ShiftRecord { closed_at: None, closed_how: String::new(), ..shift };
    store.put_shift(&shift)?;
    store.commit().await?;
    tracing::info!(lane_id = %shift.lane_id, shift_id = %shift.shift_id, cashier = %shift.cashier, "shift opened");
    Ok(shift)
}

/// Records a cashier signing off. Idempotent: a shift already closed stays as it closed.
pub async fn close_shift(
    store: &Store,
    lane_id: &LaneId,
    shift_id: &ShiftId,
    closed_at: UnixMillis,
) -> Result<ShiftRecord, CoordinatorError> {
    let mut shift = store.shift(shift_id)?.ok_or_else(|| CoordinatorError::NotFound(format!("no shift {shift_id}")))?;
    if &shift.lane_id != lane_id {
        return Err(CoordinatorError::invalid("shift_id", format!("shift {shift_id} is of lane {}", shift.lane_id)));
    }
    if shift.closed_at.is_some() {
        return Ok(shift);
    }
    shift.closed_at = Some(closed_at.max(shift.opened_at));
    shift.closed_how = SIGNED_OFF.to_owned();
    store.put_shift(&shift)?;
    store.commit().await?;
    tracing::info!(lane_id = %shift.lane_id, shift_id = %shift.shift_id, cashier = %shift.cashier, "shift closed");
    Ok(shift)
}

/// Which shifts a manager asked for.
#[derive(Debug, Clone, Default)]
pub struct ShiftFilter {
    pub lane_id: Option<LaneId>,
    pub open_only: bool,
}

/// Reports of the shifts `filter` selects, oldest first.
pub fn shift_reports(
    store: &Store,
    currency: Currency,
    filter: &ShiftFilter,
) -> Result<Vec<ShiftReport>, CoordinatorError> {
    let mut reports: BTreeMap<ShiftId, ShiftReport> = store
        .shifts()?
        .into_iter()
        .filter(|s| filter.lane_id.as_ref().is_none_or(|lane| &s.lane_id == lane))
        .filter(|s| !filter.open_only || s.closed_at.is_none())
        .map(|shift| (shift.shift_id.clone(), empty_report(shift, currency)))
        .collect();
    if reports.is_empty() {
        return Ok(Vec::new());
    }
    let mut provider_of = BTreeMap::new();
    for charge in store.charges()? {
        let Some(report) = charge.shift_id.as_ref().and_then(|id| reports.get_mut(id)) else { continue };
        match charge.status {
            ChargeStatus::NewCodeNeeded | ChargeStatus::Failed => report.payments_declined += 1,
            ChargeStatus::Paid => {
                provider_of.insert(charge.out_trade_no.clone(), charge.provider);
            }
            _ => {}
        }
    }
    for sale in store.sales()? {
        let Some(report) = sale.shift_id.as_ref().and_then(|id| reports.get_mut(id)) else { continue };
        report.sales += 1;
        report.items += sale.items();
        add(&mut report.sales_total, sale.total);
        if let Some(provider) = provider_of.get(&sale.out_trade_no) {
            let (count, total) = report.by_provider.entry(*provider).or_insert((0, Money::zero(currency)));
            *count += 1;
            add(total, sale.total);
        }
    }
    let mut reports: Vec<ShiftReport> = reports.into_values().collect();
    reports.sort_by_key(|r| (r.shift.opened_at, r.shift.shift_id.clone()));
    Ok(reports)
}

fn empty_report(shift: ShiftRecord, currency: Currency) -> ShiftReport {
    ShiftReport {
        shift,
        sales: 0,
        items: 0,
        sales_total: Money::zero(currency),
        payments_declined: 0,
        by_provider: BTreeMap::new(),
    }
}

fn add(sum: &mut Money, amount: Money) {
    match sum.checked_add(amount) {
        Ok(total) => *sum = total,
        Err(e) => tracing::warn!(error = %e, amount = %amount, "sale left out of a shift report"),
    }
}
