//! An in-process wallet provider for tests and the demo: real books, single-use expiring codes, a password step, reverse and refunds.
//!
//! The books (balances, orders, refunds) are the truth tests and
//! reconciliation compare the ledger against. `checkout provider-sim`
//! (`sim/mod.rs`) serves the same books over WeChat Pay v2 and Alipay
//! OpenAPI; used directly, [`SimulatedProvider`] implements
//! [`PaymentProvider`] and answers in each provider's own codes (WeChat Pay
//! codes for WeChat Pay and UnionPay wallets, Alipay codes for Alipay
//! wallets), sorted by the same tables the real adapters use
//! ([`crate::providers::wechat::micropay_answer`], [`crate::providers::alipay::pay_answer`]).
//!
//! The password step: a charge above [`SimOptions::password_above`] leaves the
//! order *paying* (WeChat `USERPAYING`, Alipay `10003`) until
//! [`SimOptions::customer_delay`] has passed; then the money moves (or the
//! order fails if the balance no longer covers it).
//!
//! Faults ([`Faults`], drawn from seeded dice) are obeyed in-process as over
//! HTTP: latency, outages, SYSTEMERROR / 20000, HTTP 202, answers dropped or
//! tampered *after* the books moved, reverse asked to be called again.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Mutex,
    time::{Duration, Instant},
};

use checkout_storage::{
    Money, OutTradeNo, PaymentCode, Provider, SimulatedCodeError, UnixMillis, check_simulated_code,
};
use serde::{Deserialize, Serialize};

use crate::providers::MAX_REFUNDS_PER_ORDER;

/// WeChat Pay revokes a quick-pay order still unpaid 45 s after it was made.
pub const WECHAT_REVOKE_UNPAID_AFTER: Duration = Duration::from_secs(45);

/// WeChat Pay's reverse takes an order up to 7 days after it was made (`secapi/pay/reverse`: "7天以内的交易单可调用撤销");
/// older, it answers `REVERSE_EXPIRE` and the order must be refunded instead.
pub const WECHAT_REVERSE_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// Alipay's `alipay.trade.cancel` takes a trade up to 24 hours old ("撤销只支持24小时内的交易"); older, it answers
/// `40004` / `ACQ.TRADE_CANCEL_TIME_OUT`. That sub_code is the one the adapter's table (`providers/alipay/codes.rs`)
/// and `providers.md` already sort as refused; the documents we could search did not list cancel's error table,
/// so it is the closest documented name for the case.
pub const ALIPAY_CANCEL_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Where a booked order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SimOrderState {
    /// The customer is entering the password: no money moved yet.
    Paying,
    /// Money moved from the wallet to the merchant (refunds are counted in `refunded`).
    Paid,
    /// The password step ended without payment (balance too low by then).
    NotPaid,
    /// Closed by reverse before it was paid: no money moved.
    Closed,
    /// Paid, then reversed: the whole amount went back to the wallet.
    Reversed,
}

/// One refund of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimRefund {
    pub out_refund_no: String,
    pub refund_id: String,
    /// Minor units.
    pub amount: i64,
    pub at: UnixMillis,
}

/// An order as the simulated provider books it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimulatedOrder {
    pub out_trade_no: OutTradeNo,
    pub provider: Provider,
    pub wallet: u16,
    #[serde(serialize_with = "money_json")]
    pub amount: Money,
    pub transaction_id: String,
    pub state: SimOrderState,
    /// Minor units refunded so far (by refund; a reverse of a paid order is `Reversed`, not counted here).
    pub refunded: i64,
    pub refunds: Vec<SimRefund>,
    /// The terminal (WeChat `device_info`, Alipay `terminal_id`).
    pub terminal: String,
    pub description: String,
    pub created_at: UnixMillis,
    pub paid_at: Option<UnixMillis>,
    /// When it was closed or reversed.
    pub closed_at: Option<UnixMillis>,
    #[serde(skip)]
    paying_until: Option<Instant>,
    /// When `paying_until` comes, the provider revokes the order instead of taking the money.
    #[serde(skip)]
    revoke_when_due: bool,
}

