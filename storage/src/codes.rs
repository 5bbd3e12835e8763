//! What a scanned code is: a product's GTIN, a customer's wallet payment code, or neither.
//!
//! The payment code table is the providers' (summarised in `coordinator/providers.md`):
//! WeChat Pay 18 digits starting 10..=15, Alipay 16 to 24 digits starting
//! 25..=30, UnionPay QuickPass 16 to 20 digits (19 usually) starting 62.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A product's GTIN with a valid check digit, normalised for catalog look-ups:
/// GTIN-8 stays 8 digits, UPC-A (GTIN-12) gains a leading zero to become the
/// equal GTIN-13, GTIN-13 stays, GTIN-14 with a leading zero drops it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProductCode(String);

/// Why a string is not a product code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductCodeError {
    #[error("a GTIN has only digits")]
    NotDigits,
    #[error("a GTIN has 8, 12, 13 or 14 digits, not {0}")]
    BadLength(usize),
    #[error("check digit is {found}, expected {expected}")]
    BadCheckDigit { found: u8, expected: u8 },
}

/// The GS1 check digit of `body` (all digits but the last).
pub fn gtin_check_digit(body: &[u8]) -> u8 {
    // Weights 3,1,3,1... from the rightmost body digit.
    let sum: u32 =
        body.iter().rev().enumerate().map(|(i, d)| u32::from(d - b'0') * if i % 2 == 0 { 3 } else { 1 }).sum();
    ((10 - sum % 10) % 10) as u8
}

impl ProductCode {
    pub fn parse(text: &str) -> Result<ProductCode, ProductCodeError> {
        let bytes = text.as_bytes();
        if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(ProductCodeError::NotDigits);
        }
        if !matches!(bytes.len(), 8 | 12 | 13 | 14) {
            return Err(ProductCodeError::BadLength(bytes.len()));
        }
        let (body, last) = bytes.split_at(bytes.len() - 1);
        let expected = gtin_check_digit(body);
        let found = last[0] - b'0';
        if found != expected {
            return Err(ProductCodeError::BadCheckDigit { found, expected });
        }
        let normalised = match bytes.len() {
            12 => format!("0{text}"),
            14 if bytes[0] == b'0' => text[1..].to_owned(),
            _ => text.to_owned(),
        };
        Ok(ProductCode(normalised))
    }

    /// Appends the check digit to a body of 7, 11 or 12 digits.
    pub fn from_body(body: &str) -> Result<ProductCode, ProductCodeError> {
        if !body.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ProductCodeError::NotDigits);
        }
        let check = gtin_check_digit(body.as_bytes());
        ProductCode::parse(&format!("{body}{check}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProductCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ProductCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProductCode({})", self.0)
    }
}

/// The wallet a payment code belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Provider {
    WeChatPay,
    Alipay,
    UnionPay,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::WeChatPay, Provider::Alipay, Provider::UnionPay];

    /// Which provider issues codes of this shape, by the prefix and length table.
    pub fn of_code(digits: &str) -> Option<Provider> {
        let bytes = digits.as_bytes();
        if bytes.len() < 2 || !bytes.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let prefix = u32::from(bytes[0] - b'0') * 10 + u32::from(bytes[1] - b'0');
        let len = bytes.len();
        match prefix {
            10..=15 if len == 18 => Some(Provider::WeChatPay),
            25..=30 if (16..=24).contains(&len) => Some(Provider::Alipay),
            62 if (16..=20).contains(&len) => Some(Provider::UnionPay),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Provider::WeChatPay => "WeChat Pay",
            Provider::Alipay => "Alipay",
            Provider::UnionPay => "UnionPay QuickPass",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A customer's single-use wallet payment code, held only in memory.
///
/// It has no `Serialize`, and its `Debug` and `Display` print the masked
/// form: the full digits leave the process only in the charge request to the
/// provider, through [`PaymentCode::expose_digits`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PaymentCode {
    digits: String,
    provider: Provider,
}

/// The longest payment code of any provider (Alipay: 24 digits).
pub const MAX_PAYMENT_CODE_DIGITS: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentCodeError {
    #[error("a payment code has only digits")]
    NotDigits,
    #[error("a payment code has at most {MAX_PAYMENT_CODE_DIGITS} digits, not {length}")]
    TooLong { length: usize },
    #[error(
        "{masked} matches no provider's prefix and length (WeChat Pay: 18 digits from 10-15, Alipay: 16-24 digits from 25-30, UnionPay: 16-20 digits from 62)"
    )]
    UnknownProvider { masked: MaskedCode },
}

impl PaymentCode {
    pub fn parse(text: &str) -> Result<PaymentCode, PaymentCodeError> {
        let digits = text.trim();
        if digits.len() > MAX_PAYMENT_CODE_DIGITS {
            return Err(PaymentCodeError::TooLong { length: digits.len() });
        }
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PaymentCodeError::NotDigits);
        }
        match Provider::of_code(digits) {
            Some(provider) => Ok(PaymentCode { digits: digits.to_owned(), provider }),
            None => Err(PaymentCodeError::UnknownProvider { masked: MaskedCode::of(digits) }),
        }
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }

    pub fn masked(&self) -> MaskedCode {
        MaskedCode::of(&self.digits)
    }

    /// The full digits, for the one place that needs them: the provider request.
    pub fn expose_digits(&self) -> &str {
        &self.digits
    }
}

