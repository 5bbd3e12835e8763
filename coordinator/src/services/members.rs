//! Store members: enrolling and blocking them, checking a member code scanned at a till, and crediting the
//! points of a paid sale exactly once (a sale delivered twice earns once; nothing is credited before payment).

use std::collections::{BTreeMap, BTreeSet};

use checkout_storage::{
    MemberCode, MemberCodeError, MemberId, MemberRecord, Money, OutTradeNo, PointsEntry, PointsReason, ProductCode,
    Provider, SaleId, SaleLine, Store, UnixMillis,
};

use crate::error::CoordinatorError;

/// How a paid sale earns points: the `[points]` section of the configuration file.
///
/// ```toml
/// [points]
/// per_yuan = 1                       # points per whole currency unit paid
/// provider_bonus_percent = { UnionPay = 50 }   # on top, by wallet
/// excluded_gtins = ["6901234567892"]  # products that earn nothing (tobacco, infant formula, ...)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointsRule {
    pub per_unit: i64,
    pub provider_bonus_percent: BTreeMap<Provider, i64>,
    pub excluded: BTreeSet<ProductCode>,
}

impl Default for PointsRule {
    /// One point per yuan, no bonus, nothing excluded.
    fn default() -> Self {
        PointsRule { per_unit: 1, provider_bonus_percent: BTreeMap::new(), excluded: BTreeSet::new() }
    }
}

impl PointsRule {
    /// The points a sale of `lines` earns when `paid` went through `provider`: whole currency units paid for the
    /// lines not excluded (a coupon's discount spread over every line), times the rate, plus the wallet's
    /// bonus (rounded down).
    pub fn points_for(&self, lines: &[SaleLine], paid: i64, provider: Provider) -> i64 {
        let line_total = |line: &SaleLine| line.unit_price.minor_units.saturating_mul(i64::from(line.quantity));
        let basket: i64 = lines.iter().map(line_total).fold(0i64, i64::saturating_add);
        let earning: i64 = lines
            .iter()
            .filter(|line| !self.excluded.contains(&line.gtin))
            .map(line_total)
            .fold(0i64, i64::saturating_add);
        let minor = if basket > 0 && paid < basket {
            (i128::from(earning) * i128::from(paid.max(0)) / i128::from(basket)) as i64
        } else {
            earning
        };
        let base = (minor / 100).saturating_mul(self.per_unit);
        let bonus = self.provider_bonus_percent.get(&provider).copied().unwrap_or(0);
        base.saturating_add(base.saturating_mul(bonus) / 100)
    }
}

/// A member's name: 1 to 60 characters, no control characters.
pub fn member_name(name: &str) -> Result<&str, CoordinatorError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
        return Err(CoordinatorError::invalid("name", "1 to 60 characters, no control characters"));
    }
    Ok(name)
}

/// The member a code scanned at a till names, if it checks out and the member may collect points.
pub fn member_at_till(store: &Store, code_text: &str) -> Result<MemberRecord, CoordinatorError> {
    let invalid =
        |e: MemberCodeError| CoordinatorError::Refused { reason: "MEMBER_CODE_INVALID", message: e.to_string() };
    let code = MemberCode::parse(code_text).map_err(invalid)?;
    let member_id = code.verify(&store.member_key()).map_err(invalid)?;
    let member =
        store.member(member_id)?.ok_or_else(|| CoordinatorError::NotFound(format!("no member {member_id}")))?;
    if let Some(reason) = &member.blocked {
        return Err(CoordinatorError::Refused {
            reason: "MEMBER_BLOCKED",
            message: format!("member {member_id} is blocked ({reason}): no points; ask them to see the service desk"),
        });
    }
    Ok(member)
}

/// A member id from a request, of a member who exists and is not blocked.
pub fn member_for_sale(store: &Store, member_id: &str) -> Result<Option<MemberId>, CoordinatorError> {
    if member_id.is_empty() {
        return Ok(None);
    }
    let member_id = MemberId::parse(member_id).map_err(|e| CoordinatorError::invalid("member_id", e))?;
    match store.member(&member_id)? {
        None => Err(CoordinatorError::invalid("member_id", format!("no member {member_id}"))),
        Some(member) if member.blocked.is_some() => Err(CoordinatorError::Refused {
            reason: "MEMBER_BLOCKED",
            message: format!("member {member_id} is blocked: pay without the member code"),
        }),
        Some(_) => Ok(Some(member_id)),
    }
}

