//! A lane's report of a finished sale: checked against the payment that settled it, priced from the catalog, recorded once.

use checkout_storage::{ChargeStatus, FinishedSale, SaleRecord, Store};

use super::members::{PointsRule, credit_paid_sale};
use crate::{engine::price_lines, error::CoordinatorError};

/// Records `sale` as its lane reports it, once by sale id; returns false when it was already recorded
/// (the coordinator records a sale itself the moment its payment is paid: this confirms it).
pub async fn record_finished_sale(
    store: &Store,
    rule: &PointsRule,
    sale: FinishedSale,
) -> Result<bool, CoordinatorError> {
    let FinishedSale { lane_id, sale_id, shift_id, lines, total, out_trade_no, started_at, finished_at } = sale;
    if let Some(existing) = store.sale(&sale_id)? {
        if existing.out_trade_no != out_trade_no || existing.lane_id != lane_id {
            return Err(CoordinatorError::FailedPrecondition(format!(
                "sale {sale_id} is already recorded with payment {}",
                existing.out_trade_no
            )));
        }
        // Recorded when its payment was paid; the member's points were credited then, unless a crash came
        // between the two writes: credited now if so (never twice).
        if let Some(charge) = store.charge(&out_trade_no)?
            && credit_paid_sale(store, rule, &sale_id, &out_trade_no, &existing.lines, existing.total, charge.provider)?
                .is_some()
        {
            store.commit().await?;
        }
        return Ok(false);
    }
    let charge = store
        .charge(&out_trade_no)?
        .ok_or_else(|| CoordinatorError::invalid("out_trade_no", format!("no payment {out_trade_no}")))?;
    if charge.sale_id != sale_id || charge.lane_id != lane_id {
        return Err(CoordinatorError::invalid("out_trade_no", format!("payment {out_trade_no} is of another sale")));
    }
    if charge.status != ChargeStatus::Paid {
        return Err(CoordinatorError::FailedPrecondition(format!(
            "payment {out_trade_no} is not paid ({:?})",
            charge.status
        )));
    }
    // The basket must be the one charged (promotions and a coupon took their part off it then).
    let (priced, priced_total) = price_lines(store, &lines)?;
    let digest = checkout_storage::basket_digest(lines.iter().map(|(gtin, quantity)| (gtin, *quantity)));
    if digest != charge.basket_sha256 || total != charge.amount || priced_total.minor_units < charge.amount.minor_units
    {
        return Err(CoordinatorError::FailedPrecondition(format!(
            "sale total {total} (priced {priced_total}) or its basket differs from the payment's {}",
            charge.amount
        )));
    }
    let sale = SaleRecord { lane_id, sale_id, shift_id, lines: priced, total, out_trade_no, started_at, finished_at };
    let newly_recorded = store.insert_sale_if_absent(&sale)?;
    credit_paid_sale(store, rule, &sale.sale_id, &sale.out_trade_no, &sale.lines, sale.total, charge.provider)?;
    store.commit().await?;
    tracing::info!(lane_id = %sale.lane_id, sale_id = %sale.sale_id, total = %sale.total, items = sale.items(), "sale recorded");
    Ok(newly_recorded)
}
