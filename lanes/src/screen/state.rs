//! What the lane's screens show: the till's state as it publishes it after every change (the cashier's
//! view), and the part of it the customer display may see.

use checkout_storage::Money;
use serde::Serialize;

/// An amount as the screens show it: "¥12.50" for yuan, the code after the figure for other currencies.
pub fn written(money: Money) -> String {
    let sign = if money.minor_units < 0 { "-" } else { "" };
    let abs = money.minor_units.unsigned_abs();
    let (units, cents) = (abs / 100, abs % 100);
    match money.currency.as_str() {
        "CNY" => format!("{sign}¥{units}.{cents:02}"),
        "USD" => format!("{sign}${units}.{cents:02}"),
        "EUR" => format!("{sign}€{units}.{cents:02}"),
        other => format!("{sign}{units}.{cents:02} {other}"),
    }
}

/// An amount for the pages: minor units (for tests and scripts) and as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Amount {
    pub minor_units: i64,
    pub text: String,
}

impl From<Money> for Amount {
    fn from(money: Money) -> Amount {
        Amount { minor_units: money.minor_units, text: written(money) }
    }
}

/// One basket line as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineView {
    pub name: String,
    pub gtin: String,
    pub quantity: u32,
    pub unit_price: Amount,
    pub line_total: Amount,
    /// The cashier typed the price (an open-price item).
    pub typed: bool,
}

/// A discount line (a promotion or the coupon) as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscountView {
    pub name: String,
    pub amount: Amount,
}

/// The basket of the sale on the screen: the open one, or the one just paid until the next starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BasketView {
    pub sale_id: String,
    pub lines: Vec<LineView>,
    pub discounts: Vec<DiscountView>,
    pub items: u32,
    /// The lines added up.
    pub total: Amount,
    /// What the customer pays: the total less the discounts.
    pub to_pay: Amount,
    /// A member scanned for the sale.
    pub member: Option<String>,
}

/// Where the payment stands, as the screens show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum PaymentPhase {
    /// No sale open.
    Idle,
    /// Items are being scanned; the customer shows their code when the cashier asks.
    Scanning,
    /// A code was read for an amount above the lane's threshold: the cashier checks the amount first.
    ConfirmAmount { amount: Amount, masked_code: String },
    /// The charge is on its way to the store and the wallet's provider; `step` as the store last said:
    /// "sent", "asking_provider", "waiting_for_password" (the customer confirms on their phone) or "checking".
    Charging { masked_code: String, step: &'static str },
    /// The charge's outcome is not known yet: the lane keeps asking; the goods stay.
    Uncertain { message: String },
    /// The last code was declined: why, and what to do.
    Declined { reason: String },
    /// The sale is paid.
    Paid { sale_id: String, amount: Amount, provider: String, masked_code: String },
}

/// An open-price item typed and shown back, waiting for the confirming key press.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenPriceView {
    pub name: String,
    /// `None` until the cashier has typed it.
    pub price: Option<Amount>,
}

/// The latest thing the lane told its cashier, for the cashier's message line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// What kind of event: "item_added", "declined", "read_hint"... (pages may style or translate by it).
    pub kind: &'static str,
    /// "info", "warn" or "error".
    pub level: &'static str,
    /// The event in words (English, as the lane logs it).
    pub text: String,
}

/// The cashier's shift so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShiftTally {
    pub sales: u64,
    pub items: u64,
    pub total: Amount,
}

/// Everything the cashier's screen shows, as the till published it. `seq` grows with each publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScreenState {
    pub seq: u64,
    pub lane_id: String,
    /// The cashier signed on, or `None`.
    pub cashier: Option<String>,
    pub shift_id: Option<String>,
    pub paused: bool,
    /// A manager closed the lane (why).
    pub closed_by_store: Option<String>,
    /// Whether the store answers.
    pub store_reachable: bool,
    pub basket: Option<BasketView>,
    pub payment: PaymentPhase,
    pub open_price: Option<OpenPriceView>,
    /// What the scanner last said about a code it sees but cannot read.
    pub scanner_hint: Option<String>,
    pub notice: Option<Notice>,
    pub shift: ShiftTally,
    /// The open-price cap and the confirm threshold, for the cashier's keypad.
    pub open_price_cap: Amount,
    pub confirm_above: Option<Amount>,
}

