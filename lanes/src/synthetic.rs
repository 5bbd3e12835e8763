//! A synthetic camera: customers whose baskets and wallet codes are rendered into frames, deterministic from a seed.

use std::collections::VecDeque;

use checkout_storage::{
    MaskedCode, MemberCode, MemberId, MemberKey, Product, Provider, SimulatedWallet, Symbology, UnixMillis,
};

use crate::vision::{LumaFrame, RenderError, paste, render_code};

/// SplitMix64: small, fast, and the same sequence on every machine.
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    /// A generator that starts from `seed`.
    pub fn new(seed: u64) -> SeededRng {
        SeededRng(seed)
    }

    /// The next 64 random bits.
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

/// How a code is distorted in a synthetic frame, as a camera at a lane sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Distortion {
    /// Multiplies `module_px` (fractional module sizes: 1.5 pixels a module and so on).
    pub scale: f32,
    /// Rotation of the code, in degrees, counter-clockwise.
    pub rotation_deg: f32,
    /// Perspective: foreshortening along the frame's x and y axes (0 none, 0.3 strong).
    pub perspective_x: f32,
    pub perspective_y: f32,
    /// Gaussian blur of the whole frame, in pixels (0 sharp).
    pub blur_sigma: f32,
    /// Gaussian sensor noise, in grey levels.
    pub noise_sigma: f32,
    /// Bar-to-space contrast, 1 for black on white, 0.2 very faint.
    pub contrast: f32,
    /// Brightness of a reflection on the code, 0 none, 1 burnt out at its centre.
    pub glare: f32,
    /// Objects drawn around the code (boxes, strokes, stripes, print).
    pub clutter: u32,
    /// How far the scene moved while the shutter was open, in pixels (motion blur; 0 still).
    pub motion_px: f32,
    /// Which way it moved: degrees in the frame, from x (right) towards y (down).
    pub motion_deg: f32,
}

impl Default for Distortion {
    /// No distortion: the code pasted as rendered.
    fn default() -> Self {
        Distortion {
            scale: 1.0,
            rotation_deg: 0.0,
            perspective_x: 0.0,
            perspective_y: 0.0,
            blur_sigma: 0.0,
            noise_sigma: 0.0,
            contrast: 1.0,
            glare: 0.0,
            clutter: 0,
            motion_px: 0.0,
            motion_deg: 0.0,
        }
    }
}

impl Distortion {
    fn is_none(&self) -> bool {
        *self == Distortion::default()
    }
}

/// What one synthetic frame shows, rendered on the decoder's thread.
#[derive(Clone, PartialEq)]
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
    /// How the camera sees the code.
    pub distortion: Distortion,
    /// Seed of the clutter, glare position and noise.
    pub seed: u64,
}

impl std::fmt::Debug for FrameSpec {
    /// Masks the text: a frame may show a customer's payment code.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = self.code.as_ref().map(|(text, symbology)| (MaskedCode::of(text), *symbology));
        f.debug_struct("FrameSpec")
            .field("size", &(self.width, self.height))
            .field("code", &code)
            .field("distortion", &self.distortion)
            .finish()
    }
}

/// Module size codes are rendered at before they are warped into a distorted frame.
const RENDER_MODULE_PX: u32 = 4;

/// Whether the code a synthetic frame shows is still there to be read, judged from how it was drawn (not by
/// any decoder).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Legibility {
    /// Every module of the code keeps some contrast somewhere (or there is no code).
    #[default]
    Legible,
    /// Glare clips the code at white: some module of a 1D code has lost its contrast along every scan line
    /// across the bars, or a QR code has lost a finder pattern's centre or a fifth of its modules. No decoder
    /// can read it: the information is not in the pixels.
    WashedOut,
}

/// Contrast (grey levels) below which a module is lost: a clipped bar within a few levels of its spaces, under
/// sensor noise of up to 8 levels.
const LOST_CONTRAST: f32 = 10.0;
/// Share of a QR code's modules that, lost, are past what its error correction (level L, about 7% of the
/// codewords) can restore, with a wide margin.
const QR_LOST_SHARE: f32 = 0.2;

