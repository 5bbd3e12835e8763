//! The payment engine: one state machine per charge, so that no charge is lost and none is taken twice.
//!
//! [`Payments::pay`]: price the basket from the catalog, derive the
//! `out_trade_no` from (store, sale, attempt), record the intent as `Pending`
//! and flush, call micropay, record the answer and flush, then answer the lane.
//! An unknown outcome (USERPAYING, SYSTEMERROR, a dropped answer...) is
//! queried with backoff until paid, closed or the deadline; then the order is
//! reversed, repeating while the provider says to call again. A repeated
//! request for the same attempt waits for the first and gets its outcome; a
//! request for a charge left unsettled (a crash, a timeout) resumes it and
//! never calls micropay again. When two attempts of one sale both end paid,
//! the later is reversed as surplus and the lane is told the sale is paid by
//! the first.
//!
//! [`Payments::resolve_outstanding`] drives every charge not yet final (after
//! a restart, after an outage); the coordinator runs it at start and then
//! periodically.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use checkout_storage::{
    Attempt, ChargeRecord, ChargeStatus, LaneId, Money, OutTradeNo, PaymentCode, ProductCode, Provider, SaleId,
    SaleLine, SaleRecord, ShiftId, Store, StoreId, UnixMillis, basket_digest,
};
use tokio::time::Instant;
use tracing::Instrument;

use crate::{
    error::CoordinatorError,
    providers::{MicropayRequest, OrderState, PaymentProvider, ProviderAnswer, ReverseAnswer, messages},
};

/// A lane's request to charge a code for a sale, already checked field by field.
#[derive(Debug, Clone)]
pub struct PayOrder {
    pub lane_id: LaneId,
    pub sale_id: SaleId,
    pub attempt: Attempt,
    pub code: PaymentCode,
    /// GTIN and quantity of each basket line, as the lane scanned them.
    pub lines: Vec<(ProductCode, u32)>,
    /// The total the lane showed the customer.
    pub amount: Money,
    /// The cashier's shift the sale is rung up in, if one is open.
    pub shift_id: Option<ShiftId>,
    /// When the lane started the sale; now, if the lane did not say.
    pub started_at: UnixMillis,
}

/// How patient the engine is with a provider.
#[derive(Debug, Clone)]
pub struct EngineTiming {
    /// Give up waiting for an unknown charge this long after it was made, and reverse it.
    /// WeChat revokes an unpaid quick-pay order 45 s after creation.
    pub query_deadline: Duration,
    /// First and longest pause between order queries (the pause doubles up to the longest).
    pub query_every: Duration,
    pub query_every_max: Duration,
    /// Pause between reverse calls while the provider says to call again.
    pub reverse_every: Duration,
    /// Reverse calls in one go before the charge is left to the resolver.
    pub reverse_attempts: u32,
    /// How often the resolver looks for charges left unsettled.
    pub resolve_every: Duration,
}

impl Default for EngineTiming {
    fn default() -> Self {
        EngineTiming {
            query_deadline: Duration::from_secs(45),
            query_every: Duration::from_secs(3),
            query_every_max: Duration::from_secs(10),
            reverse_every: Duration::from_secs(3),
            reverse_attempts: 5,
            resolve_every: Duration::from_secs(10),
        }
    }
}

pub(crate) type Locks<K> = Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>;

pub struct Payments {
    pub(crate) store: Store,
    store_id: StoreId,
    providers: HashMap<Provider, Arc<dyn PaymentProvider>>,
    timing: EngineTiming,
    /// One lock per charge being worked on, so a repeated request, a refund or the resolver waits for the first.
    pub(crate) charge_locks: Locks<OutTradeNo>,
    /// One lock per sale while a charge of it is marked paid, so two attempts cannot both win.
    sale_locks: Locks<SaleId>,
}

/// Prices `lines` from the store's catalog.
pub fn price_lines(store: &Store, lines: &[(ProductCode, u32)]) -> Result<(Vec<SaleLine>, Money), CoordinatorError> {
    let mut priced = Vec::with_capacity(lines.len());
    let mut total: Option<Money> = None;
    for (i, (gtin, quantity)) in lines.iter().enumerate() {
        let product = store.product(gtin)?.ok_or_else(|| {
            CoordinatorError::invalid(format!("lines[{i}].gtin"), format!("{gtin} is not in the catalog"))
        })?;
        let line_total = product.price.checked_mul(*quantity)?;
        total = Some(match total {
            None => line_total,
            Some(sum) => sum.checked_add(line_total)?,
        });
        priced.push(SaleLine { gtin: gtin.clone(), quantity: *quantity, unit_price: product.price });
    }
    let total = total.ok_or_else(|| CoordinatorError::invalid("lines", "a sale has at least one line"))?;
    Ok((priced, total))
}

