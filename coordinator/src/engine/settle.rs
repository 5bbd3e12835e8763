//! Settling a charge whose outcome is unknown: query with backoff until paid, closed or the deadline, then reverse; and the resolver's pass over every charge left unsettled.

use std::time::Duration;

use checkout_storage::{ChargeRecord, ChargeStatus, OutTradeNo, UnixMillis};
use tokio::time::Instant;
use tracing::Instrument;

use super::{Payments, locks::try_hold};
use crate::{
    error::CoordinatorError,
    providers::{OrderState, ReverseAnswer, messages},
};

impl Payments {
    /// Queries an unknown charge until it is paid, closed or past the deadline; then reverses it if it is not paid.
    pub(super) async fn settle(&self, charge: &mut ChargeRecord, first_wait: Duration) -> Result<(), CoordinatorError> {
        if charge.status == ChargeStatus::Reversing {
            return self.reverse(charge).await;
        }
        let client = self.provider(charge.provider)?;
        let age = Duration::from_millis(UnixMillis::now().0.saturating_sub(charge.created_at.0).max(0) as u64);
        let deadline = Instant::now() + self.timing.query_deadline.saturating_sub(age);
        let mut wait = first_wait;
        let mut pause = self.timing.query_every;
        loop {
            if !wait.is_zero() {
                tokio::time::sleep_until((Instant::now() + wait).min(deadline)).await;
            }
            match client.query(charge.provider, &charge.out_trade_no).await {
                Ok(answer) => {
                    charge.log(format!("query: {} ({:?})", answer.provider_code, answer.state));
                    match answer.state {
                        OrderState::Paid { transaction_id, amount } => {
                            if amount != charge.amount {
                                tracing::error!(paid = %amount, expected = %charge.amount, "provider reports another amount paid");
                                charge.log(format!("amount mismatch: provider says {amount}"));
                            }
                            charge.provider_transaction_id = transaction_id;
                            charge.provider_code = answer.provider_code;
                            return self.mark_paid(charge).await;
                        }
                        OrderState::Closed | OrderState::Refunded => {
                            charge.status = ChargeStatus::Reversed;
                            charge.provider_code = answer.provider_code;
                            charge.message = messages::REVERSED.to_owned();
                            charge.settled_at = Some(UnixMillis::now());
                            return self.save(charge).await;
                        }
                        OrderState::Paying | OrderState::NotPaid | OrderState::NotFound => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "order query unanswered");
                    charge.log(format!("query: no answer ({e})"));
                }
            }
            self.save(charge).await?;
            if Instant::now() >= deadline {
                break;
            }
            wait = pause;
            pause = (pause * 2).min(self.timing.query_every_max);
        }
        tracing::warn!("not paid by the deadline: reversing");
        charge.status = ChargeStatus::Reversing;
        self.save(charge).await?;
        self.reverse(charge).await
    }

