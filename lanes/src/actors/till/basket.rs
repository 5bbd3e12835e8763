//! The open sale: its basket lines in scan order, its total, and the charges asked for it.

use checkout_storage::{
    Currency, FinishedSale, LaneId, MemberId, Money, MoneyError, OrderLine, OutTradeNo, PaymentCode, Product,
    ProductCode, SaleId, ShiftId, UnixMillis,
};

use super::charge::Charge;

/// One line of the basket: a product, how many, at what unit price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BasketLine {
    pub gtin: ProductCode,
    /// The product's name in the catalog.
    pub name: String,
    pub quantity: u32,
    /// The catalog's price, or the price the cashier typed for an open-price item.
    pub unit_price: Money,
    /// Whether the cashier typed the price (an open-price item).
    pub typed: bool,
}

impl BasketLine {
    /// Quantity times unit price.
    pub fn line_total(&self) -> Result<Money, MoneyError> {
        self.unit_price.checked_mul(self.quantity)
    }
}

/// Why a change to the basket was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BasketError {
    #[error("there is no line {0} in the basket")]
    NoSuchLine(usize),
    #[error("a quantity is 1 to {MAX_QUANTITY}")]
    BadQuantity,
    #[error("the basket cannot take that amount: {0}")]
    Money(#[from] MoneyError),
}

/// The most of one product a line takes (a cashier typing 1000 meant 10).
pub(crate) const MAX_QUANTITY: u32 = 999;

/// A sale from its first item until it is paid (or cancelled, or abandoned when the lane closes).
pub(crate) struct OpenSale {
    pub sale_id: SaleId,
    /// Basket lines in scan order; scanning a product again adds to its quantity.
    pub lines: Vec<BasketLine>,
    pub total: Money,
    /// Charges asked for so far (each code shown is one).
    pub attempts: u32,
    pub started_at: UnixMillis,
    /// The member whose code was scanned for this sale (their points come once it is paid).
    pub member_id: Option<MemberId>,
    /// The coupon the store holds for this sale.
    pub coupon: Option<HeldCoupon>,
    /// What the promotions in force take off, line by line, and in all.
    pub promotion_lines: Vec<checkout_storage::DiscountLine>,
    promotion_off: Money,
}

/// A coupon held for the open sale: what it takes off, from what basket on.
#[derive(Debug, Clone)]
pub(crate) struct HeldCoupon {
    pub coupon_id: String,
    pub discount: checkout_storage::CouponDiscount,
    pub min_basket: Money,
}

impl OpenSale {
    /// An empty basket, started now.
    pub fn new(sale_id: SaleId, currency: Currency) -> OpenSale {
        OpenSale {
            sale_id,
            lines: Vec::new(),
            total: Money::zero(currency),
            attempts: 0,
            started_at: UnixMillis::now(),
            member_id: None,
            coupon: None,
            promotion_lines: Vec::new(),
            promotion_off: Money::zero(currency),
        }
    }

    /// Prices the basket with `promotions` (those in force now); whether its discount lines changed.
    pub fn reprice(&mut self, promotions: &[checkout_storage::PromotionRecord]) -> bool {
        // Promotions are for catalog prices: an open-price item's typed price takes none.
        let lines: Vec<_> =
            self.lines.iter().filter(|l| !l.typed).map(|l| (l.gtin.clone(), l.quantity, l.unit_price)).collect();
        let discounts = checkout_storage::promotion_discounts(&lines, promotions, UnixMillis::now());
        let off = discounts.iter().map(|d| d.amount.minor_units).sum();
        self.promotion_off = Money::new(off, self.total.currency);
        let changed = discounts != self.promotion_lines;
        self.promotion_lines = discounts;
        changed
    }

    /// The basket less what the promotions take off.
    pub fn after_promotions(&self) -> Money {
        Money::new(self.total.minor_units - self.promotion_off.minor_units, self.total.currency)
    }

    /// What the coupon takes off the basket after promotions (nothing below its minimum basket).
    pub fn discount(&self) -> Money {
        let basket = self.after_promotions();
        match &self.coupon {
            Some(coupon) if basket.minor_units >= coupon.min_basket.minor_units => coupon.discount.off(basket),
            _ => Money::zero(self.total.currency),
        }
    }

    /// What the customer pays: the basket less the promotions and the coupon.
    pub fn to_pay(&self) -> Money {
        let basket = self.after_promotions();
        Money::new(basket.minor_units - self.discount().minor_units, basket.currency)
    }

    /// Items in the basket.
    pub fn items(&self) -> u32 {
        self.lines.iter().map(|l| l.quantity).sum()
    }

    /// Adds one of `product` at its catalog price; the basket is unchanged when its total cannot take it.
    pub fn add(&mut self, product: &Product) -> Result<(), MoneyError> {
        self.add_at(product, product.price, false)
    }

    /// Adds one of the open-price `product` at the price the cashier typed: a line of its own unless one of
    /// the same product at the same price is there.
    pub fn add_open_price(&mut self, product: &Product, price: Money) -> Result<(), MoneyError> {
        self.add_at(product, price, true)
    }

