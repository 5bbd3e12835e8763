//! The bench's seeded set: what each frame shows (its kind, text, distortion) and the key a read is judged by.

use checkout_lanes::{
    synthetic::{Distortion, FrameSpec, Legibility, SeededRng},
    vision::render_code,
};
use checkout_storage::{ScannedCode, Symbology, classify, gtin_check_digit, upc_e_to_upc_a};

/// What kind of code a frame of the set shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    Qr,
    Code128,
    Ean13,
    Ean8,
    UpcA,
    UpcE,
    None,
}

pub(super) const KINDS: [Kind; 7] =
    [Kind::Qr, Kind::Code128, Kind::Ean13, Kind::Ean8, Kind::UpcA, Kind::UpcE, Kind::None];

impl Kind {
    pub(super) fn symbology(self) -> Option<Symbology> {
        match self {
            Kind::Qr => Some(Symbology::QrCode),
            Kind::Code128 => Some(Symbology::Code128),
            Kind::Ean13 => Some(Symbology::Ean13),
            Kind::Ean8 => Some(Symbology::Ean8),
            Kind::UpcA => Some(Symbology::UpcA),
            Kind::UpcE => Some(Symbology::UpcE),
            Kind::None => None,
        }
    }

    pub(super) fn name(self) -> &'static str {
        self.symbology().map_or("no code", Symbology::name)
    }
}

/// One frame of the set: how to render it, and what is in it.
pub(super) struct Case {
    pub(super) spec: FrameSpec,
    pub(super) kind: Kind,
    /// The key the correct read has (see [`key_of`]); `None` for a frame without a code.
    pub(super) truth: Option<String>,
    /// Tilt away from upright, in degrees (0 to 45).
    pub(super) tilt: f32,
    /// Whether the code is still in the pixels (glare can clip it away), known once the frame is rendered.
    pub(super) legibility: Legibility,
    /// Which set the frame belongs to.
    pub(super) set: Set,
}

/// The main set, the figures and targets are about, and two sets reported on rows of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Set {
    Main,
    /// Codes held near the camera: modules two to five times the main set's largest.
    CloseUp,
    /// Codes moving while the shutter is open (motion blur), otherwise like the main set without glare.
    Moving,
}

impl Set {
    /// Seeds the set's frames, so that each set is the same whatever the size of the others.
    pub(super) fn stream(self, seed: u64) -> u64 {
        match self {
            Set::Main => seed,
            Set::CloseUp => seed.rotate_left(32) ^ 0xC105_E0B5,
            Set::Moving => seed.rotate_left(16) ^ 0x0B1A_5ED0,
        }
    }
}

/// Travel of a moving code that blurs it, in modules: across its bars for a 1D code (travel along the bars blurs
/// nothing), in any direction for a QR code.
pub(super) fn blurring_travel(case: &Case) -> f32 {
    let d = &case.spec.distortion;
    let travel = d.motion_px / d.scale.max(f32::MIN_POSITIVE);
    if case.kind == Kind::Qr { travel } else { travel * (d.motion_deg - d.rotation_deg).to_radians().cos().abs() }
}

pub(super) fn digits(rng: &mut SeededRng, n: usize) -> String {
    (0..n).map(|_| char::from(b'0' + rng.range(0, 9) as u8)).collect()
}

pub(super) fn with_check(body: String) -> String {
    let check = gtin_check_digit(body.as_bytes());
    format!("{body}{check}")
}

/// A payment code in one of the three providers' shapes.
pub(super) fn payment_digits(rng: &mut SeededRng) -> String {
    match rng.range(0, 2) {
        0 => format!("1{}{}", rng.range(0, 5), digits(rng, 16)),
        1 => {
            let prefix = rng.range(25, 30);
            let len = rng.range(16, 24) as usize;
            format!("{prefix}{}", digits(rng, len - 2))
        }
        _ => format!("62{}", digits(rng, 17)),
    }
}

pub(super) fn code_text(kind: Kind, rng: &mut SeededRng) -> Option<String> {
    Some(match kind {
        Kind::Qr | Kind::Code128 => payment_digits(rng),
        Kind::Ean13 => with_check(format!("{}{}", rng.range(1, 9), digits(rng, 11))),
        Kind::Ean8 => with_check(format!("{}{}", rng.range(1, 9), digits(rng, 6))),
        Kind::UpcA => with_check(format!("{}{}", rng.range(1, 9), digits(rng, 10))),
        Kind::UpcE => {
            let body = format!("0{}", digits(rng, 6));
            let upc_a = upc_e_to_upc_a(&format!("{body}0"))?;
            let check = gtin_check_digit(&upc_a.as_bytes()[..11]);
            format!("{body}{check}")
        }
        Kind::None => return None,
    })
}

/// The text as the lane uses it: a product's normalised GTIN, a payment code's digits, or the raw text.
pub(super) fn key_of(text: &str, symbology: Symbology) -> String {
    match classify(text, symbology) {
        ScannedCode::Product(gtin) => format!("gtin:{gtin}"),
        ScannedCode::Payment(code) => format!("pay:{}", code.expose_digits()),
        ScannedCode::Member(_) | ScannedCode::Coupon(_) | ScannedCode::Unrecognised { .. } => format!("raw:{text}"),
    }
}

