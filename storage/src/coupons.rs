//! One-time coupons: their ids, the signed codes customers show (`CKC1:<coupon id>:<mac>`, signed like member
//! codes, in a domain of their own), what they take off, and where each stands (issued, held by one sale,
//! redeemed, void).

use serde::{Deserialize, Serialize};

use crate::{
    IdError, MemberKey, Money, OutTradeNo, SaleId, UnixMillis,
    members::{MAC_BYTES, hex, same_signature, unhex},
};

/// What a coupon code starts with (the format's version 1).
pub const COUPON_CODE_PREFIX: &str = "CKC1:";

/// A coupon's id: `C` and 8 digits, given by the store in order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CouponId(String);

impl CouponId {
    pub fn parse(text: &str) -> Result<CouponId, IdError> {
        let ok = text.len() == 9 && text.starts_with('C') && text[1..].bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(CouponId(text.to_owned()))
        } else {
            Err(IdError { what: "coupon id", value: text.chars().take(40).collect(), rule: "C and 8 digits" })
        }
    }

    /// The store's `n`th coupon.
    pub fn numbered(n: u64) -> CouponId {
        CouponId(format!("C{:08}", n % 100_000_000))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CouponId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a scanned text is not a usable coupon code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CouponCodeError {
    #[error("not a coupon code")]
    NotCouponCode,
    #[error("a coupon code of a format this till does not know")]
    Malformed,
    #[error("the coupon code does not check out (misread, altered or not this store's)")]
    BadSignature,
}

/// A coupon code as scanned: the coupon's id and the code's signature, not yet checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CouponCode {
    coupon_id: CouponId,
    mac: [u8; MAC_BYTES],
}

impl CouponCode {
    /// The code of `coupon_id`, signed with the store's key.
    pub fn issue(key: &MemberKey, coupon_id: CouponId) -> CouponCode {
        let mac = key.sign(COUPON_CODE_PREFIX, coupon_id.as_str());
        CouponCode { coupon_id, mac }
    }

    /// Reads `CKC1:<coupon id>:<16 hex digits>`; says nothing yet of the signature.
    pub fn parse(text: &str) -> Result<CouponCode, CouponCodeError> {
        let rest = text.trim().strip_prefix(COUPON_CODE_PREFIX).ok_or(CouponCodeError::NotCouponCode)?;
        let (id, mac) = rest.split_once(':').ok_or(CouponCodeError::Malformed)?;
        let coupon_id = CouponId::parse(id).map_err(|_| CouponCodeError::Malformed)?;
        let mac = unhex(mac).ok_or(CouponCodeError::Malformed)?;
        Ok(CouponCode { coupon_id, mac })
    }

    /// The coupon, when the code is signed with `key`.
    pub fn verify(&self, key: &MemberKey) -> Result<&CouponId, CouponCodeError> {
        if same_signature(&key.sign(COUPON_CODE_PREFIX, self.coupon_id.as_str()), &self.mac) {
            Ok(&self.coupon_id)
        } else {
            Err(CouponCodeError::BadSignature)
        }
    }

    /// The code's text, as printed or sent to the customer.
    pub fn text(&self) -> String {
        format!("{COUPON_CODE_PREFIX}{}:{}", self.coupon_id, hex(&self.mac))
    }
}

/// What a coupon takes off a basket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CouponDiscount {
    /// This much off (never more than the basket).
    AmountOff(Money),
    /// This many percent off (1 to 100), rounded down to the minor unit.
    PercentOff(u32),
}

impl CouponDiscount {
    /// What the coupon takes off a basket of `total` (at most the basket; nothing below zero).
    pub fn off(&self, total: Money) -> Money {
        let minor = match self {
            CouponDiscount::AmountOff(amount) => amount.minor_units.min(total.minor_units),
            CouponDiscount::PercentOff(percent) => {
                (i128::from(total.minor_units) * i128::from((*percent).min(100)) / 100) as i64
            }
        };
        Money::new(minor.max(0), total.currency)
    }
}

/// Where a coupon stands. It moves Issued -> Held -> Redeemed, or back to Issued when its sale is abandoned
/// or its payment reversed; Void ends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CouponState {
    Issued,
    /// Scanned into a sale not paid yet: no other sale can take it.
    Held {
        sale_id: SaleId,
        at: UnixMillis,
    },
    Redeemed {
        sale_id: SaleId,
        out_trade_no: OutTradeNo,
        at: UnixMillis,
    },
    Void {
        reason: String,
        at: UnixMillis,
    },
}

/// A coupon as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponRecord {
    pub coupon_id: CouponId,
    pub discount: CouponDiscount,
    /// The basket must come to at least this.
    pub min_basket: Money,
    /// Valid from and until (exclusive).
    pub valid_from: UnixMillis,
    pub valid_until: UnixMillis,
    pub state: CouponState,
    pub issued_at: UnixMillis,
    /// What it is for, for the cashier and the manager ("spring campaign").
    pub note: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;

    #[test]
    fn a_coupon_code_checks_out_only_under_its_key_and_not_as_a_member_code() {
        let key = MemberKey::from_bytes(&[3; 32]).unwrap();
        let code = CouponCode::issue(&key, CouponId::numbered(7));
        let text = code.text();
        assert!(text.starts_with("CKC1:C00000007:"), "{text}");
        assert_eq!(CouponCode::parse(&text).unwrap().verify(&key).unwrap().as_str(), "C00000007");
        let other = text.replace("C00000007", "C00000008");
        assert_eq!(CouponCode::parse(&other).unwrap().verify(&key), Err(CouponCodeError::BadSignature));
        // The same id and signature as a member code: another domain, refused.
        let member = crate::MemberCode::parse(&text.replace("CKC1:", "CKM1:")).unwrap();
        assert!(member.verify(&key).is_err());
        assert_eq!(CouponCode::parse("CKC1:C0000007:0011223344556677"), Err(CouponCodeError::Malformed));
    }

    #[test]
    fn a_discount_never_takes_off_more_than_the_basket() {
        let cny = |fen| Money::new(fen, Currency::CNY);
        assert_eq!(CouponDiscount::AmountOff(cny(1_000)).off(cny(5_000)), cny(1_000));
        assert_eq!(CouponDiscount::AmountOff(cny(1_000)).off(cny(600)), cny(600));
        assert_eq!(CouponDiscount::PercentOff(15).off(cny(999)), cny(149));
        assert_eq!(CouponDiscount::PercentOff(250).off(cny(999)), cny(999));
    }
}
