//! The records the store keeps: products, lanes, sales and charge attempts.

use serde::{Deserialize, Serialize};

use crate::{
    Attempt, CashierId, CodeFingerprint, LaneId, MaskedCode, Money, OutTradeNo, ProductCode, Provider, SaleId, ShiftId,
    UnixMillis, store::Record,
};

impl Record for Product {}
impl Record for crate::MemberRecord {}
impl Record for crate::CouponRecord {}
impl Record for crate::PromotionRecord {}
impl Record for crate::SaleDiscount {}
impl Record for crate::PointsEntry {}
impl Record for LaneRecord {}
impl Record for SaleRecord {}
impl Record for RefundRecord {}
impl Record for ShiftRecord {}
impl Record for LaneTokenRecord {}
impl Record for AuditRecord {}
impl Record for AnsweredRequest {}
impl Record for LaneClosure {}
impl Record for ShiftSettlement {}
impl Record for ReconciliationRecord {}
impl Record for OutTradeNo {}
impl Record for String {}

/// A basket line as a lane sends it to the store: a product, how many, and for an open-price item (a
/// catalog price of zero) the unit price the cashier typed. The store prices every other line itself.
///
/// An open-price product may come in several lines at different typed prices (two cakes of the bakery
/// counter), each with its own quantity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OrderLine {
    pub gtin: ProductCode,
    pub quantity: u32,
    /// Only for an open-price item: the unit price the cashier typed.
    pub typed_price: Option<Money>,
}

impl OrderLine {
    /// A line the store prices from its catalog.
    pub fn catalog(gtin: ProductCode, quantity: u32) -> OrderLine {
        OrderLine { gtin, quantity, typed_price: None }
    }

    /// A line of an open-price item at the unit price the cashier typed.
    pub fn open_price(gtin: ProductCode, quantity: u32, typed_price: Money) -> OrderLine {
        OrderLine { gtin, quantity, typed_price: Some(typed_price) }
    }
}

impl From<(ProductCode, u32)> for OrderLine {
    /// A `(GTIN, quantity)` line: priced from the catalog.
    fn from((gtin, quantity): (ProductCode, u32)) -> OrderLine {
        OrderLine::catalog(gtin, quantity)
    }
}

/// The SHA-256 of a basket, whatever the order of its lines and however a product's quantity is split
/// across lines: what a repeated charge request, and the lane's report of the paid sale, must match.
///
/// Lines of one product at one typed price (or without one) count together; a typed price makes a line of
/// its own (`{gtin}@{minor units} {currency}:{quantity}`), so a basket must match the paid one price for
/// price. A basket without typed prices hashes as it always did (`{gtin}:{quantity}` lines, by GTIN), so
/// the digests charges keep stay valid.
pub fn basket_digest<'a>(lines: impl IntoIterator<Item = &'a OrderLine>) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut quantities: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for line in lines {
        let key = match line.typed_price {
            None => line.gtin.as_str().to_owned(),
            Some(price) => format!("{}@{} {}", line.gtin, price.minor_units, price.currency),
        };
        *quantities.entry(key).or_default() += u64::from(line.quantity);
    }
    let mut hash = Sha256::new();
    for (key, quantity) in quantities {
        hash.update(format!("{key}:{quantity}\n").as_bytes());
    }
    hash.finalize().into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub gtin: ProductCode,
    pub name: String,
    /// Zero for an open-price item: the cashier types each one's price at the till.
    pub price: Money,
}

