//! A charge from the lane's request to the provider's answer: the intent recorded first, micropay once, the answer recorded before the lane hears it.

use std::time::Duration;

use checkout_storage::{
    ChargeRecord, ChargeStatus, CodeFingerprint, OutTradeNo, SaleId, SaleRecord, StoreId, UnixMillis, basket_digest,
};
use tracing::Instrument;

use super::{PayOrder, Payments, locks::hold, price_lines};
use crate::{
    error::CoordinatorError,
    providers::{MicropayRequest, ProviderAnswer, messages},
};

/// The sale an `out_trade_no` belongs to, as the prefix of its attempts: `S001-L1-MIH4K2AB-`.
pub(super) fn sale_prefix(store_id: &StoreId, sale_id: &SaleId) -> String {
    format!("{store_id}-{sale_id}-")
}

/// A repeat is answered from the first charge only when it is the same charge: the same lane, basket,
/// amount and code. Anything else is someone else's request for this order number.
fn same_charge(
    existing: &ChargeRecord,
    order: &PayOrder,
    basket_sha256: [u8; 32],
    code_fingerprint: CodeFingerprint,
) -> Result<(), CoordinatorError> {
    let differs = [
        (existing.lane_id != order.lane_id, "lane"),
        (existing.basket_sha256 != basket_sha256, "basket"),
        (existing.amount != order.amount, "amount"),
        (existing.code_fingerprint != code_fingerprint, "payment code"),
    ];
    let differs: Vec<&str> = differs.iter().filter(|(d, _)| *d).map(|(_, what)| *what).collect();
    if differs.is_empty() {
        return Ok(());
    }
    tracing::warn!(differs = ?differs, "a request for an existing charge differs from it: refused");
    Err(CoordinatorError::FailedPrecondition(format!(
        "sale {} attempt {} was charged with another {}: a new code is a new attempt",
        order.sale_id,
        order.attempt.get(),
        differs.join(", ")
    )))
}

impl Payments {
    /// Charges the order's code once, or returns the outcome of the charge already made for this attempt.
    ///
    /// The answer is the charge that settles the sale: this attempt's, or the
    /// earlier attempt's when that one was paid first.
    pub async fn pay(&self, order: PayOrder) -> Result<ChargeRecord, CoordinatorError> {
        let out_trade_no = OutTradeNo::derive(&self.store_id, &order.sale_id, order.attempt);
        let span = tracing::info_span!(
            "pay",
            lane_id = %order.lane_id,
            sale_id = %order.sale_id,
            attempt = order.attempt.get(),
            %out_trade_no,
            code = %order.code.masked(),
        );
        async move {
            let _held = hold(&self.charge_locks, &out_trade_no).await;
            let charge = self.pay_locked(&order, &out_trade_no).await?;
            self.answer_for(charge)
        }
        .instrument(span)
        .await
    }

    /// What to tell the lane about `charge`: the winning attempt when it was superseded.
    fn answer_for(&self, charge: ChargeRecord) -> Result<ChargeRecord, CoordinatorError> {
        if let Some(winner) = &charge.superseded_by
            && let Some(winner) = self.store.charge(winner)?
        {
            return Ok(winner);
        }
        Ok(charge)
    }

    async fn pay_locked(&self, order: &PayOrder, out_trade_no: &OutTradeNo) -> Result<ChargeRecord, CoordinatorError> {
        let basket_sha256 = basket_digest(&order.lines);
        let code_fingerprint = self.store.fingerprint(&order.code);
        if let Some(existing) = self.store.charge(out_trade_no)? {
            same_charge(&existing, order, basket_sha256, code_fingerprint)?;
            return self.repeat(existing).await;
        }
        if let Some(paid) = self.paid_charge_of_sale(&order.sale_id, out_trade_no)? {
            return Err(CoordinatorError::FailedPrecondition(format!(
                "sale {} is already paid by {}",
                order.sale_id, paid.out_trade_no
            )));
        }
        let mut charge = self.intent(order, out_trade_no, basket_sha256, code_fingerprint)?;
        let client = self.provider(charge.provider)?;
        // A code is single-use: one shown again (a screenshot, a lane that saw it twice) is declined
        // here without a call to the provider. The claim is committed with the intent.
        let owner = self.store.claim_code(code_fingerprint, out_trade_no)?;
        if &owner != out_trade_no {
            tracing::warn!(earlier = %owner, "payment code shown again: declined without calling the provider");
            charge.status = ChargeStatus::NewCodeNeeded;
            charge.message = messages::CODE_USED.to_owned();
            charge.settled_at = Some(UnixMillis::now());
            charge.log(format!("declined: the code was already used in {owner}; the provider was not called"));
            self.save(&mut charge).await?;
            return Ok(charge);
        }
        charge.log("intent recorded");
        // The intent is durable before any money can move.
        self.save(&mut charge).await?;
        let request = MicropayRequest {
            out_trade_no: out_trade_no.clone(),
            code: order.code.clone(),
            amount: charge.amount,
            description: format!("{} groceries", self.store_id),
            terminal: order.lane_id.clone(),
        };
        let query_after = match client.micropay(request).await {
            Ok(answer) => {
                charge.log(format!("micropay: {}", answer.provider_code));
                self.apply_answer(&mut charge, answer)
            }
            Err(e) => {
                tracing::warn!(error = %e, "micropay unanswered: outcome unknown");
                charge.log(format!("micropay: no answer ({e})"));
                charge.status = ChargeStatus::Unknown;
                Some(Duration::ZERO)
            }
        };
        self.record_answer(&mut charge, query_after).await?;
        tracing::info!(status = ?charge.status, provider_code = %charge.provider_code, amount = %charge.amount, "charge answered");
        Ok(charge)
    }