/// Holds a named lock from a lock map, and removes the entry when the last holder lets go.
pub(crate) struct Held<'a, K: std::hash::Hash + Eq + Clone> {
    map: &'a Locks<K>,
    key: K,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<K: std::hash::Hash + Eq + Clone> Drop for Held<'_, K> {
    fn drop(&mut self) {
        self.guard.take();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // Two references: the map's and ours. Anyone else still waiting keeps the entry.
        if Arc::strong_count(&self.lock) == 2 {
            map.remove(&self.key);
        }
    }
}

fn lock_entry<K: std::hash::Hash + Eq + Clone>(map: &Locks<K>, key: &K) -> Arc<tokio::sync::Mutex<()>> {
    map.lock().unwrap_or_else(|p| p.into_inner()).entry(key.clone()).or_default().clone()
}

pub(crate) async fn hold<'a, K: std::hash::Hash + Eq + Clone>(map: &'a Locks<K>, key: &K) -> Held<'a, K> {
    let lock = lock_entry(map, key);
    let guard = Some(lock.clone().lock_owned().await);
    Held { map, key: key.clone(), lock, guard }
}

fn try_hold<'a, K: std::hash::Hash + Eq + Clone>(map: &'a Locks<K>, key: &K) -> Option<Held<'a, K>> {
    let lock = lock_entry(map, key);
    let guard = lock.clone().try_lock_owned().ok();
    let held = Held { map, key: key.clone(), lock, guard };
    held.guard.is_some().then_some(held)
}

/// The sale an `out_trade_no` belongs to, as the prefix of its attempts: `S001-L1-MIH4K2AB-`.
fn sale_prefix(store_id: &StoreId, sale_id: &SaleId) -> String {
    format!("{store_id}-{sale_id}-")
}

impl Payments {
    pub fn new(
        store: Store,
        store_id: StoreId,
        providers: HashMap<Provider, Arc<dyn PaymentProvider>>,
        timing: EngineTiming,
    ) -> Payments {
        Payments {
            store,
            store_id,
            providers,
            timing,
            charge_locks: Mutex::new(HashMap::new()),
            sale_locks: Mutex::new(HashMap::new()),
        }
    }

    pub fn store_id(&self) -> &StoreId {
        &self.store_id
    }

    pub(crate) fn provider(&self, provider: Provider) -> Result<Arc<dyn PaymentProvider>, CoordinatorError> {
        self.providers
            .get(&provider)
            .cloned()
            .ok_or_else(|| CoordinatorError::FailedPrecondition(format!("{provider} is not accepted at this store")))
    }

