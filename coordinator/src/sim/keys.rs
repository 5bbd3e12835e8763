//! The simulator's RSA keys, made when it starts, never compiled in: "Alipay's" key that signs answers, and the app's key pair.
//!
//! A real merchant makes its app key pair and gives Alipay the public half;
//! the simulator plays both sides, so it makes both pairs, once a process,
//! and hands the app's half to whoever runs the adapter against it
//! ([`SimKeys::app_private_pem`], `GET /sim/keys`). They protect nothing but a
//! test run.

use std::sync::OnceLock;

use rsa::{
    RsaPrivateKey, RsaPublicKey,
    pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding},
    rand_core::OsRng,
};

use crate::providers::alipay::KeyError;

/// The simulator's keys, in PEM.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct SimKeys {
    /// Signs the simulator's Alipay answers.
    pub alipay_private_pem: String,
    /// Verifies them: the adapter's `alipay_public_key`.
    pub alipay_public_pem: String,
    /// Signs the adapter's requests: its `app_private_key`.
    pub app_private_pem: String,
    /// Verifies the requests, at the simulator.
    pub app_public_pem: String,
}

impl std::fmt::Debug for SimKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimKeys(..)")
    }
}

fn key_pair(which: &'static str) -> Result<(String, String), KeyError> {
    let fail = |reason: String| KeyError { which, reason };
    let private = RsaPrivateKey::new(&mut OsRng, 2048).map_err(|e| fail(e.to_string()))?;
    let public = RsaPublicKey::from(&private);
    let private_pem = private.to_pkcs8_pem(LineEnding::LF).map_err(|e| fail(e.to_string()))?.to_string();
    let public_pem = public.to_public_key_pem(LineEnding::LF).map_err(|e| fail(e.to_string()))?;
    Ok((private_pem, public_pem))
}

/// The keys of every simulator in this process, made the first time they are asked for.
pub fn generated() -> Result<&'static SimKeys, KeyError> {
    static KEYS: OnceLock<Result<SimKeys, KeyError>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let (alipay_private_pem, alipay_public_pem) = key_pair("simulated Alipay")?;
        let (app_private_pem, app_public_pem) = key_pair("simulated app")?;
        Ok(SimKeys { alipay_private_pem, alipay_public_pem, app_private_pem, app_public_pem })
    })
    .as_ref()
    .map_err(Clone::clone)
}
