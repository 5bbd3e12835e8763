//! Closing a business day: it must be over, settled and reconciled against every provider's bill; then its records go to the archive.

use checkout_storage::{BusinessDay, ClosedDay, DayClosure, Provider, Store, TallyFilter, UnixMillis};

use crate::error::CoordinatorError;

/// Closes `day` for `closed_by` once every provider it took payments through (of `providers`) has a
/// reconciliation of it, without differences unless `accept_differences`. The move to the archive runs on
/// the blocking pool (it flushes three databases).
pub async fn close_day(
    store: &Store,
    providers: &[Provider],
    day: BusinessDay,
    accept_differences: bool,
    note: &str,
    closed_by: &str,
) -> Result<ClosedDay, CoordinatorError> {
    if day >= BusinessDay::of(UnixMillis::now()) {
        return Err(CoordinatorError::Refused {
            reason: "DAY_NOT_OVER",
            message: format!("{day} is not over yet (China Standard Time)"),
        });
    }
    if store.closed_day(day)?.is_some() {
        return Err(CoordinatorError::Refused { reason: "DAY_ALREADY_CLOSED", message: format!("{day} is closed") });
    }
    let mut reconciled = Vec::new();
    for &provider in providers {
        let filter = TallyFilter { lane_id: None, provider: Some(provider) };
        let took = store.tally_between(&filter, Some(day.start()), Some(day.end()))?;
        if took.payments_paid + took.payments_declined + took.refunds + took.sales == 0 {
            continue;
        }
        let Some(run) = store.latest_reconciliation(day, provider)? else {
            return Err(CoordinatorError::Refused {
                reason: "DAY_NOT_RECONCILED",
                message: format!("{day} has {provider} payments: reconcile its bill first (StoreService/Reconcile)"),
            });
        };
        if run.differences > 0 && !accept_differences {
            return Err(CoordinatorError::Refused {
                reason: "DIFFERENCES_OPEN",
                message: format!(
                    "reconciliation {} of {provider}'s bill of {day} found {} differences: resolve them and reconcile again, or close with accept_differences",
                    run.id, run.differences
                ),
            });
        }
        reconciled.push(format!("{provider} reconciliation {} ({} differences)", run.id, run.differences));
    }
    let note = if note.is_empty() { reconciled.join("; ") } else { format!("{}; {note}", reconciled.join("; ")) };
    let closure = DayClosure { closed_by: closed_by.to_owned(), closed_at: UnixMillis::now(), note };
    let store = store.clone();
    let closed = tokio::task::spawn_blocking(move || store.archive_day(day, closure))
        .await
        .map_err(|e| CoordinatorError::Internal(format!("closing {day} failed: {e}")))??;
    tracing::info!(%day, charges = closed.charges, sales = closed.sales, refunds = closed.refunds, "day closed and archived");
    Ok(closed)
}
