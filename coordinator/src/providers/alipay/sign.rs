//! Alipay's RSA2 signatures and the framing of its answers.
//!
//! Requests are signed RSA2 (SHA256withRSA, PKCS#1 v1.5, base64) over the
//! sorted, non-empty `k=v` pairs without `sign`; an answer's signature covers
//! the exact text of its `*_response` JSON value and is checked with Alipay's
//! public key before anything in it is believed.

use std::collections::BTreeMap;

use base64::Engine as _;
use rsa::{
    RsaPrivateKey, RsaPublicKey,
    pkcs1v15::{Signature, SigningKey, VerifyingKey},
    pkcs8::{DecodePrivateKey, DecodePublicKey},
    signature::{SignatureEncoding, Signer, Verifier},
};
use sha2::Sha256;

/// Why a key cannot be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot read the {which} key: {reason}")]
pub struct KeyError {
    pub which: &'static str,
    pub reason: String,
}

fn pem_or_bare(text: &str, label: &str) -> String {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        return text.to_owned();
    }
    // Alipay's console hands keys out as bare base64: wrap them.
    let body: String = text.split_whitespace().collect();
    let lines: Vec<&str> =
        body.as_bytes().chunks(64).map(|chunk| std::str::from_utf8(chunk).unwrap_or_default()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// A PKCS#8 private key, PEM or bare base64.
pub fn private_key(text: &str) -> Result<RsaPrivateKey, KeyError> {
    RsaPrivateKey::from_pkcs8_pem(&pem_or_bare(text, "PRIVATE KEY"))
        .map_err(|e| KeyError { which: "private", reason: e.to_string() })
}

/// A SubjectPublicKeyInfo public key, PEM or bare base64.
pub fn public_key(text: &str) -> Result<RsaPublicKey, KeyError> {
    RsaPublicKey::from_public_key_pem(&pem_or_bare(text, "PUBLIC KEY"))
        .map_err(|e| KeyError { which: "public", reason: e.to_string() })
}

/// RSA2: SHA256withRSA (PKCS#1 v1.5) of `content`, base64.
pub fn rsa2_sign(key: &RsaPrivateKey, content: &str) -> String {
    let signer = SigningKey::<Sha256>::new(key.clone());
    let signature = signer.sign(content.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(signature.to_bytes())
}

/// Whether `signature` (base64) is RSA2 of `content` under `key`.
pub fn rsa2_verify(key: &RsaPublicKey, content: &str, signature: &str) -> bool {
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else { return false };
    let Ok(signature) = Signature::try_from(bytes.as_slice()) else { return false };
    VerifyingKey::<Sha256>::new(key.clone()).verify(content.as_bytes(), &signature).is_ok()
}

/// The request's string to sign: sorted non-empty `k=v` pairs without `sign`, joined by `&`, values not encoded.
pub fn request_content(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .filter(|(k, v)| k.as_str() != "sign" && !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `alipay.trade.pay` → `alipay_trade_pay_response`.
pub fn response_key(method: &str) -> String {
    format!("{}_response", method.replace('.', "_"))
}

/// The exact text of `body[key]` (or of `error_response`) and the `sign` beside it.
pub fn response_parts<'a>(body: &'a str, key: &str) -> Result<(&'a str, Option<String>), String> {
    let top: BTreeMap<String, &serde_json::value::RawValue> =
        serde_json::from_str(body).map_err(|e| format!("the answer is not a JSON object: {e}"))?;
    let content =
        top.get(key).or_else(|| top.get("error_response")).ok_or_else(|| format!("the answer has no {key}"))?;
    let sign = match top.get("sign") {
        Some(raw) => Some(serde_json::from_str::<String>(raw.get()).map_err(|_| "sign is not a string".to_owned())?),
        None => None,
    };
    Ok((content.get(), sign))
}