/// Draws a frame spec: background, clutter, the code (scaled, rotated, in perspective, at the given contrast),
/// glare, blur and noise, all deterministic from the spec.
pub fn render_frame(spec: &FrameSpec) -> Result<LumaFrame, RenderError> {
    render_frame_judged(spec).map(|(frame, _)| frame)
}

/// Like [`render_frame`], and says whether the code drawn is still legible.
pub fn render_frame_judged(spec: &FrameSpec) -> Result<(LumaFrame, Legibility), RenderError> {
    let mut frame = LumaFrame::new(spec.width, spec.height, spec.background);
    let d = spec.distortion;
    let cx = i64::from(spec.width) * i64::from(spec.centre_x_permille) / 1000;
    let cy = i64::from(spec.height) * i64::from(spec.centre_y_permille) / 1000;
    if d.is_none() {
        if let Some((text, symbology)) = &spec.code {
            let bar_height = spec.height / 4;
            let code = render_code(text, *symbology, spec.module_px, bar_height)?;
            paste(&mut frame, &code, cx - i64::from(code.width) / 2, cy - i64::from(code.height) / 2);
        }
        return Ok((frame, Legibility::Legible));
    }
    let mut rng = SeededRng::new(spec.seed);
    shade(&mut frame, &mut rng);
    for _ in 0..d.clutter {
        draw_clutter(&mut frame, &mut rng);
    }
    let mut extent = 0.0f32;
    let mut placed = None;
    if let Some((text, symbology)) = &spec.code {
        let code = render_code(text, *symbology, RENDER_MODULE_PX, 1)?;
        let scale = spec.module_px as f32 * d.scale / RENDER_MODULE_PX as f32;
        let placement = warp_code(&mut frame, &code, *symbology, (cx as f32, cy as f32), scale, &d);
        extent = placement.extent();
        placed = Some((code, *symbology, placement));
    }
    if d.motion_px > 0.0 {
        smear(&mut frame, d.motion_px, d.motion_deg);
    }
    let mut legibility = Legibility::Legible;
    if d.glare > 0.0 {
        let radius = (extent * (0.25 + 0.25 * rng.unit())).max(20.0);
        let gx = cx as f32 + (rng.unit() - 0.5) * extent;
        let gy = cy as f32 + (rng.unit() - 0.5) * extent * 0.5;
        let light = Light { centre: (gx, gy), radius, strength: d.glare };
        glare(&mut frame, light);
        if let Some((code, symbology, placement)) = &placed
            && washed_out(code, *symbology, placement, light, &d, spec.module_px as f32 * d.scale)
        {
            legibility = Legibility::WashedOut;
        }
    }
    if d.blur_sigma > 0.0 {
        blur(&mut frame, d.blur_sigma);
    }
    if d.noise_sigma > 0.0 {
        noise(&mut frame, &mut rng, d.noise_sigma);
    }
    Ok((frame, legibility))
}

