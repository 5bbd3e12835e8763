//! `LaneService`: a lane's calls, each acting only on the caller's own lane.

use std::sync::atomic::Ordering;

use checkout_proto::v1 as pb;
use checkout_storage::{
    Attempt, CashierId, ChargeStatus, CouponId, FinishedSale, LaneId, LaneRecord, OutTradeNo, PaymentCode, SaleId,
    ShiftId, ShiftRecord, UnixMillis,
};
use tonic::{Request, Response, Status};

use super::{LaneApi, Result, caller_of, convert::*, of_lane, own_lane, plain_text, respond};
use crate::{
    auth::{Caller, parse_hash_hex},
    engine::PayOrder,
    error::{CoordinatorError, field},
    services::{
        coupons,
        live::{Heartbeat, LaneActivity},
        members,
        sales::record_finished_sale,
        shifts::{close_shift, open_shift, report_of, settle_shift},
    },
};

/// A heartbeat's basket: at most this many items and this much money (100 million yuan).
const MAX_BASKET_ITEMS: u32 = 100_000;

const MAX_BASKET_MINOR_UNITS: i64 = 10_000_000_000;

impl LaneApi {
    fn registered(&self, lane_id: &LaneId) -> Result<LaneRecord> {
        self.0.store.lane(lane_id)?.ok_or_else(|| {
            CoordinatorError::FailedPrecondition(format!("lane {lane_id} is not registered: call RegisterLane first"))
        })
    }

    async fn enrol(&self, caller: &Caller, request: pb::EnrolLaneRequest) -> Result<pb::EnrolLaneResponse> {
        let lane_id = lane_id_of(&request.lane_id)?;
        let token_sha256 = parse_hash_hex(&request.token_sha256)
            .ok_or_else(|| CoordinatorError::invalid("token_sha256", "the token's SHA-256 as 64 hex digits"))?;
        self.0.enrol_lane(&lane_id, token_sha256, caller).await?;
        Ok(pb::EnrolLaneResponse { lane_id: lane_id.to_string() })
    }

    async fn register(&self, caller: &Caller, request: pb::RegisterLaneRequest) -> Result<pb::RegisterLaneResponse> {
        let lane_id = own_lane(caller, &request.lane_id)?;
        plain_text("description", &request.description, 200)?;
        let c = &self.0;
        let earlier = c.store.lane(&lane_id)?;
        if earlier.as_ref().is_none_or(|lane| lane.description != request.description) {
            let registered_at = earlier.map(|l| l.registered_at).unwrap_or_else(UnixMillis::now);
            c.store.put_lane(&LaneRecord {
                lane_id: lane_id.clone(),
                description: request.description,
                registered_at,
            })?;
            c.store.commit().await?;
        }
        c.live.record(&lane_id, Heartbeat::idle());
        tracing::info!(%lane_id, "lane registered");
        Ok(pb::RegisterLaneResponse {
            store_id: c.store_id.to_string(),
            currency: c.currency.to_string(),
            products: c.store.products()?.into_iter().map(product_to_pb).collect(),
            member_code_key: c.store.member_key().as_bytes().to_vec(),
            promotions: super::promotions_api::promotions_for_lanes(c)?,
            promotions_version: c.store.promotions_version(),
        })
    }