/// Credits the points of a paid sale to the member attached to it, once (durable with the next commit);
/// the points written, or `None` when no member is attached or they were credited before.
pub fn credit_paid_sale(
    store: &Store,
    rule: &PointsRule,
    sale_id: &SaleId,
    out_trade_no: &OutTradeNo,
    lines: &[SaleLine],
    paid: Money,
    provider: Provider,
) -> Result<Option<i64>, CoordinatorError> {
    let Some(member_id) = store.member_of_sale(sale_id)? else { return Ok(None) };
    let points = rule.points_for(lines, paid.minor_units, provider);
    let entry = PointsEntry {
        member_id,
        sale_id: sale_id.clone(),
        out_trade_no: out_trade_no.clone(),
        points,
        reason: PointsReason::Sale,
        at: UnixMillis::now(),
    };
    let newly = store.move_points(&entry)?;
    if newly {
        tracing::info!(member_id = %entry.member_id, %sale_id, points, "points credited");
    }
    Ok(newly.then_some(points))
}

/// Takes back the points a sale earned in proportion to what of its payment went back to the customer
/// (`returned` of `paid`; all of it for a reversal), once per refund or reversal (durable with the next
/// commit). Returns the points taken back now, if any.
pub fn take_back_points(
    store: &Store,
    sale_id: &SaleId,
    out_trade_no: &OutTradeNo,
    returned: i64,
    paid: i64,
    reason: PointsReason,
) -> Result<Option<i64>, CoordinatorError> {
    let Some(member_id) = store.member_of_sale(sale_id)? else { return Ok(None) };
    let entries = store.points_of_sale(&member_id, sale_id)?;
    let earned: i64 = entries.iter().filter(|e| e.reason == PointsReason::Sale).map(|e| e.points).sum();
    if earned <= 0 || entries.iter().any(|e| e.reason == reason) {
        return Ok(None);
    }
    let taken_back: i64 = -entries.iter().filter(|e| e.reason != PointsReason::Sale).map(|e| e.points).sum::<i64>();
    // In proportion to everything returned so far, so that partial refunds adding up to the whole take back
    // exactly what was earned.
    let due = if paid <= 0 { earned } else { (i128::from(earned) * i128::from(returned) / i128::from(paid)) as i64 };
    let now = due.min(earned) - taken_back;
    if now <= 0 {
        return Ok(None);
    }
    let entry = PointsEntry {
        member_id,
        sale_id: sale_id.clone(),
        out_trade_no: out_trade_no.clone(),
        points: -now,
        reason,
        at: UnixMillis::now(),
    };
    store.move_points(&entry)?;
    tracing::info!(member_id = %entry.member_id, %sale_id, points = now, "points taken back");
    Ok(Some(now))
}

#[cfg(test)]
mod tests {
    use checkout_storage::{Currency, Money};

    use super::*;

    fn line(gtin: &str, quantity: u32, fen: i64) -> SaleLine {
        SaleLine { gtin: ProductCode::parse(gtin).unwrap(), quantity, unit_price: Money::new(fen, Currency::CNY) }
    }

    #[test]
    fn points_are_whole_yuan_of_what_earns_them_with_the_wallets_bonus() {
        let lines = [line("6901234567892", 2, 1_250), line("4006381333931", 1, 999)];
        let rule = PointsRule::default();
        assert_eq!(rule.points_for(&lines, 3_499, Provider::WeChatPay), 34, "34.99 yuan");
        assert_eq!(rule.points_for(&lines, 2_499, Provider::WeChatPay), 24, "10 yuan off with a coupon");
        let mut rule = PointsRule { per_unit: 2, ..PointsRule::default() };
        rule.provider_bonus_percent.insert(Provider::UnionPay, 50);
        assert_eq!(rule.points_for(&lines, 3_499, Provider::UnionPay), 102);
        rule.excluded.insert(ProductCode::parse("6901234567892").unwrap());
        assert_eq!(rule.points_for(&lines, 3_499, Provider::Alipay), 18, "9.99 yuan earn, the excluded 25.00 not");
    }
}
