//! The cashier's actions at the till (from the lane's screen): change the basket, cancel the sale, key in a
//! product, ring up an open-price item, confirm an amount, sign on and off, pause. Each is applied here, by
//! the till, and shown back through its events and screens; a refused one says why.

use std::time::Duration;

use actix::prelude::*;
use checkout_proto::v1 as pb;
use checkout_storage::{CashierId, Money, PaymentCode, ProductCode};

use super::{Till, client, screen::PendingOpenPrice};
use crate::{
    events::LaneEventKind,
    messages::{ActionRefused, CashierAction, CashierCommand},
};

/// How long a code held for the cashier's confirmation stays chargeable: wallet codes expire within a minute.
const HELD_CODE_LIFETIME: Duration = Duration::from_secs(50);

fn refused<T>(why: impl Into<String>) -> Result<T, ActionRefused> {
    Err(ActionRefused(why.into()))
}

impl Till {
    /// Refuses while a charge is on its way or its outcome is not known: the basket is what is being charged.
    fn basket_can_change(&self) -> Result<(), ActionRefused> {
        if self.paying || self.unsettled.is_some() {
            return refused("the payment is being resolved: wait for its outcome");
        }
        if self.screen.held_code.is_some() {
            return refused("confirm or reject the amount first");
        }
        Ok(())
    }

    fn apply(&mut self, action: CashierAction, ctx: &mut Context<Self>) -> Result<(), ActionRefused> {
        if self.closing {
            return refused("the lane is closing");
        }
        match action {
            CashierAction::RemoveLine { line, gtin, unit_price } => self.set_quantity(line, &gtin, unit_price, 0),
            CashierAction::SetQuantity { line, gtin, unit_price, quantity } => {
                self.set_quantity(line, &gtin, unit_price, quantity)
            }
            CashierAction::CancelSale => self.cancel_sale(ctx),
            CashierAction::KeyIn { digits } => {
                self.scanning_allowed()?;
                self.basket_can_change()?;
                if PaymentCode::parse(&digits).is_ok() {
                    // Never echoed: a scanner in keyboard mode typed the customer's code.
                    return refused("that is a payment code: the customer shows it to the scanner, it is never typed");
                }
                let gtin = ProductCode::parse(digits.trim()).or_else(|_| refused("not a product code"))?;
                if !self.catalog.contains_key(&gtin) {
                    return refused(format!("product {gtin} is not in the price file"));
                }
                self.add_product(gtin);
                Ok(())
            }
            CashierAction::OpenPrice { gtin, minor_units } => self.type_open_price(gtin, minor_units),
            CashierAction::ConfirmOpenPrice => {
                self.scanning_allowed()?;
                self.basket_can_change()?;
                if self.screen.open_price.as_ref().is_none_or(|p| p.price.is_none()) {
                    return refused("type the price first");
                }
                let Some(PendingOpenPrice { product, price: Some(price) }) = self.screen.open_price.take() else {
                    return refused("type the price first");
                };
                if self.add_to_basket(&product, Some(price)) { Ok(()) } else { refused("the item was not added") }
            }
            CashierAction::DiscardOpenPrice => {
                self.screen.open_price = None;
                self.publish();
                Ok(())
            }
            CashierAction::ConfirmCharge { minor_units } => {
                let Some(to_pay) = self.screen.held_code.as_ref().and(self.sale.as_ref()).map(|s| s.to_pay()) else {
                    return refused("no payment code waits for confirmation");
                };
                if to_pay.minor_units != minor_units {
                    // Promotions or a coupon changed it since the screen showed it: the cashier checks again.
                    return refused(format!("the amount is now {to_pay}: check it again"));
                }
                if !self.reachable {
                    self.screen.held_code = None;
                    self.show(LaneEventKind::WalletPaymentsUnavailable);
                    return refused("the store is unreachable: wallet codes cannot be charged now");
                }
                let Some((code, held_at)) = self.screen.held_code.take() else {
                    return refused("no payment code waits for confirmation");
                };
                if held_at.elapsed() > HELD_CODE_LIFETIME {
                    self.publish();
                    return refused("the payment code has expired: ask the customer to show a fresh one");
                }
                let charge = self.start_charge(code, ctx);
                ctx.spawn(charge);
                Ok(())
            }
            CashierAction::RejectCharge => {
                if self.screen.held_code.take().is_none() {
                    return refused("no payment code waits for confirmation");
                }
                self.publish();
                Ok(())
            }
            CashierAction::SignOn { cashier } => {
                if self.signed_on {
                    return refused(format!("{} is signed on: sign off first", self.cashier));
                }
                self.cashier = CashierId::parse(cashier.trim()).or_else(|e| refused(format!("cashier id: {e}")))?;
                self.sign_on();
                Ok(())
            }
            CashierAction::SignOff => {
                if !self.signed_on {
                    return refused("no cashier is signed on");
                }
                if self.sale.is_some() || self.paying || self.unsettled.is_some() {
                    return refused("finish or cancel the sale first");
                }
                self.sign_off();
                self.show(LaneEventKind::SignedOff { cashier: self.cashier.to_string() });
                Ok(())
            }
            CashierAction::Pause | CashierAction::Resume => {
                let pause = action == CashierAction::Pause;
                if pause && (self.paying || self.unsettled.is_some() || self.screen.held_code.is_some()) {
                    return refused("the payment is being resolved: wait for its outcome");
                }
                if self.paused != pause {
                    self.paused = pause;
                    self.show(LaneEventKind::Paused(pause));
                }
                Ok(())
            }
        }
    }