    fn heartbeat(&self, caller: &Caller, request: pb::HeartbeatRequest) -> Result<pb::HeartbeatResponse> {
        let lane_id = own_lane(caller, &request.lane_id)?;
        self.registered(&lane_id)?;
        let basket_total = match request.basket_total {
            Some(total) => {
                let total = money_from_pb("basket_total", Some(total))?;
                if total.currency != self.0.currency {
                    return Err(CoordinatorError::invalid(
                        "basket_total.currency",
                        format!("the store takes {}", self.0.currency),
                    ));
                }
                if !(0..=MAX_BASKET_MINOR_UNITS).contains(&total.minor_units) {
                    return Err(CoordinatorError::invalid("basket_total", "out of range"));
                }
                Some(total)
            }
            None => None,
        };
        if !request.sale_id.is_empty() {
            SaleId::parse(&request.sale_id).map_err(field("sale_id"))?;
            of_lane("sale_id", &lane_id, &request.sale_id)?;
        }
        if request.basket_items > MAX_BASKET_ITEMS {
            return Err(CoordinatorError::invalid("basket_items", format!("at most {MAX_BASKET_ITEMS}")));
        }
        let charge_progress = if request.state == pb::LaneState::Paying as i32 && request.attempt > 0 {
            self.charge_progress(&lane_id, &request.sale_id, request.attempt)
        } else {
            pb::ChargeProgress::Unspecified
        };
        self.0.live.record(
            &lane_id,
            Heartbeat {
                activity: activity_from_pb(request.state)?,
                sale_id: request.sale_id,
                basket_items: request.basket_items,
                basket_total,
                frames_decoded: request.frames_decoded,
                codes_read: request.codes_read,
            },
        );
        let closure = self.0.live.closure(&lane_id);
        // The version first: a promotion created meanwhile shows with a newer one at the next heartbeat.
        let promotions_version = self.0.store.promotions_version();
        let promotions = if request.promotions_version == promotions_version {
            Vec::new()
        } else {
            super::promotions_api::promotions_for_lanes(&self.0)?
        };
        Ok(pb::HeartbeatResponse {
            closed_by_store: closure.is_some(),
            closed_message: closure.as_ref().map(super::lanes_live::closed_message).unwrap_or_default(),
            promotions_version,
            promotions,
            charge_progress: charge_progress.into(),
        })
    }

    /// How this lane's charge of `sale_id`, attempt `attempt`, goes: read from the ledger (a point read),
    /// where the engine records the intent and the provider's first answer before it settles the charge.
    fn charge_progress(&self, lane_id: &LaneId, sale_id: &str, attempt: u32) -> pb::ChargeProgress {
        let (Ok(sale_id), Ok(attempt)) = (SaleId::parse(sale_id), Attempt::new(attempt)) else {
            return pb::ChargeProgress::Unspecified;
        };
        let out_trade_no = OutTradeNo::derive(&self.0.store_id, &sale_id, attempt);
        match self.0.store.charge(&out_trade_no) {
            Ok(Some(charge)) if &charge.lane_id == lane_id => match charge.status {
                ChargeStatus::Pending => pb::ChargeProgress::AskingProvider,
                ChargeStatus::Unknown
                    if charge
                        .events
                        .last()
                        .is_some_and(|e| e.what.contains("USERPAYING") || e.what.contains("(Paying)")) =>
                {
                    pb::ChargeProgress::WaitingForPassword
                }
                ChargeStatus::Unknown | ChargeStatus::Reversing => pb::ChargeProgress::Checking,
                _ => pb::ChargeProgress::Unspecified,
            },
            _ => pb::ChargeProgress::Unspecified,
        }
    }