    /// Lets go of coupons held longer than `coupon_hold` by sales with no charge paid or under way: their lane
    /// never came back to pay or release them (killed, taken off the network). Reads every coupon.
    fn release_stale_coupon_holds(&self) -> Result<usize, CoordinatorError> {
        let now = UnixMillis::now();
        let hold = i64::try_from(self.timing.coupon_hold.as_millis()).unwrap_or(i64::MAX);
        let mut released = 0;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self.store.coupons_page(after.as_deref(), 500)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (_, coupon) in page {
                let checkout_storage::CouponState::Held { sale_id, at } = &coupon.state else { continue };
                if now.0.saturating_sub(at.0) < hold {
                    continue;
                }
                let charges = self.store.charges_with_prefix(&super::charge::sale_prefix(&self.store_id, sale_id))?;
                if charges.iter().any(|c| c.status == ChargeStatus::Paid || !c.status.is_final()) {
                    continue;
                }
                if crate::services::coupons::release(&self.store, sale_id, &coupon.coupon_id)? {
                    tracing::warn!(coupon_id = %coupon.coupon_id, %sale_id, "coupon held by a sale nobody came back to: released");
                    released += 1;
                }
            }
        }
        Ok(released)
    }

    /// Reverses a charge, calling again while the provider asks to. Leaves it `Reversing` for the resolver if it cannot finish.
    pub(super) async fn reverse(&self, charge: &mut ChargeRecord) -> Result<(), CoordinatorError> {
        let client = self.provider(charge.provider)?;
        for attempt in 1..=self.timing.reverse_attempts.max(1) {
            match client.reverse(charge.provider, &charge.out_trade_no).await {
                Ok(ReverseAnswer::Reversed { refunded }) => {
                    charge.log(if refunded { "reverse: done, money returned" } else { "reverse: done, order closed" });
                    charge.status = ChargeStatus::Reversed;
                    if charge.superseded_by.is_none() {
                        charge.message = messages::REVERSED.to_owned();
                    }
                    charge.settled_at = Some(UnixMillis::now());
                    // A sale's own payment reversed takes its points back (a surplus charge never earned any).
                    if refunded && charge.superseded_by.is_none() {
                        let paid = charge.amount.minor_units;
                        crate::services::members::take_back_points(
                            &self.store,
                            &charge.sale_id,
                            &charge.out_trade_no,
                            paid,
                            paid,
                            checkout_storage::PointsReason::Reversal,
                        )?;
                        crate::services::coupons::release_after_reversal(&self.store, &charge.sale_id)?;
                    }
                    return self.save(charge).await;
                }
                Ok(ReverseAnswer::CallAgain) => charge.log("reverse: call again"),
                Ok(ReverseAnswer::Refused { provider_code }) => {
                    // Reverse is refused for good (too old, or the provider says so): a paid order needs a refund.
                    charge.log(format!("reverse refused: {provider_code}"));
                    tracing::error!(%provider_code, "reverse refused: a refund is owed if the order was paid");
                    charge.message = format!("reverse refused ({provider_code}): refund owed if paid");
                    return self.save(charge).await;
                }
                Err(e) => charge.log(format!("reverse: no answer ({e})")),
            }
            self.save(charge).await?;
            if attempt < self.timing.reverse_attempts {
                tokio::time::sleep(self.timing.reverse_every).await;
            }
        }
        tracing::warn!("reverse not confirmed yet: left to the resolver");
        Ok(())
    }

    /// Drives every charge not yet final to paid or reversed, a few at a time; skips those
    /// another task is working on. Returns how many charges are still outstanding afterwards.
    pub async fn resolve_outstanding(&self) -> Result<usize, CoordinatorError> {
        use futures::StreamExt;
        self.release_stale_coupon_holds()?;
        let outstanding = self.store.outstanding_charges()?;
        if !outstanding.is_empty() {
            tracing::info!(charges = outstanding.len(), "resolving charges left unsettled");
        }
        let results: Vec<Result<bool, CoordinatorError>> = futures::stream::iter(outstanding)
            .map(|charge| self.resolve_one(charge.out_trade_no))
            .buffer_unordered(8)
            .collect()
            .await;
        let mut left = 0;
        for result in results {
            if !result? {
                left += 1;
            }
        }
        Ok(left)
    }

    /// Settles one charge if nobody else is working on it; true when it is final afterwards.
    async fn resolve_one(&self, out_trade_no: OutTradeNo) -> Result<bool, CoordinatorError> {
        let Some(_held) = try_hold(&self.charge_locks, &out_trade_no) else { return Ok(false) };
        // Read again under the lock: it may have moved on.
        let Some(mut charge) = self.store.charge(&out_trade_no)? else { return Ok(true) };
        if charge.status.is_final() {
            return Ok(true);
        }
        let span = tracing::info_span!("resolve", lane_id = %charge.lane_id, sale_id = %charge.sale_id, %out_trade_no);
        self.settle(&mut charge, Duration::ZERO).instrument(span).await?;
        Ok(charge.status.is_final())
    }
}