impl SeededRng {
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Uneven store lighting: a gentle gradient across the frame.
fn shade(frame: &mut LumaFrame, rng: &mut SeededRng) {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let (gx, gy) = ((rng.unit() - 0.5) * 40.0 / w as f32, (rng.unit() - 0.5) * 40.0 / h as f32);
    for y in 0..h {
        for x in 0..w {
            let p = &mut frame.pixels[y * w + x];
            *p = (f32::from(*p) + gx * (x as f32 - w as f32 / 2.0) + gy * (y as f32 - h as f32 / 2.0)).clamp(0.0, 255.0)
                as u8;
        }
    }
}

fn fill_rect(frame: &mut LumaFrame, x0: i64, y0: i64, w: i64, h: i64, v: u8) {
    let (fw, fh) = (i64::from(frame.width), i64::from(frame.height));
    for y in y0.max(0)..(y0 + h).min(fh) {
        for x in x0.max(0)..(x0 + w).min(fw) {
            frame.pixels[(y * fw + x) as usize] = v;
        }
    }
}

/// A box, a stroke, a few parallel stripes or a patch of print, somewhere in the frame.
fn draw_clutter(frame: &mut LumaFrame, rng: &mut SeededRng) {
    let (fw, fh) = (i64::from(frame.width), i64::from(frame.height));
    let x = rng.range(0, fw as u64) as i64 - 20;
    let y = rng.range(0, fh as u64) as i64 - 20;
    let v = rng.range(0, 255) as u8;
    match rng.range(0, 3) {
        0 => fill_rect(frame, x, y, rng.range(10, 160) as i64, rng.range(10, 120) as i64, v),
        1 => {
            // A thick stroke at any angle.
            let angle = rng.unit() * std::f32::consts::PI;
            let (dx, dy) = (angle.cos(), angle.sin());
            let length = rng.range(30, 300) as f32;
            let thickness = rng.range(2, 8) as i64;
            for i in 0..length as i64 {
                let px = x + (i as f32 * dx) as i64;
                let py = y + (i as f32 * dy) as i64;
                fill_rect(frame, px, py, thickness, thickness, v);
            }
        }
        2 => {
            // A few parallel stripes (shelf edges, a grille): edges all one way, but no code.
            let gap = rng.range(6, 20) as i64;
            let thick = rng.range(2, 5) as i64;
            let h = rng.range(20, 80) as i64;
            for k in 0..rng.range(2, 4) as i64 {
                fill_rect(frame, x + k * gap, y, thick, h, v);
            }
        }
        _ => {
            // Print: rows of small dark blocks.
            for row in 0..rng.range(2, 5) as i64 {
                let mut cx = x;
                for _ in 0..rng.range(4, 14) {
                    let cw = rng.range(3, 9) as i64;
                    fill_rect(frame, cx, y + row * 14, cw, 9, v / 3);
                    cx += cw + rng.range(2, 6) as i64;
                }
            }
        }
    }
}

/// Where a code lies in a frame: its label's size in render pixels and the map from it to the frame.
#[derive(Debug, Clone, Copy)]
struct Placement {
    /// The code's centre in the frame.
    centre: (f32, f32),
    /// Label width and height (render pixels): the code, and for a 1D code a white margin above and below.
    cw: f32,
    ch: f32,
    /// Height of a 1D code's bars, and the margin above them (render pixels).
    bars: f32,
    margin: f32,
    scale: f32,
    sin: f32,
    cos: f32,
    /// Perspective coefficients along the frame's x and y.
    a: f32,
    b: f32,
}

impl Placement {
    /// Code coordinates (origin at the code's centre, render pixels) to frame offsets from [`Placement::centre`].
    fn forward(&self, u: f32, v: f32) -> (f32, f32) {
        let (u, v) = (u * self.scale, v * self.scale);
        let (x, y) = (u * self.cos - v * self.sin, u * self.sin + v * self.cos);
        let w = 1.0 + self.a * x + self.b * y;
        (x / w, y / w)
    }