impl ScreenState {
    /// The state before the till has published anything: the lane is starting.
    pub fn empty(lane_id: &checkout_storage::LaneId, currency: checkout_storage::Currency) -> ScreenState {
        let zero = Money::zero(currency);
        ScreenState {
            seq: 0,
            lane_id: lane_id.to_string(),
            cashier: None,
            shift_id: None,
            paused: false,
            closed_by_store: None,
            store_reachable: true,
            basket: None,
            payment: PaymentPhase::Idle,
            open_price: None,
            scanner_hint: None,
            notice: None,
            shift: ShiftTally { sales: 0, items: 0, total: zero.into() },
            open_price_cap: zero.into(),
            confirm_above: None,
        }
    }
}

/// What the customer display shows: the basket's names, quantities and amounts, the amount to pay and how the
/// payment stands. No cashier, no controls' state, no payment code (not even masked), no store messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerView {
    pub seq: u64,
    pub lane_id: String,
    /// The lane takes no customer now (paused, signed off or closed by the store).
    pub closed: bool,
    pub lines: Vec<CustomerLine>,
    pub discounts: Vec<DiscountView>,
    pub items: u32,
    pub to_pay: Option<Amount>,
    /// "idle", "scanning", "paying", "password" (confirm on your phone), "declined", "uncertain" or "paid".
    pub phase: &'static str,
    /// What was paid, once paid.
    pub paid: Option<Amount>,
}

/// A basket line on the customer display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerLine {
    pub name: String,
    pub quantity: u32,
    pub line_total: Amount,
}

impl CustomerView {
    /// The customer's part of the cashier's state.
    pub fn of(state: &ScreenState) -> CustomerView {
        let basket = state.basket.as_ref();
        let phase = match &state.payment {
            PaymentPhase::Idle => "idle",
            PaymentPhase::Scanning => "scanning",
            PaymentPhase::Charging { step: "waiting_for_password", .. } => "password",
            PaymentPhase::ConfirmAmount { .. } | PaymentPhase::Charging { .. } => "paying",
            PaymentPhase::Uncertain { .. } => "uncertain",
            PaymentPhase::Declined { .. } => "declined",
            PaymentPhase::Paid { .. } => "paid",
        };
        let paid = match &state.payment {
            PaymentPhase::Paid { amount, .. } => Some(amount.clone()),
            _ => None,
        };
        CustomerView {
            seq: state.seq,
            lane_id: state.lane_id.clone(),
            closed: state.paused || state.cashier.is_none() || (state.closed_by_store.is_some() && basket.is_none()),
            lines: basket
                .map(|b| {
                    b.lines
                        .iter()
                        .map(|l| CustomerLine {
                            name: l.name.clone(),
                            quantity: l.quantity,
                            line_total: l.line_total.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            discounts: basket.map(|b| b.discounts.clone()).unwrap_or_default(),
            items: basket.map_or(0, |b| b.items),
            to_pay: basket.map(|b| b.to_pay.clone()),
            phase,
            paid,
        }
    }
}

#[cfg(test)]
mod tests {
    use checkout_storage::Currency;

    use super::*;

    #[test]
    fn yuan_are_written_with_their_sign_and_two_decimals() {
        assert_eq!(written(Money::new(1250, Currency::CNY)), "¥12.50");
        assert_eq!(written(Money::new(5, Currency::CNY)), "¥0.05");
        assert_eq!(written(Money::new(-320, Currency::CNY)), "-¥3.20");
        let hkd = Currency::parse("HKD").expect("currency");
        assert_eq!(written(Money::new(100_000, hkd)), "1000.00 HKD");
    }

    #[test]
    fn the_customer_never_sees_the_code_nor_the_cashier() {
        let state = ScreenState {
            seq: 3,
            lane_id: "L1".into(),
            cashier: Some("alice".into()),
            shift_id: Some("L1-shift".into()),
            paused: false,
            closed_by_store: None,
            store_reachable: true,
            basket: None,
            payment: PaymentPhase::Paid {
                sale_id: "L1-1".into(),
                amount: Money::new(990, Currency::CNY).into(),
                provider: "WeChat Pay".into(),
                masked_code: "1345**********6789".into(),
            },
            open_price: None,
            scanner_hint: None,
            notice: None,
            shift: ShiftTally { sales: 1, items: 1, total: Money::new(990, Currency::CNY).into() },
            open_price_cap: Money::new(50_000, Currency::CNY).into(),
            confirm_above: None,
        };
        let customer = serde_json::to_string(&CustomerView::of(&state)).expect("json");
        assert!(!customer.contains("6789") && !customer.contains("alice"), "{customer}");
        assert!(customer.contains("¥9.90") && customer.contains("\"paid\""), "{customer}");
    }
}
