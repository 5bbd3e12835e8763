//! Money as integer minor units (fen, cents) of an ISO 4217 currency; never floats.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An ISO 4217 currency code: three ASCII upper-case letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Chinese yuan renminbi, the currency wallets charge in.
    pub const CNY: Currency = Currency(*b"CNY");

    /// Parses "CNY"; anything but three upper-case ASCII letters is refused.
    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        let bytes = code.as_bytes();
        match bytes {
            [a, b, c] if bytes.iter().all(u8::is_ascii_uppercase) => Ok(Currency([*a, *b, *c])),
            _ => Err(MoneyError::BadCurrency(code.chars().take(16).collect())),
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from three ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount: a count of minor units (1/100 of the unit for CNY) of one currency.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub minor_units: i64,
    pub currency: Currency,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currency {0:?} is not an ISO 4217 code (three upper-case letters)")]
    BadCurrency(String),
    #[error("cannot combine {left} and {right}: different currencies")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error("amount overflows")]
    Overflow,
    #[error("amount must be positive, got {0}")]
    NotPositive(i64),
}

impl Money {
    pub const fn new(minor_units: i64, currency: Currency) -> Money {
        Money { minor_units, currency }
    }

    pub const fn zero(currency: Currency) -> Money {
        Money { minor_units: 0, currency }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch { left: self.currency, right: other.currency });
        }
        let minor_units = self.minor_units.checked_add(other.minor_units).ok_or(MoneyError::Overflow)?;
        Ok(Money { minor_units, currency: self.currency })
    }

    pub fn checked_mul(self, factor: u32) -> Result<Money, MoneyError> {
        let minor_units = self.minor_units.checked_mul(i64::from(factor)).ok_or(MoneyError::Overflow)?;
        Ok(Money { minor_units, currency: self.currency })
    }

    /// Refuses zero and negative amounts: what a charge must be.
    pub fn positive(self) -> Result<Money, MoneyError> {
        if self.minor_units > 0 { Ok(self) } else { Err(MoneyError::NotPositive(self.minor_units)) }
    }
}

impl fmt::Display for Money {
    /// `12.34 CNY`: two decimals, as every currency the store takes has them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.minor_units < 0 { "-" } else { "" };
        let abs = self.minor_units.unsigned_abs();
        write!(f, "{sign}{}.{:02} {}", abs / 100, abs % 100, self.currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_parsing_accepts_only_iso_shape() {
        assert_eq!(Currency::parse("CNY").unwrap(), Currency::CNY);
        for bad in ["", "cny", "CN", "CNYY", "C1Y", "€€€"] {
            assert!(Currency::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn adding_different_currencies_is_refused() {
        let usd = Currency::parse("USD").unwrap();
        let err = Money::new(1, Currency::CNY).checked_add(Money::new(1, usd)).unwrap_err();
        assert!(matches!(err, MoneyError::CurrencyMismatch { .. }));
        assert_eq!(Money::new(i64::MAX, usd).checked_add(Money::new(1, usd)), Err(MoneyError::Overflow));
    }

    #[test]
    fn display_has_two_decimals() {
        assert_eq!(Money::new(1234, Currency::CNY).to_string(), "12.34 CNY");
        assert_eq!(Money::new(-5, Currency::CNY).to_string(), "-0.05 CNY");
        assert_eq!(Money::new(0, Currency::CNY).to_string(), "0.00 CNY");
    }

    #[test]
    fn charges_must_be_positive() {
        assert!(Money::new(0, Currency::CNY).positive().is_err());
        assert!(Money::new(-1, Currency::CNY).positive().is_err());
        assert!(Money::new(1, Currency::CNY).positive().is_ok());
    }
}
