//! Refunds of paid charges: partial or full, idempotent by `out_refund_no`, within the providers' limits.

use checkout_storage::{
    ChargeRecord, ChargeStatus, Money, OutTradeNo, PointsReason, RefundRecord, RefundStatus, UnixMillis,
};

use crate::{
    engine::{Payments, hold},
    error::CoordinatorError,
    providers::{MAX_REFUNDS_PER_ORDER, RefundAnswer, RefundRequest},
    services::members::take_back_points,
};

/// A manager's refund request, checked field by field.
#[derive(Debug, Clone)]
pub struct RefundOrder {
    pub out_trade_no: OutTradeNo,
    pub out_refund_no: String,
    pub amount: Money,
    pub reason: String,
}

/// Checks a merchant refund number: 1 to 64 letters, digits, '-' or '_'.
pub fn check_out_refund_no(value: &str) -> Result<(), CoordinatorError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(CoordinatorError::invalid("out_refund_no", "1 to 64 letters, digits, '-' or '_'")) }
}

impl Payments {
    /// Refunds part or all of a paid charge. Repeating a request with the same
    /// `out_refund_no` asks the provider again only while the outcome is unknown,
    /// and never refunds twice. Returns the refund and the accepted total so far.
    pub async fn refund(&self, order: RefundOrder) -> Result<(RefundRecord, Money), CoordinatorError> {
        check_out_refund_no(&order.out_refund_no)?;
        order.amount.positive()?;
        let _held = hold(&self.charge_locks, &order.out_trade_no).await;
        let charge = self.refundable(&order)?;
        let of_this_order: Vec<RefundRecord> = self.store.refunds_of(&charge.out_trade_no)?;

        let mut refund = match self.store.refund(&order.out_refund_no)? {
            Some(existing) => {
                if existing.out_trade_no != order.out_trade_no || existing.amount != order.amount {
                    return Err(CoordinatorError::invalid(
                        "out_refund_no",
                        format!(
                            "{} already names a refund of {} for {}",
                            existing.out_refund_no, existing.amount, existing.out_trade_no
                        ),
                    ));
                }
                if matches!(existing.status, RefundStatus::Accepted | RefundStatus::Refused) {
                    return Ok((existing, accepted_total(&of_this_order, charge.amount)));
                }
                existing
            }
            None => {
                // Refunds that are accepted, or may still be, count against what was paid.
                let committed = of_this_order
                    .iter()
                    .filter(|r| r.status != RefundStatus::Refused)
                    .try_fold(Money::zero(charge.amount.currency), |sum, r| sum.checked_add(r.amount))?;
                if of_this_order.len() >= MAX_REFUNDS_PER_ORDER {
                    return Err(CoordinatorError::FailedPrecondition(format!(
                        "payment {} already has {MAX_REFUNDS_PER_ORDER} refunds, the providers' limit",
                        charge.out_trade_no
                    )));
                }
                if committed.checked_add(order.amount)?.minor_units > charge.amount.minor_units {
                    return Err(CoordinatorError::FailedPrecondition(format!(
                        "refunding {} would exceed what was paid: {} paid, {} already refunded or in progress",
                        order.amount, charge.amount, committed
                    )));
                }
                let refund = RefundRecord {
                    out_refund_no: order.out_refund_no.clone(),
                    out_trade_no: charge.out_trade_no.clone(),
                    lane_id: charge.lane_id.clone(),
                    amount: order.amount,
                    reason: order.reason.chars().take(80).collect(),
                    status: RefundStatus::Pending,
                    provider_code: String::new(),
                    message: String::new(),
                    refund_id: String::new(),
                    created_at: UnixMillis::now(),
                    settled_at: None,
                };
                self.store.put_refund(&refund)?;
                self.store.commit().await?;
                refund
            }
        };

        self.ask_provider(&charge, &mut refund).await?;
        self.store.put_refund(&refund)?;
        let mut all = of_this_order;
        all.retain(|r| r.out_refund_no != refund.out_refund_no);
        all.push(refund.clone());
        let refunded = accepted_total(&all, charge.amount);
        if refund.status == RefundStatus::Accepted {
            let reason = PointsReason::Refund { out_refund_no: refund.out_refund_no.clone() };
            let (returned, paid) = (refunded.minor_units, charge.amount.minor_units);
            take_back_points(&self.store, &charge.sale_id, &charge.out_trade_no, returned, paid, reason)?;
        }
        self.store.commit().await?;
        tracing::info!(out_trade_no = %refund.out_trade_no, out_refund_no = %refund.out_refund_no, amount = %refund.amount, status = ?refund.status, "refund");
        Ok((refund, refunded))
    }

    /// The paid charge `order` refunds, in its currency.
    fn refundable(&self, order: &RefundOrder) -> Result<ChargeRecord, CoordinatorError> {
        let charge = self
            .store
            .charge(&order.out_trade_no)?
            .ok_or_else(|| CoordinatorError::NotFound(format!("no payment {}", order.out_trade_no)))?;
        if charge.status != ChargeStatus::Paid {
            return Err(CoordinatorError::FailedPrecondition(format!(
                "payment {} is not paid ({:?}): nothing to refund",
                charge.out_trade_no, charge.status
            )));
        }
        if order.amount.currency != charge.amount.currency {
            return Err(CoordinatorError::invalid(
                "amount.currency",
                format!("the payment is in {}", charge.amount.currency),
            ));
        }
        Ok(charge)
    }

    /// Asks the provider for `refund` and notes its answer (unknown when there is none).
    async fn ask_provider(&self, charge: &ChargeRecord, refund: &mut RefundRecord) -> Result<(), CoordinatorError> {
        let client = self.provider(charge.provider)?;
        let request = RefundRequest {
            provider: charge.provider,
            out_trade_no: charge.out_trade_no.clone(),
            out_refund_no: refund.out_refund_no.clone(),
            order_amount: charge.amount,
            refund_amount: refund.amount,
            reason: refund.reason.clone(),
        };
        match client.refund(request).await {
            Ok(RefundAnswer::Accepted { refund_id }) => {
                refund.status = RefundStatus::Accepted;
                refund.refund_id = refund_id;
                refund.provider_code = "SUCCESS".into();
                refund.message = format!("refund of {} accepted", refund.amount);
                refund.settled_at = Some(UnixMillis::now());
            }
            Ok(RefundAnswer::Refused { provider_code, message }) => {
                refund.status = RefundStatus::Refused;
                refund.provider_code = provider_code;
                refund.message = message;
                refund.settled_at = Some(UnixMillis::now());
            }
            Ok(RefundAnswer::Unknown { provider_code }) => {
                refund.status = RefundStatus::Unknown;
                refund.provider_code = provider_code;
                refund.message = "refund outcome unknown: repeat the request with the same refund number".into();
            }
            Err(e) => {
                refund.status = RefundStatus::Unknown;
                refund.message =
                    format!("refund outcome unknown ({e}): repeat the request with the same refund number");
            }
        }
        Ok(())
    }
}

fn accepted_total(refunds: &[RefundRecord], paid: Money) -> Money {
    refunds
        .iter()
        .filter(|r| r.status == RefundStatus::Accepted)
        .fold(Money::zero(paid.currency), |sum, r| sum.checked_add(r.amount).unwrap_or(sum))
}