/// `{"minor_units": 1234, "currency": "CNY"}` in the books' JSON.
fn money_json<S: serde::Serializer>(money: &Money, serializer: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut state = serializer.serialize_struct("Money", 2)?;
    state.serialize_field("minor_units", &money.minor_units)?;
    state.serialize_field("currency", money.currency.as_str())?;
    state.end()
}

impl SimulatedOrder {
    /// Reversed after payment: the money went back to the wallet.
    pub fn reversed(&self) -> bool {
        self.state == SimOrderState::Reversed
    }
}

/// What a micropay did to the books.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayOutcome {
    Paid {
        transaction_id: String,
    },
    /// The password step: query later.
    Paying {
        transaction_id: String,
    },
    /// The code is older than a minute.
    Expired,
    /// Not a code of this provider's wallets.
    Invalid,
    /// The code was charged before.
    Used,
    NotEnough,
    /// This `out_trade_no` is booked already, in this state.
    OrderExists(SimOrderState),
}

/// What a reverse (WeChat reverse, Alipay cancel) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReverseOutcome {
    /// An unpaid order (or none at all) is closed: nothing to give back.
    Closed,
    /// A paid order's money went back to the wallet (what was not refunded already).
    Refunded,
    /// The order is older than the provider's reverse window ([`WECHAT_REVERSE_WINDOW`],
    /// [`ALIPAY_CANCEL_WINDOW`]): nothing changed; refund it instead.
    TooOld,
}

/// What a refund did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// Booked now (`repeated: false`) or earlier under the same `out_refund_no` (`repeated: true`).
    Accepted {
        refund_id: String,
        repeated: bool,
    },
    NoSuchOrder,
    /// The order is not paid (paying, closed or reversed).
    NotPaid,
    /// More than was paid and not yet refunded.
    TooMuch,
    /// The order has had [`MAX_REFUNDS_PER_ORDER`] refunds.
    TooMany,
    /// The same `out_refund_no` was used for another order or amount.
    Mismatch,
}

/// How the simulated provider behaves beyond its books.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimOptions {
    /// Charges strictly above this many minor units need the customer's password (none: never).
    pub password_above: Option<i64>,
    /// How long the customer takes to enter the password.
    pub customer_delay: Duration,
    /// WeChat Pay revokes a quick-pay order still unpaid this long after it was made (45 s); none: never.
    pub wechat_revoke_unpaid_after: Option<Duration>,
    /// Wallets numbered this or above (of each provider) start with `low_balance` instead: customers whose
    /// balance runs short.
    pub low_balance_from: Option<u16>,
    /// What those wallets hold at first, in minor units.
    pub low_balance: i64,
}

impl Default for SimOptions {
    fn default() -> SimOptions {
        SimOptions {
            password_above: None,
            customer_delay: Duration::from_secs(3),
            wechat_revoke_unpaid_after: Some(WECHAT_REVOKE_UNPAID_AFTER),
            low_balance_from: None,
            low_balance: 0,
        }
    }
}

/// What goes wrong, on purpose. Rates are probabilities from 0 to 1, drawn from a seeded generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Every API call waits a uniformly drawn time between these (milliseconds).
    pub latency_min_ms: u64,
    pub latency_max_ms: u64,
    /// With this probability a call waits `latency_tail_ms` more (the long tail).
    pub latency_tail_rate: f64,
    pub latency_tail_ms: u64,
    /// Answer SYSTEMERROR / 20000 without touching the books.
    pub error_rate: f64,
    /// Answer HTTP 202 with no body, without touching the books.
    pub http_202_rate: f64,
    /// Do the operation on the books, then cut the answer off (the charge is made, the caller never hears).
    pub drop_after_charge_rate: f64,
    /// Answer with a corrupted signature (after doing the operation).
    pub corrupt_sign_rate: f64,
    /// Answer reverse / cancel with `recall=Y` / `retry_flag=Y` without acting.
    pub reverse_retry_rate: f64,
    /// Every API call answers HTTP 503 at once.
    pub outage: bool,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            latency_min_ms: 0,
            latency_max_ms: 0,
            latency_tail_rate: 0.0,
            latency_tail_ms: 0,
            error_rate: 0.0,
            http_202_rate: 0.0,
            drop_after_charge_rate: 0.0,
            corrupt_sign_rate: 0.0,
            reverse_retry_rate: 0.0,
            outage: false,
        }
    }
}

