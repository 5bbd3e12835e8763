//! One-time coupons: issued by managers, held by the one sale that scanned them first (whatever the lane),
//! redeemed when that sale is paid, let go when the sale is abandoned or its payment reversed.

use checkout_storage::{CouponCode, CouponId, CouponRecord, CouponState, Money, OutTradeNo, SaleId, Store, UnixMillis};

use crate::error::CoordinatorError;

fn refused(reason: &'static str, message: String) -> CoordinatorError {
    CoordinatorError::Refused { reason, message }
}

/// Holds the coupon a scanned code names for `sale_id` (again, if the sale holds it already).
pub fn hold_for_sale(store: &Store, sale_id: &SaleId, code_text: &str) -> Result<CouponRecord, CoordinatorError> {
    let invalid = |e: checkout_storage::CouponCodeError| refused("COUPON_CODE_INVALID", e.to_string());
    let code = CouponCode::parse(code_text).map_err(invalid)?;
    let coupon_id = code.verify(&store.member_key()).map_err(invalid)?.clone();
    let now = UnixMillis::now();
    let held = store.move_coupon(&coupon_id, |coupon| {
        if now.0 < coupon.valid_from.0 || now.0 >= coupon.valid_until.0 {
            return Err(refused("COUPON_NOT_VALID", format!("coupon {coupon_id} is not valid today")));
        }
        match &coupon.state {
            CouponState::Issued => Ok(Some(CouponState::Held { sale_id: sale_id.clone(), at: now })),
            CouponState::Held { sale_id: holder, .. } if holder == sale_id => Ok(None),
            CouponState::Held { .. } => {
                Err(refused("COUPON_TAKEN", format!("coupon {coupon_id} is being used in another sale right now")))
            }
            CouponState::Redeemed { .. } => {
                Err(refused("COUPON_TAKEN", format!("coupon {coupon_id} has been used already")))
            }
            CouponState::Void { reason, .. } => {
                Err(refused("COUPON_VOID", format!("coupon {coupon_id} was withdrawn ({reason})")))
            }
        }
    })?;
    let coupon = held.ok_or_else(|| CoordinatorError::NotFound(format!("no coupon {coupon_id}")))??;
    // One coupon a sale: the one it held before goes back.
    if let Some(before) = store.held_coupon_of_sale(sale_id)?
        && before != coupon_id
    {
        release(store, sale_id, &before)?;
    }
    store.set_sale_held_coupon(sale_id, &coupon_id)?;
    tracing::info!(%coupon_id, %sale_id, "coupon held");
    Ok(coupon)
}

/// Lets go of a coupon `sale_id` holds; false when it did not hold it.
pub fn release(store: &Store, sale_id: &SaleId, coupon_id: &CouponId) -> Result<bool, CoordinatorError> {
    let moved = store.move_coupon(coupon_id, |coupon| match &coupon.state {
        CouponState::Held { sale_id: holder, .. } if holder == sale_id => Ok(Some(CouponState::Issued)),
        _ => Err(()),
    })?;
    let released = matches!(moved, Some(Ok(_)));
    if released {
        store.set_sale_coupon(sale_id, None)?;
        tracing::info!(%coupon_id, %sale_id, "coupon released");
    }
    Ok(released)
}

/// What the coupon `coupon_id`, held (or used) by `sale_id`, takes off a basket of `total`.
pub fn discount_for_sale(
    store: &Store,
    sale_id: &SaleId,
    coupon_id: &CouponId,
    total: Money,
) -> Result<Money, CoordinatorError> {
    let coupon = store
        .coupon(coupon_id)?
        .ok_or_else(|| CoordinatorError::invalid("coupon_id", format!("no coupon {coupon_id}")))?;
    let ours = match &coupon.state {
        CouponState::Held { sale_id: holder, .. } | CouponState::Redeemed { sale_id: holder, .. } => holder == sale_id,
        _ => false,
    };
    if !ours {
        return Err(refused(
            "COUPON_NOT_HELD",
            format!("sale {sale_id} does not hold coupon {coupon_id}: scan it again"),
        ));
    }
    if total.minor_units < coupon.min_basket.minor_units || total.currency != coupon.min_basket.currency {
        return Err(refused(
            "COUPON_MIN_BASKET",
            format!("coupon {coupon_id} needs a basket of at least {}", coupon.min_basket),
        ));
    }
    Ok(coupon.discount.off(total))
}

/// The coupon a paid sale took off its payment is used; one it held and did not apply (a basket below its
/// minimum, an answer the lane never heard) is let go (durable with the next commit).
pub fn redeem_for_paid_sale(
    store: &Store,
    sale_id: &SaleId,
    out_trade_no: &OutTradeNo,
) -> Result<(), CoordinatorError> {
    let applied = store.coupon_of_sale(sale_id)?;
    if let Some(held) = store.held_coupon_of_sale(sale_id)?
        && Some(&held) != applied.as_ref()
    {
        release(store, sale_id, &held)?;
    }
    let Some(coupon_id) = applied else { return Ok(()) };
    let now = UnixMillis::now();
    store.move_coupon(&coupon_id, |coupon| match &coupon.state {
        CouponState::Held { sale_id: holder, .. } if holder == sale_id => {
            Ok(Some(CouponState::Redeemed { sale_id: sale_id.clone(), out_trade_no: out_trade_no.clone(), at: now }))
        }
        _ => Err(()),
    })?;
    Ok(())
}

/// A paid sale's payment was reversed: the coupon it used can be used again.
pub fn release_after_reversal(store: &Store, sale_id: &SaleId) -> Result<(), CoordinatorError> {
    let Some(coupon_id) = store.coupon_of_sale(sale_id)? else { return Ok(()) };
    let moved = store.move_coupon(&coupon_id, |coupon| match &coupon.state {
        CouponState::Redeemed { sale_id: holder, .. } | CouponState::Held { sale_id: holder, .. }
            if holder == sale_id =>
        {
            Ok(Some(CouponState::Issued))
        }
        _ => Err(()),
    })?;
    if matches!(moved, Some(Ok(_))) {
        store.set_sale_coupon(sale_id, None)?;
        tracing::info!(%coupon_id, %sale_id, "coupon released: its payment was reversed");
    }
    Ok(())
}

/// Voids a coupon nobody holds or used.
pub fn void(store: &Store, coupon_id: &CouponId, reason: &str) -> Result<CouponRecord, CoordinatorError> {
    let now = UnixMillis::now();
    let moved = store.move_coupon(coupon_id, |coupon| match &coupon.state {
        CouponState::Issued => Ok(Some(CouponState::Void { reason: reason.to_owned(), at: now })),
        CouponState::Void { .. } => Ok(None),
        _ => Err(refused("COUPON_TAKEN", format!("coupon {coupon_id} is held or used: it cannot be voided"))),
    })?;
    moved.ok_or_else(|| CoordinatorError::NotFound(format!("no coupon {coupon_id}")))?
}