impl Product {
    /// Whether the cashier types this product's price (its catalog price is zero): bakery or deli counter
    /// goods without a label. No synthetic customer picks one.
    pub fn is_open_price(&self) -> bool {
        self.price.minor_units == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneRecord {
    pub lane_id: LaneId,
    pub description: String,
    pub registered_at: UnixMillis,
}

/// How a sale of a shift differs between the lane's own count and the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SettlementGap {
    /// The lane counted it; the ledger has no such sale in the shift.
    OnlyOnLane,
    /// The ledger has it in the shift; the lane did not count it.
    OnlyInLedger,
    /// Both have it, for different totals.
    TotalDiffers,
}

/// A shift's settlement: the lane's count of its sales against the ledger's, with every sale that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftSettlement {
    pub shift_id: ShiftId,
    pub lane_sales: u64,
    pub lane_total: Money,
    pub ledger_sales: u64,
    pub ledger_total: Money,
    /// The sale, the lane's total and the ledger's (each when that side has it).
    pub gaps: Vec<(SettlementGap, SaleId, Option<Money>, Option<Money>)>,
    pub settled_at: UnixMillis,
}

impl ShiftSettlement {
    pub fn agrees(&self) -> bool {
        self.gaps.is_empty() && self.lane_sales == self.ledger_sales && self.lane_total == self.ledger_total
    }
}

/// A business day reconciled against one provider's bill. The difference lines and the two sides' totals
/// are the coordinator's (`summary`, and each difference, as JSON): the ledger keeps them as they were found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconciliationRecord {
    /// Given when it is stored: later runs have higher ids.
    pub id: u64,
    pub day: crate::BusinessDay,
    pub provider: Provider,
    pub run_at: UnixMillis,
    /// "manager ann".
    pub run_by: String,
    pub differences: u64,
    pub summary: String,
}

/// A lane a manager closed: it finishes the customer it was serving and takes no new one until opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneClosure {
    pub lane_id: LaneId,
    pub closed_at: UnixMillis,
    /// "manager ann".
    pub closed_by: String,
    pub reason: String,
    /// The sale the lane was serving when it was closed, which it may still finish.
    pub finishing_sale: Option<SaleId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleLine {
    pub gtin: ProductCode,
    pub quantity: u32,
    pub unit_price: Money,
}

/// A finished, paid sale: recorded by the coordinator the moment its charge is paid,
/// from the basket the lane sent with the charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleRecord {
    pub lane_id: LaneId,
    pub sale_id: SaleId,
    /// The cashier's shift the sale was rung up in, when the lane had one open.
    pub shift_id: Option<ShiftId>,
    pub lines: Vec<SaleLine>,
    pub total: Money,
    pub out_trade_no: OutTradeNo,
    pub started_at: UnixMillis,
    pub finished_at: UnixMillis,
}

impl SaleRecord {
    /// The sale a paid charge pays for: its basket and amount, from when the lane started it until
    /// `finished_at`.
    pub fn paid_by(charge: &ChargeRecord, finished_at: UnixMillis) -> SaleRecord {
        SaleRecord {
            lane_id: charge.lane_id.clone(),
            sale_id: charge.sale_id.clone(),
            shift_id: charge.shift_id.clone(),
            lines: charge.lines.clone(),
            total: charge.amount,
            out_trade_no: charge.out_trade_no.clone(),
            started_at: charge.sale_started_at,
            finished_at,
        }
    }

    pub fn items(&self) -> u64 {
        self.lines.iter().map(|l| u64::from(l.quantity)).sum()
    }
}

/// Where a charge attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChargeStatus {
    /// The intent is recorded; the provider has not answered yet.
    Pending,
    /// Money moved.
    Paid,
    /// The customer must show a fresh code or pay another way; nothing was charged.
    NewCodeNeeded,
    /// This order definitely failed; nothing was charged.
    Failed,
    /// The provider's answer did not settle it; it must be queried and, if not paid, reversed.
    Unknown,
    /// A reversal is owed (not paid in time, or paid twice for one sale) and not yet confirmed.
    Reversing,
    /// Reversed: the order is closed and any money taken went back to the customer.
    Reversed,
}

impl ChargeStatus {
    /// Nothing more will happen to a charge in a final state.
    pub fn is_final(self) -> bool {
        matches!(self, ChargeStatus::Paid | ChargeStatus::NewCodeNeeded | ChargeStatus::Failed | ChargeStatus::Reversed)
    }
}