/// SplitMix64: small, seeded, good enough for dice.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    fn roll(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        // 53 random bits → [0, 1).
        let x = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        if high <= low { low } else { low + self.next() % (high - low + 1) }
    }
}

/// What the fault dice decided for one call.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Fate {
    pub(crate) error: bool,
    pub(crate) http_202: bool,
    pub(crate) drop: bool,
    pub(crate) corrupt_sign: bool,
    pub(crate) reverse_retry: bool,
}

/// Everything the books hold, for `GET /sim/books` and tests.
#[derive(Debug, Clone, Serialize)]
pub struct BooksSnapshot {
    /// `"WeChatPay/17"` → minor units, for every wallet that was charged or refunded.
    pub balances: BTreeMap<String, i64>,
    pub orders: Vec<SimulatedOrder>,
    pub starting_balance: i64,
}

struct Books {
    /// Balance in minor units per (provider, wallet); a wallet starts with the configured balance.
    balances: HashMap<(Provider, u16), i64>,
    /// Codes already charged (the provider's memory; the store never keeps a full code).
    used_codes: HashSet<String>,
    orders: HashMap<OutTradeNo, SimulatedOrder>,
    /// Orders in the password step, so settling them does not scan every order.
    paying: HashSet<OutTradeNo>,
    /// (provider, out_refund_no) → (out_trade_no, amount): refund numbers are the merchant's, per provider.
    refund_numbers: HashMap<(Provider, String), (OutTradeNo, i64)>,
    next_transaction: u64,
}

/// Wallets keyed from a seed, each starting with `starting_balance`.
pub struct SimulatedProvider {
    seed: Vec<u8>,
    starting_balance: i64,
    options: SimOptions,
    books: Mutex<Books>,
    faults: Mutex<Faults>,
    dice: Mutex<Dice>,
}

impl SimulatedProvider {
    /// No password step.
    pub fn new(seed: &[u8], starting_balance_minor_units: i64) -> SimulatedProvider {
        SimulatedProvider::with_options(seed, starting_balance_minor_units, SimOptions::default())
    }

    pub fn with_options(seed: &[u8], starting_balance_minor_units: i64, options: SimOptions) -> SimulatedProvider {
        SimulatedProvider {
            seed: seed.to_vec(),
            starting_balance: starting_balance_minor_units,
            options,
            books: Mutex::new(Books {
                balances: HashMap::new(),
                used_codes: HashSet::new(),
                orders: HashMap::new(),
                paying: HashSet::new(),
                refund_numbers: HashMap::new(),
                next_transaction: 1,
            }),
            faults: Mutex::new(Faults::default()),
            dice: Mutex::new(Dice(1)),
        }
    }