    fn scanning_allowed(&self) -> Result<(), ActionRefused> {
        if self.paused {
            return refused("the lane is paused: resume it first");
        }
        if !self.signed_on {
            return refused("no cashier is signed on");
        }
        Ok(())
    }

    /// Sets line `line`'s quantity, if it is still the line the cashier saw (`gtin` at `unit_price`).
    fn set_quantity(&mut self, line: usize, gtin: &str, unit_price: i64, quantity: u32) -> Result<(), ActionRefused> {
        self.basket_can_change()?;
        let Some(sale) = self.sale.as_mut() else { return refused("no sale is open") };
        let seen =
            sale.lines.get(line).is_some_and(|l| l.gtin.as_str() == gtin && l.unit_price.minor_units == unit_price);
        if !seen {
            return refused("the basket changed meanwhile: check the line again");
        }
        sale.set_quantity(line, quantity).or_else(|e| refused(e.to_string()))?;
        let event = LaneEventKind::BasketChanged {
            sale_id: sale.sale_id.to_string(),
            basket_items: sale.items(),
            basket_total: sale.total,
        };
        self.screen.outcome = None;
        self.reprice();
        self.show(event);
        Ok(())
    }

    /// The open sale is dropped, nothing charged; the coupon it holds goes back to the store.
    fn cancel_sale(&mut self, ctx: &mut Context<Self>) -> Result<(), ActionRefused> {
        if self.paying || self.unsettled.is_some() {
            return refused("the payment is being resolved: wait for its outcome");
        }
        let Some(sale) = self.sale.take() else { return refused("no sale is open") };
        self.screen.held_code = None;
        self.screen.outcome = None;
        self.screen.open_price = None;
        if let Some(coupon) = &sale.coupon {
            let request = pb::ReleaseCouponRequest {
                lane_id: self.lane_id.to_string(),
                sale_id: sale.sale_id.to_string(),
                coupon_id: coupon.coupon_id.clone(),
            };
            ctx.spawn(client::release_coupon(self.client.clone(), request).into_actor(self));
        }
        tracing::info!(lane_id = %self.lane_id, sale_id = %sale.sale_id, items = sale.items(), total = %sale.total, "sale cancelled by the cashier");
        self.show(LaneEventKind::SaleCancelled { sale_id: sale.sale_id.to_string(), items: sale.items() });
        Ok(())
    }

    /// The price typed for an open-price item: checked against the cap and shown back for confirmation.
    fn type_open_price(&mut self, gtin: Option<String>, minor_units: i64) -> Result<(), ActionRefused> {
        self.scanning_allowed()?;
        let product = match (gtin, &self.screen.open_price) {
            (Some(gtin), _) => {
                let gtin = ProductCode::parse(gtin.trim()).or_else(|e| refused(format!("not a product code: {e}")))?;
                self.catalog
                    .get(&gtin)
                    .cloned()
                    .ok_or_else(|| ActionRefused(format!("{gtin} is not in the price file")))?
            }
            (None, Some(pending)) => pending.product.clone(),
            (None, None) => {
                // Without a code scanned or keyed, only a store with one open-price item knows which it is.
                let mut open = self.catalog.values().filter(|p| p.price.minor_units == 0);
                match (open.next(), open.next()) {
                    (Some(only), None) => only.clone(),
                    (None, _) => return refused("the price file has no open-price item"),
                    (Some(_), Some(_)) => return refused("scan or key in the open-price item's code first"),
                }
            }
        };
        if product.price.minor_units != 0 {
            return refused(format!("{} has a price in the price file", product.name));
        }
        let cap = self.screen.open_price_cap;
        if minor_units <= 0 || minor_units > cap.minor_units {
            return refused(format!("an open price is more than nothing and at most {cap}"));
        }
        let price = Money::new(minor_units, self.currency);
        let name = product.name.clone();
        self.screen.open_price = Some(PendingOpenPrice { product, price: Some(price) });
        self.show(LaneEventKind::OpenPriceAsked { name, price: Some(price) });
        Ok(())
    }
}

impl Handler<CashierCommand> for Till {
    type Result = Result<(), ActionRefused>;

    fn handle(&mut self, command: CashierCommand, ctx: &mut Context<Self>) -> Self::Result {
        let action = format!("{:?}", command.0);
        let result = self.apply(command.0, ctx);
        match &result {
            Ok(()) => tracing::info!(lane_id = %self.lane_id, action, "cashier action applied"),
            Err(why) => {
                tracing::info!(lane_id = %self.lane_id, action, %why, "cashier action refused");
                self.publish();
            }
        }
        result
    }
}