    async fn pay(&self, caller: &Caller, request: pb::PayRequest) -> Result<pb::PayResponse> {
        let lane_id = own_lane(caller, &request.lane_id)?;
        let sale_id = SaleId::parse(&request.sale_id).map_err(field("sale_id"))?;
        of_lane("sale_id", &lane_id, sale_id.as_str())?;
        let attempt = Attempt::new(request.attempt).map_err(field("attempt"))?;
        let code = PaymentCode::parse(&request.payment_code).map_err(field("payment_code"))?;
        let lines = lines_from_pb(request.lines, self.0.currency, self.0.limits.open_price_cap_minor_units)?;
        let amount = money_from_pb("amount", request.amount)?;
        let shift_id = shift_id_of(&request.shift_id)?;
        if let Some(shift_id) = &shift_id {
            of_lane("shift_id", &lane_id, shift_id.as_str())?;
        }
        let started_at = millis_from_pb("started_at", request.started_at)?.unwrap_or_else(UnixMillis::now);
        self.registered(&lane_id)?;
        // A member who cannot collect points (unknown, blocked since the scan) never stops the payment.
        let member = match members::member_for_sale(&self.0.store, &request.member_id) {
            Ok(member) => member,
            Err(CoordinatorError::Storage(e)) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(%lane_id, %sale_id, error = %e, "the sale's member is left out");
                None
            }
        };
        if self.0.shutting_down.load(Ordering::SeqCst) {
            return Err(CoordinatorError::ShuttingDown);
        }
        // A closed lane finishes the customer it was serving (a sale started before it was closed) and
        // takes no new one.
        if let Some(closure) = self.0.live.closure(&lane_id)
            && started_at.0 > closure.closed_at.0
            && closure.finishing_sale.as_ref() != Some(&sale_id)
        {
            return Err(CoordinatorError::Refused {
                reason: "LANE_CLOSED",
                message: format!(
                    "lane {lane_id} is {}: it takes no new customer",
                    super::lanes_live::closed_message(&closure)
                ),
            });
        }
        let limits = &self.0.limits;
        self.0.open_sales.admit(&lane_id, &sale_id, limits.max_open_sales_per_lane, limits.max_open_sales)?;
        if let Some(member_id) = &member {
            // Written before the charge (durable with its commit): the points follow the sale once it is paid.
            self.0.store.attach_member(&sale_id, member_id)?;
        }
        // The coupon the lane takes off the basket, which the sale must hold; none when the lane sends none.
        let coupon = if request.coupon_id.is_empty() {
            None
        } else {
            Some(CouponId::parse(&request.coupon_id).map_err(field("coupon_id"))?)
        };
        if self.0.store.coupon_of_sale(&sale_id)? != coupon {
            self.0.store.set_sale_coupon(&sale_id, coupon.as_ref())?;
        }
        let order = PayOrder { lane_id, sale_id, attempt, code, lines, amount, shift_id, started_at };
        let charge = self.0.payments.pay(order).await?;
        if charge.status == ChargeStatus::Paid {
            // Watchers see the lane's sales with its next heartbeat (the lane sends one after each charge).
            self.0.open_sales.paid(&charge.lane_id, &charge.sale_id);
        }
        Ok(pb::PayResponse {
            outcome: outcome_to_pb(charge.status).into(),
            message: charge.message,
            out_trade_no: charge.out_trade_no.to_string(),
            provider: provider_to_pb(charge.provider).into(),
            masked_code: charge.masked_code.to_string(),
            amount: Some(money_to_pb(charge.amount)),
            provider_code: charge.provider_code,
            provider_transaction_id: charge.provider_transaction_id,
        })
    }

    async fn finish_sale(&self, caller: &Caller, request: pb::FinishSaleRequest) -> Result<pb::FinishSaleResponse> {
        let lane_id = own_lane(caller, &request.lane_id)?;
        let sale_id = SaleId::parse(&request.sale_id).map_err(field("sale_id"))?;
        of_lane("sale_id", &lane_id, sale_id.as_str())?;
        let out_trade_no = OutTradeNo::parse(&request.out_trade_no).map_err(field("out_trade_no"))?;
        let lines = lines_from_pb(request.lines, self.0.currency, self.0.limits.open_price_cap_minor_units)?;
        let total = money_from_pb("total", request.total)?;
        let now = UnixMillis::now();
        let started_at = millis_from_pb("started_at", request.started_at)?.unwrap_or(now);
        let finished_at = millis_from_pb("finished_at", request.finished_at)?.unwrap_or(now);
        let shift_id = shift_id_of(&request.shift_id)?;
        self.registered(&lane_id)?;
        let sale = FinishedSale { lane_id, sale_id, shift_id, lines, total, out_trade_no, started_at, finished_at };
        let newly_recorded = record_finished_sale(&self.0.store, self.0.payments.points_rule(), sale).await?;
        Ok(pb::FinishSaleResponse { newly_recorded })
    }
}