    /// Records `charge` durably. A charge that ended unpaid keeps what the books need (amount, masked
    /// code, fingerprint, outcome, the basket's digest), not the basket.
    async fn save(&self, charge: &mut ChargeRecord) -> Result<(), CoordinatorError> {
        if charge.status.is_final() && charge.status != ChargeStatus::Paid {
            charge.lines = Vec::new();
        }
        self.store.put_charge(charge)?;
        self.store.commit().await?;
        Ok(())
    }

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
        let basket_sha256 = basket_digest(order.lines.iter().map(|(gtin, quantity)| (gtin, *quantity)));
        let code_fingerprint = self.store.fingerprint(&order.code);
        if let Some(mut existing) = self.store.charge(out_trade_no)? {
            // A repeat is answered from the first charge only when it is the same charge: the same
            // lane, basket, amount and code. Anything else is someone else's request for this number.
            let differs = [
                (existing.lane_id != order.lane_id, "lane"),
                (existing.basket_sha256 != basket_sha256, "basket"),
                (existing.amount != order.amount, "amount"),
                (existing.code_fingerprint != code_fingerprint, "payment code"),
            ];
            let differs: Vec<&str> = differs.iter().filter(|(d, _)| *d).map(|(_, what)| *what).collect();
            if !differs.is_empty() {
                tracing::warn!(differs = ?differs, "a request for an existing charge differs from it: refused");
                return Err(CoordinatorError::FailedPrecondition(format!(
                    "sale {} attempt {} was charged with another {}: a new code is a new attempt",
                    order.sale_id,
                    order.attempt.get(),
                    differs.join(", ")
                )));
            }
            if existing.status.is_final() {
                tracing::info!(status = ?existing.status, "repeated request: answering with the first outcome");
            } else {
                tracing::info!(status = ?existing.status, "repeated request for an unsettled charge: resuming it");
                self.settle(&mut existing, Duration::ZERO).await?;
            }
            return Ok(existing);
        }
        if let Some(paid) = self.paid_charge_of_sale(&order.sale_id, out_trade_no)? {
            return Err(CoordinatorError::FailedPrecondition(format!(
                "sale {} is already paid by {}",
                order.sale_id, paid.out_trade_no
            )));
        }
        let (lines, total) = price_lines(&self.store, &order.lines)?;
        if total != order.amount {
            return Err(CoordinatorError::FailedPrecondition(format!(
                "the lane's total {} differs from the store's price {total}: refresh the price file",
                order.amount
            )));
        }
        total.positive()?;
        let provider = order.code.provider();
        let client = self.provider(provider)?;
        let mut charge = ChargeRecord {
            out_trade_no: out_trade_no.clone(),
            lane_id: order.lane_id.clone(),
            sale_id: order.sale_id.clone(),
            attempt: order.attempt,
            provider,
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
        };
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
            amount: total,
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
        match query_after {
            None => {
                if charge.status == ChargeStatus::Paid {
                    self.mark_paid(&mut charge).await?;
                } else {
                    charge.settled_at = Some(UnixMillis::now());
                    self.save(&mut charge).await?;
                }
            }
            Some(wait) => {
                self.save(&mut charge).await?;
                self.settle(&mut charge, wait).await?;
            }
        }
        tracing::info!(status = ?charge.status, provider_code = %charge.provider_code, amount = %charge.amount, "charge answered");
        Ok(charge)
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
    async fn mark_paid(&self, charge: &mut ChargeRecord) -> Result<(), CoordinatorError> {
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
        let sale = SaleRecord {
            lane_id: charge.lane_id.clone(),
            sale_id: charge.sale_id.clone(),
            shift_id: charge.shift_id.clone(),
            lines: charge.lines.clone(),
            total: charge.amount,
            out_trade_no: charge.out_trade_no.clone(),
            started_at: charge.sale_started_at,
            finished_at: charge.settled_at.unwrap_or(charge.sale_started_at),
        };
        self.store.insert_sale_if_absent(&sale)?;
        self.save(charge).await
    }

