//! The payment engine: one charge per (sale, attempt), recorded before the provider is called.
//!
//! Flow of [`Payments::pay`]: price the basket from the catalog, derive the
//! `out_trade_no`, record the intent as `Pending` and flush, call the
//! provider, record its answer and flush, then answer the lane. A repeated
//! request for the same attempt waits for the first and gets its outcome;
//! it never reaches the provider a second time.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use checkout_storage::{
    Attempt, ChargeRecord, ChargeStatus, LaneId, Money, OutTradeNo, PaymentCode, ProductCode, Provider, SaleId,
    SaleLine, Store, StoreId, UnixMillis,
};
use tracing::Instrument;

use crate::{
    error::CoordinatorError,
    provider::{MicropayRequest, PaymentProvider, messages},
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
}

pub struct Payments {
    store: Store,
    store_id: StoreId,
    providers: HashMap<Provider, Arc<dyn PaymentProvider>>,
    /// One lock per charge being made, so a repeated request waits for the first.
    in_flight: Mutex<HashMap<OutTradeNo, Arc<tokio::sync::Mutex<()>>>>,
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

impl Payments {
    pub fn new(store: Store, store_id: StoreId, providers: HashMap<Provider, Arc<dyn PaymentProvider>>) -> Payments {
        Payments { store, store_id, providers, in_flight: Mutex::new(HashMap::new()) }
    }

    pub fn store_id(&self) -> &StoreId {
        &self.store_id
    }

    /// Charges the order's code once, or returns the outcome of the charge already made for this attempt.
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
            let lock = self.charge_lock(&out_trade_no);
            let guard = lock.lock().await;
            let result = self.pay_locked(&order, &out_trade_no).await;
            drop(guard);
            self.release_charge_lock(&out_trade_no, lock);
            result
        }
        .instrument(span)
        .await
    }

    fn charge_lock(&self, out_trade_no: &OutTradeNo) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(out_trade_no.clone()).or_default().clone()
    }

    fn release_charge_lock(&self, out_trade_no: &OutTradeNo, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        // Two references: the map's and ours. Anyone else still waiting keeps it.
        if Arc::strong_count(&lock) == 2 {
            map.remove(out_trade_no);
        }
    }

    async fn pay_locked(&self, order: &PayOrder, out_trade_no: &OutTradeNo) -> Result<ChargeRecord, CoordinatorError> {
        if let Some(existing) = self.store.charge(out_trade_no)? {
            tracing::info!(status = ?existing.status, "repeated request: answering with the first outcome");
            return Ok(existing);
        }
        if let Some(paid) = self.paid_charge_of_sale(out_trade_no, &order.sale_id)? {
            return Err(CoordinatorError::FailedPrecondition(format!(
                "sale {} is already paid by {}",
                order.sale_id, paid.out_trade_no
            )));
        }
        let (_, total) = price_lines(&self.store, &order.lines)?;
        if total != order.amount {
            return Err(CoordinatorError::FailedPrecondition(format!(
                "the lane's total {} differs from the store's price {total}: refresh the price file",
                order.amount
            )));
        }
        total.positive()?;
        let provider = order.code.provider();
        let Some(client) = self.providers.get(&provider).cloned() else {
            return Err(CoordinatorError::FailedPrecondition(format!("{provider} is not accepted at this store")));
        };

        let mut charge = ChargeRecord {
            out_trade_no: out_trade_no.clone(),
            lane_id: order.lane_id.clone(),
            sale_id: order.sale_id.clone(),
            attempt: order.attempt,
            provider,
            masked_code: order.code.masked(),
            amount: total,
            status: ChargeStatus::Pending,
            provider_code: String::new(),
            message: messages::UNCERTAIN.to_owned(),
            provider_transaction_id: String::new(),
            created_at: UnixMillis::now(),
            settled_at: None,
        };
        // The intent is durable before any money can move.
        self.store.put_charge(&charge)?;
        self.store.commit().await?;

        let request = MicropayRequest {
            out_trade_no: out_trade_no.clone(),
            code: order.code.clone(),
            amount: total,
            description: format!("{} groceries", self.store_id),
            terminal: order.lane_id.clone(),
        };
        match client.micropay(request).await {
            Ok(answer) => {
                charge.status = answer.status;
                charge.provider_code = answer.provider_code;
                charge.message = answer.message;
                charge.provider_transaction_id = answer.transaction_id;
            }
            Err(e) => {
                tracing::warn!(error = %e, "provider did not answer: outcome unknown");
                charge.status = ChargeStatus::Unknown;
                charge.message = messages::UNCERTAIN.to_owned();
            }
        }
        if charge.status.is_final() {
            charge.settled_at = Some(UnixMillis::now());
        }
        self.store.put_charge(&charge)?;
        self.store.commit().await?;
        tracing::info!(status = ?charge.status, provider_code = %charge.provider_code, amount = %charge.amount, "charge settled");
        Ok(charge)
    }

    /// A paid charge of another attempt of the same sale, if any.
    fn paid_charge_of_sale(
        &self,
        this: &OutTradeNo,
        sale_id: &SaleId,
    ) -> Result<Option<ChargeRecord>, CoordinatorError> {
        let prefix = format!("{}-{}-", self.store_id, sale_id);
        Ok(self
            .store
            .charges_with_prefix(&prefix)?
            .into_iter()
            .find(|c| c.status == ChargeStatus::Paid && &c.out_trade_no != this))
    }
}
