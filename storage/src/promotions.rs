//! Promotions a manager runs for a period (a price off a product, "buy N get one free"), and the one pricing
//! function both the lanes and the coordinator apply to a basket, so that the lane shows what the store charges.

use serde::{Deserialize, Serialize};

use crate::{IdError, Money, ProductCode, UnixMillis};

/// A promotion's id: `P` and 8 digits, given by the store in order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PromotionId(String);

impl PromotionId {
    pub fn parse(text: &str) -> Result<PromotionId, IdError> {
        let ok = text.len() == 9 && text.starts_with('P') && text[1..].bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(PromotionId(text.to_owned()))
        } else {
            Err(IdError { what: "promotion id", value: text.chars().take(40).collect(), rule: "P and 8 digits" })
        }
    }

    pub fn numbered(n: u64) -> PromotionId {
        PromotionId(format!("P{:08}", n % 100_000_000))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PromotionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a promotion does to its product's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PromotionKind {
    /// This much off each one (never below zero).
    PriceOff(Money),
    /// Of every N + 1 bought, one is free.
    BuyNGetOneFree(u32),
}

/// A promotion as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionRecord {
    pub promotion_id: PromotionId,
    pub gtin: ProductCode,
    pub kind: PromotionKind,
    /// In force from and until (exclusive); `ended_at` ends it early.
    pub valid_from: UnixMillis,
    pub valid_until: UnixMillis,
    pub ended_at: Option<UnixMillis>,
    /// What it is called on the receipt ("Spring tea week").
    pub name: String,
}

impl PromotionRecord {
    /// Whether it applies to a sale priced at `at`.
    pub fn in_force(&self, at: UnixMillis) -> bool {
        at.0 >= self.valid_from.0 && at.0 < self.valid_until.0 && self.ended_at.is_none_or(|end| at.0 < end.0)
    }
}

/// What promotions and a coupon took off a paid sale, kept for the totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleDiscount {
    pub sale_id: crate::SaleId,
    pub out_trade_no: crate::OutTradeNo,
    pub amount: Money,
    pub at: UnixMillis,
}

/// One discount on a basket: which promotion, on which product, how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscountLine {
    pub promotion_id: PromotionId,
    pub name: String,
    pub gtin: ProductCode,
    pub amount: Money,
}

/// The discounts `promotions` (those in force at `at`) give a basket of `(product, quantity, unit price)`
/// lines: at most one promotion per product (the one giving most), each as its own line.
pub fn promotion_discounts(
    lines: &[(ProductCode, u32, Money)],
    promotions: &[PromotionRecord],
    at: UnixMillis,
) -> Vec<DiscountLine> {
    let mut discounts = Vec::new();
    for (gtin, quantity, unit_price) in lines {
        let best = promotions
            .iter()
            .filter(|p| &p.gtin == gtin && p.in_force(at))
            .map(|p| {
                let off = match p.kind {
                    PromotionKind::PriceOff(off) if off.currency == unit_price.currency => {
                        off.minor_units.clamp(0, unit_price.minor_units).saturating_mul(i64::from(*quantity))
                    }
                    PromotionKind::PriceOff(_) => 0,
                    PromotionKind::BuyNGetOneFree(n) => {
                        let free = quantity / (n.max(1) + 1);
                        unit_price.minor_units.saturating_mul(i64::from(free))
                    }
                };
                (off, p)
            })
            .filter(|(off, _)| *off > 0)
            .max_by_key(|(off, p)| (*off, std::cmp::Reverse(p.promotion_id.clone())));
        if let Some((off, promotion)) = best {
            discounts.push(DiscountLine {
                promotion_id: promotion.promotion_id.clone(),
                name: promotion.name.clone(),
                gtin: gtin.clone(),
                amount: Money::new(off, unit_price.currency),
            });
        }
    }
    discounts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;

    fn cny(fen: i64) -> Money {
        Money::new(fen, Currency::CNY)
    }

    fn promotion(n: u64, gtin: &ProductCode, kind: PromotionKind) -> PromotionRecord {
        PromotionRecord {
            promotion_id: PromotionId::numbered(n),
            gtin: gtin.clone(),
            kind,
            valid_from: UnixMillis(1_000),
            valid_until: UnixMillis(2_000),
            ended_at: None,
            name: format!("promotion {n}"),
        }
    }

    #[test]
    fn each_product_gets_the_promotion_that_gives_most_while_it_is_in_force() {
        let tea = ProductCode::parse("6901234567892").unwrap();
        let rice = ProductCode::parse("4006381333931").unwrap();
        let mut promotions = vec![
            promotion(1, &tea, PromotionKind::PriceOff(cny(100))),
            promotion(2, &tea, PromotionKind::BuyNGetOneFree(2)),
            promotion(3, &rice, PromotionKind::PriceOff(cny(5_000))),
        ];
        let lines = [(tea.clone(), 3, cny(800)), (rice.clone(), 1, cny(1_500))];
        let discounts = promotion_discounts(&lines, &promotions, UnixMillis(1_500));
        assert_eq!(discounts.len(), 2);
        assert_eq!((discounts[0].promotion_id.as_str(), discounts[0].amount), ("P00000002", cny(800)), "3 for 2");
        assert_eq!(discounts[1].amount, cny(1_500), "never below zero");
        assert!(promotion_discounts(&lines, &promotions, UnixMillis(2_000)).is_empty(), "over");
        promotions[1].ended_at = Some(UnixMillis(1_200));
        let discounts = promotion_discounts(&lines, &promotions, UnixMillis(1_500));
        assert_eq!(discounts[0].amount, cny(300), "ended early: 1 yuan off each of three");
        let two = [(tea, 2, cny(800))];
        assert!(
            promotion_discounts(&two, &promotions[1..2], UnixMillis(1_100)).is_empty(),
            "two of a 3-for-2 pay both"
        );
    }
}