impl Heartbeat {
    fn idle() -> Heartbeat {
        Heartbeat {
            activity: LaneActivity::Idle,
            sale_id: String::new(),
            basket_items: 0,
            basket_total: None,
            frames_decoded: 0,
            codes_read: 0,
        }
    }
}

#[tonic::async_trait]
impl pb::lane_service_server::LaneService for LaneApi {
    async fn enrol_lane(
        &self,
        request: Request<pb::EnrolLaneRequest>,
    ) -> Result<Response<pb::EnrolLaneResponse>, Status> {
        with_caller!(request, |caller, message| self.enrol(&caller, message).await)
    }

    async fn register_lane(
        &self,
        request: Request<pb::RegisterLaneRequest>,
    ) -> Result<Response<pb::RegisterLaneResponse>, Status> {
        with_caller!(request, |caller, message| self.register(&caller, message).await)
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        with_caller!(request, |caller, message| self.heartbeat(&caller, message))
    }

    async fn pay(&self, request: Request<pb::PayRequest>) -> Result<Response<pb::PayResponse>, Status> {
        with_caller!(request, |caller, message| self.pay(&caller, message).await)
    }

    async fn finish_sale(
        &self,
        request: Request<pb::FinishSaleRequest>,
    ) -> Result<Response<pb::FinishSaleResponse>, Status> {
        with_caller!(request, |caller, message| self.finish_sale(&caller, message).await)
    }

    async fn open_shift(&self, request: Request<pb::OpenShiftRequest>) -> Result<Response<pb::ShiftReport>, Status> {
        with_caller!(request, |caller, message| self.open_shift(&caller, message).await)
    }

    async fn close_shift(&self, request: Request<pb::CloseShiftRequest>) -> Result<Response<pb::ShiftReport>, Status> {
        with_caller!(request, |caller, message| self.close_shift(&caller, message).await)
    }

    async fn lookup_member(
        &self,
        request: Request<pb::LookupMemberRequest>,
    ) -> Result<Response<pb::MemberAtTill>, Status> {
        with_caller!(request, |caller, message| self.lookup_member(&caller, message))
    }

    async fn hold_coupon(&self, request: Request<pb::HoldCouponRequest>) -> Result<Response<pb::CouponAtTill>, Status> {
        with_caller!(request, |caller, message| self.hold_coupon(&caller, message).await)
    }

    async fn release_coupon(
        &self,
        request: Request<pb::ReleaseCouponRequest>,
    ) -> Result<Response<pb::ReleaseCouponResponse>, Status> {
        with_caller!(request, |caller, message| self.release_coupon(&caller, message).await)
    }
}

impl LaneApi {
    fn lookup_member(&self, caller: &Caller, request: pb::LookupMemberRequest) -> Result<pb::MemberAtTill> {
        let lane_id = own_lane(caller, &request.lane_id)?;
        self.registered(&lane_id)?;
        if request.member_code.len() > 64 {
            return Err(CoordinatorError::invalid("member_code", "at most 64 characters"));
        }
        let member = members::member_at_till(&self.0.store, &request.member_code)?;
        let points = self.0.store.points_balance(&member.member_id)?;
        Ok(pb::MemberAtTill { member_id: member.member_id.to_string(), name: member.name, points })
    }

