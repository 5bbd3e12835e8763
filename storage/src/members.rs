//! Store members: their ids, the signed member codes they show at the till (`CKM1:<member id>:<mac>`), and
//! the records the ledger keeps of them and of their points.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::{IdError, OutTradeNo, SaleId, UnixMillis};

/// What a member code starts with (the format's version 1).
pub const MEMBER_CODE_PREFIX: &str = "CKM1:";
/// Bytes of HMAC-SHA256 a member code carries (as 16 hex digits): a typo or a forgery passes with a
/// chance of one in 2^64.
pub(crate) const MAC_BYTES: usize = 8;

/// A member's id: 4 to 20 upper-case letters and digits (the store makes them `M` and 8 digits).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MemberId(String);

impl MemberId {
    pub fn parse(text: &str) -> Result<MemberId, IdError> {
        let ok = (4..=20).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if ok {
            Ok(MemberId(text.to_owned()))
        } else {
            Err(IdError { what: "member id", value: text.chars().take(40).collect(), rule: "4 to 20 of A-Z, 0-9" })
        }
    }

    /// The store's id for its `n`th member.
    pub fn numbered(n: u64) -> MemberId {
        MemberId(format!("M{:08}", n % 100_000_000))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for MemberId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The store's key that signs member codes. Lanes hold it to refuse typos and forgeries offline.
#[derive(Clone, PartialEq, Eq)]
pub struct MemberKey([u8; 32]);

impl std::fmt::Debug for MemberKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemberKey(..)")
    }
}

impl MemberKey {
    pub fn from_bytes(bytes: &[u8]) -> Option<MemberKey> {
        bytes.try_into().ok().map(MemberKey)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn mac(&self, member_id: &MemberId) -> [u8; MAC_BYTES] {
        self.sign(MEMBER_CODE_PREFIX, member_id.as_str())
    }

    /// The signature of `id` in codes that start with `prefix` (each kind of code its own domain).
    pub(crate) fn sign(&self, prefix: &str, id: &str) -> [u8; MAC_BYTES] {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.0) else {
            unreachable!("HMAC takes keys of any length")
        };
        mac.update(prefix.as_bytes());
        mac.update(id.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; MAC_BYTES];
        out.copy_from_slice(&full[..MAC_BYTES]);
        out
    }
}

/// Why a scanned text is not a member code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberCodeError {
    #[error("not a member code")]
    NotMemberCode,
    #[error("a member code of a format this till does not know")]
    Malformed,
    #[error("the member code does not check out (misread, altered or not this store's)")]
    BadSignature,
}

/// A member code as scanned: the member's id and the code's signature, not yet checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemberCode {
    member_id: MemberId,
    mac: [u8; MAC_BYTES],
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

pub(crate) fn unhex(text: &str) -> Option<[u8; MAC_BYTES]> {
    if text.len() != MAC_BYTES * 2 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; MAC_BYTES];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Compares two signatures in constant time.
pub(crate) fn same_signature(a: &[u8; MAC_BYTES], b: &[u8; MAC_BYTES]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl MemberCode {
    /// The member code of `member_id`, signed with `key`.
    pub fn issue(key: &MemberKey, member_id: MemberId) -> MemberCode {
        let mac = key.mac(&member_id);
        MemberCode { member_id, mac }
    }

    /// Reads `CKM1:<member id>:<16 hex digits>`; says nothing yet of the signature.
    pub fn parse(text: &str) -> Result<MemberCode, MemberCodeError> {
        let rest = text.trim().strip_prefix(MEMBER_CODE_PREFIX).ok_or(MemberCodeError::NotMemberCode)?;
        let (id, mac) = rest.split_once(':').ok_or(MemberCodeError::Malformed)?;
        let member_id = MemberId::parse(id).map_err(|_| MemberCodeError::Malformed)?;
        let mac = unhex(mac).ok_or(MemberCodeError::Malformed)?;
        Ok(MemberCode { member_id, mac })
    }

    /// The member, when the code is signed with `key` (compared in constant time).
    pub fn verify(&self, key: &MemberKey) -> Result<&MemberId, MemberCodeError> {
        if same_signature(&key.mac(&self.member_id), &self.mac) {
            Ok(&self.member_id)
        } else {
            Err(MemberCodeError::BadSignature)
        }
    }

    /// The member the code names (checked or not).
    pub fn claimed_member(&self) -> &MemberId {
        &self.member_id
    }

    /// The code's text, as printed on the card or shown in the app.
    pub fn text(&self) -> String {
        format!("{MEMBER_CODE_PREFIX}{}:{}", self.member_id, hex(&self.mac))
    }
}

/// A member as the ledger keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub member_id: MemberId,
    pub name: String,
    pub created_at: UnixMillis,
    /// Why a manager blocked the member (their code is refused at the till); `None` while in good standing.
    pub blocked: Option<String>,
}

/// Why points moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PointsReason {
    /// Earned by a paid sale.
    Sale,
    /// Taken back with a refund of the sale's payment (its refund number).
    Refund { out_refund_no: String },
    /// Taken back when the sale's payment was reversed (all the money went back).
    Reversal,
}

/// One movement of a member's points, at most one per sale and reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsEntry {
    pub member_id: MemberId,
    pub sale_id: SaleId,
    pub out_trade_no: OutTradeNo,
    /// Positive when earned, negative when taken back.
    pub points: i64,
    pub reason: PointsReason,
    pub at: UnixMillis,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MemberKey {
        MemberKey([byte; 32])
    }

    #[test]
    fn a_member_code_round_trips_and_checks_out_only_under_its_key() {
        let code = MemberCode::issue(&key(7), MemberId::numbered(42));
        let text = code.text();
        assert!(text.starts_with("CKM1:M00000042:") && text.len() == "CKM1:M00000042:".len() + 16, "{text}");
        let read = MemberCode::parse(&text).unwrap();
        assert_eq!(read.verify(&key(7)).unwrap().as_str(), "M00000042");
        assert_eq!(read.verify(&key(8)), Err(MemberCodeError::BadSignature), "another store's key");
    }

    #[test]
    fn an_altered_or_mistyped_member_code_is_refused() {
        let text = MemberCode::issue(&key(7), MemberId::numbered(42)).text();
        let other_member = text.replace("M00000042", "M00000043");
        assert_eq!(MemberCode::parse(&other_member).unwrap().verify(&key(7)), Err(MemberCodeError::BadSignature));
        let last = text.chars().last().unwrap();
        let flipped = format!("{}{}", &text[..text.len() - 1], if last == '0' { '1' } else { '0' });
        assert_eq!(MemberCode::parse(&flipped).unwrap().verify(&key(7)), Err(MemberCodeError::BadSignature));
        assert_eq!(MemberCode::parse("CKM1:M00000042"), Err(MemberCodeError::Malformed));
        assert_eq!(MemberCode::parse("CKM1:m1:0011223344556677"), Err(MemberCodeError::Malformed));
        assert_eq!(MemberCode::parse("CKM1:M00000042:00112233445566ZZ"), Err(MemberCodeError::Malformed));
        assert_eq!(MemberCode::parse("6901234567892"), Err(MemberCodeError::NotMemberCode));
    }
}