impl fmt::Debug for PaymentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PaymentCode({}, {})", self.provider.name(), self.masked())
    }
}

impl fmt::Display for PaymentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.masked(), f)
    }
}

/// A payment code with all but its first 4 and last 4 digits replaced by `*`:
/// the only form that is ever logged, stored or shown.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MaskedCode(String);

impl MaskedCode {
    pub fn of(code: &str) -> MaskedCode {
        let chars: Vec<char> = code.chars().collect();
        let n = chars.len();
        let masked: String = if n <= 8 {
            // Too short to show both ends without showing most of it.
            "*".repeat(n)
        } else {
            chars.iter().enumerate().map(|(i, c)| if i < 4 || i >= n - 4 { *c } else { '*' }).collect()
        };
        MaskedCode(masked)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MaskedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MaskedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// A keyed hash of a payment code: spots a code shown again without keeping the code.
///
/// HMAC-SHA256 under a random key of the data folder, cut to 16 bytes. The same code gives the same
/// fingerprint in one store; without the key a fingerprint says nothing about the code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CodeFingerprint(pub [u8; 16]);

impl CodeFingerprint {
    pub fn of(code: &PaymentCode, key: &[u8]) -> CodeFingerprint {
        use hmac::{Hmac, Mac};
        let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key) else {
            unreachable!("HMAC takes keys of any length")
        };
        mac.update(code.expose_digits().as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut fingerprint = [0u8; 16];
        fingerprint.copy_from_slice(&digest[..16]);
        CodeFingerprint(fingerprint)
    }
}

impl fmt::Debug for CodeFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0[..4].iter().try_for_each(|b| write!(f, "{b:02x}"))?;
        f.write_str("…")
    }
}

/// The barcode symbologies a lane reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Symbology {
    QrCode,
    Code128,
    Ean13,
    Ean8,
    UpcA,
    UpcE,
}

impl Symbology {
    pub fn name(self) -> &'static str {
        match self {
            Symbology::QrCode => "QR_CODE",
            Symbology::Code128 => "CODE_128",
            Symbology::Ean13 => "EAN_13",
            Symbology::Ean8 => "EAN_8",
            Symbology::UpcA => "UPC_A",
            Symbology::UpcE => "UPC_E",
        }
    }

    fn is_retail_product(self) -> bool {
        matches!(self, Symbology::Ean13 | Symbology::Ean8 | Symbology::UpcA | Symbology::UpcE)
    }
}

/// What a decoded code means to the lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScannedCode {
    Product(ProductCode),
    Payment(PaymentCode),
    /// A store member's code (its signature checked by the till, which holds the store's key).
    Member(crate::MemberCode),
    /// A one-time coupon's code (signed like member codes).
    Coupon(crate::CouponCode),
    Unrecognised {
        reason: String,
    },
}

/// Expands an 8-digit UPC-E (number system, 6 digits, check) to its UPC-A digits.
pub fn upc_e_to_upc_a(upc_e: &str) -> Option<String> {
    let b = upc_e.as_bytes();
    if b.len() != 8 || !b.iter().all(u8::is_ascii_digit) || !matches!(b[0], b'0' | b'1') {
        return None;
    }
    let ns = b[0] as char;
    let d: Vec<char> = upc_e[1..7].chars().collect();
    let check = b[7] as char;
    let body: String = match d[5] {
        '0' | '1' | '2' => format!("{}{}{}0000{}{}{}", d[0], d[1], d[5], d[2], d[3], d[4]),
        '3' => format!("{}{}{}00000{}{}", d[0], d[1], d[2], d[3], d[4]),
        '4' => format!("{}{}{}{}00000{}", d[0], d[1], d[2], d[3], d[4]),
        _ => format!("{}{}{}{}{}0000{}", d[0], d[1], d[2], d[3], d[4], d[5]),
    };
    Some(format!("{ns}{body}{check}"))
}

/// Classifies the text of a decoded barcode.
pub fn classify(text: &str, symbology: Symbology) -> ScannedCode {
    let text = text.trim();
    if symbology.is_retail_product() {
        let gtin = match symbology {
            Symbology::UpcE => match upc_e_to_upc_a(text) {
                Some(upc_a) => upc_a,
                None => return unrecognised("not a product or payment code: malformed UPC-E"),
            },
            _ => text.to_owned(),
        };
        return match ProductCode::parse(&gtin) {
            Ok(code) => ScannedCode::Product(code),
            Err(e) => unrecognised(&format!("not a product or payment code: {e}")),
        };
    }
    if text.starts_with(crate::COUPON_CODE_PREFIX) {
        return match crate::CouponCode::parse(text) {
            Ok(code) => ScannedCode::Coupon(code),
            Err(e) => unrecognised(&e.to_string()),
        };
    }
    if text.starts_with(crate::MEMBER_CODE_PREFIX) {
        return match crate::MemberCode::parse(text) {
            Ok(code) => ScannedCode::Member(code),
            Err(e) => unrecognised(&e.to_string()),
        };
    }
    match PaymentCode::parse(text) {
        Ok(code) => ScannedCode::Payment(code),
        Err(PaymentCodeError::NotDigits | PaymentCodeError::TooLong { .. }) => {
            unrecognised("not a product or payment code")
        }
        Err(PaymentCodeError::UnknownProvider { masked }) => {
            unrecognised(&format!("not a product or payment code: {masked} is no known wallet's code"))
        }
    }
}