    /// The code's size in the frame.
    fn extent(&self) -> f32 {
        self.cw.max(self.ch) * self.scale
    }
}

/// Warps a code rendered at `RENDER_MODULE_PX` into the frame around `centre`; returns where it lies.
///
/// A 1D code is rendered as one row and drawn as a label: bars half as tall as the code is wide (Code 128: a
/// third), with a white margin above and below.
fn warp_code(
    frame: &mut LumaFrame,
    code: &LumaFrame,
    symbology: Symbology,
    centre: (f32, f32),
    scale: f32,
    d: &Distortion,
) -> Placement {
    let linear = symbology != Symbology::QrCode;
    let cw = code.width as f32;
    let (bars, margin) = if linear {
        let ratio = if symbology == Symbology::Code128 { 0.3 } else { 0.5 };
        (cw * ratio, 4.0 * RENDER_MODULE_PX as f32)
    } else {
        (code.height as f32, 0.0)
    };
    let ch = bars + 2.0 * margin;
    let (sin, cos) = d.rotation_deg.to_radians().sin_cos();
    let radius = (cw.hypot(ch) * scale / 2.0).max(1.0);
    let (a, b) = (d.perspective_x / radius, d.perspective_y / radius);
    let placement = Placement { centre, cw, ch, bars, margin, scale, sin, cos, a, b };
    let forward = |u: f32, v: f32| placement.forward(u, v);
    let corners = [
        forward(-cw / 2.0, -ch / 2.0),
        forward(cw / 2.0, -ch / 2.0),
        forward(cw / 2.0, ch / 2.0),
        forward(-cw / 2.0, ch / 2.0),
    ];
    let min_x = corners.iter().map(|c| c.0).fold(f32::MAX, f32::min);
    let max_x = corners.iter().map(|c| c.0).fold(f32::MIN, f32::max);
    let min_y = corners.iter().map(|c| c.1).fold(f32::MAX, f32::min);
    let max_y = corners.iter().map(|c| c.1).fold(f32::MIN, f32::max);
    let (light, dark) = code_levels(d);
    let (fw, fh) = (frame.width as i64, frame.height as i64);
    let x_range = ((centre.0 + min_x).floor() as i64).max(0)..((centre.0 + max_x).ceil() as i64 + 1).min(fw);
    let y_range = ((centre.1 + min_y).floor() as i64).max(0)..((centre.1 + max_y).ceil() as i64 + 1).min(fh);
    let sample = |fx: f32, fy: f32| -> Option<f32> {
        // Undo the perspective, the rotation and the scale.
        let w = 1.0 - a * fx - b * fy;
        if w <= 0.0 {
            return None;
        }
        let (x, y) = (fx / w, fy / w);
        let (u, v) = ((x * cos + y * sin) / scale + cw / 2.0, (-x * sin + y * cos) / scale + ch / 2.0);
        if u < 0.0 || v < 0.0 || u >= cw || v >= ch {
            return None;
        }
        let (col, row) = (u as u32, if linear { 0 } else { v as u32 });
        if linear && (v < margin || v >= margin + bars) {
            return Some(255.0);
        }
        Some(f32::from(code.get(col.min(code.width - 1), row.min(code.height - 1))))
    };
    for py in y_range {
        for px in x_range.clone() {
            // 2x2 supersampling: small modules come out grey at their edges, as through a lens.
            let mut sum = 0.0;
            let mut inside = 0;
            for (ox, oy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                if let Some(v) = sample(px as f32 + ox - centre.0, py as f32 + oy - centre.1) {
                    sum += v;
                    inside += 1;
                }
            }
            if inside == 0 {
                continue;
            }
            let i = (py * fw + px) as usize;
            let code_value = dark + (light - dark) * (sum / inside as f32) / 255.0;
            let coverage = inside as f32 / 4.0;
            frame.pixels[i] = (code_value * coverage + f32::from(frame.pixels[i]) * (1.0 - coverage)) as u8;
        }
    }
    placement
}

/// Grey levels of a code's spaces and bars.
fn code_levels(d: &Distortion) -> (f32, f32) {
    let light = 235.0f32;
    (light, light - d.contrast.clamp(0.0, 1.0) * (light - 15.0))
}

/// A reflection: a Gaussian spot of light added to the frame.
#[derive(Debug, Clone, Copy)]
struct Light {
    centre: (f32, f32),
    radius: f32,
    strength: f32,
}

impl Light {
    /// Grey levels added at integer frame position (x, y).
    fn added(&self, x: i64, y: i64) -> f32 {
        let (cx, cy) = (self.centre.0 as i64, self.centre.1 as i64);
        let d2 = ((x - cx).pow(2) + (y - cy).pow(2)) as f32;
        self.strength * 255.0 * (-d2 / (2.0 * self.radius * self.radius)).exp()
    }
}

fn glare(frame: &mut LumaFrame, light: Light) {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let reach = (light.radius * 3.0) as i64;
    let (cx, cy) = (light.centre.0 as i64, light.centre.1 as i64);
    for y in (cy - reach).max(0)..(cy + reach).min(h as i64) {
        for x in (cx - reach).max(0)..(cx + reach).min(w as i64) {
            let p = &mut frame.pixels[y as usize * w + x as usize];
            *p = (f32::from(*p) + light.added(x, y)).min(255.0) as u8;
        }
    }
}

/// The error function, to 1.5e-7 (Abramowitz and Stegun 7.1.26).
fn erf(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    (1.0 - poly * (-x * x).exp()).copysign(x)
}

/// Whether glare clipped at white leaves some part of the code without contrast (see [`Legibility::WashedOut`]).
///
/// A module's contrast is what is left between its bar and space levels once the light is added and clipped at
/// 255, times what blur leaves of a single module's contrast; below [`LOST_CONTRAST`] it is lost.
fn washed_out(
    code: &LumaFrame,
    symbology: Symbology,
    placement: &Placement,
    light: Light,
    d: &Distortion,
    module_in_frame: f32,
) -> bool {
    let (space, bar) = code_levels(d);
    let blur_kept =
        if d.blur_sigma > 0.0 { erf(module_in_frame / (2.0 * std::f32::consts::SQRT_2 * d.blur_sigma)) } else { 1.0 };
    let module = RENDER_MODULE_PX as f32;
    let (cw, ch) = (placement.cw, placement.ch);
    // Contrast left at code coordinates (u, v), from the label's top-left corner, in render pixels.
    let contrast_at = |u: f32, v: f32| {
        let (x, y) = placement.forward(u - cw / 2.0, v - ch / 2.0);
        let g = light.added((placement.centre.0 + x) as i64, (placement.centre.1 + y) as i64);
        ((space + g).min(255.0) - (bar + g).min(255.0)) * blur_kept
    };
    let lost = |u: f32, v: f32| contrast_at(u, v) < LOST_CONTRAST;
    // The symbol's modules: from its first dark column to its last (quiet zones aside).
    let dark_columns: Vec<u32> = (0..code.width).filter(|&x| (0..code.height).any(|y| code.get(x, y) < 128)).collect();
    let (Some(&first), Some(&last)) = (dark_columns.first(), dark_columns.last()) else {
        return false;
    };
    let modules = (first as f32 / module) as u32..((last + 1) as f32 / module) as u32;
    if symbology != Symbology::QrCode {
        // Lost when lost along every scan line across the bars: no line, nor lines voted together, has it.
        let lines = 24;
        return modules.clone().any(|k| {
            let u = (k as f32 + 0.5) * module;
            (0..lines).all(|r| lost(u, placement.margin + placement.bars * (r as f32 + 0.5) / lines as f32))
        });
    }
    let n = modules.len() as u32;
    let origin = modules.start;
    let centre_of =
        |i: u32, j: u32| ((origin + i) as f32 * module + module / 2.0, (origin + j) as f32 * module + module / 2.0);
    let finders = [(3, 3), (n - 4, 3), (3, n - 4)];
    if finders.iter().any(|&(i, j)| {
        let (u, v) = centre_of(i, j);
        lost(u, v)
    }) {
        return true;
    }
    let lost_modules = (0..n).flat_map(|j| (0..n).map(move |i| (i, j))).filter(|&(i, j)| {
        let (u, v) = centre_of(i, j);
        lost(u, v)
    });
    lost_modules.count() as f32 >= QR_LOST_SHARE * (n * n) as f32
}

/// Gaussian blur as repeated [a, 1-2a, a] passes along rows and columns (variance 2a a pass).
fn blur(frame: &mut LumaFrame, sigma: f32) {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let mut variance = sigma * sigma;
    let mut buf: Vec<f32> = frame.pixels.iter().map(|&p| f32::from(p)).collect();
    let mut tmp = buf.clone();
    while variance > 1e-3 {
        let a = (variance / 2.0).min(0.25);
        variance -= 2.0 * a;
        for y in 0..h {
            let row = &buf[y * w..(y + 1) * w];
            for x in 0..w {
                let l = row[x.saturating_sub(1)];
                let r = row[(x + 1).min(w - 1)];
                tmp[y * w + x] = a * l + (1.0 - 2.0 * a) * row[x] + a * r;
            }
        }
        for y in 0..h {
            let (up, down) = (y.saturating_sub(1), (y + 1).min(h - 1));
            for x in 0..w {
                buf[y * w + x] = a * tmp[up * w + x] + (1.0 - 2.0 * a) * tmp[y * w + x] + a * tmp[down * w + x];
            }
        }
    }
    for (p, v) in frame.pixels.iter_mut().zip(buf) {
        *p = v.round().clamp(0.0, 255.0) as u8;
    }
}

/// Motion blur: each pixel becomes the mean of the scene along a line `length` pixels long through it, in
/// direction `deg` (a box kernel: the scene moved that far at an even speed while the shutter was open).
fn smear(frame: &mut LumaFrame, length: f32, deg: f32) {
    if frame.width == 0 || frame.height == 0 {
        return;
    }
    let scene = frame.clone();
    // Samples half a pixel apart along the line.
    let steps = (length * 2.0).ceil().max(1.0) as usize;
    let (sin, cos) = deg.to_radians().sin_cos();
    let offsets: Vec<(f32, f32)> = (0..=steps)
        .map(|k| {
            let t = (k as f32 / steps as f32 - 0.5) * length;
            (t * cos, t * sin)
        })
        .collect();
    let w = frame.width as usize;
    for (i, p) in frame.pixels.iter_mut().enumerate() {
        let (x, y) = ((i % w) as f32, (i / w) as f32);
        let sum: f32 = offsets.iter().map(|&(dx, dy)| scene.interpolated(x + dx, y + dy)).sum();
        *p = (sum / offsets.len() as f32).round().clamp(0.0, 255.0) as u8;
    }
}

fn noise(frame: &mut LumaFrame, rng: &mut SeededRng, sigma: f32) {
    // The sum of four uniforms in [-1, 1) has variance 4/3.
    let k = sigma * (3.0f32 / 4.0).sqrt();
    for p in &mut frame.pixels {
        let n: f32 = (0..4).map(|_| rng.unit() * 2.0 - 1.0).sum();
        *p = (f32::from(*p) + n * k).round().clamp(0.0, 255.0) as u8;
    }
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
    /// Distort the frames as a hand-held code looks to a lane camera (tilt, blur, noise, clutter).
    pub distort: bool,
    /// The wallets customers pay with, chosen evenly (all three when empty).
    pub wallets: Vec<Provider>,
    /// Customers may be one of the store's first this many members (`M00000001` on): two in five show their
    /// member code before their first item. 0: no members.
    pub members: u32,
    /// Coupon codes the store issued: one customer in five shows one of them after their items (two
    /// customers may show the same one: the store lets one use it).
    pub coupons: Vec<String>,
    /// Empty frames before the first customer (time to open the lane's screens, say).
    pub lead_in_frames: u32,
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
            distort: true,
            wallets: Provider::ALL.to_vec(),
            members: 0,
            coupons: Vec::new(),
            lead_in_frames: 0,
        }
    }
}