    /// The fault knobs now in force.
    pub fn faults(&self) -> Faults {
        self.faults.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the fault knobs (in-process calls and `provider-sim` alike obey them).
    pub fn set_faults(&self, faults: Faults) {
        tracing::info!(?faults, "simulated provider faults changed");
        *self.faults.lock().unwrap_or_else(|p| p.into_inner()) = faults;
    }

    /// Reseeds the fault dice, so a run's faults repeat.
    pub fn set_fault_seed(&self, seed: u64) {
        *self.dice.lock().unwrap_or_else(|p| p.into_inner()) = Dice(seed);
    }

    /// Waits out the drawn latency and draws the rest of the call's fate; `None` during an outage.
    pub(crate) async fn fate(&self) -> Option<Fate> {
        let faults = self.faults();
        if faults.outage {
            return None;
        }
        let (delay, fate) = {
            let mut dice = self.dice.lock().unwrap_or_else(|p| p.into_inner());
            let mut delay = dice.between(faults.latency_min_ms, faults.latency_max_ms);
            if dice.roll(faults.latency_tail_rate) {
                delay += faults.latency_tail_ms;
            }
            let fate = Fate {
                error: dice.roll(faults.error_rate),
                http_202: dice.roll(faults.http_202_rate),
                drop: dice.roll(faults.drop_after_charge_rate),
                corrupt_sign: dice.roll(faults.corrupt_sign_rate),
                reverse_retry: dice.roll(faults.reverse_retry_rate),
            };
            (delay, fate)
        };
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        Some(fate)
    }

    /// What a wallet holds before its first charge.
    fn starting_balance_of(&self, wallet: u16) -> i64 {
        match self.options.low_balance_from {
            Some(from) if wallet >= from => self.options.low_balance,
            _ => self.starting_balance,
        }
    }

    pub fn options(&self) -> SimOptions {
        self.options
    }

    /// Every booked order (paid, paying, closed, reversed), in no particular order.
    pub fn orders(&self) -> Vec<SimulatedOrder> {
        self.lock().orders.values().cloned().collect()
    }

    /// One order, with a finished password step settled.
    pub fn order(&self, out_trade_no: &OutTradeNo) -> Option<SimulatedOrder> {
        self.lock().orders.get(out_trade_no).cloned()
    }

    /// A wallet's balance in minor units.
    pub fn balance(&self, provider: Provider, wallet: u16) -> i64 {
        self.lock().balances.get(&(provider, wallet)).copied().unwrap_or_else(|| self.starting_balance_of(wallet))
    }

    /// The whole books, orders sorted by creation.
    pub fn snapshot(&self) -> BooksSnapshot {
        let books = self.lock();
        let balances =
            books.balances.iter().map(|((provider, wallet), fen)| (format!("{provider:?}/{wallet}"), *fen)).collect();
        let mut orders: Vec<SimulatedOrder> = books.orders.values().cloned().collect();
        orders.sort_by(|a, b| (a.created_at, &a.out_trade_no).cmp(&(b.created_at, &b.out_trade_no)));
        BooksSnapshot { balances, orders, starting_balance: self.starting_balance }
    }

    /// Locks the books and settles every password step whose customer delay is over.
    fn lock(&self) -> std::sync::MutexGuard<'_, Books> {
        // A panic while holding the lock leaves the books consistent (every
        // mutation below is a single step), so a poisoned lock is still usable.
        let mut books = self.books.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        if books.paying.is_empty() {
            return books;
        }
        let due: Vec<OutTradeNo> = books
            .paying
            .iter()
            .filter(|no| books.orders.get(*no).is_none_or(|o| o.paying_until.is_none_or(|t| t <= now)))
            .cloned()
            .collect();
        for out_trade_no in due {
            books.paying.remove(&out_trade_no);
            let Some(order) = books.orders.get(&out_trade_no).filter(|o| o.state == SimOrderState::Paying) else {
                continue;
            };
            let key = (order.provider, order.wallet);
            let amount = order.amount.minor_units;
            let balance = books.balances.get(&key).copied().unwrap_or_else(|| self.starting_balance_of(key.1));
            let revoke = order.revoke_when_due;
            let paid = !revoke && balance >= amount;
            if paid {
                books.balances.insert(key, balance - amount);
            }
            if let Some(order) = books.orders.get_mut(&out_trade_no) {
                order.paying_until = None;
                if revoke {
                    order.state = SimOrderState::Closed;
                    order.closed_at = Some(UnixMillis::now());
                    continue;
                }
                if paid {
                    order.state = SimOrderState::Paid;
                    order.paid_at = Some(UnixMillis::now());
                } else {
                    order.state = SimOrderState::NotPaid;
                }
            }
        }
        books
    }

