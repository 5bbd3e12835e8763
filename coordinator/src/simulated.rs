//! An in-process wallet provider for tests and the demo: real books, single-use expiring codes.
//!
//! It answers like WeChat Pay's micropay: SUCCESS, AUTHCODEEXPIRE,
//! AUTH_CODE_ERROR (code already used), AUTH_CODE_INVALID, NOTENOUGH and
//! OUT_TRADE_NO_USED, and its books (balances, orders) are the truth tests
//! compare the ledger against.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::Duration,
};

use checkout_storage::{
    ChargeStatus, Money, OutTradeNo, Provider, SimulatedCodeError, UnixMillis, check_simulated_code,
};

use crate::provider::{
    MicropayRequest, OrderState, PaymentProvider, ProviderAnswer, ProviderError, ProviderFuture, QueryAnswer,
    RefundAnswer, RefundRequest, ReverseAnswer, messages,
};

/// An order as the simulated provider books it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedOrder {
    pub out_trade_no: OutTradeNo,
    pub provider: Provider,
    pub wallet: u16,
    pub amount: Money,
    pub transaction_id: String,
    /// Reversed after payment: the money went back to the wallet.
    pub reversed: bool,
}

struct Books {
    /// Balance in minor units per (provider, wallet); a wallet starts with the configured balance.
    balances: HashMap<(Provider, u16), i64>,
    /// Codes already charged (the provider's memory; the store never keeps a full code).
    used_codes: HashSet<String>,
    orders: HashMap<OutTradeNo, SimulatedOrder>,
    next_transaction: u64,
}

/// Wallets keyed from a seed, each starting with `starting_balance`.
pub struct SimulatedProvider {
    seed: Vec<u8>,
    starting_balance: i64,
    books: Mutex<Books>,
}

impl SimulatedProvider {
    pub fn new(seed: &[u8], starting_balance_minor_units: i64) -> SimulatedProvider {
        SimulatedProvider {
            seed: seed.to_vec(),
            starting_balance: starting_balance_minor_units,
            books: Mutex::new(Books {
                balances: HashMap::new(),
                used_codes: HashSet::new(),
                orders: HashMap::new(),
                next_transaction: 1,
            }),
        }
    }

    /// Every paid order, in no particular order.
    pub fn orders(&self) -> Vec<SimulatedOrder> {
        self.lock().orders.values().cloned().collect()
    }

    /// A wallet's balance in minor units.
    pub fn balance(&self, provider: Provider, wallet: u16) -> i64 {
        self.lock().balances.get(&(provider, wallet)).copied().unwrap_or(self.starting_balance)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Books> {
        // A panic while holding the lock leaves the books consistent (every
        // mutation below is a single step), so a poisoned lock is still usable.
        self.books.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn charge(&self, request: &MicropayRequest) -> ProviderAnswer {
        let answer = |status, code: &str, message: &str| ProviderAnswer {
            status,
            provider_code: code.to_owned(),
            message: message.to_owned(),
            transaction_id: String::new(),
            query_after: Duration::ZERO,
        };
        let mut books = self.lock();
        if books.orders.contains_key(&request.out_trade_no) {
            // WeChat: a used out_trade_no answers ORDERPAID / OUT_TRADE_NO_USED.
            return answer(ChargeStatus::Failed, "OUT_TRADE_NO_USED", messages::FAILED);
        }
        let wallet = match check_simulated_code(&self.seed, &request.code, UnixMillis::now()) {
            Ok(wallet) => wallet,
            Err(SimulatedCodeError::Expired) => {
                return answer(ChargeStatus::NewCodeNeeded, "AUTHCODEEXPIRE", messages::FRESH_CODE);
            }
            Err(SimulatedCodeError::Invalid) => {
                return answer(ChargeStatus::NewCodeNeeded, "AUTH_CODE_INVALID", messages::FRESH_CODE);
            }
        };
        let digits = request.code.expose_digits().to_owned();
        if books.used_codes.contains(&digits) {
            return answer(ChargeStatus::NewCodeNeeded, "AUTH_CODE_ERROR", messages::CODE_USED);
        }
        let key = (wallet.provider(), wallet.number());
        let balance = books.balances.get(&key).copied().unwrap_or(self.starting_balance);
        if balance < request.amount.minor_units {
            return answer(ChargeStatus::NewCodeNeeded, "NOTENOUGH", messages::NOT_ENOUGH);
        }
        books.balances.insert(key, balance - request.amount.minor_units);
        books.used_codes.insert(digits);
        let transaction_id = format!("SIM{:020}", books.next_transaction);
        books.next_transaction += 1;
        books.orders.insert(
            request.out_trade_no.clone(),
            SimulatedOrder {
                out_trade_no: request.out_trade_no.clone(),
                provider: wallet.provider(),
                wallet: wallet.number(),
                amount: request.amount,
                transaction_id: transaction_id.clone(),
                reversed: false,
            },
        );
        ProviderAnswer {
            status: ChargeStatus::Paid,
            provider_code: "SUCCESS".to_owned(),
            message: messages::PAID.to_owned(),
            transaction_id,
            query_after: Duration::ZERO,
        }
    }

    fn order_state(&self, out_trade_no: &OutTradeNo) -> QueryAnswer {
        let books = self.lock();
        match books.orders.get(out_trade_no) {
            Some(order) if order.reversed => QueryAnswer { state: OrderState::Closed, provider_code: "REVOKED".into() },
            Some(order) => QueryAnswer {
                state: OrderState::Paid { transaction_id: order.transaction_id.clone(), amount: order.amount },
                provider_code: "SUCCESS".into(),
            },
            None => QueryAnswer { state: OrderState::NotFound, provider_code: "ORDERNOTEXIST".into() },
        }
    }

    fn reverse_order(&self, out_trade_no: &OutTradeNo) -> ReverseAnswer {
        let mut books = self.lock();
        let Some(order) = books.orders.get_mut(out_trade_no) else {
            // Reversing an order that never came into being closes it: nothing to give back.
            return ReverseAnswer::Reversed { refunded: false };
        };
        if order.reversed {
            return ReverseAnswer::Reversed { refunded: true };
        }
        order.reversed = true;
        let (key, amount) = ((order.provider, order.wallet), order.amount.minor_units);
        let balance = books.balances.get(&key).copied().unwrap_or(self.starting_balance);
        books.balances.insert(key, balance + amount);
        ReverseAnswer::Reversed { refunded: true }
    }
}

impl PaymentProvider for SimulatedProvider {
    fn micropay(&self, request: MicropayRequest) -> ProviderFuture<'_, Result<ProviderAnswer, ProviderError>> {
        Box::pin(async move { Ok(self.charge(&request)) })
    }

    fn query(
        &self,
        _provider: Provider,
        out_trade_no: &OutTradeNo,
    ) -> ProviderFuture<'_, Result<QueryAnswer, ProviderError>> {
        let answer = self.order_state(out_trade_no);
        Box::pin(async move { Ok(answer) })
    }