enum Shot {
    Blank,
    Product(String),
    /// A member's code, held up from their card or app.
    Member(String),
    /// A coupon's code, shown in an app.
    Coupon(String),
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
    /// The key of the store's member codes (from registration).
    member_key: Option<MemberKey>,
}

impl SyntheticCamera {
    /// A camera that shows customers buying from `products` (members among them when the store's member-code
    /// key is given and `config.members` is not 0). Open-price items are left out: no customer of this camera
    /// takes one (its price would have to be typed).
    pub fn new(config: SyntheticConfig, products: Vec<Product>, member_key: Option<MemberKey>) -> SyntheticCamera {
        let products = products.into_iter().filter(|p| !p.is_open_price()).collect();
        let rng = SeededRng::new(config.seed);
        let script = (0..config.lead_in_frames).map(|_| Shot::Blank).collect();
        SyntheticCamera { config, rng, products, customers_started: 0, script, shown_code: None, member_key }
    }

    fn plan_customer(&mut self) -> bool {
        if self.products.is_empty() || self.config.customers.is_some_and(|n| self.customers_started >= n) {
            return false;
        }
        self.customers_started += 1;
        if let Some(key) = &self.member_key
            && self.config.members > 0
            && self.rng.range(0, 4) < 2
        {
            let member = MemberId::numbered(self.rng.range(1, u64::from(self.config.members)));
            let code = MemberCode::issue(key, member).text();
            self.script.extend([Shot::Member(code.clone()), Shot::Member(code), Shot::Blank, Shot::Blank]);
        }
        let items = self.rng.range(1, u64::from(self.config.max_items.max(1)));
        for _ in 0..items {
            let product = &self.products[self.rng.range(0, self.products.len() as u64 - 1) as usize];
            let gtin = product.gtin.as_str().to_owned();
            self.script.extend([Shot::Product(gtin.clone()), Shot::Product(gtin), Shot::Blank, Shot::Blank]);
        }
        if !self.config.coupons.is_empty() && self.rng.range(0, 4) == 0 {
            let coupon = self.config.coupons[self.rng.range(0, self.config.coupons.len() as u64 - 1) as usize].clone();
            self.script.extend([Shot::Coupon(coupon.clone()), Shot::Coupon(coupon), Shot::Blank, Shot::Blank]);
        }
        let wallets = if self.config.wallets.is_empty() { &Provider::ALL[..] } else { &self.config.wallets[..] };
        let provider = wallets[self.rng.range(0, wallets.len() as u64 - 1) as usize];
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
            distortion: Distortion::default(),
            seed: self.rng.next_u64(),
        };
        if self.config.distort {
            // What a hand-held code at a lane looks like: tilted, a little out of focus, some noise and clutter.
            spec.distortion = Distortion {
                rotation_deg: self.rng.range(0, 40) as f32 - 20.0,
                perspective_x: (self.rng.range(0, 10) as f32 - 5.0) / 100.0,
                blur_sigma: self.rng.range(0, 6) as f32 / 10.0,
                noise_sigma: self.rng.range(0, 4) as f32,
                contrast: self.rng.range(60, 100) as f32 / 100.0,
                clutter: 4,
                ..Distortion::default()
            };
        }
        match shot {
            Shot::Blank => {}
            Shot::Product(gtin) => {
                let symbology = if gtin.len() == 8 { Symbology::Ean8 } else { Symbology::Ean13 };
                spec.code = Some((gtin, symbology));
            }
            Shot::Member(code) | Shot::Coupon(code) => {
                spec.code = Some((code, Symbology::QrCode));
                spec.module_px = 4;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(distortion: Distortion, seed: u64) -> FrameSpec {
        FrameSpec {
            width: 320,
            height: 240,
            code: Some(("6901234567892".to_owned(), Symbology::Ean13)),
            module_px: 2,
            centre_x_permille: 500,
            centre_y_permille: 500,
            background: 180,
            distortion,
            seed,
        }
    }

    #[test]
    fn frames_are_deterministic_from_their_spec() {
        let d = Distortion {
            rotation_deg: 30.0,
            perspective_x: 0.1,
            blur_sigma: 0.8,
            noise_sigma: 5.0,
            contrast: 0.5,
            glare: 0.4,
            clutter: 8,
            ..Distortion::default()
        };
        let a = render_frame(&spec(d, 1)).unwrap();
        assert_eq!(a, render_frame(&spec(d, 1)).unwrap());
        assert_ne!(a, render_frame(&spec(d, 2)).unwrap(), "another seed, other clutter and noise");
        assert_eq!((a.width, a.height), (320, 240));
    }

    #[test]
    fn an_undistorted_spec_is_the_plain_pasted_code() {
        let frame = render_frame(&spec(Distortion::default(), 1)).unwrap();
        let code = render_code("6901234567892", Symbology::Ean13, 2, 60).unwrap();
        let mut expected = LumaFrame::new(320, 240, 180);
        paste(&mut expected, &code, 160 - i64::from(code.width) / 2, 120 - 30);
        assert_eq!(frame, expected);
    }

    #[test]
    fn glare_that_clips_the_bars_away_makes_the_frame_unreadable_by_construction() {
        let judged = |glare: f32, contrast: f32| {
            let d = Distortion { glare, contrast, clutter: 2, ..Distortion::default() };
            let mut s = spec(d, 4);
            (s.width, s.height) = (640, 480);
            render_frame_judged(&s).unwrap().1
        };
        assert_eq!(judged(0.0, 1.0), Legibility::Legible);
        assert_eq!(judged(0.15, 1.0), Legibility::Legible, "a faint reflection leaves every bar");
        assert_eq!(judged(1.0, 0.3), Legibility::WashedOut, "a bright one on faint bars clips them away");
        let qr = FrameSpec {
            code: Some(("134567890123456789".to_owned(), Symbology::QrCode)),
            module_px: 4,
            ..spec(Distortion { glare: 1.0, contrast: 0.3, ..Distortion::default() }, 4)
        };
        assert_eq!(render_frame_judged(&qr).unwrap().1, Legibility::WashedOut);
        let qr = FrameSpec { distortion: Distortion { glare: 0.0, ..qr.distortion }, ..qr };
        assert_eq!(render_frame_judged(&qr).unwrap().1, Legibility::Legible);
    }

    #[test]
    fn erf_matches_known_values() {
        for (x, y) in [(0.0, 0.0), (0.5, 0.520_499_9), (1.0, 0.842_700_8), (-1.0, -0.842_700_8), (2.0, 0.995_322_3)] {
            assert!((erf(x) - y).abs() < 1e-5, "erf({x}) = {}", erf(x));
        }
    }

    #[test]
    fn blur_keeps_the_mean_and_noise_has_the_asked_spread() {
        let mut frame = LumaFrame::new(64, 64, 0);
        for (i, p) in frame.pixels.iter_mut().enumerate() {
            *p = if (i % 64) < 32 { 40 } else { 200 };
        }
        let mean = |f: &LumaFrame| f.pixels.iter().map(|&p| f64::from(p)).sum::<f64>() / f.pixels.len() as f64;
        let before = mean(&frame);
        blur(&mut frame, 1.5);
        assert!((mean(&frame) - before).abs() < 1.0);
        assert!(frame.get(31, 10) > 40 && frame.get(31, 10) < 200, "the edge is soft");
        let mut flat = LumaFrame::new(100, 100, 128);
        noise(&mut flat, &mut SeededRng::new(3), 8.0);
        let m = mean(&flat);
        let var = flat.pixels.iter().map(|&p| (f64::from(p) - m).powi(2)).sum::<f64>() / 10_000.0;
        assert!((var.sqrt() - 8.0).abs() < 1.0, "sigma {}", var.sqrt());
    }

    #[test]
    fn motion_smears_an_edge_across_its_travel_only() {
        // A vertical edge: dark left of x = 32, light right of it.
        let edge = || {
            let mut frame = LumaFrame::new(64, 64, 0);
            for (i, p) in frame.pixels.iter_mut().enumerate() {
                *p = if (i % 64) < 32 { 40 } else { 200 };
            }
            frame
        };
        let mut across = edge();
        smear(&mut across, 8.0, 0.0);
        // A ramp 8 pixels wide, centred on the edge; the far sides keep their levels.
        assert_eq!((across.get(27, 20), across.get(36, 20)), (40, 200));
        let ramp: Vec<u8> = (28..36).map(|x| across.get(x, 20)).collect();
        assert!(ramp.windows(2).all(|w| w[0] < w[1]), "an even ramp: {ramp:?}");
        assert!((across.get(31, 20).abs_diff(120)) <= 12, "half way at the edge: {}", across.get(31, 20));
        let mut along = edge();
        smear(&mut along, 8.0, 90.0);
        assert_eq!(along, edge(), "moving along the edge changes nothing");
        let mut diagonal = edge();
        smear(&mut diagonal, 8.0, 60.0);
        let soft = (24..40).filter(|&x| ![40, 200].contains(&diagonal.get(x, 20))).count();
        assert!((3..=5).contains(&soft), "travel across the edge is 4 pixels: {soft} soft pixels");
    }

    #[test]
    fn no_synthetic_customer_takes_an_open_price_item() {
        let catalog = checkout_storage::sample_catalog();
        let open: Vec<String> =
            catalog.iter().filter(|p| p.is_open_price()).map(|p| p.gtin.as_str().to_owned()).collect();
        assert!(!open.is_empty(), "the sample catalog has one");
        let config = SyntheticConfig { customers: Some(200), max_items: 12, ..SyntheticConfig::default() };
        let mut camera = SyntheticCamera::new(config, catalog.clone(), None);
        let mut scanned = std::collections::BTreeSet::new();
        while let Some(spec) = camera.next_frame() {
            if let Some((code, Symbology::Ean13 | Symbology::Ean8)) = spec.code {
                scanned.insert(code);
            }
        }
        assert!(scanned.iter().all(|code| !open.contains(code)), "{scanned:?}");
        assert_eq!(scanned.len(), catalog.len() - open.len(), "every other product is bought");
    }
}