    /// Charges `code` for `amount` under `out_trade_no`, as `provider` (a code of another provider is invalid there).
    pub fn pay(
        &self,
        provider: Provider,
        out_trade_no: &OutTradeNo,
        code: &PaymentCode,
        amount: Money,
        terminal: &str,
        description: &str,
    ) -> PayOutcome {
        let mut books = self.lock();
        if let Some(order) = books.orders.get(out_trade_no) {
            return PayOutcome::OrderExists(order.state);
        }
        if code.provider() != provider {
            return PayOutcome::Invalid;
        }
        let wallet = match check_simulated_code(&self.seed, code, UnixMillis::now()) {
            Ok(wallet) => wallet,
            Err(SimulatedCodeError::Expired) => return PayOutcome::Expired,
            Err(SimulatedCodeError::Invalid) => return PayOutcome::Invalid,
        };
        let digits = code.expose_digits().to_owned();
        if books.used_codes.contains(&digits) {
            return PayOutcome::Used;
        }
        let key = (wallet.provider(), wallet.number());
        let balance = books.balances.get(&key).copied().unwrap_or_else(|| self.starting_balance_of(key.1));
        if balance < amount.minor_units {
            return PayOutcome::NotEnough;
        }
        let password = self.options.password_above.is_some_and(|above| amount.minor_units > above);
        books.used_codes.insert(digits);
        let transaction_id = transaction_id(provider, books.next_transaction);
        books.next_transaction += 1;
        let now = UnixMillis::now();
        let mut order = SimulatedOrder {
            out_trade_no: out_trade_no.clone(),
            provider: wallet.provider(),
            wallet: wallet.number(),
            amount,
            transaction_id: transaction_id.clone(),
            state: SimOrderState::Paid,
            refunded: 0,
            refunds: Vec::new(),
            terminal: terminal.to_owned(),
            description: description.to_owned(),
            created_at: now,
            paid_at: Some(now),
            closed_at: None,
            paying_until: None,
            revoke_when_due: false,
        };
        if password {
            order.state = SimOrderState::Paying;
            order.paid_at = None;
            let mut delay = self.options.customer_delay;
            if provider == Provider::WeChatPay
                && let Some(limit) = self.options.wechat_revoke_unpaid_after
                && delay > limit
            {
                delay = limit;
                order.revoke_when_due = true;
            }
            order.paying_until = Some(Instant::now() + delay);
            books.paying.insert(out_trade_no.clone());
        } else {
            books.balances.insert(key, balance - amount.minor_units);
        }
        tracing::debug!(%out_trade_no, code = %code, ?provider, password, "simulated charge booked");
        books.orders.insert(out_trade_no.clone(), order);
        if password { PayOutcome::Paying { transaction_id } } else { PayOutcome::Paid { transaction_id } }
    }

    /// Reverse (WeChat) or cancel (Alipay): closes an unpaid order, gives a paid one's money back.
    pub fn reverse_order(&self, out_trade_no: &OutTradeNo) -> ReverseOutcome {
        let mut books = self.lock();
        let Some(order) = books.orders.get_mut(out_trade_no) else {
            // Reversing an order that never came into being: nothing to give back.
            return ReverseOutcome::Closed;
        };
        let window = match order.provider {
            Provider::Alipay => ALIPAY_CANCEL_WINDOW,
            Provider::WeChatPay | Provider::UnionPay => WECHAT_REVERSE_WINDOW,
        };
        let too_old = UnixMillis::now().0 - order.created_at.0 > i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        match order.state {
            SimOrderState::Reversed => ReverseOutcome::Refunded,
            SimOrderState::Closed => ReverseOutcome::Closed,
            _ if too_old => ReverseOutcome::TooOld,
            SimOrderState::Paying | SimOrderState::NotPaid => {
                order.state = SimOrderState::Closed;
                order.paying_until = None;
                order.closed_at = Some(UnixMillis::now());
                books.paying.remove(out_trade_no);
                ReverseOutcome::Closed
            }
            SimOrderState::Paid => {
                order.state = SimOrderState::Reversed;
                order.closed_at = Some(UnixMillis::now());
                let back = order.amount.minor_units - order.refunded;
                let key = (order.provider, order.wallet);
                let balance = books.balances.get(&key).copied().unwrap_or_else(|| self.starting_balance_of(key.1));
                books.balances.insert(key, balance + back);
                ReverseOutcome::Refunded
            }
        }
    }

