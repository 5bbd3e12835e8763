//! Identifiers of stores, lanes, sales and charges, each checked once at the edge.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is invalid: {rule}")]
pub struct IdError {
    pub what: &'static str,
    pub value: String,
    pub rule: &'static str,
}

fn check(what: &'static str, value: &str, max: usize, allow_dash: bool, rule: &'static str) -> Result<(), IdError> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || (allow_dash && b == b'-'));
    if ok { Ok(()) } else { Err(IdError { what, value: value.chars().take(40).collect(), rule }) }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal, $dash:literal, $rule:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: &str) -> Result<$name, IdError> {
                check($what, value, $max, $dash, $rule)?;
                Ok($name(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

string_id!(
    /// The store, as the providers know the merchant's terminal group: "S001".
    StoreId, "store id", 6, false, "1 to 6 letters or digits"
);
string_id!(
    /// One checkout lane of the store: "L1".
    LaneId, "lane id", 6, false, "1 to 6 letters or digits"
);
string_id!(
    /// One customer's sale at a lane, made by the lane: "L1-MIH4K2AB".
    SaleId, "sale id", 20, true, "1 to 20 letters, digits or dashes"
);
string_id!(
    /// The merchant order number of one charge attempt (WeChat `out_trade_no`).
    OutTradeNo, "out_trade_no", 32, true, "1 to 32 letters, digits or dashes"
);
string_id!(
    /// One cashier's shift at a lane, made by the lane when the cashier signs on: "L1-MIH4K2AB".
    ShiftId, "shift id", 20, true, "1 to 20 letters, digits or dashes"
);
string_id!(
    /// The cashier signed on to a lane, as the store's staff list knows them: "C042" or "anna-li".
    CashierId, "cashier id", 20, true, "1 to 20 letters, digits or dashes"
);

/// Which code a customer showed for a sale: 1 for the first, then 2, 3...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Attempt(u8);

impl Attempt {
    pub const MAX: u32 = 99;

    pub fn new(n: u32) -> Result<Attempt, IdError> {
        if (1..=Self::MAX).contains(&n) {
            Ok(Attempt(n as u8))
        } else {
            Err(IdError { what: "attempt", value: n.to_string(), rule: "1 to 99" })
        }
    }

    pub fn get(self) -> u32 {
        u32::from(self.0)
    }
}

impl OutTradeNo {
    /// The order number of a charge, derived only from what identifies it, so
    /// a repeated request names the same order: `S001-L1-MIH4K2AB-1`.
    /// At most 6 + 1 + 20 + 1 + 2 = 30 characters.
    pub fn derive(store: &StoreId, sale: &SaleId, attempt: Attempt) -> OutTradeNo {
        OutTradeNo(format!("{store}-{sale}-{}", attempt.get()))
    }
}

impl LaneId {
    /// Below every lane id (an empty one, which `parse` refuses): where a range over lanes starts.
    pub(crate) fn lowest() -> LaneId {
        LaneId(String::new())
    }
}

/// Milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    pub fn now() -> UnixMillis {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        UnixMillis(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(LaneId::parse("L1").is_ok());
        assert!(LaneId::parse("").is_err());
        assert!(LaneId::parse("LANE-1").is_err());
        assert!(LaneId::parse("L1234567").is_err());
        assert!(SaleId::parse("L1-MIH4K2AB").is_ok());
        assert!(SaleId::parse("L1 MIH4K2AB").is_err());
        assert!(Attempt::new(0).is_err());
        assert!(Attempt::new(100).is_err());
    }

    #[test]
    fn out_trade_no_is_deterministic_and_short_enough() {
        let store = StoreId::parse("S12345").unwrap();
        let sale = SaleId::parse("ABCDEF-0123456789ABC").unwrap();
        let attempt = Attempt::new(99).unwrap();
        let a = OutTradeNo::derive(&store, &sale, attempt);
        assert_eq!(a, OutTradeNo::derive(&store, &sale, attempt));
        assert!(a.as_str().len() <= 32);
        assert!(OutTradeNo::parse(a.as_str()).is_ok());
        assert_ne!(a, OutTradeNo::derive(&store, &sale, Attempt::new(98).unwrap()));
    }
}
