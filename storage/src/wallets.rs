//! Simulated customers' wallet apps: single-use payment codes in the real formats, and how the simulated provider checks them.
//!
//! Like real wallet codes (a one-time password over the user's key and the
//! time), a simulated code is `prefix | wallet number | issue tick | MAC`:
//! the provider recomputes the MAC from the shared seed, so codes need no
//! shared list, expire after a minute and can be refused when reused.
//!
//! | provider | prefix | length | wallet | tick (0.1 s, mod 10^6) | MAC |
//! |---|---|---|---|---|---|
//! | WeChat Pay | 13 | 18 | 4 | 6 | 6 |
//! | Alipay | 28 | 18 | 4 | 6 | 6 |
//! | UnionPay | 62 | 19 | 4 | 6 | 7 |

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{PaymentCode, Provider, UnixMillis};

/// How long a code may be charged after it was made, as the providers document.
pub const CODE_LIFETIME_MILLIS: i64 = 60_000;
const TICK_MILLIS: i64 = 100;
const TICK_MODULUS: i64 = 1_000_000;
/// Clock skew between phone and provider that is forgiven.
const SKEW_TICKS: i64 = 50;

/// One customer's wallet at one provider.
#[derive(Clone)]
pub struct SimulatedWallet {
    provider: Provider,
    number: u16,
    key: [u8; 32],
}

/// Why the simulated provider refuses a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimulatedCodeError {
    /// Not made by any wallet of this seed (WeChat's AUTH_CODE_INVALID).
    Invalid,
    /// Older than a minute (AUTHCODEEXPIRE).
    Expired,
}

fn prefix_and_mac_len(provider: Provider) -> (&'static str, usize) {
    match provider {
        Provider::WeChatPay => ("13", 6),
        Provider::Alipay => ("28", 6),
        Provider::UnionPay => ("62", 7),
    }
}

fn wallet_key(seed: &[u8], provider: Provider, number: u16) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(seed).expect("HMAC takes keys of any length");
    mac.update(prefix_and_mac_len(provider).0.as_bytes());
    mac.update(&number.to_be_bytes());
    mac.finalize().into_bytes().into()
}

fn mac_digits(key: &[u8; 32], body: &str, len: usize) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(body.as_bytes());
    let bytes = mac.finalize().into_bytes();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes[..8]);
    let value = u64::from_be_bytes(first) % 10u64.pow(len as u32);
    format!("{value:0len$}")
}

fn tick_of(at: UnixMillis) -> i64 {
    (at.0 / TICK_MILLIS).rem_euclid(TICK_MODULUS)
}

impl SimulatedWallet {
    /// Wallet `number` (0 to 9999) of `provider`, keyed from the shared `seed`.
    pub fn new(seed: &[u8], provider: Provider, number: u16) -> SimulatedWallet {
        let number = number % 10_000;
        SimulatedWallet { provider, number, key: wallet_key(seed, provider, number) }
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }

    pub fn number(&self) -> u16 {
        self.number
    }

    /// The code the wallet app shows at `at`. Codes made in the same tenth of a second are equal.
    pub fn issue_code(&self, at: UnixMillis) -> PaymentCode {
        let (prefix, mac_len) = prefix_and_mac_len(self.provider);
        let body = format!("{prefix}{:04}{:06}", self.number, tick_of(at));
        let code = format!("{body}{}", mac_digits(&self.key, &body, mac_len));
        match PaymentCode::parse(&code) {
            Ok(code) => code,
            // The table above is inside every provider's prefix and length range.
            Err(e) => unreachable!("simulated code outside the provider table: {e}"),
        }
    }
}

/// Checks a code against the wallets of `seed`: which wallet made it, unless it is forged or expired.
pub fn check_simulated_code(
    seed: &[u8],
    code: &PaymentCode,
    now: UnixMillis,
) -> Result<SimulatedWallet, SimulatedCodeError> {
    let provider = code.provider();
    let (prefix, mac_len) = prefix_and_mac_len(provider);
    let digits = code.expose_digits();
    if !digits.starts_with(prefix) || digits.len() != 2 + 4 + 6 + mac_len {
        return Err(SimulatedCodeError::Invalid);
    }
    let number: u16 = digits[2..6].parse().map_err(|_| SimulatedCodeError::Invalid)?;
    let tick: i64 = digits[6..12].parse().map_err(|_| SimulatedCodeError::Invalid)?;
    let wallet = SimulatedWallet::new(seed, provider, number);
    let expected = mac_digits(&wallet.key, &digits[..12], mac_len);
    // Not constant-time: this is a simulator, not a provider.
    if expected != digits[12..] {
        return Err(SimulatedCodeError::Invalid);
    }
    let age_ticks = (tick_of(now) - tick).rem_euclid(TICK_MODULUS);
    let future_skew = age_ticks > TICK_MODULUS - SKEW_TICKS;
    if !future_skew && age_ticks * TICK_MILLIS > CODE_LIFETIME_MILLIS {
        return Err(SimulatedCodeError::Expired);
    }
    Ok(wallet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_in_the_provider_table_and_verify() {
        let now = UnixMillis(1_764_000_000_000);
        for provider in Provider::ALL {
            let wallet = SimulatedWallet::new(b"seed", provider, 42);
            let code = wallet.issue_code(now);
            assert_eq!(code.provider(), provider);
            let found = check_simulated_code(b"seed", &code, UnixMillis(now.0 + 59_000)).unwrap();
            assert_eq!(found.number(), 42);
            assert_eq!(
                check_simulated_code(b"seed", &code, UnixMillis(now.0 + 61_000)).err(),
                Some(SimulatedCodeError::Expired)
            );
            assert_eq!(check_simulated_code(b"other seed", &code, now).err(), Some(SimulatedCodeError::Invalid));
        }
    }

    #[test]
    fn a_changed_digit_is_refused() {
        let now = UnixMillis(1_764_000_000_000);
        let code = SimulatedWallet::new(b"seed", Provider::WeChatPay, 7).issue_code(now);
        let mut digits = code.expose_digits().to_owned().into_bytes();
        digits[10] = if digits[10] == b'9' { b'0' } else { digits[10] + 1 };
        let forged = PaymentCode::parse(std::str::from_utf8(&digits).unwrap()).unwrap();
        assert_eq!(check_simulated_code(b"seed", &forged, now).err(), Some(SimulatedCodeError::Invalid));
    }
}