    fn reverse(
        &self,
        _provider: Provider,
        out_trade_no: &OutTradeNo,
    ) -> ProviderFuture<'_, Result<ReverseAnswer, ProviderError>> {
        let answer = self.reverse_order(out_trade_no);
        Box::pin(async move { Ok(answer) })
    }

    fn refund(&self, _request: RefundRequest) -> ProviderFuture<'_, Result<RefundAnswer, ProviderError>> {
        Box::pin(async move {
            Ok(RefundAnswer::Refused {
                provider_code: "NOT_SUPPORTED".into(),
                message: "the in-process simulator does not refund yet".into(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkout_storage::{Currency, LaneId, PaymentCode, SimulatedWallet};

    fn request(code: PaymentCode, out_trade_no: &str, fen: i64) -> MicropayRequest {
        MicropayRequest {
            out_trade_no: OutTradeNo::parse(out_trade_no).unwrap(),
            code,
            amount: Money::new(fen, Currency::CNY),
            description: "groceries".into(),
            terminal: LaneId::parse("L1").unwrap(),
        }
    }

    #[tokio::test]
    async fn a_code_moves_money_once() {
        let sim = SimulatedProvider::new(b"seed", 10_000);
        let wallet = SimulatedWallet::new(b"seed", Provider::Alipay, 3);
        let code = wallet.issue_code(UnixMillis::now());
        let paid = sim.micropay(request(code.clone(), "S1-A-1", 2_500)).await.unwrap();
        assert_eq!(paid.status, ChargeStatus::Paid);
        assert_eq!(sim.balance(Provider::Alipay, 3), 7_500);
        let again = sim.micropay(request(code, "S1-A-2", 2_500)).await.unwrap();
        assert_eq!((again.status, again.provider_code.as_str()), (ChargeStatus::NewCodeNeeded, "AUTH_CODE_ERROR"));
        assert_eq!(sim.balance(Provider::Alipay, 3), 7_500);
        assert_eq!(sim.orders().len(), 1);
    }

    #[tokio::test]
    async fn unknown_codes_and_empty_wallets_are_refused() {
        let sim = SimulatedProvider::new(b"seed", 1_000);
        let stranger = SimulatedWallet::new(b"another store", Provider::WeChatPay, 1).issue_code(UnixMillis::now());
        let answer = sim.micropay(request(stranger, "S1-B-1", 100)).await.unwrap();
        assert_eq!(answer.provider_code, "AUTH_CODE_INVALID");
        let code = SimulatedWallet::new(b"seed", Provider::WeChatPay, 1).issue_code(UnixMillis::now());
        let answer = sim.micropay(request(code, "S1-B-2", 1_001)).await.unwrap();
        assert_eq!((answer.status, answer.provider_code.as_str()), (ChargeStatus::NewCodeNeeded, "NOTENOUGH"));
        assert!(sim.orders().is_empty());
    }
}
