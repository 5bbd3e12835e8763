//! WeChat Pay v2's XML and signatures.
//!
//! Signing (the documented algorithm): drop empty values and `sign`, sort the
//! rest by key, join as `k=v&k=v`, append `&key=MERCHANT_KEY`, then MD5 or
//! HMAC-SHA256 (keyed with the merchant key), upper-case hex.

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicU64, Ordering},
};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The two documented signature types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignType {
    Md5,
    HmacSha256,
}

impl SignType {
    /// The `sign_type` field's value (absent means MD5).
    pub fn name(self) -> &'static str {
        match self {
            SignType::Md5 => "MD5",
            SignType::HmacSha256 => "HMAC-SHA256",
        }
    }

    pub fn parse(name: &str) -> Option<SignType> {
        match name {
            "" | "MD5" => Some(SignType::Md5),
            "HMAC-SHA256" => Some(SignType::HmacSha256),
            _ => None,
        }
    }
}

/// The string that is signed: sorted non-empty `k=v` pairs without `sign`, then `&key=KEY`.
pub fn string_to_sign(params: &BTreeMap<String, String>, key: &str) -> String {
    let mut text = String::new();
    for (k, v) in params.iter().filter(|(k, v)| k.as_str() != "sign" && !v.is_empty()) {
        text.push_str(k);
        text.push('=');
        text.push_str(v);
        text.push('&');
    }
    text.push_str("key=");
    text.push_str(key);
    text
}

fn upper_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The `sign` of `params` under the merchant key.
pub fn sign(params: &BTreeMap<String, String>, key: &str, sign_type: SignType) -> String {
    let text = string_to_sign(params, key);
    match sign_type {
        SignType::Md5 => upper_hex(&md5::Md5::digest(text.as_bytes())),
        SignType::HmacSha256 => {
            let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()) {
                Ok(mac) => mac,
                Err(e) => unreachable!("HMAC takes keys of any length: {e}"),
            };
            mac.update(text.as_bytes());
            upper_hex(&mac.finalize().into_bytes())
        }
    }
}

/// Whether a request's `params["sign"]` is right (the sign type is read from `sign_type`, MD5 when absent).
pub fn verify(params: &BTreeMap<String, String>, key: &str) -> bool {
    match SignType::parse(params.get("sign_type").map_or("", String::as_str)) {
        Some(sign_type) => verify_with(params, key, sign_type),
        None => false,
    }
}

/// Whether `params["sign"]` is right under `sign_type` (answers carry no `sign_type`: they use the request's).
pub fn verify_with(params: &BTreeMap<String, String>, key: &str, sign_type: SignType) -> bool {
    let Some(given) = params.get("sign") else { return false };
    let expected = sign(params, key, sign_type);
    // Compare without an early exit.
    expected.len() == given.len() && expected.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// `<xml><k><![CDATA[v]]></k>...</xml>`, the flat form every v2 API uses.
pub fn to_xml(params: &BTreeMap<String, String>) -> String {
    let mut xml = String::from("<xml>");
    for (k, v) in params {
        // "]]>" cannot appear inside CDATA: split it.
        let v = v.replace("]]>", "]]]]><![CDATA[>");
        xml.push_str(&format!("<{k}><![CDATA[{v}]]></{k}>"));
    }
    xml.push_str("</xml>");
    xml
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

/// Parses the flat `<xml>` body: each child element's text (CDATA or escaped text) by name.
pub fn parse_xml(body: &str) -> Result<BTreeMap<String, String>, String> {
    let body = body.trim();
    let body = match body.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map(|(_, r)| r.trim_start()).ok_or("unterminated XML declaration")?,
        None => body,
    };
    let inner = body
        .strip_prefix("<xml>")
        .and_then(|b| b.strip_suffix("</xml>"))
        .ok_or("the body is not a flat <xml> document")?;
    let mut params = BTreeMap::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let open = rest.strip_prefix('<').ok_or("text outside an element")?;
        let (name, after) = open.split_once('>').ok_or("unterminated tag")?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("unexpected tag <{name}>"));
        }
        let close = format!("</{name}>");
        let (content, after) = after.split_once(&close).ok_or_else(|| format!("<{name}> is not closed"))?;
        let mut value = String::new();
        let mut content = content;
        while !content.is_empty() {
            if let Some(cdata) = content.strip_prefix("<![CDATA[") {
                let (text, more) = cdata.split_once("]]>").ok_or("unterminated CDATA")?;
                value.push_str(text);
                content = more;
            } else {
                let end = content.find("<![CDATA[").unwrap_or(content.len());
                if content[..end].contains('<') {
                    return Err(format!("<{name}> has nested elements"));
                }
                value.push_str(&unescape(&content[..end]));
                content = &content[end..];
            }
        }
        params.insert(name.to_owned(), value);
        rest = after.trim_start();
    }
    Ok(params)
}

/// A 32-character nonce: unique per process and call, unpredictable enough for a nonce (not a secret).
pub fn nonce_str() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let digest = Sha256::new()
        .chain_update(now.as_nanos().to_be_bytes())
        .chain_update(n.to_be_bytes())
        .chain_update(std::process::id().to_be_bytes())
        .finalize();
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}