    fn add_at(&mut self, product: &Product, unit_price: Money, typed: bool) -> Result<(), MoneyError> {
        let total = self.total.checked_add(unit_price)?;
        let same = |l: &&mut BasketLine| l.gtin == product.gtin && l.unit_price == unit_price && l.typed == typed;
        match self.lines.iter_mut().find(same) {
            Some(line) if line.quantity >= MAX_QUANTITY => return Err(MoneyError::Overflow),
            Some(line) => line.quantity += 1,
            None => self.lines.push(BasketLine {
                gtin: product.gtin.clone(),
                name: product.name.clone(),
                quantity: 1,
                unit_price,
                typed,
            }),
        }
        self.total = total;
        Ok(())
    }

    /// Sets line `index`'s quantity (0 removes the line); the basket is unchanged when that fails.
    pub fn set_quantity(&mut self, index: usize, quantity: u32) -> Result<(), BasketError> {
        if quantity > MAX_QUANTITY {
            return Err(BasketError::BadQuantity);
        }
        let mut lines = self.lines.clone();
        match lines.get_mut(index) {
            None => return Err(BasketError::NoSuchLine(index)),
            Some(line) => line.quantity = quantity,
        }
        lines.retain(|l| l.quantity > 0);
        let mut total = Money::zero(self.total.currency);
        for line in &lines {
            total = total.checked_add(line.line_total()?)?;
        }
        (self.lines, self.total) = (lines, total);
        Ok(())
    }

    /// The next charge of this basket to `code`: a new attempt.
    pub fn next_charge(&mut self, lane_id: &LaneId, code: PaymentCode, shift_id: Option<&ShiftId>) -> Charge {
        self.attempts += 1;
        Charge {
            lane_id: lane_id.clone(),
            sale_id: self.sale_id.clone(),
            attempt: self.attempts,
            code,
            lines: self.sale_lines(),
            total: self.to_pay(),
            shift_id: shift_id.cloned(),
            started_at: self.started_at,
            member_id: self.member_id.clone(),
            // Sent only when it comes off: a basket below the coupon's minimum pays in full.
            coupon_id: self.coupon.as_ref().filter(|_| self.discount().minor_units > 0).map(|c| c.coupon_id.clone()),
        }
    }

    /// The paid sale as the lane's outbox keeps it for the store.
    pub fn finished(&self, lane_id: &LaneId, shift_id: Option<&ShiftId>, out_trade_no: OutTradeNo) -> FinishedSale {
        FinishedSale {
            lane_id: lane_id.clone(),
            sale_id: self.sale_id.clone(),
            shift_id: shift_id.cloned(),
            lines: self.sale_lines(),
            total: self.to_pay(),
            out_trade_no,
            started_at: self.started_at,
            finished_at: UnixMillis::now(),
        }
    }

    /// The basket's lines as the store takes them: the typed price only for open-price items.
    fn sale_lines(&self) -> Vec<OrderLine> {
        self.lines
            .iter()
            .map(|l| OrderLine {
                gtin: l.gtin.clone(),
                quantity: l.quantity,
                typed_price: l.typed.then_some(l.unit_price),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use checkout_storage::sample_catalog;

    use super::*;

    fn sale() -> OpenSale {
        OpenSale::new(SaleId::parse("L1-1").expect("sale id"), Currency::CNY)
    }

    #[test]
    fn quantities_change_the_total_and_zero_takes_the_line_out() {
        let catalog = sample_catalog();
        let mut sale = sale();
        for product in [&catalog[0], &catalog[1], &catalog[0]] {
            sale.add(product).expect("add");
        }
        assert_eq!((sale.lines.len(), sale.items(), sale.total.minor_units), (2, 3, 1290 * 2 + 1580));
        sale.set_quantity(1, 3).expect("three eggs");
        assert_eq!(sale.total.minor_units, 1290 * 2 + 1580 * 3);
        sale.set_quantity(0, 0).expect("no milk");
        assert_eq!((sale.lines.len(), sale.total.minor_units), (1, 1580 * 3));
        assert_eq!(sale.lines[0].gtin, catalog[1].gtin);
        assert_eq!(sale.set_quantity(5, 1), Err(BasketError::NoSuchLine(5)));
        assert_eq!(sale.set_quantity(0, MAX_QUANTITY + 1), Err(BasketError::BadQuantity));
        assert_eq!(sale.total.minor_units, 1580 * 3, "a refused change leaves the basket as it was");
    }

    #[test]
    fn open_price_items_at_different_prices_are_lines_of_their_own() {
        let bakery = sample_catalog().into_iter().find(Product::is_open_price).expect("an open-price item");
        let mut sale = sale();
        sale.add_open_price(&bakery, Money::new(1250, Currency::CNY)).expect("cake");
        sale.add_open_price(&bakery, Money::new(320, Currency::CNY)).expect("bun");
        sale.add_open_price(&bakery, Money::new(320, Currency::CNY)).expect("another bun");
        assert_eq!(
            sale.lines.iter().map(|l| (l.quantity, l.unit_price.minor_units)).collect::<Vec<_>>(),
            [(1, 1250), (2, 320)]
        );
        assert_eq!(sale.total.minor_units, 1250 + 640);
        let sent = sale.sale_lines();
        assert!(sent.iter().all(|l| l.typed_price.is_some()), "the store gets the typed prices");
    }
}