    /// Queries an unknown charge until it is paid, closed or past the deadline; then reverses it if it is not paid.
    async fn settle(&self, charge: &mut ChargeRecord, first_wait: Duration) -> Result<(), CoordinatorError> {
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

    /// Reverses a charge, calling again while the provider asks to. Leaves it `Reversing` for the resolver if it cannot finish.
    async fn reverse(&self, charge: &mut ChargeRecord) -> Result<(), CoordinatorError> {
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

    /// A paid charge of another attempt of the same sale, if any.
    fn paid_charge_of_sale(
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

    /// Drives every charge not yet final to paid or reversed, a few at a time; skips those
    /// another task is working on. Returns how many charges are still outstanding afterwards.
    pub async fn resolve_outstanding(&self) -> Result<usize, CoordinatorError> {
        use futures::StreamExt;
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

    /// The providers this store charges through.
    pub fn providers(&self) -> impl Iterator<Item = Provider> + '_ {
        self.providers.keys().copied()
    }

    pub fn timing(&self) -> &EngineTiming {
        &self.timing
    }
}

#[cfg(test)]
mod tests_support {
    pub(super) use super::tests::{Scripted, engine, lost, order};
    use super::*;

    /// An engine whose provider pays the next micropay.
    pub(super) async fn paid_engine() -> (Arc<Scripted>, Payments, tempfile::TempDir) {
        let provider = Arc::new(Scripted::default());
        provider.micropay.lock().unwrap().push_back(super::tests::answer(
            ChargeStatus::Paid,
            "SUCCESS",
            Duration::ZERO,
        ));
        let (payments, dir) = engine(provider.clone());
        (provider, payments, dir)
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::VecDeque, sync::atomic::AtomicUsize};

    use checkout_storage::{Currency, SimulatedWallet, sample_catalog};

    use super::*;
    use crate::providers::{
        ProviderError, ProviderFuture, QueryAnswer, RefundAnswer, RefundRequest, messages::UNCERTAIN,
    };

    /// A provider that answers from scripts, as the documented protocol would, and counts calls.
    #[derive(Default)]
    pub(super) struct Scripted {
        pub(super) micropay: Mutex<VecDeque<Result<ProviderAnswer, ProviderError>>>,
        pub(super) query: Mutex<VecDeque<Result<OrderState, ProviderError>>>,
        pub(super) reverse: Mutex<VecDeque<Result<ReverseAnswer, ProviderError>>>,
        pub(super) refund: Mutex<VecDeque<Result<RefundAnswer, ProviderError>>>,
        pub(super) refund_calls: AtomicUsize,
        pub(super) micropay_calls: AtomicUsize,
        pub(super) reverse_calls: AtomicUsize,
    }

    pub(super) fn answer(
        status: ChargeStatus,
        code: &str,
        query_after: Duration,
    ) -> Result<ProviderAnswer, ProviderError> {
        Ok(ProviderAnswer {
            status,
            provider_code: code.into(),
            message: if status == ChargeStatus::Paid { messages::PAID.into() } else { UNCERTAIN.into() },
            transaction_id: if status == ChargeStatus::Paid { "T1".into() } else { String::new() },
            query_after,
        })
    }

    pub(super) fn lost() -> ProviderError {
        ProviderError::Unreachable { provider: Provider::WeChatPay, reason: "connection reset".into() }
    }

    impl PaymentProvider for Scripted {
        fn micropay(&self, _: MicropayRequest) -> ProviderFuture<'_, Result<ProviderAnswer, ProviderError>> {
            self.micropay_calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let next = self.micropay.lock().unwrap().pop_front().unwrap_or_else(|| Err(lost()));
            Box::pin(async move { next })
        }

        fn query(&self, _: Provider, _: &OutTradeNo) -> ProviderFuture<'_, Result<QueryAnswer, ProviderError>> {
            // The last scripted state repeats: an order stays where it is.
            let mut queue = self.query.lock().unwrap();
            let next = if queue.len() > 1 { queue.pop_front() } else { queue.front().cloned() };
            let next = next.unwrap_or(Ok(OrderState::NotFound));
            Box::pin(async move { next.map(|state| QueryAnswer { provider_code: format!("{state:?}"), state }) })
        }

        fn reverse(&self, _: Provider, _: &OutTradeNo) -> ProviderFuture<'_, Result<ReverseAnswer, ProviderError>> {
            self.reverse_calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let next =
                self.reverse.lock().unwrap().pop_front().unwrap_or(Ok(ReverseAnswer::Reversed { refunded: false }));
            Box::pin(async move { next })
        }

        fn refund(&self, _: RefundRequest) -> ProviderFuture<'_, Result<RefundAnswer, ProviderError>> {
            self.refund_calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let next = self
                .refund
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Ok(RefundAnswer::Unknown { provider_code: "UNSCRIPTED".into() }));
            Box::pin(async move { next })
        }
    }

    fn timing() -> EngineTiming {
        EngineTiming {
            query_deadline: Duration::from_millis(300),
            query_every: Duration::from_millis(10),
            query_every_max: Duration::from_millis(40),
            reverse_every: Duration::from_millis(5),
            reverse_attempts: 4,
            resolve_every: Duration::from_millis(50),
        }
    }

    pub(super) fn engine(provider: Arc<Scripted>) -> (Payments, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.seed_catalog_if_empty(&sample_catalog()).unwrap();
        let providers: HashMap<Provider, Arc<dyn PaymentProvider>> =
            Provider::ALL.into_iter().map(|p| (p, provider.clone() as Arc<dyn PaymentProvider>)).collect();
        (Payments::new(store, StoreId::parse("S1").unwrap(), providers, timing()), dir)
    }

    pub(super) fn order(sale: &str, attempt: u32) -> PayOrder {
        let product = &sample_catalog()[0];
        PayOrder {
            lane_id: LaneId::parse("L1").unwrap(),
            sale_id: SaleId::parse(sale).unwrap(),
            attempt: Attempt::new(attempt).unwrap(),
            code: SimulatedWallet::new(b"t", Provider::WeChatPay, attempt as u16).issue_code(UnixMillis::now()),
            lines: vec![(product.gtin.clone(), 1)],
            amount: Money::new(product.price.minor_units, Currency::CNY),
            shift_id: None,
            started_at: UnixMillis::now(),
        }
    }

    fn paid_state() -> Result<OrderState, ProviderError> {
        Ok(OrderState::Paid {
            transaction_id: "T9".into(),
            amount: Money::new(sample_catalog()[0].price.minor_units, Currency::CNY),
        })
    }

    #[tokio::test]
    async fn a_customer_typing_a_password_is_queried_until_paid() {
        let provider = Arc::new(Scripted::default());
        provider.micropay.lock().unwrap().push_back(answer(
            ChargeStatus::Unknown,
            "USERPAYING",
            Duration::from_millis(20),
        ));
        provider.query.lock().unwrap().extend([Ok(OrderState::Paying), Ok(OrderState::Paying), paid_state()]);
        let (payments, _dir) = engine(provider.clone());
        let charge = payments.pay(order("L1-A", 1)).await.unwrap();
        assert_eq!(charge.status, ChargeStatus::Paid);
        assert_eq!(charge.provider_transaction_id, "T9");
        assert_eq!(charge.message, messages::PAID);
        assert!(charge.events.iter().any(|e| e.what == "micropay: USERPAYING"), "{:?}", charge.events);
        assert_eq!(provider.reverse_calls.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert_eq!(
            payments.store.charge(&charge.out_trade_no).unwrap().unwrap(),
            charge,
            "the ledger holds the outcome"
        );
    }

    #[tokio::test]
    async fn an_unknown_charge_not_paid_by_the_deadline_is_reversed_calling_again_while_asked() {
        let provider = Arc::new(Scripted::default());
        provider.micropay.lock().unwrap().push_back(answer(ChargeStatus::Unknown, "SYSTEMERROR", Duration::ZERO));
        provider.query.lock().unwrap().push_back(Ok(OrderState::NotPaid));
        provider
            .reverse
            .lock()
            .unwrap()
            .extend([Ok(ReverseAnswer::CallAgain), Ok(ReverseAnswer::Reversed { refunded: false })]);
        let (payments, _dir) = engine(provider.clone());
        let charge = payments.pay(order("L1-B", 1)).await.unwrap();
        assert_eq!(charge.status, ChargeStatus::Reversed);
        assert_eq!(charge.message, messages::REVERSED);
        assert_eq!(provider.reverse_calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_lost_answer_is_recovered_by_query_and_a_repeat_never_charges_again() {
        let provider = Arc::new(Scripted::default());
        provider.micropay.lock().unwrap().push_back(Err(lost()));
        provider.query.lock().unwrap().push_back(paid_state());
        let (payments, _dir) = engine(provider.clone());
        let first = payments.pay(order("L1-C", 1)).await.unwrap();
        assert_eq!(first.status, ChargeStatus::Paid);
        let again = payments.pay(order("L1-C", 1)).await.unwrap();
        assert_eq!(again, first);
        assert_eq!(provider.micropay_calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn when_the_provider_stays_down_the_charge_waits_for_the_resolver() {
        let provider = Arc::new(Scripted::default());
        provider.micropay.lock().unwrap().push_back(Err(lost()));
        provider.query.lock().unwrap().push_back(Err(lost()));
        provider.reverse.lock().unwrap().extend((0..4).map(|_| Err(lost())));
        let (payments, _dir) = engine(provider.clone());
        let charge = payments.pay(order("L1-D", 1)).await.unwrap();
        assert_eq!(charge.status, ChargeStatus::Reversing, "a reversal is owed and remembered");
        assert_eq!(payments.store.outstanding_charges().unwrap().len(), 1);
        // The provider is back: the resolver finishes the reversal.
        assert_eq!(payments.resolve_outstanding().await.unwrap(), 0);
        let charge = payments.store.charge(&charge.out_trade_no).unwrap().unwrap();
        assert_eq!(charge.status, ChargeStatus::Reversed);
    }

    #[tokio::test]
    async fn a_sale_paid_by_two_attempts_keeps_the_first_and_reverses_the_surplus() {
        let provider = Arc::new(Scripted::default());
        // Attempt 1: the answer is lost and the provider is unreachable for a while; the customer pays again.
        provider.micropay.lock().unwrap().push_back(Err(lost()));
        provider.query.lock().unwrap().push_back(Err(lost()));
        provider.reverse.lock().unwrap().extend((0..4).map(|_| Err(lost())));
        let (payments, _dir) = engine(provider.clone());
        let first = payments.pay(order("L1-E", 1)).await.unwrap();
        assert_eq!(first.status, ChargeStatus::Reversing);

        // Attempt 2 is paid. Later the resolver learns attempt 1 was paid too: its reversal returns the money.
        provider.micropay.lock().unwrap().push_back(answer(ChargeStatus::Paid, "SUCCESS", Duration::ZERO));
        let second = payments.pay(order("L1-E", 2)).await.unwrap();
        assert_eq!(second.status, ChargeStatus::Paid);
        provider.reverse.lock().unwrap().push_back(Ok(ReverseAnswer::Reversed { refunded: true }));
        payments.resolve_outstanding().await.unwrap();
        let first = payments.store.charge(&first.out_trade_no).unwrap().unwrap();
        assert_eq!(first.status, ChargeStatus::Reversed);
        assert!(first.events.iter().any(|e| e.what == "reverse: done, money returned"));

        // A third attempt for the paid sale is refused before anything is sent.
        let calls = provider.micropay_calls.load(std::sync::atomic::Ordering::SeqCst);
        assert!(matches!(payments.pay(order("L1-E", 3)).await, Err(CoordinatorError::FailedPrecondition(_))));
        assert_eq!(provider.micropay_calls.load(std::sync::atomic::Ordering::SeqCst), calls);
    }

    #[tokio::test]
    async fn a_late_paid_attempt_is_superseded_by_the_earlier_winner() {
        let provider = Arc::new(Scripted::default());
        provider.micropay.lock().unwrap().push_back(answer(ChargeStatus::Paid, "SUCCESS", Duration::ZERO));
        let (payments, _dir) = engine(provider.clone());
        let winner = payments.pay(order("L1-F", 1)).await.unwrap();
        // Attempt 2 was sent before the lane learnt attempt 1 was paid (the lane retried with a new code).
        let second = order("L1-F", 2);
        let mut late = winner.clone();
        late.out_trade_no = OutTradeNo::derive(&StoreId::parse("S1").unwrap(), &late.sale_id, Attempt::new(2).unwrap());
        late.attempt = Attempt::new(2).unwrap();
        late.status = ChargeStatus::Unknown;
        late.code_fingerprint = payments.store.fingerprint(&second.code);
        payments.store.put_charge(&late).unwrap();
        provider.query.lock().unwrap().push_back(paid_state());
        payments.resolve_outstanding().await.unwrap();
        let late = payments.store.charge(&late.out_trade_no).unwrap().unwrap();
        assert_eq!(late.status, ChargeStatus::Reversed);
        assert_eq!(late.superseded_by.as_ref(), Some(&winner.out_trade_no));
        // Asking about the late attempt answers with the winner.
        let answer = payments.pay(second.clone()).await.unwrap();
        assert_eq!(answer.out_trade_no, winner.out_trade_no);
        // The late attempt's number with another basket or another code is someone else's request: refused.
        let mut other_basket = second.clone();
        other_basket.lines[0].1 += 1;
        other_basket.amount = other_basket.amount.checked_mul(2).unwrap();
        assert!(matches!(payments.pay(other_basket).await, Err(CoordinatorError::FailedPrecondition(_))));
        let mut other_lane = second;
        other_lane.lane_id = LaneId::parse("L2").unwrap();
        assert!(matches!(payments.pay(other_lane).await, Err(CoordinatorError::FailedPrecondition(_))));
    }

    #[tokio::test]
    async fn a_declined_charge_keeps_the_books_not_the_basket() {
        let provider = Arc::new(Scripted::default());
        provider.micropay.lock().unwrap().push_back(answer(ChargeStatus::NewCodeNeeded, "NOTENOUGH", Duration::ZERO));
        let (payments, _dir) = engine(provider.clone());
        let declined = payments.pay(order("L1-G", 1)).await.unwrap();
        let kept = payments.store.charge(&declined.out_trade_no).unwrap().unwrap();
        assert_eq!(kept.status, ChargeStatus::NewCodeNeeded);
        assert!(kept.lines.is_empty(), "a declined charge keeps no basket");
        assert_eq!(kept.amount, declined.amount);
        assert!(kept.masked_code.as_str().contains('*'));
    }
}

#[cfg(test)]
mod refund_tests {
    use std::sync::atomic::Ordering::SeqCst;

    use checkout_storage::{Currency, RefundStatus};

    use super::tests_support::*;
    use crate::{
        providers::MAX_REFUNDS_PER_ORDER,
        providers::{RefundAnswer, ReverseAnswer},
        refunds::RefundOrder,
    };

    fn refund(out_trade_no: &checkout_storage::OutTradeNo, number: &str, fen: i64) -> RefundOrder {
        RefundOrder {
            out_trade_no: out_trade_no.clone(),
            out_refund_no: number.into(),
            amount: checkout_storage::Money::new(fen, Currency::CNY),
            reason: "damaged".into(),
        }
    }

    #[tokio::test]
    async fn refunds_are_idempotent_and_never_exceed_what_was_paid() {
        let (provider, payments, _dir) = paid_engine().await;
        let paid = payments.pay(order("L1-R", 1)).await.unwrap();
        let price = paid.amount.minor_units;
        provider.refund.lock().unwrap().push_back(Ok(RefundAnswer::Accepted { refund_id: "R1".into() }));
        let (first, total) = payments.refund(refund(&paid.out_trade_no, "RF-1", price - 10)).await.unwrap();
        assert_eq!((first.status, total.minor_units), (RefundStatus::Accepted, price - 10));
        // The same refund number again: the first answer, no second call.
        let (again, total) = payments.refund(refund(&paid.out_trade_no, "RF-1", price - 10)).await.unwrap();
        assert_eq!((again, total.minor_units), (first, price - 10));
        assert_eq!(provider.refund_calls.load(SeqCst), 1);
        // More than is left is refused before the provider is asked.
        assert!(payments.refund(refund(&paid.out_trade_no, "RF-2", 11)).await.is_err());
        assert_eq!(provider.refund_calls.load(SeqCst), 1);
        // The same number for another amount is a mistake, said as such.
        assert!(payments.refund(refund(&paid.out_trade_no, "RF-1", 5)).await.is_err());
    }

    #[tokio::test]
    async fn an_unknown_refund_is_asked_again_with_the_same_number() {
        let (provider, payments, _dir) = paid_engine().await;
        let paid = payments.pay(order("L1-S", 1)).await.unwrap();
        provider.refund.lock().unwrap().push_back(Ok(RefundAnswer::Unknown { provider_code: "SYSTEMERROR".into() }));
        let (first, total) = payments.refund(refund(&paid.out_trade_no, "RF-9", 100)).await.unwrap();
        assert_eq!((first.status, total.minor_units), (RefundStatus::Unknown, 0));
        provider.refund.lock().unwrap().push_back(Ok(RefundAnswer::Accepted { refund_id: "R9".into() }));
        let (second, total) = payments.refund(refund(&paid.out_trade_no, "RF-9", 100)).await.unwrap();
        assert_eq!((second.status, total.minor_units), (RefundStatus::Accepted, 100));
        assert_eq!(provider.refund_calls.load(SeqCst), 2);
    }

    #[tokio::test]
    async fn at_most_fifty_refunds_per_order_and_none_of_an_unpaid_one() {
        let (provider, payments, _dir) = paid_engine().await;
        let paid = payments.pay(order("L1-T", 1)).await.unwrap();
        for n in 0..MAX_REFUNDS_PER_ORDER {
            provider.refund.lock().unwrap().push_back(Ok(RefundAnswer::Accepted { refund_id: format!("R{n}") }));
            payments.refund(refund(&paid.out_trade_no, &format!("RF-{n}"), 1)).await.unwrap();
        }
        assert!(payments.refund(refund(&paid.out_trade_no, "RF-51", 1)).await.is_err());

        provider.micropay.lock().unwrap().push_back(Err(lost()));
        provider.reverse.lock().unwrap().push_back(Ok(ReverseAnswer::Reversed { refunded: false }));
        let reversed = payments.pay(order("L1-U", 1)).await.unwrap();
        assert!(payments.refund(refund(&reversed.out_trade_no, "RF-X", 1)).await.is_err());
    }
}

#[cfg(test)]
mod every_answer_code {
    use std::sync::atomic::Ordering::SeqCst;

    use super::tests_support::*;
    use super::*;
    use crate::providers::{HTTP_202, alipay, wechat};

    /// Each answer, through the engine: the ledger ends in the answer's outcome (an unknown one is
    /// queried, found unpaid and reversed), with its provider code and cashier message.
    async fn drive(answer: ProviderAnswer) {
        let provider = Arc::new(Scripted::default());
        provider.micropay.lock().unwrap().push_back(Ok(answer.clone()));
        provider.query.lock().unwrap().push_back(Ok(OrderState::NotPaid));
        let (payments, _dir) = engine(provider.clone());
        let charge = payments.pay(order("L1-CODE", 1)).await.unwrap();
        let ledger = payments.store.charge(&charge.out_trade_no).unwrap().unwrap();
        assert_eq!(ledger, charge, "the ledger holds what the lane was told");
        let code = &answer.provider_code;
        assert!(ledger.events.iter().any(|e| e.what == format!("micropay: {code}")), "{code}: {:?}", ledger.events);
        assert!(ledger.status.is_final(), "{code}: left {:?}", ledger.status);
        match answer.status {
            ChargeStatus::Paid => {
                assert_eq!((ledger.status, ledger.message.as_str()), (ChargeStatus::Paid, messages::PAID), "{code}")
            }
            ChargeStatus::NewCodeNeeded | ChargeStatus::Failed => {
                assert_eq!((ledger.status, &ledger.message), (answer.status, &answer.message), "{code}");
                assert_eq!(&ledger.provider_code, code);
                assert_eq!(provider.reverse_calls.load(SeqCst), 0, "{code}: nothing to reverse");
            }
            _ => {
                assert_eq!(ledger.status, ChargeStatus::Reversed, "{code}: unknown, unpaid by the deadline");
                assert_eq!(ledger.message, messages::REVERSED);
                assert!(provider.reverse_calls.load(SeqCst) >= 1, "{code}");
            }
        }
    }

    #[tokio::test]
    async fn wechat_micropay_codes() {
        for code in [
            "SUCCESS",
            "USERPAYING",
            "SYSTEMERROR",
            "BANKERROR",
            HTTP_202,
            "AUTHCODEEXPIRE",
            "NOTENOUGH",
            "NOTSUPORTCARD",
            "AUTH_CODE_ERROR",
            "AUTH_CODE_INVALID",
            "BUYER_MISMATCH",
            "PARAM_ERROR",
            "ORDERPAID",
            "ORDERCLOSED",
            "ORDERREVERSED",
            "OUT_TRADE_NO_USED",
            "NOAUTH",
            "INVALID_REQUEST",
            "TRADE_ERROR",
            "SIGNERROR",
            "SOMETHING_NEW",
        ] {
            let mut answer = wechat::micropay_answer(code);
            answer.query_after = Duration::ZERO;
            drive(answer).await;
        }
    }

    #[tokio::test]
    async fn alipay_trade_pay_codes() {
        for (code, sub_code) in [
            ("10000", ""),
            ("10003", ""),
            ("20000", ""),
            ("20000", "ACQ.SYSTEM_ERROR"),
            ("40004", "ACQ.PAYMENT_AUTH_CODE_INVALID"),
            ("40004", "ACQ.BUYER_BALANCE_NOT_ENOUGH"),
            ("40004", "ACQ.TRADE_HAS_SUCCESS"),
            ("40004", "ACQ.TRADE_HAS_CLOSE"),
            ("40004", "ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR"),
            ("40004", "ACQ.PAYMENT_FAIL"),
            ("40004", "ACQ.TOTAL_FEE_EXCEED"),
            ("40004", "ACQ.SOMETHING_NEW"),
            ("40002", "isv.invalid-signature"),
        ] {
            let mut answer = alipay::pay_answer(code, sub_code);
            answer.query_after = Duration::ZERO;
            drive(answer).await;
        }
    }
}