    /// A repeated request for a charge: its first outcome, or, while it is unsettled, the outcome of resuming it.
    async fn repeat(&self, mut existing: ChargeRecord) -> Result<ChargeRecord, CoordinatorError> {
        if existing.status.is_final() {
            tracing::info!(status = ?existing.status, "repeated request: answering with the first outcome");
        } else {
            tracing::info!(status = ?existing.status, "repeated request for an unsettled charge: resuming it");
            self.settle(&mut existing, Duration::ZERO).await?;
        }
        Ok(existing)
    }

    /// The intent of a new charge: the basket priced from the catalog, which must be the lane's total.
    fn intent(
        &self,
        order: &PayOrder,
        out_trade_no: &OutTradeNo,
        basket_sha256: [u8; 32],
        code_fingerprint: CodeFingerprint,
    ) -> Result<ChargeRecord, CoordinatorError> {
        let (lines, full_price) = price_lines(&self.store, &order.lines)?;
        // The promotions in force come off each line priced from the catalog (as the lane prices them: a
        // typed price takes none), then a coupon the sale holds off the rest.
        let promoted: Vec<_> = lines
            .iter()
            .zip(&order.lines)
            .filter(|(_, ordered)| ordered.typed_price.is_none())
            .map(|(l, _)| l.clone())
            .collect();
        let basket = after_promotions(&self.store, &promoted, full_price, UnixMillis::now())?;
        let total = match self.store.coupon_of_sale(&order.sale_id)? {
            Some(coupon_id) => {
                let off = crate::services::coupons::discount_for_sale(&self.store, &order.sale_id, &coupon_id, basket)?;
                checkout_storage::Money::new(basket.minor_units - off.minor_units, basket.currency)
            }
            None => basket,
        };
        if total != order.amount {
            return Err(CoordinatorError::FailedPrecondition(format!(
                "the lane's total {} differs from the store's price {total}: refresh the price file",
                order.amount
            )));
        }
        total.positive()?;
        Ok(ChargeRecord {
            out_trade_no: out_trade_no.clone(),
            lane_id: order.lane_id.clone(),
            sale_id: order.sale_id.clone(),
            attempt: order.attempt,
            provider: order.code.provider(),
            masked_code: order.code.masked(),
            code_fingerprint,
            amount: total,
            status: ChargeStatus::Pending,
            provider_code: String::new(),
            message: messages::UNCERTAIN.to_owned(),
            provider_transaction_id: String::new(),
            created_at: UnixMillis::now(),
            settled_at: None,
            superseded_by: None,
            events: Vec::new(),
            lines,
            basket_sha256,
            shift_id: order.shift_id.clone(),
            sale_started_at: order.started_at,
        })
    }

    /// Records micropay's answer: paid (with its sale), definite, or unknown and then settled.
    async fn record_answer(
        &self,
        charge: &mut ChargeRecord,
        query_after: Option<Duration>,
    ) -> Result<(), CoordinatorError> {
        match query_after {
            None if charge.status == ChargeStatus::Paid => self.mark_paid(charge).await,
            None => {
                charge.settled_at = Some(UnixMillis::now());
                self.save(charge).await
            }
            Some(wait) => {
                self.save(charge).await?;
                // The provider's pause before the first query (5 s while the customer types a password), never
                // longer than the engine's longest pause between queries (which an accelerated engine shortens).
                self.settle(charge, wait.min(self.timing.query_every_max)).await
            }
        }
    }