fn unrecognised(reason: &str) -> ScannedCode {
    ScannedCode::Unrecognised { reason: reason.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtin_check_digits() {
        assert!(ProductCode::parse("4006381333931").is_ok());
        assert!(ProductCode::parse("96385074").is_ok());
        assert_eq!(ProductCode::parse("4006381333932"), Err(ProductCodeError::BadCheckDigit { found: 2, expected: 1 }));
        assert_eq!(ProductCode::parse("400638133393"), Err(ProductCodeError::BadCheckDigit { found: 3, expected: 0 }));
        assert_eq!(ProductCode::parse("12345"), Err(ProductCodeError::BadLength(5)));
        assert_eq!(ProductCode::parse("40063813339a"), Err(ProductCodeError::NotDigits));
    }

    #[test]
    fn upc_a_and_its_ean13_form_are_the_same_product() {
        let upc_a = ProductCode::parse("036000291452").unwrap();
        let ean = ProductCode::parse("0036000291452").unwrap();
        assert_eq!(upc_a, ean);
        assert_eq!(upc_a.as_str(), "0036000291452");
    }

    #[test]
    fn upc_e_expands_to_upc_a() {
        // 0 123456 5 and friends from the GS1 expansion rules.
        assert_eq!(upc_e_to_upc_a("01234565").as_deref(), Some("012345000065"));
        assert_eq!(upc_e_to_upc_a("01234505").as_deref(), Some("012000003455"));
        assert_eq!(upc_e_to_upc_a("21234505"), None);
        match classify("01234565", Symbology::UpcE) {
            ScannedCode::Product(p) => assert_eq!(p.as_str(), "0012345000065"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn payment_prefix_and_length_table() {
        let cases: &[(&str, Option<Provider>)] = &[
            ("100000000000000000", Some(Provider::WeChatPay)),
            ("159999999999999999", Some(Provider::WeChatPay)),
            ("160000000000000000", None),
            ("090000000000000000", None),
            ("10000000000000000", None),   // 17 digits
            ("1000000000000000000", None), // 19 digits
            ("2500000000000000", Some(Provider::Alipay)),
            ("300000000000000000000000", Some(Provider::Alipay)),
            ("250000000000000", None),           // 15
            ("2500000000000000000000000", None), // 25
            ("310000000000000000", None),
            ("240000000000000000", None),
            ("6200000000000000000", Some(Provider::UnionPay)),
            ("6200000000000000", Some(Provider::UnionPay)),
            ("62000000000000000000", Some(Provider::UnionPay)),
            ("620000000000000", None),
            ("620000000000000000000", None),
            ("6300000000000000000", None),
        ];
        for (code, provider) in cases {
            assert_eq!(Provider::of_code(code), *provider, "{code}");
        }
    }

    #[test]
    fn payment_codes_are_masked_everywhere() {
        let code = PaymentCode::parse("134567890123456789").unwrap();
        assert_eq!(code.provider(), Provider::WeChatPay);
        assert_eq!(code.masked().as_str(), "1345**********6789");
        assert_eq!(format!("{code}"), "1345**********6789");
        assert!(!format!("{code:?}").contains("567890123456"));
    }

    #[test]
    fn classification() {
        assert!(matches!(classify("4006381333931", Symbology::Ean13), ScannedCode::Product(_)));
        assert!(matches!(classify("134567890123456789", Symbology::QrCode), ScannedCode::Payment(_)));
        assert!(matches!(classify("134567890123456789", Symbology::Code128), ScannedCode::Payment(_)));
        let ScannedCode::Unrecognised { reason } = classify("https://example.com", Symbology::QrCode) else { panic!() };
        assert!(reason.starts_with("not a product or payment code"));
        let ScannedCode::Unrecognised { reason } = classify("4006381333932", Symbology::Ean13) else { panic!() };
        assert!(reason.contains("check digit"), "{reason}");
        // A product's digits in a QR code are not a payment.
        assert!(matches!(classify("4006381333931", Symbology::QrCode), ScannedCode::Unrecognised { .. }));
        // An unknown wallet's code is reported masked.
        let ScannedCode::Unrecognised { reason } = classify("990000000012345678", Symbology::QrCode) else { panic!() };
        assert!(reason.contains("9900**********5678"), "{reason}");
    }
}