/// One step in a charge's history: what was asked or answered, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeEvent {
    pub at: UnixMillis,
    /// For example "micropay: USERPAYING", "query: paid", "reverse: call again".
    pub what: String,
}

/// One charge attempt: recorded as `Pending` before the provider is called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeRecord {
    pub out_trade_no: OutTradeNo,
    pub lane_id: LaneId,
    pub sale_id: SaleId,
    pub attempt: Attempt,
    pub provider: Provider,
    pub masked_code: MaskedCode,
    /// The code's keyed hash (see [`crate::CodeFingerprint`]): the code itself is never stored.
    pub code_fingerprint: CodeFingerprint,
    pub amount: Money,
    pub status: ChargeStatus,
    /// The provider's own answer code ("SUCCESS", "NOTENOUGH", ...), empty while pending.
    pub provider_code: String,
    /// What the cashier should do, in words.
    pub message: String,
    pub provider_transaction_id: String,
    pub created_at: UnixMillis,
    pub settled_at: Option<UnixMillis>,
    /// The basket this charge pays for, priced from the catalog when the intent was recorded,
    /// so a paid charge makes its sale whatever happens to the lane afterwards. Emptied when the
    /// charge ends unpaid: the books keep its amount and [`ChargeRecord::basket_sha256`] only.
    pub lines: Vec<SaleLine>,
    /// [`basket_digest`] of the basket: a repeated request for this charge must carry the same one.
    pub basket_sha256: [u8; 32],
    pub shift_id: Option<ShiftId>,
    /// When the lane started the sale (its first scan).
    pub sale_started_at: UnixMillis,
    /// When another attempt paid this sale first, that attempt: this one is reversed as surplus.
    pub superseded_by: Option<OutTradeNo>,
    /// Every provider call and answer, oldest first.
    pub events: Vec<ChargeEvent>,
}

impl ChargeRecord {
    pub fn log(&mut self, what: impl Into<String>) {
        self.events.push(ChargeEvent { at: UnixMillis::now(), what: what.into() });
    }
}

impl Record for ChargeRecord {
    /// 2 added `basket_sha256`.
    const VERSION: u8 = 2;

    fn upgrade(version: u8, body: &[u8]) -> Option<Result<ChargeRecord, postcard::Error>> {
        (version == 1).then(|| postcard::from_bytes::<ChargeRecordV1>(body).map(ChargeRecord::from))
    }
}

/// A charge as layout 1 kept it: without the basket's digest.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct ChargeRecordV1 {
    out_trade_no: OutTradeNo,
    lane_id: LaneId,
    sale_id: SaleId,
    attempt: Attempt,
    provider: Provider,
    masked_code: MaskedCode,
    code_fingerprint: CodeFingerprint,
    amount: Money,
    status: ChargeStatus,
    provider_code: String,
    message: String,
    provider_transaction_id: String,
    created_at: UnixMillis,
    settled_at: Option<UnixMillis>,
    lines: Vec<SaleLine>,
    shift_id: Option<ShiftId>,
    sale_started_at: UnixMillis,
    superseded_by: Option<OutTradeNo>,
    events: Vec<ChargeEvent>,
}

impl From<ChargeRecordV1> for ChargeRecord {
    fn from(v1: ChargeRecordV1) -> ChargeRecord {
        ChargeRecord {
            // Layout 1 knew no open-price items: every line was priced from the catalog.
            basket_sha256: basket_digest(
                &v1.lines.iter().map(|l| OrderLine::catalog(l.gtin.clone(), l.quantity)).collect::<Vec<_>>(),
            ),
            out_trade_no: v1.out_trade_no,
            lane_id: v1.lane_id,
            sale_id: v1.sale_id,
            attempt: v1.attempt,
            provider: v1.provider,
            masked_code: v1.masked_code,
            code_fingerprint: v1.code_fingerprint,
            amount: v1.amount,
            status: v1.status,
            provider_code: v1.provider_code,
            message: v1.message,
            provider_transaction_id: v1.provider_transaction_id,
            created_at: v1.created_at,
            settled_at: v1.settled_at,
            lines: v1.lines,
            shift_id: v1.shift_id,
            sale_started_at: v1.sale_started_at,
            superseded_by: v1.superseded_by,
            events: v1.events,
        }
    }
}

