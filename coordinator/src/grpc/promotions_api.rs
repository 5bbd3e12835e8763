//! `StoreService`'s promotion methods (create, end, list), and promotions as lanes receive them.

use checkout_proto::v1 as pb;
use checkout_storage::{ProductCode, PromotionId, PromotionKind, PromotionRecord, UnixMillis};

use super::{
    Result, StoreApi,
    convert::{millis_from_pb, money_from_pb, money_to_pb, timestamp},
    paging::{finish_page, page_request},
    plain_text,
    request_ids::{Repeat, answer_once},
};
use crate::{Coordinator, auth::Caller, error::CoordinatorError};

/// The longest a promotion may run: a year.
const LONGEST_MILLIS: i64 = 366 * 24 * 3_600_000;

pub(super) fn promotion_to_pb(promotion: PromotionRecord) -> pb::Promotion {
    let (price_off, buy_n) = match promotion.kind {
        PromotionKind::PriceOff(off) => (Some(money_to_pb(off)), 0),
        PromotionKind::BuyNGetOneFree(n) => (None, n),
    };
    pb::Promotion {
        promotion_id: promotion.promotion_id.to_string(),
        gtin: promotion.gtin.to_string(),
        name: promotion.name,
        price_off,
        buy_n,
        valid_from: Some(timestamp(promotion.valid_from)),
        valid_until: Some(timestamp(promotion.valid_until)),
        ended_at: promotion.ended_at.map(timestamp),
    }
}

/// Every promotion not over, for a lane to price with.
pub(super) fn promotions_for_lanes(c: &Coordinator) -> Result<Vec<pb::Promotion>> {
    Ok(c.store.promotions_not_over(UnixMillis::now())?.into_iter().map(promotion_to_pb).collect())
}

impl StoreApi {
    pub(super) async fn create_promotion(
        &self,
        caller: &Caller,
        request: pb::CreatePromotionRequest,
    ) -> Result<pb::Promotion> {
        let c = &self.0;
        let gtin = ProductCode::parse(&request.gtin).map_err(|e| CoordinatorError::invalid("gtin", e))?;
        if c.store.product(&gtin)?.is_none() {
            return Err(CoordinatorError::invalid("gtin", format!("{gtin} is not in the catalog")));
        }
        let name = request.name.trim();
        if name.is_empty() || name.chars().count() > 60 {
            return Err(CoordinatorError::invalid("name", "1 to 60 characters"));
        }
        plain_text("name", name, 240)?;
        let kind = match (&request.price_off, request.buy_n) {
            (Some(off), 0) => {
                let off = money_from_pb("price_off", Some(off.clone()))?;
                off.positive()?;
                if off.currency != c.currency {
                    return Err(CoordinatorError::invalid(
                        "price_off.currency",
                        format!("the store takes {}", c.currency),
                    ));
                }
                PromotionKind::PriceOff(off)
            }
            (None, n @ 1..=100) => PromotionKind::BuyNGetOneFree(n),
            _ => return Err(CoordinatorError::invalid("price_off", "give a price off or buy_n (1 to 100), not both")),
        };
        let now = UnixMillis::now();
        let valid_from = millis_from_pb("valid_from", request.valid_from)?.unwrap_or(now);
        let valid_until = millis_from_pb("valid_until", request.valid_until)?
            .ok_or_else(|| CoordinatorError::invalid("valid_until", "a promotion needs an end"))?;
        if valid_until.0 <= valid_from.0 || valid_until.0 - valid_from.0 > LONGEST_MILLIS {
            return Err(CoordinatorError::invalid("valid_until", "after valid_from, at most a year later"));
        }
        let method = ("CreatePromotion", Repeat::FirstAnswer);
        answer_once(c, caller, method, &request.request_id, &request, async {
            let promotion = c.store.create_promotion(PromotionRecord {
                promotion_id: PromotionId::numbered(0),
                gtin: gtin.clone(),
                kind,
                valid_from,
                valid_until,
                ended_at: None,
                name: name.to_owned(),
            })?;
            let detail = format!("{name}: {kind:?} on {gtin}");
            c.audit_action(caller, "StoreService/CreatePromotion", promotion.promotion_id.as_str(), &detail);
            c.store.commit().await?;
            Ok(promotion_to_pb(promotion))
        })
        .await
    }

    pub(super) async fn end_promotion(
        &self,
        caller: &Caller,
        request: pb::EndPromotionRequest,
    ) -> Result<pb::Promotion> {
        let c = &self.0;
        let id = PromotionId::parse(&request.promotion_id).map_err(|e| CoordinatorError::invalid("promotion_id", e))?;
        let mut promotion =
            c.store.promotion(&id)?.ok_or_else(|| CoordinatorError::NotFound(format!("no promotion {id}")))?;
        if promotion.ended_at.is_none() {
            promotion.ended_at = Some(UnixMillis::now());
            c.store.put_promotion(&promotion)?;
            c.audit_action(caller, "StoreService/EndPromotion", id.as_str(), "ended");
            c.store.commit().await?;
        }
        Ok(promotion_to_pb(promotion))
    }

    pub(super) fn list_promotions(
        c: &Coordinator,
        request: pb::ListPromotionsRequest,
    ) -> Result<pb::ListPromotionsResponse> {
        let page = page_request("promotions", "", request.page_size, &request.page_token)?;
        let found = c.store.promotions_page(page.after.as_deref(), page.size + 1)?;
        let (promotions, next_page_token) = finish_page("promotions", "", &page, found);
        Ok(pb::ListPromotionsResponse {
            promotions: promotions.into_iter().map(promotion_to_pb).collect(),
            next_page_token,
        })
    }
}
