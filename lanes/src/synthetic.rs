//! A synthetic camera: customers whose baskets and wallet codes are rendered into frames, deterministic from a seed.

use std::collections::VecDeque;

use checkout_storage::{MaskedCode, Product, Provider, SimulatedWallet, Symbology, UnixMillis};

use crate::vision::{LumaFrame, RenderError, paste, render_code};

/// SplitMix64: small, fast, and the same sequence on every machine.
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> SeededRng {
        SeededRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }
}

/// What one synthetic frame shows, rendered on the decoder's thread.
#[derive(Clone, PartialEq, Eq)]
pub struct FrameSpec {
    pub width: u32,
    pub height: u32,
    /// The code in view, if any: its text and symbology.
    pub code: Option<(String, Symbology)>,
    /// Pixels per module.
    pub module_px: u32,
    /// Where the code's centre sits, as a fraction of the frame in thousandths.
    pub centre_x_permille: u32,
    pub centre_y_permille: u32,
    /// Background grey level.
    pub background: u8,
}

impl std::fmt::Debug for FrameSpec {
    /// Masks the text: a frame may show a customer's payment code.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = self.code.as_ref().map(|(text, symbology)| (MaskedCode::of(text), *symbology));
        f.debug_struct("FrameSpec").field("size", &(self.width, self.height)).field("code", &code).finish()
    }
}

/// Draws a frame spec.
pub fn render_frame(spec: &FrameSpec) -> Result<LumaFrame, RenderError> {
    let mut frame = LumaFrame::new(spec.width, spec.height, spec.background);
    if let Some((text, symbology)) = &spec.code {
        let bar_height = spec.height / 4;
        let code = render_code(text, *symbology, spec.module_px, bar_height)?;
        let cx = i64::from(spec.width) * i64::from(spec.centre_x_permille) / 1000;
        let cy = i64::from(spec.height) * i64::from(spec.centre_y_permille) / 1000;
        paste(&mut frame, &code, cx - i64::from(code.width) / 2, cy - i64::from(code.height) / 2);
    }
    Ok(frame)
}

/// Settings of the synthetic camera.
#[derive(Debug, Clone)]
pub struct SyntheticConfig {
    pub seed: u64,
    /// How many customers pass the lane; `None` for as many as time allows.
    pub customers: Option<u32>,
    pub max_items: u32,
    /// The seed the store's simulated provider keys its wallets from.
    pub wallet_seed: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            seed: 1,
            customers: Some(5),
            max_items: 6,
            wallet_seed: b"demo".to_vec(),
            width: 640,
            height: 480,
        }
    }
}

enum Shot {
    Blank,
    Product(String),
    /// The customer's wallet shows a code, made when the first frame of it is taken
    /// (codes expire within a minute) and then held in view.
    Wallet {
        wallet: SimulatedWallet,
        first: bool,
    },
}

/// Customers at a lane, frame by frame.
pub struct SyntheticCamera {
    config: SyntheticConfig,
    rng: SeededRng,
    products: Vec<Product>,
    customers_started: u32,
    script: VecDeque<Shot>,
    /// The code the current customer's wallet shows.
    shown_code: Option<String>,
}

impl SyntheticCamera {
    pub fn new(config: SyntheticConfig, products: Vec<Product>) -> SyntheticCamera {
        let rng = SeededRng::new(config.seed);
        SyntheticCamera { config, rng, products, customers_started: 0, script: VecDeque::new(), shown_code: None }
    }

    fn plan_customer(&mut self) -> bool {
        if self.products.is_empty() || self.config.customers.is_some_and(|n| self.customers_started >= n) {
            return false;
        }
        self.customers_started += 1;
        let items = self.rng.range(1, u64::from(self.config.max_items.max(1)));
        for _ in 0..items {
            let product = &self.products[self.rng.range(0, self.products.len() as u64 - 1) as usize];
            let gtin = product.gtin.as_str().to_owned();
            self.script.extend([Shot::Product(gtin.clone()), Shot::Product(gtin), Shot::Blank, Shot::Blank]);
        }
        let provider = Provider::ALL[self.rng.range(0, 2) as usize];
        let wallet = SimulatedWallet::new(&self.config.wallet_seed, provider, self.rng.range(0, 9_999) as u16);
        for first in [true, false, false] {
            self.script.push_back(Shot::Wallet { wallet: wallet.clone(), first });
        }
        self.script.extend([Shot::Blank, Shot::Blank, Shot::Blank]);
        true
    }

    /// The next frame, or `None` when the last customer has gone.
    pub fn next_frame(&mut self) -> Option<FrameSpec> {
        if self.script.is_empty() && !self.plan_customer() {
            return None;
        }
        let shot = self.script.pop_front()?;
        let mut spec = FrameSpec {
            width: self.config.width,
            height: self.config.height,
            code: None,
            module_px: 3,
            centre_x_permille: self.rng.range(400, 600) as u32,
            centre_y_permille: self.rng.range(400, 600) as u32,
            background: self.rng.range(150, 220) as u8,
        };
        match shot {
            Shot::Blank => {}
            Shot::Product(gtin) => {
                let symbology = if gtin.len() == 8 { Symbology::Ean8 } else { Symbology::Ean13 };
                spec.code = Some((gtin, symbology));
            }
            Shot::Wallet { wallet, first } => {
                if first || self.shown_code.is_none() {
                    self.shown_code = Some(wallet.issue_code(UnixMillis::now()).expose_digits().to_owned());
                }
                spec.code = self.shown_code.clone().map(|code| (code, Symbology::QrCode));
                spec.module_px = 4;
            }
        }
        Some(spec)
    }
}

impl std::fmt::Debug for SyntheticCamera {
    /// Leaves out the code on show.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SyntheticCamera(customers {})", self.customers_started)
    }
}