    /// A test hook: moves an order's whole history (creation, payment, closing, refunds) `by` into the past, as
    /// if it had happened then, so tests reach the reverse windows and yesterday's bill without waiting. False
    /// when there is no such order.
    pub fn age_order(&self, out_trade_no: &OutTradeNo, by: Duration) -> bool {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let earlier = |at: UnixMillis| UnixMillis(at.0.saturating_sub(by));
        let mut books = self.lock();
        let Some(order) = books.orders.get_mut(out_trade_no) else { return false };
        order.created_at = earlier(order.created_at);
        order.paid_at = order.paid_at.map(earlier);
        order.closed_at = order.closed_at.map(earlier);
        for refund in &mut order.refunds {
            refund.at = earlier(refund.at);
        }
        true
    }

    /// Refunds `amount` of a paid order, once per `out_refund_no`.
    pub fn refund_order(&self, out_trade_no: &OutTradeNo, out_refund_no: &str, amount: i64) -> RefundOutcome {
        let mut books = self.lock();
        let Some(provider) = books.orders.get(out_trade_no).map(|o| o.provider) else {
            return RefundOutcome::NoSuchOrder;
        };
        let number = (provider, out_refund_no.to_owned());
        if let Some((order_no, booked)) = books.refund_numbers.get(&number) {
            if order_no != out_trade_no || *booked != amount {
                return RefundOutcome::Mismatch;
            }
            let refund_id = books
                .orders
                .get(out_trade_no)
                .and_then(|o| o.refunds.iter().find(|r| r.out_refund_no == out_refund_no))
                .map(|r| r.refund_id.clone())
                .unwrap_or_default();
            return RefundOutcome::Accepted { refund_id, repeated: true };
        }
        let next = books.next_transaction;
        let Some(order) = books.orders.get_mut(out_trade_no) else { return RefundOutcome::NoSuchOrder };
        if order.state != SimOrderState::Paid {
            return RefundOutcome::NotPaid;
        }
        if order.refunds.len() >= MAX_REFUNDS_PER_ORDER {
            return RefundOutcome::TooMany;
        }
        if amount <= 0 || amount > order.amount.minor_units - order.refunded {
            return RefundOutcome::TooMuch;
        }
        let refund_id = format!("R{}", transaction_id(order.provider, next));
        order.refunded += amount;
        order.refunds.push(SimRefund {
            out_refund_no: out_refund_no.to_owned(),
            refund_id: refund_id.clone(),
            amount,
            at: UnixMillis::now(),
        });
        let key = (order.provider, order.wallet);
        books.next_transaction += 1;
        books.refund_numbers.insert(number, (out_trade_no.clone(), amount));
        let balance = books.balances.get(&key).copied().unwrap_or_else(|| self.starting_balance_of(key.1));
        books.balances.insert(key, balance + amount);
        RefundOutcome::Accepted { refund_id, repeated: false }
    }
}

fn transaction_id(provider: Provider, n: u64) -> String {
    match provider {
        Provider::WeChatPay => format!("4200{n:024}"),
        Provider::Alipay => format!("2026{n:024}"),
        Provider::UnionPay => format!("SIM{n:020}"),
    }
}
