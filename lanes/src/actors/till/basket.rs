//! The open sale: its basket lines in scan order, its total, and the charges asked for it.

use checkout_storage::{
    Currency, FinishedSale, LaneId, MemberId, Money, MoneyError, OutTradeNo, PaymentCode, Product, ProductCode, SaleId,
    ShiftId, UnixMillis,
};

use super::charge::Charge;

/// A sale from its first item until it is paid (or abandoned when the lane closes).
pub(crate) struct OpenSale {
    pub sale_id: SaleId,
    /// Basket lines in scan order; scanning a product again adds to its quantity.
    pub lines: Vec<(ProductCode, u32)>,
    pub total: Money,
    /// Charges asked for so far (each code shown is one).
    pub attempts: u32,
    pub started_at: UnixMillis,
    /// The member whose code was scanned for this sale (their points come once it is paid).
    pub member_id: Option<MemberId>,
    /// The coupon the store holds for this sale.
    pub coupon: Option<HeldCoupon>,
    /// Each product's unit price, as scanned.
    unit_prices: std::collections::HashMap<ProductCode, Money>,
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
            unit_prices: std::collections::HashMap::new(),
            promotion_lines: Vec::new(),
            promotion_off: Money::zero(currency),
        }
    }

    /// Prices the basket with `promotions` (those in force now); whether its discount lines changed.
    pub fn reprice(&mut self, promotions: &[checkout_storage::PromotionRecord]) -> bool {
        let lines: Vec<_> = self
            .lines
            .iter()
            .filter_map(|(gtin, quantity)| self.unit_prices.get(gtin).map(|price| (gtin.clone(), *quantity, *price)))
            .collect();
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
        self.lines.iter().map(|(_, q)| q).sum()
    }

    /// Adds one of `product`; the basket is unchanged when its total cannot take the price.
    pub fn add(&mut self, product: &Product) -> Result<(), MoneyError> {
        self.total = self.total.checked_add(product.price)?;
        self.unit_prices.insert(product.gtin.clone(), product.price);
        match self.lines.iter_mut().find(|(g, _)| *g == product.gtin) {
            Some((_, quantity)) => *quantity += 1,
            None => self.lines.push((product.gtin.clone(), 1)),
        }
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
            lines: self.lines.clone(),
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
            lines: self.lines.clone(),
            total: self.to_pay(),
            out_trade_no,
            started_at: self.started_at,
            finished_at: UnixMillis::now(),
        }
    }
}
