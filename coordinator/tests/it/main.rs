//! The coordinator's own integration tests, in one binary: the provider protocols' tables and
//! signatures, the adapters against the simulator over HTTP, and the adapters over TLS.

use checkout_coordinator::{providers::alipay::AlipayConfig, sim};

mod over_http;
mod tables;
mod tls;

/// The simulated wallets' seed.
const SEED: &[u8] = b"protocols";

/// Fixed RSA keys for the signature vectors (see `coordinator/testdata/README.md`): test code only.
mod test_keys {
    pub const ALIPAY_PRIVATE_PEM: &str = include_str!("../../testdata/test-only-alipay-private.pem");
    pub const MERCHANT_PRIVATE_PEM: &str = include_str!("../../testdata/test-only-merchant-private.pem");
    pub const MERCHANT_PUBLIC_PEM: &str = include_str!("../../testdata/test-only-merchant-public.pem");
    pub const ALIPAY_PUBLIC_PEM: &str = include_str!("../../testdata/test-only-alipay-public.pem");
}

/// The simulator's app at `gateway_url`, with the keys the simulator made for this process.
fn sim_app(gateway_url: &str) -> AlipayConfig {
    sim::alipay_app(gateway_url, sim::keys::generated().unwrap())
}
