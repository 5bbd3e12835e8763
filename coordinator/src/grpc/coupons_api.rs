//! `StoreService`'s coupon methods: issue a one-time coupon (its code comes back), list them, void one.

use checkout_proto::v1 as pb;
use checkout_storage::{CouponCode, CouponDiscount, CouponId, CouponRecord, CouponState, UnixMillis};

use super::{
    Result, StoreApi,
    convert::{discount_to_pb, millis_from_pb, money_from_pb, money_to_pb, timestamp},
    paging::{finish_page, page_request},
    plain_text,
    request_ids::{Repeat, answer_once},
};
use crate::{Coordinator, auth::Caller, error::CoordinatorError, services::coupons};

/// The longest a coupon may be valid: two years.
const LONGEST_VALIDITY_MILLIS: i64 = 2 * 366 * 24 * 3_600_000;

fn coupon_to_pb(c: &Coordinator, coupon: CouponRecord) -> pb::Coupon {
    let coupon_code = CouponCode::issue(&c.store.member_key(), coupon.coupon_id.clone()).text();
    let (amount_off, percent_off) = discount_to_pb(coupon.discount);
    let (state, sale_id, out_trade_no) = match coupon.state {
        CouponState::Issued => ("issued", String::new(), String::new()),
        CouponState::Held { sale_id, .. } => ("held", sale_id.to_string(), String::new()),
        CouponState::Redeemed { sale_id, out_trade_no, .. } => {
            ("redeemed", sale_id.to_string(), out_trade_no.to_string())
        }
        CouponState::Void { .. } => ("void", String::new(), String::new()),
    };
    pb::Coupon {
        coupon_id: coupon.coupon_id.to_string(),
        coupon_code,
        amount_off,
        percent_off,
        min_basket: Some(money_to_pb(coupon.min_basket)),
        valid_from: Some(timestamp(coupon.valid_from)),
        valid_until: Some(timestamp(coupon.valid_until)),
        state: state.to_owned(),
        sale_id,
        out_trade_no,
        note: coupon.note,
    }
}

impl StoreApi {
    pub(super) async fn issue_coupon(&self, caller: &Caller, request: pb::IssueCouponRequest) -> Result<pb::Coupon> {
        let c = &self.0;
        let discount = match (&request.amount_off, request.percent_off) {
            (Some(amount), 0) => {
                let amount = money_from_pb("amount_off", Some(amount.clone()))?;
                amount.positive()?;
                if amount.currency != c.currency {
                    return Err(CoordinatorError::invalid(
                        "amount_off.currency",
                        format!("the store takes {}", c.currency),
                    ));
                }
                CouponDiscount::AmountOff(amount)
            }
            (None, percent @ 1..=100) => CouponDiscount::PercentOff(percent),
            _ => {
                return Err(CoordinatorError::invalid(
                    "amount_off",
                    "give an amount off or a percent off (1 to 100), not both",
                ));
            }
        };
        let min_basket = match request.min_basket.clone() {
            Some(min) => money_from_pb("min_basket", Some(min))?,
            None => checkout_storage::Money::zero(c.currency),
        };
        if min_basket.minor_units < 0 || min_basket.currency != c.currency {
            return Err(CoordinatorError::invalid("min_basket", format!("zero or more, in {}", c.currency)));
        }
        let now = UnixMillis::now();
        let valid_from = millis_from_pb("valid_from", request.valid_from)?.unwrap_or(now);
        let valid_until = millis_from_pb("valid_until", request.valid_until)?
            .ok_or_else(|| CoordinatorError::invalid("valid_until", "a coupon needs an end of validity"))?;
        if valid_until.0 <= valid_from.0 || valid_until.0 - valid_from.0 > LONGEST_VALIDITY_MILLIS {
            return Err(CoordinatorError::invalid("valid_until", "after valid_from, at most two years later"));
        }
        plain_text("note", &request.note, 80)?;
        let method = ("IssueCoupon", Repeat::FirstAnswer);
        answer_once(c, caller, method, &request.request_id, &request, async {
            let coupon = c.store.issue_coupon(CouponRecord {
                coupon_id: CouponId::numbered(0),
                discount,
                min_basket,
                valid_from,
                valid_until,
                state: CouponState::Issued,
                issued_at: now,
                note: request.note.clone(),
            })?;
            c.audit_action(caller, "StoreService/IssueCoupon", coupon.coupon_id.as_str(), &format!("{discount:?}"));
            c.store.commit().await?;
            Ok(coupon_to_pb(c, coupon))
        })
        .await
    }

    pub(super) async fn void_coupon(&self, caller: &Caller, request: pb::VoidCouponRequest) -> Result<pb::Coupon> {
        let coupon_id = CouponId::parse(&request.coupon_id).map_err(|e| CoordinatorError::invalid("coupon_id", e))?;
        plain_text("reason", &request.reason, 200)?;
        if request.reason.trim().is_empty() {
            return Err(CoordinatorError::invalid("reason", "say why the coupon is voided"));
        }
        let coupon = coupons::void(&self.0.store, &coupon_id, request.reason.trim())?;
        self.0.audit_action(caller, "StoreService/VoidCoupon", coupon_id.as_str(), request.reason.trim());
        self.0.store.commit().await?;
        Ok(coupon_to_pb(&self.0, coupon))
    }

    pub(super) fn list_coupons(c: &Coordinator, request: pb::ListCouponsRequest) -> Result<pb::ListCouponsResponse> {
        let page = page_request("coupons", "", request.page_size, &request.page_token)?;
        let found = c.store.coupons_page(page.after.as_deref(), page.size + 1)?;
        let (coupons, next_page_token) = finish_page("coupons", "", &page, found);
        Ok(pb::ListCouponsResponse {
            coupons: coupons.into_iter().map(|coupon| coupon_to_pb(c, coupon)).collect(),
            next_page_token,
        })
    }
}
