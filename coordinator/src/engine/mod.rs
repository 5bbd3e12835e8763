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
    Attempt, ChargeRecord, ChargeStatus, LaneId, Money, OrderLine, OutTradeNo, PaymentCode, Provider, SaleId, SaleLine,
    ShiftId, Store, StoreId, UnixMillis,
};

mod charge;
mod locks;
pub mod refunds;
pub mod reversal;
mod settle;
#[cfg(test)]
mod tests;

pub(crate) use locks::{Locks, hold};

use crate::{error::CoordinatorError, providers::PaymentProvider};

/// A lane's request to charge a code for a sale, already checked field by field.
#[derive(Debug, Clone)]
pub struct PayOrder {
    pub lane_id: LaneId,
    pub sale_id: SaleId,
    pub attempt: Attempt,
    pub code: PaymentCode,
    /// GTIN, quantity and (open-price items only) typed unit price of each basket line, as the lane rang
    /// them up.
    pub lines: Vec<OrderLine>,
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
    /// A coupon held this long by a sale with no charge paid or under way is let go (its lane never came
    /// back to pay or release it).
    pub coupon_hold: Duration,
}

impl EngineTiming {
    /// Every pause and deadline `speed` times shorter: for load tests that run simulated time faster
    /// (`checkout rush --speed 60` runs a 45 s query deadline in 0.75 s).
    pub fn accelerated(self, speed: f64) -> EngineTiming {
        let speed = if speed.is_finite() && speed >= 1.0 { speed } else { 1.0 };
        let fast = |d: Duration| d.div_f64(speed).max(Duration::from_millis(1));
        EngineTiming {
            query_deadline: fast(self.query_deadline),
            query_every: fast(self.query_every),
            query_every_max: fast(self.query_every_max),
            reverse_every: fast(self.reverse_every),
            reverse_attempts: self.reverse_attempts,
            resolve_every: fast(self.resolve_every),
            coupon_hold: fast(self.coupon_hold),
        }
    }
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
            coupon_hold: Duration::from_secs(30 * 60),
        }
    }
}

pub struct Payments {
    pub(crate) store: Store,
    store_id: StoreId,
    providers: HashMap<Provider, Arc<dyn PaymentProvider>>,
    timing: EngineTiming,
    /// One lock per charge being worked on, so a repeated request, a refund or the resolver waits for the first.
    pub(crate) charge_locks: Locks<OutTradeNo>,
    /// One lock per sale while a charge of it is marked paid, so two attempts cannot both win.
    sale_locks: Locks<SaleId>,
    /// How a paid sale earns its member points.
    points: crate::services::members::PointsRule,
}

/// Prices `lines` from the store's catalog; returns the priced lines, in order, and their sum.
///
/// A product whose catalog price is zero is an open-price item: its line must carry the unit price the
/// cashier typed, and is priced at it. Every other line is priced from the catalog and must carry none.
/// Either mistake is an invalid argument (the lane lied or is out of date): nothing is priced.
pub fn price_lines(store: &Store, lines: &[OrderLine]) -> Result<(Vec<SaleLine>, Money), CoordinatorError> {
    let mut priced = Vec::with_capacity(lines.len());
    let mut total: Option<Money> = None;
    for (i, line) in lines.iter().enumerate() {
        let gtin = &line.gtin;
        let product = store.product(gtin)?.ok_or_else(|| {
            CoordinatorError::invalid(format!("lines[{i}].gtin"), format!("{gtin} is not in the catalog"))
        })?;
        let unit_price = match (product.is_open_price(), line.typed_price) {
            (false, None) => product.price,
            (true, Some(typed)) => typed,
            (false, Some(_)) => {
                return Err(CoordinatorError::invalid(
                    format!("lines[{i}].unit_price"),
                    format!("{gtin} is not an open-price item: the store prices it from its catalog"),
                ));
            }
            (true, None) => {
                return Err(CoordinatorError::invalid(
                    format!("lines[{i}].unit_price"),
                    format!("{gtin} is an open-price item: the line needs the unit price the cashier typed"),
                ));
            }
        };
        let line_total = unit_price.checked_mul(line.quantity)?;
        total = Some(match total {
            None => line_total,
            Some(sum) => sum.checked_add(line_total)?,
        });
        priced.push(SaleLine { gtin: gtin.clone(), quantity: line.quantity, unit_price });
    }
    let total = total.ok_or_else(|| CoordinatorError::invalid("lines", "a sale has at least one line"))?;
    Ok((priced, total))
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
            points: crate::services::members::PointsRule::default(),
        }
    }

    /// Paid sales earn member points by `rule` (one point per yuan without it).
    pub fn with_points_rule(mut self, rule: crate::services::members::PointsRule) -> Payments {
        self.points = rule;
        self
    }

    pub fn points_rule(&self) -> &crate::services::members::PointsRule {
        &self.points
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

    /// The providers this store charges through.
    pub fn providers(&self) -> impl Iterator<Item = Provider> + '_ {
        self.providers.keys().copied()
    }

    pub fn timing(&self) -> &EngineTiming {
        &self.timing
    }
}