/// Where a refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RefundStatus {
    /// Recorded before the provider was asked.
    Pending,
    Accepted,
    Refused,
    /// Asked, but the answer did not settle it: repeat with the same refund number.
    Unknown,
}

/// A refund of part or all of a paid charge, keyed by the merchant's `out_refund_no`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRecord {
    pub out_refund_no: String,
    pub out_trade_no: OutTradeNo,
    pub lane_id: LaneId,
    pub amount: Money,
    pub reason: String,
    pub status: RefundStatus,
    pub provider_code: String,
    pub message: String,
    pub refund_id: String,
    pub created_at: UnixMillis,
    pub settled_at: Option<UnixMillis>,
}

/// A cashier's shift at a lane, from sign-on to sign-off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftRecord {
    pub shift_id: ShiftId,
    pub lane_id: LaneId,
    pub cashier: CashierId,
    pub opened_at: UnixMillis,
    pub closed_at: Option<UnixMillis>,
    /// How it closed: "signed off", or "the next shift on the lane opened" when the lane never said.
    pub closed_how: String,
}

/// A lane's credential: the SHA-256 of its bearer token (the token itself is never kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneTokenRecord {
    pub lane_id: LaneId,
    pub token_sha256: [u8; 32],
    pub issued_at: UnixMillis,
    /// Who issued it: "enrolment secret", "lane L1" (rotation) or "manager alice".
    pub issued_by: String,
    /// A revoked lane has no working token and is enrolled again only by a manager.
    pub revoked: bool,
}

/// One audited call: a manager action or a refused call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at: UnixMillis,
    /// "lane L1", "manager alice", "anonymous", ...
    pub caller: String,
    /// The caller's address as seen by the coordinator.
    pub peer: String,
    /// "checkout.v1.StoreService/Refund".
    pub method: String,
    pub target: String,
    /// "ok" or the refusal's gRPC code name.
    pub outcome: String,
    pub detail: String,
}