pub(super) fn tilt_of(rotation_deg: f32, quarter: bool) -> f32 {
    let period = if quarter { 90.0 } else { 180.0 };
    let a = rotation_deg.rem_euclid(period);
    let a = a.min(period - a);
    if quarter { a } else { a.min(90.0) }
}

/// The `i`th frame of a set. Every frame of the close-up and moving sets has a code.
pub(super) fn make_case(i: usize, seed: u64, set: Set) -> anyhow::Result<Case> {
    let mut rng = SeededRng::new(set.stream(seed) ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let close_up = set == Set::CloseUp;
    let kind = if set == Set::Main { KINDS[i % KINDS.len()] } else { KINDS[i % (KINDS.len() - 1)] };
    let (width, height) = if (i / KINDS.len()).is_multiple_of(2) { (640u32, 480u32) } else { (1280, 720) };
    let large = width > 640;
    let text = code_text(kind, &mut rng);
    let linear = kind != Kind::Qr;
    let rotation = if linear {
        let tilt = rng.unit() * 90.0 - 45.0;
        // One code in four is upside down.
        if rng.range(0, 3) == 0 { tilt + 180.0 } else { tilt }
    } else {
        rng.unit() * 360.0
    };
    let (lo, hi) = match (linear, large, close_up) {
        (true, false, false) => (1.5, 3.0),
        (true, true, false) => (2.0, 4.0),
        (false, false, false) => (2.5, 5.0),
        (false, true, false) => (3.0, 7.0),
        // As large as fits the frame, mostly (the fit below caps it).
        (true, false, true) => (4.0, 8.0),
        (true, true, true) => (5.0, 14.0),
        (false, false, true) => (8.0, 16.0),
        (false, true, true) => (10.0, 20.0),
    };
    let mut module = lo + rng.unit() * (hi - lo);
    // Keep the whole code in the frame: its size in modules bounds the module size.
    let mut extent = (0.0, 0.0);
    if let (Some(text), Some(symbology)) = (&text, kind.symbology()) {
        let code = render_code(text, symbology, 1, 1).map_err(|e| anyhow::anyhow!("rendering {kind:?}: {e}"))?;
        let w = code.width as f32;
        let h = if linear { w * if kind == Kind::Code128 { 0.3 } else { 0.5 } + 8.0 } else { w };
        let (s, c) = rotation.to_radians().sin_cos();
        let (ex, ey) = (w * c.abs() + h * s.abs(), w * s.abs() + h * c.abs());
        // Perspective can enlarge one side by up to a quarter.
        let fit = (0.8 * width as f32 / (ex * 1.25)).min(0.8 * height as f32 / (ey * 1.25));
        module = module.min(fit);
        extent = (ex * module * 1.25, ey * module * 1.25);
    }
    let centre_x = (extent.0 / 2.0 + rng.unit() * (width as f32 - extent.0).max(0.0)) / width as f32;
    let centre_y = (extent.1 / 2.0 + rng.unit() * (height as f32 - extent.1).max(0.0)) / height as f32;
    let low_contrast = rng.range(0, 3) == 0;
    let distortion = Distortion {
        scale: module,
        rotation_deg: rotation,
        perspective_x: (rng.unit() - 0.5) * 0.4,
        perspective_y: (rng.unit() - 0.5) * 0.4,
        blur_sigma: if rng.range(0, 4) < 2 { 0.0 } else { 0.3 + rng.unit() * 0.9 },
        noise_sigma: rng.unit() * 8.0,
        contrast: if low_contrast { 0.25 + rng.unit() * 0.2 } else { 0.45 + rng.unit() * 0.55 },
        glare: if rng.range(0, 3) == 0 { 0.2 + rng.unit() * 0.5 } else { 0.0 },
        clutter: rng.range(3, 10) as u32,
        ..Distortion::default()
    };
    let mut spec = FrameSpec {
        width,
        height,
        code: text.clone().zip(kind.symbology()),
        module_px: 1,
        centre_x_permille: (centre_x * 1000.0) as u32,
        centre_y_permille: (centre_y * 1000.0) as u32,
        background: rng.range(90, 210) as u8,
        distortion,
        seed: rng.next_u64(),
    };
    if set == Set::Moving {
        // Motion on its own: no glare, and the lens at most a little out of focus.
        let d = &mut spec.distortion;
        d.glare = 0.0;
        d.blur_sigma = d.blur_sigma.min(0.5);
        d.motion_px = module * (0.25 + rng.unit() * 2.75);
        d.motion_deg = rng.unit() * 180.0;
    }
    let truth = text.zip(kind.symbology()).map(|(t, s)| key_of(&t, s));
    Ok(Case { spec, kind, truth, tilt: tilt_of(rotation, !linear), legibility: Legibility::Legible, set })
}
