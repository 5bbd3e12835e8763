//! A manager's reversal of a paid charge (WeChat Pay reverse, Alipay cancel): the whole amount back, inside the provider's window.

use std::time::Duration;

use checkout_storage::{BusinessDay, ChargeRecord, ChargeStatus, OutTradeNo, Provider, UnixMillis};

use crate::{
    engine::{Payments, hold},
    error::CoordinatorError,
};

/// How long after its creation a provider reverses a paid order: WeChat Pay's reverse works on orders up
/// to 7 days old, Alipay's cancel within 24 hours. UnionPay QuickPass is given Alipay's 24 hours (its
/// cancellation is for the same day's orders).
pub fn reverse_window(provider: Provider) -> Duration {
    match provider {
        Provider::WeChatPay => Duration::from_secs(7 * 24 * 3600),
        Provider::Alipay | Provider::UnionPay => Duration::from_secs(24 * 3600),
    }
}

impl Payments {
    /// Reverses the paid charge `out_trade_no` for a manager (`why` goes into its history). A charge
    /// already reversed is answered as it is. The answer is the charge afterwards: `Reversed`, or
    /// `Reversing` when the provider has not confirmed yet (the resolver finishes it).
    pub async fn reverse_paid(&self, out_trade_no: &OutTradeNo, why: &str) -> Result<ChargeRecord, CoordinatorError> {
        let _held = hold(&self.charge_locks, out_trade_no).await;
        let mut charge = self
            .store
            .charge(out_trade_no)?
            .ok_or_else(|| CoordinatorError::NotFound(format!("no payment {out_trade_no}")))?;
        match charge.status {
            ChargeStatus::Paid => {}
            ChargeStatus::Reversed | ChargeStatus::Reversing => return Ok(charge),
            other => {
                return Err(CoordinatorError::Refused {
                    reason: "NOT_PAID",
                    message: format!("payment {out_trade_no} is not paid ({other:?}): nothing to reverse"),
                });
            }
        }
        if self.store.closed_day(BusinessDay::of(charge.created_at))?.is_some() {
            return Err(CoordinatorError::Refused {
                reason: "DAY_CLOSED",
                message: format!(
                    "payment {out_trade_no} belongs to a closed day, whose books are final: refund it instead"
                ),
            });
        }
        let window = reverse_window(charge.provider);
        let age = Duration::from_millis(UnixMillis::now().0.saturating_sub(charge.created_at.0).max(0) as u64);
        if age >= window {
            return Err(CoordinatorError::Refused {
                reason: "REVERSE_WINDOW_CLOSED",
                message: format!(
                    "payment {out_trade_no} is {} hours old; {} reverses a payment only within {} hours: refund it instead (StoreService/Refund)",
                    age.as_secs() / 3600,
                    charge.provider,
                    window.as_secs() / 3600
                ),
            });
        }
        if !self.store.refunds_of(out_trade_no)?.is_empty() {
            return Err(CoordinatorError::Refused {
                reason: "PARTLY_REFUNDED",
                message: format!(
                    "payment {out_trade_no} has refunds: a reversal returns the whole amount; refund the rest instead"
                ),
            });
        }
        charge.status = ChargeStatus::Reversing;
        charge.log(format!("reverse asked by a manager: {why}"));
        self.save(&mut charge).await?;
        self.reverse(&mut charge).await?;
        if charge.status == ChargeStatus::Reversing && charge.message.starts_with("reverse refused") {
            // The provider refuses it for good: the money is still taken, and a refund returns it.
            charge.status = ChargeStatus::Paid;
            let message = std::mem::replace(&mut charge.message, "paid".to_owned());
            self.save(&mut charge).await?;
            return Err(CoordinatorError::Refused {
                reason: "REVERSE_REFUSED",
                message: format!("{}: {message}; the payment stands: refund it instead", charge.provider),
            });
        }
        if charge.status == ChargeStatus::Reversed {
            charge.message = "reversed by a manager: the whole amount went back to the customer".to_owned();
            self.save(&mut charge).await?;
        }
        Ok(charge)
    }
}