    /// Applies a micropay answer; returns how long to wait before querying when the outcome is unknown.
    fn apply_answer(&self, charge: &mut ChargeRecord, answer: ProviderAnswer) -> Option<Duration> {
        charge.provider_code = answer.provider_code;
        charge.message = answer.message;
        charge.status = answer.status;
        match answer.status {
            ChargeStatus::Paid => {
                charge.provider_transaction_id = answer.transaction_id;
                None
            }
            ChargeStatus::NewCodeNeeded | ChargeStatus::Failed | ChargeStatus::Reversed => None,
            ChargeStatus::Pending | ChargeStatus::Unknown | ChargeStatus::Reversing => {
                charge.status = ChargeStatus::Unknown;
                Some(answer.query_after)
            }
        }
    }

    /// Records `charge` as paid, unless another attempt of its sale was paid first: then it is owed a reversal.
    pub(super) async fn mark_paid(&self, charge: &mut ChargeRecord) -> Result<(), CoordinatorError> {
        let _sale = hold(&self.sale_locks, &charge.sale_id).await;
        charge.settled_at = Some(UnixMillis::now());
        if let Some(winner) = self.paid_charge_of_sale(&charge.sale_id, &charge.out_trade_no)? {
            tracing::warn!(winner = %winner.out_trade_no, "sale paid twice: reversing this surplus charge");
            charge.superseded_by = Some(winner.out_trade_no.clone());
            charge.status = ChargeStatus::Reversing;
            charge.log(format!("surplus: sale already paid by {}", winner.out_trade_no));
            self.save(charge).await?;
            return self.reverse(charge).await;
        }
        charge.status = ChargeStatus::Paid;
        charge.message = messages::PAID.to_owned();
        // The sale is recorded with its payment, in the same commit: a lane that dies before it
        // hears the answer loses nothing, and its FinishSale later only confirms it.
        let sale = SaleRecord::paid_by(charge, charge.settled_at.unwrap_or(charge.sale_started_at));
        self.store.insert_sale_if_absent(&sale)?;
        // The coupon it held is used now; what promotions and the coupon took off is kept for the totals.
        crate::services::coupons::redeem_for_paid_sale(&self.store, &sale.sale_id, &sale.out_trade_no)?;
        if let Some(amount) = self.store.discount_of_sale(&sale)? {
            let discount = checkout_storage::SaleDiscount {
                sale_id: sale.sale_id.clone(),
                out_trade_no: sale.out_trade_no.clone(),
                amount,
                at: sale.finished_at,
            };
            self.store.put_sale_discount(&discount)?;
        }
        // The member's points too, never before the payment and once (keyed by the sale).
        crate::services::members::credit_paid_sale(
            &self.store,
            &self.points,
            &sale.sale_id,
            &sale.out_trade_no,
            &sale.lines,
            sale.total,
            charge.provider,
        )?;
        self.save(charge).await
    }

    /// A paid charge of another attempt of the same sale, if any.
    pub(super) fn paid_charge_of_sale(
        &self,
        sale_id: &SaleId,
        this: &OutTradeNo,
    ) -> Result<Option<ChargeRecord>, CoordinatorError> {
        Ok(self
            .store
            .charges_with_prefix(&sale_prefix(&self.store_id, sale_id))?
            .into_iter()
            .find(|c| c.status == ChargeStatus::Paid && &c.out_trade_no != this))
    }
}

/// A basket of `full_price` in all less what the promotions in force at `at` take off its priced `lines`
/// (those promotions apply to).
pub(crate) fn after_promotions(
    store: &checkout_storage::Store,
    lines: &[checkout_storage::SaleLine],
    full_price: checkout_storage::Money,
    at: UnixMillis,
) -> Result<checkout_storage::Money, CoordinatorError> {
    let promotions = store.promotions_not_over(at)?;
    if promotions.is_empty() {
        return Ok(full_price);
    }
    let priced: Vec<_> = lines.iter().map(|l| (l.gtin.clone(), l.quantity, l.unit_price)).collect();
    let off: i64 =
        checkout_storage::promotion_discounts(&priced, &promotions, at).iter().map(|d| d.amount.minor_units).sum();
    Ok(checkout_storage::Money::new(full_price.minor_units - off, full_price.currency))
}