/// The answer to a manager's request that carried a `request_id` (AIP-155): a repeat of the same request
/// gets it again. The answer is opaque here (the coordinator's encoding of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnsweredRequest {
    pub at: UnixMillis,
    /// SHA-256 of the request as it came (its `request_id` aside): the same id with another request is refused.
    pub request_sha256: [u8; 32],
    pub answer: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Currency, store::decode};

    #[test]
    fn a_charge_of_layout_1_is_read_with_its_basket_digest() {
        let gtin = crate::sample_catalog()[0].gtin.clone();
        let price = Money::new(350, Currency::CNY);
        let v1 = ChargeRecordV1 {
            out_trade_no: OutTradeNo::parse("S1-L1-A-1").unwrap(),
            lane_id: LaneId::parse("L1").unwrap(),
            sale_id: SaleId::parse("L1-A").unwrap(),
            attempt: Attempt::new(1).unwrap(),
            provider: Provider::Alipay,
            masked_code: MaskedCode::of("2800000000000000"),
            code_fingerprint: CodeFingerprint([7; 16]),
            amount: Money::new(700, Currency::CNY),
            status: ChargeStatus::Paid,
            provider_code: "10000".into(),
            message: "paid".into(),
            provider_transaction_id: "T1".into(),
            created_at: UnixMillis(1),
            settled_at: Some(UnixMillis(2)),
            lines: vec![SaleLine { gtin: gtin.clone(), quantity: 2, unit_price: price }],
            shift_id: None,
            sale_started_at: UnixMillis(0),
            superseded_by: None,
            events: vec![ChargeEvent { at: UnixMillis(1), what: "micropay: 10000".into() }],
        };
        let mut bytes = vec![1u8];
        postcard::to_io(&v1, &mut bytes).unwrap();
        let read: ChargeRecord = decode("charges", b"S1-L1-A-1", &bytes).unwrap();
        let line = |quantity| OrderLine::catalog(gtin.clone(), quantity);
        assert_eq!(read.basket_sha256, basket_digest(&[line(2)]));
        assert_eq!((read.amount, read.lines.len(), read.events.len()), (v1.amount, 1, 1));
        // The digest is of the basket, not of how it was split into lines.
        assert_eq!(basket_digest(&[line(1), line(1)]), read.basket_sha256);
        assert_ne!(basket_digest(&[line(3)]), read.basket_sha256);
    }

    /// The digest as builds before open-price items made it: `{gtin}:{quantity}` lines, by GTIN.
    fn digest_before_open_prices(lines: &[(&str, u64)]) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut sorted = lines.to_vec();
        sorted.sort();
        let mut hash = Sha256::new();
        for (gtin, quantity) in sorted {
            hash.update(format!("{gtin}:{quantity}\n").as_bytes());
        }
        hash.finalize().into()
    }

    #[test]
    fn a_basket_without_typed_prices_hashes_as_before() {
        let catalog = crate::sample_catalog();
        let (milk, rice) = (catalog[0].gtin.clone(), catalog[2].gtin.clone());
        let lines = [OrderLine::catalog(rice.clone(), 1), OrderLine::catalog(milk.clone(), 2)];
        let before = digest_before_open_prices(&[(milk.as_str(), 2), (rice.as_str(), 1)]);
        assert_eq!(basket_digest(&lines), before);
        // Pinned: the digest of this basket as charges already in ledgers keep it.
        let hex: String = basket_digest(&lines).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "58fc13e52605fd5198fc0cbfff43d64c9eeff6f8f9bb9c7f78ffb3dce02fa5f6");
        let tuples: OrderLine = (milk.clone(), 2).into();
        assert_eq!(tuples, lines[1]);
    }

    #[test]
    fn a_typed_price_is_part_of_the_basket() {
        let catalog = crate::sample_catalog();
        let milk = catalog[0].gtin.clone();
        let bakery = catalog.iter().find(|p| p.is_open_price()).unwrap().gtin.clone();
        let cny = |fen| Money::new(fen, Currency::CNY);
        let basket = [
            OrderLine::catalog(milk.clone(), 1),
            OrderLine::open_price(bakery.clone(), 1, cny(1250)),
            OrderLine::open_price(bakery.clone(), 1, cny(320)),
        ];
        let digest = basket_digest(&basket);
        let untyped = basket_digest(&[OrderLine::catalog(milk.clone(), 1), OrderLine::catalog(bakery.clone(), 2)]);
        assert_ne!(digest, untyped, "a typed price changes the digest");
        assert_ne!(digest, digest_before_open_prices(&[(milk.as_str(), 1), (bakery.as_str(), 2)]));
        // Whatever the order of the lines.
        let reordered = [basket[2].clone(), basket[0].clone(), basket[1].clone()];
        assert_eq!(basket_digest(&reordered), digest);
        // Another typed price is another basket, even for the same total.
        let other = [
            OrderLine::catalog(milk.clone(), 1),
            OrderLine::open_price(bakery.clone(), 1, cny(1251)),
            OrderLine::open_price(bakery.clone(), 1, cny(319)),
        ];
        assert_ne!(basket_digest(&other), digest);
        // Two of one item at one price are the same whether on one line or two.
        let twice =
            [OrderLine::open_price(bakery.clone(), 1, cny(320)), OrderLine::open_price(bakery.clone(), 1, cny(320))];
        assert_eq!(basket_digest(&twice), basket_digest(&[OrderLine::open_price(bakery.clone(), 2, cny(320))]));
        assert_ne!(basket_digest(&twice), basket_digest(&[OrderLine::open_price(bakery, 2, cny(321))]));
    }
}