    async fn hold_coupon(&self, caller: &Caller, request: pb::HoldCouponRequest) -> Result<pb::CouponAtTill> {
        let lane_id = own_lane(caller, &request.lane_id)?;
        let sale_id = SaleId::parse(&request.sale_id).map_err(field("sale_id"))?;
        of_lane("sale_id", &lane_id, sale_id.as_str())?;
        if request.coupon_code.len() > 64 {
            return Err(CoordinatorError::invalid("coupon_code", "at most 64 characters"));
        }
        self.registered(&lane_id)?;
        // A sale holding a coupon counts against the lane's cap on unpaid sales, as a charge does: a lane
        // that holds coupons for sales it never pays holds a bounded number (and the store lets them go).
        let limits = &self.0.limits;
        self.0.open_sales.admit(&lane_id, &sale_id, limits.max_open_sales_per_lane, limits.max_open_sales)?;
        let coupon = coupons::hold_for_sale(&self.0.store, &sale_id, &request.coupon_code)?;
        self.0.store.commit().await?;
        let (amount_off, percent_off) = discount_to_pb(coupon.discount);
        Ok(pb::CouponAtTill {
            coupon_id: coupon.coupon_id.to_string(),
            note: coupon.note,
            amount_off,
            percent_off,
            min_basket: Some(money_to_pb(coupon.min_basket)),
        })
    }

    async fn release_coupon(
        &self,
        caller: &Caller,
        request: pb::ReleaseCouponRequest,
    ) -> Result<pb::ReleaseCouponResponse> {
        let lane_id = own_lane(caller, &request.lane_id)?;
        let sale_id = SaleId::parse(&request.sale_id).map_err(field("sale_id"))?;
        of_lane("sale_id", &lane_id, sale_id.as_str())?;
        let coupon_id = CouponId::parse(&request.coupon_id).map_err(field("coupon_id"))?;
        let released = coupons::release(&self.0.store, &sale_id, &coupon_id)?;
        self.0.store.commit().await?;
        Ok(pb::ReleaseCouponResponse { released })
    }

    async fn open_shift(&self, caller: &Caller, request: pb::OpenShiftRequest) -> Result<pb::ShiftReport> {
        let lane_id = own_lane(caller, &request.lane_id)?;
        let shift_id = ShiftId::parse(&request.shift_id).map_err(field("shift_id"))?;
        of_lane("shift_id", &lane_id, shift_id.as_str())?;
        let cashier = CashierId::parse(&request.cashier_id).map_err(field("cashier_id"))?;
        let opened_at = millis_from_pb("opened_at", request.opened_at)?.unwrap_or_else(UnixMillis::now);
        self.registered(&lane_id)?;
        let shift = ShiftRecord { shift_id, lane_id, cashier, opened_at, closed_at: None, closed_how: String::new() };
        let shift = open_shift(&self.0.store, shift).await?;
        // Its cashier changed.
        self.0.live.announce(&shift.lane_id);
        self.report_of(&shift.shift_id)
    }

    async fn close_shift(&self, caller: &Caller, request: pb::CloseShiftRequest) -> Result<pb::ShiftReport> {
        let lane_id = own_lane(caller, &request.lane_id)?;
        let shift_id = ShiftId::parse(&request.shift_id).map_err(field("shift_id"))?;
        of_lane("shift_id", &lane_id, shift_id.as_str())?;
        let closed_at = millis_from_pb("closed_at", request.closed_at)?.unwrap_or_else(UnixMillis::now);
        let counted = if request.counted { Some(counted_sales_from_pb(request.counted_sales)?) } else { None };
        if let Some(counted) = &counted {
            for (sale_id, _) in counted {
                of_lane("counted_sales.sale_id", &lane_id, sale_id.as_str())?;
            }
        }
        self.registered(&lane_id)?;
        let shift = close_shift(&self.0.store, &lane_id, &shift_id, closed_at).await?;
        if let Some(counted) = counted {
            settle_shift(&self.0.store, self.0.currency, &shift, counted).await?;
        }
        self.0.live.announce(&lane_id);
        self.report_of(&shift_id)
    }

    fn report_of(&self, shift_id: &ShiftId) -> Result<pb::ShiftReport> {
        report_of(&self.0.store, self.0.currency, shift_id).map(shift_report_to_pb)
    }
}
