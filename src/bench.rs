//! `checkout bench decode`: renders a seeded set of distorted frames and measures our decoder against zxing-cpp on them.
//!
//! The frames are made by the synthetic camera (VGA and 720p; 1D codes tilted up to 45 degrees, QR codes at
//! any rotation; perspective, blur, noise, glare, low contrast, clutter; one frame in seven shows no code).
//! Each frame is decoded by our pipeline on this thread (one core), then piped as raw grey bytes to a small
//! Python script that times `zxingcpp.read_barcodes` on it (image loading excluded on both sides).
//! Decoded texts are compared as the lane would use them (a GTIN normalised, a payment code's digits); a
//! payment code is never printed.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    time::Instant,
};

use checkout_lanes::{
    synthetic::{Distortion, FrameSpec, Legibility, SeededRng, render_frame_judged},
    vision::{LumaFrame, VisionConfig, analyse_frame, decode_frame_whole, encode_png, render_code},
};
use checkout_storage::{ScannedCode, Symbology, classify, gtin_check_digit, upc_e_to_upc_a};
use serde_json::{Value, json};

use crate::cli::BenchDecodeArgs;

/// The peer: reads `u32 width, u32 height` (little-endian) and the grey bytes from stdin, answers one JSON line.
const PEER_SCRIPT: &str = r#"
import sys, json, time, struct
try:
    import numpy as np
    import zxingcpp
except Exception as e:
    sys.stdout.write(json.dumps({"error": "cannot import zxingcpp/numpy: %s" % e}) + "\n")
    sys.stdout.flush()
    sys.exit(0)
try:
    from importlib.metadata import version
    v = version("zxing-cpp")
except Exception:
    v = "?"
F = zxingcpp.BarcodeFormat
formats = (F.QRCode, F.Code128, F.EAN13, F.EAN8, F.UPCA, F.UPCE)
out = sys.stdout
out.write(json.dumps({"ready": True, "version": v}) + "\n")
out.flush()
inp = sys.stdin.buffer
while True:
    header = inp.read(8)
    if len(header) < 8:
        break
    w, h = struct.unpack("<II", header)
    buf = bytearray()
    while len(buf) < w * h:
        chunk = inp.read(w * h - len(buf))
        if not chunk:
            sys.exit(0)
        buf.extend(chunk)
    img = np.frombuffer(bytes(buf), dtype=np.uint8).reshape(h, w)
    t = time.perf_counter()
    results = zxingcpp.read_barcodes(img, formats=formats)
    micros = (time.perf_counter() - t) * 1e6
    reads = [{"text": r.text, "format": getattr(r.format, "name", str(r.format))} for r in results]
    out.write(json.dumps({"micros": micros, "reads": reads}) + "\n")
    out.flush()
"#;

/// What kind of code a frame of the set shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Qr,
    Code128,
    Ean13,
    Ean8,
    UpcA,
    UpcE,
    None,
}

const KINDS: [Kind; 7] = [Kind::Qr, Kind::Code128, Kind::Ean13, Kind::Ean8, Kind::UpcA, Kind::UpcE, Kind::None];

impl Kind {
    fn symbology(self) -> Option<Symbology> {
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

    fn name(self) -> &'static str {
        self.symbology().map_or("no code", Symbology::name)
    }
}

/// One frame of the set: how to render it, and what is in it.
struct Case {
    spec: FrameSpec,
    kind: Kind,
    /// The key the correct read has (see [`key_of`]); `None` for a frame without a code.
    truth: Option<String>,
    /// Tilt away from upright, in degrees (0 to 45).
    tilt: f32,
    /// Whether the code is still in the pixels (glare can clip it away), known once the frame is rendered.
    legibility: Legibility,
    /// Which set the frame belongs to.
    set: Set,
}

/// The main set, the figures and targets are about, and two sets reported on rows of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Set {
    Main,
    /// Codes held near the camera: modules two to five times the main set's largest.
    CloseUp,
    /// Codes moving while the shutter is open (motion blur), otherwise like the main set without glare.
    Moving,
}

impl Set {
    /// Seeds the set's frames, so that each set is the same whatever the size of the others.
    fn stream(self, seed: u64) -> u64 {
        match self {
            Set::Main => seed,
            Set::CloseUp => seed.rotate_left(32) ^ 0xC105_E0B5,
            Set::Moving => seed.rotate_left(16) ^ 0x0B1A_5ED0,
        }
    }
}

/// Travel of a moving code that blurs it, in modules: across its bars for a 1D code (travel along the bars blurs
/// nothing), in any direction for a QR code.
fn blurring_travel(case: &Case) -> f32 {
    let d = &case.spec.distortion;
    let travel = d.motion_px / d.scale.max(f32::MIN_POSITIVE);
    if case.kind == Kind::Qr { travel } else { travel * (d.motion_deg - d.rotation_deg).to_radians().cos().abs() }
}

fn digits(rng: &mut SeededRng, n: usize) -> String {
    (0..n).map(|_| char::from(b'0' + rng.range(0, 9) as u8)).collect()
}

fn with_check(body: String) -> String {
    let check = gtin_check_digit(body.as_bytes());
    format!("{body}{check}")
}

/// A payment code in one of the three providers' shapes.
fn payment_digits(rng: &mut SeededRng) -> String {
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

fn code_text(kind: Kind, rng: &mut SeededRng) -> Option<String> {
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
fn key_of(text: &str, symbology: Symbology) -> String {
    match classify(text, symbology) {
        ScannedCode::Product(gtin) => format!("gtin:{gtin}"),
        ScannedCode::Payment(code) => format!("pay:{}", code.expose_digits()),
        ScannedCode::Unrecognised { .. } => format!("raw:{text}"),
    }
}

fn tilt_of(rotation_deg: f32, quarter: bool) -> f32 {
    let period = if quarter { 90.0 } else { 180.0 };
    let a = rotation_deg.rem_euclid(period);
    let a = a.min(period - a);
    if quarter { a } else { a.min(90.0) }
}

/// The `i`th frame of a set. Every frame of the close-up and moving sets has a code.
fn make_case(i: usize, seed: u64, set: Set) -> anyhow::Result<Case> {
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

/// How one decoder did on one frame.
#[derive(Clone, Copy)]
struct Outcome {
    correct: bool,
    /// Read something on a frame without a code, or a wrong text.
    false_read: bool,
    micros: f64,
}

fn judge(case: &Case, keys: &[String], micros: f64) -> Outcome {
    let correct = case.truth.as_ref().is_some_and(|t| keys.iter().any(|k| k == t));
    let false_read = keys.iter().any(|k| case.truth.as_ref() != Some(k));
    Outcome { correct, false_read, micros }
}

struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    version: String,
}

impl Peer {
    fn start(python: &str) -> Result<Peer, String> {
        let mut child = Command::new(python)
            .args(["-u", "-c", PEER_SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run {python}: {e}"))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("no pipes to the Python peer".to_owned());
        };
        let mut peer = Peer { child, stdin, stdout: BufReader::new(stdout), version: String::new() };
        let hello = peer.line()?;
        if let Some(error) = hello.get("error").and_then(Value::as_str) {
            return Err(error.to_owned());
        }
        peer.version = hello.get("version").and_then(Value::as_str).unwrap_or("?").to_owned();
        Ok(peer)
    }

    fn line(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        self.stdout.read_line(&mut line).map_err(|e| format!("reading from the peer: {e}"))?;
        if line.is_empty() {
            return Err("the peer exited".to_owned());
        }
        serde_json::from_str(&line).map_err(|e| format!("the peer answered {line:?}: {e}"))
    }

    fn decode(&mut self, frame: &LumaFrame) -> Result<(Vec<String>, f64), String> {
        let mut message = Vec::with_capacity(8 + frame.pixels.len());
        message.extend_from_slice(&frame.width.to_le_bytes());
        message.extend_from_slice(&frame.height.to_le_bytes());
        message.extend_from_slice(&frame.pixels);
        self.stdin
            .write_all(&message)
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("writing to the peer: {e}"))?;
        let answer = self.line()?;
        let micros = answer.get("micros").and_then(Value::as_f64).unwrap_or(f64::NAN);
        let keys = answer
            .get("reads")
            .and_then(Value::as_array)
            .map(|reads| {
                reads
                    .iter()
                    .filter_map(|r| {
                        let text = r.get("text")?.as_str()?;
                        let format = r.get("format")?.as_str()?;
                        // zxing-cpp gives UPC-E as its 12- or 13-digit GTIN.
                        let symbology = match (peer_symbology(format)?, text.len()) {
                            (Symbology::UpcE, 13) => Symbology::Ean13,
                            (Symbology::UpcE, 12) => Symbology::UpcA,
                            (symbology, _) => symbology,
                        };
                        Some(key_of(text, symbology))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok((keys, micros))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn peer_symbology(format: &str) -> Option<Symbology> {
    let f = format.rsplit('.').next().unwrap_or(format);
    Some(match f {
        f if f.starts_with("QRCode") || f == "QR Code" => Symbology::QrCode,
        "Code128" | "Code 128" => Symbology::Code128,
        "EAN13" | "EAN-13" => Symbology::Ean13,
        "EAN8" | "EAN-8" => Symbology::Ean8,
        "UPCA" | "UPC-A" => Symbology::UpcA,
        "UPCE" | "UPC-E" => Symbology::UpcE,
        _ => return None,
    })
}

/// A decoder under test and its outcomes, frame by frame.
struct Contender {
    name: String,
    outcomes: Vec<Outcome>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[derive(Default)]
struct Stats {
    frames: usize,
    /// Frames that show a code.
    coded: usize,
    correct: usize,
    false_reads: usize,
    millis: Vec<f64>,
}

impl Stats {
    fn add(&mut self, o: &Outcome, coded: bool) {
        self.frames += 1;
        self.coded += usize::from(coded);
        self.correct += usize::from(o.correct);
        self.false_reads += usize::from(o.false_read);
        self.millis.push(o.micros / 1000.0);
    }

    fn accuracy(&self) -> f64 {
        100.0 * self.correct as f64 / self.coded.max(1) as f64
    }

    fn sorted(&self) -> Vec<f64> {
        let mut m = self.millis.clone();
        m.sort_by(f64::total_cmp);
        m
    }

    fn median(&self) -> f64 {
        percentile(&self.sorted(), 50.0)
    }

    fn p99(&self) -> f64 {
        percentile(&self.sorted(), 99.0)
    }
}

/// Whether a frame's distortion belongs to a report line.
type DistortionTest<'a> = &'a dyn Fn(&Distortion) -> bool;

/// The group whose accuracy the targets are about: frames whose code is still in the pixels.
const LEGIBLE: &str = "codes";
const UNDER_15: &str = "tilt < 15°";

/// Groups of frames a report line is about. Per format and by distortion, frames whose code glare washed out
/// (unreadable by construction, see [`Legibility::WashedOut`]) are left out; they have a line of their own.
/// The table's rows over the main set, then the close-up and moving sets on rows of their own.
fn groups(all: &[Case]) -> Vec<(String, Vec<usize>)> {
    let frames = all.iter().filter(|c| c.set == Set::Main).count();
    let cases = &all[..frames];
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    let legible = |i: &usize| cases[*i].kind != Kind::None && cases[*i].legibility == Legibility::Legible;
    let pick = |f: &dyn Fn(&Case) -> bool| (0..cases.len()).filter(|i| f(&cases[*i])).collect::<Vec<_>>();
    for kind in KINDS {
        let of_kind = pick(&|c| c.kind == kind);
        out.push((kind.name().to_owned(), of_kind.into_iter().filter(|i| kind == Kind::None || legible(i)).collect()));
    }
    out.push((LEGIBLE.to_owned(), (0..cases.len()).filter(legible).collect()));
    out.push((UNDER_15.to_owned(), (0..cases.len()).filter(|i| legible(i) && cases[*i].tilt < 15.0).collect()));
    out.push(("tilt >= 15°".to_owned(), (0..cases.len()).filter(|i| legible(i) && cases[*i].tilt >= 15.0).collect()));
    let distortions: [(&str, DistortionTest); 7] = [
        ("  glare", &|d| d.glare > 0.0),
        ("  blur>=0.8", &|d| d.blur_sigma >= 0.8),
        // Module size is `scale` pixels (the bench renders at 1 pixel a module before scaling).
        ("  blur>=.6mod", &|d| d.blur_sigma >= 0.6 * d.scale),
        ("  contr<0.45", &|d| d.contrast < 0.45),
        ("  module<2px", &|d| d.scale < 2.0),
        ("  persp>=.15", &|d| d.perspective_x.abs().max(d.perspective_y.abs()) >= 0.15),
        ("  none above", &|d| {
            d.glare == 0.0
                && d.blur_sigma < 0.8
                && d.contrast >= 0.45
                && d.scale >= 2.0
                && d.perspective_x.abs().max(d.perspective_y.abs()) < 0.15
        }),
    ];
    for (name, f) in distortions {
        out.push((name.to_owned(), (0..cases.len()).filter(|i| legible(i) && f(&cases[*i].spec.distortion)).collect()));
    }
    out.push(("washed out".to_owned(), pick(&|c| c.kind != Kind::None && c.legibility == Legibility::WashedOut)));
    out.push(("all codes".to_owned(), pick(&|c| c.kind != Kind::None)));
    out.push(("VGA frames".to_owned(), pick(&|c| c.spec.width == 640)));
    out.push(("720p frames".to_owned(), pick(&|c| c.spec.width == 1280)));
    out.push(("every frame".to_owned(), (0..cases.len()).collect()));
    let other = |set: Set, f: &dyn Fn(&Case) -> bool| -> Vec<usize> {
        (frames..all.len())
            .filter(|&i| all[i].set == set && all[i].legibility == Legibility::Legible && f(&all[i]))
            .collect()
    };
    out.push((CLOSE_UPS.to_owned(), other(Set::CloseUp, &|_| true)));
    for (name, low, high) in MOVING {
        out.push((name.to_owned(), other(Set::Moving, &|c| (low..high).contains(&blurring_travel(c)))));
    }
    out
}

const CLOSE_UPS: &str = "close-ups";
/// The moving set's rows, by [`blurring_travel`] (modules).
const MOVING: [(&str, f32, f32); 3] =
    [("moving <1", 0.0, 1.0), ("moving 1-2", 1.0, 2.0), ("moving >=2", 2.0, f32::INFINITY)];

fn stats(contender: &Contender, cases: &[Case], indices: &[usize]) -> Stats {
    let mut s = Stats::default();
    for &i in indices {
        s.add(&contender.outcomes[i], cases[i].truth.is_some());
    }
    s
}

/// Frame-to-read latency of a lane at 30 fps with one decoder thread that always takes the newest frame,
/// replayed from the measured decode times: (p99 latency in ms, frames dropped).
fn lane_latency(contender: &Contender, frames: usize) -> (f64, usize) {
    let interval = 1000.0 / 30.0;
    let mut free_at = 0.0f64;
    let mut latencies = Vec::new();
    let mut dropped = 0;
    let mut i = 0usize;
    let n = contender.outcomes.len().min(frames);
    while i < n {
        let arrival = i as f64 * interval;
        let start = free_at.max(arrival);
        // Frames that arrived while the decoder was busy, except the newest, are dropped.
        let newest = ((start / interval).floor() as usize).max(i).min(n - 1);
        dropped += newest - i;
        let arrival = newest as f64 * interval;
        let done = start.max(arrival) + contender.outcomes[newest].micros / 1000.0;
        latencies.push(done - arrival);
        free_at = done;
        i = newest + 1;
    }
    latencies.sort_by(f64::total_cmp);
    (percentile(&latencies, 99.0), dropped)
}

pub fn run(args: BenchDecodeArgs) -> anyhow::Result<()> {
    let mut cases: Vec<Case> = (0..args.frames)
        .map(|i| make_case(i, args.seed, Set::Main))
        .chain((0..args.close_ups).map(|i| make_case(i, args.seed, Set::CloseUp)))
        .chain((0..args.moving).map(|i| make_case(i, args.seed, Set::Moving)))
        .collect::<anyhow::Result<_>>()?;
    let mut peer = if args.no_peer { Err("not run (--no-peer)".to_owned()) } else { Peer::start(&args.python) };
    let mut variants: Vec<(String, VisionConfig)> = vec![("ours".to_owned(), VisionConfig::default())];
    if args.ablate {
        let base = VisionConfig::default();
        variants.push(("ours, no deskew".to_owned(), VisionConfig { deskew: false, ..base.clone() }));
        variants.push(("ours + stretch".to_owned(), VisionConfig { stretch: true, ..base.clone() }));
        variants.push(("ours, no retries".to_owned(), VisionConfig { retries: false, ..base.clone() }));
        variants.push(("ours, no deblur".to_owned(), VisionConfig { deblur: false, ..base.clone() }));
        variants.push(("ours + inverted".to_owned(), VisionConfig { inverted: true, ..base.clone() }));
        variants.push(("ours + whole-frame fallback".to_owned(), VisionConfig { whole_frame_fallback: true, ..base }));
    }
    let mut contenders: Vec<Contender> =
        variants.iter().map(|(name, _)| Contender { name: name.clone(), outcomes: Vec::new() }).collect();
    let mut baseline = args.baseline.then(|| Contender { name: "rxing whole frame".to_owned(), outcomes: Vec::new() });
    let mut peer_outcomes = Vec::new();
    let mut peer_failure: Option<String> = None;
    // Hints given on frames that read nothing, by hint (and "none"): see [`HintTally`].
    let mut hints: BTreeMap<String, HintTally> = BTreeMap::new();
    // Work spent by "ours" per frame, and frames whose search the work budget cut short.
    let mut work: Vec<u64> = Vec::new();
    let (mut cut, mut timed_out) = (0usize, 0usize);
    let started = Instant::now();
    for case in &mut cases {
        let (frame, legibility) =
            render_frame_judged(&case.spec).map_err(|e| anyhow::anyhow!("rendering {:?}: {e}", case.spec))?;
        case.legibility = legibility;
        let case = &*case;
        for ((_, config), contender) in variants.iter().zip(contenders.iter_mut()) {
            let t = Instant::now();
            let analysis = analyse_frame(&frame, config);
            let micros = t.elapsed().as_secs_f64() * 1e6;
            // The work figures are the main set's, like the table's rows above the close-ups.
            let counted = contender.name == "ours" && case.set == Set::Main;
            if counted && let Ok(a) = &analysis {
                work.push(a.work);
                cut += usize::from(a.reads.is_empty() && a.tried < a.candidates.min(config.max_candidates));
                timed_out += usize::from(a.timed_out);
            }
            let (tried, candidates) = analysis.as_ref().map_or((0, 0), |a| (a.tried, a.candidates));
            let (keys, hint) = match analysis {
                Ok(a) => (a.reads.iter().map(|r| key_of(&r.text, r.symbology)).collect::<Vec<_>>(), a.unreadable),
                Err(_) => (Vec::new(), None),
            };
            let outcome = judge(case, &keys, micros);
            if contender.name == "ours" && keys.is_empty() && case.set != Set::CloseUp {
                let name = hint.map_or_else(|| "none".to_owned(), |hint| format!("{hint:?}"));
                hints.entry(name).or_default().add(case);
            }
            if contender.name == "ours"
                && (outcome.false_read || (case.truth.is_some() && !outcome.correct))
                && let Some(dir) = &args.failures
            {
                std::fs::create_dir_all(dir)?;
                let set = match case.set {
                    Set::Main => String::new(),
                    Set::CloseUp => "-close".to_owned(),
                    Set::Moving => format!("-moving{:.1}", blurring_travel(case)),
                };
                let name =
                    format!("{:04}-{}-tilt{:.0}{set}.png", contender.outcomes.len(), case.kind.name(), case.tilt);
                let png = encode_png(&frame).map_err(|e| anyhow::anyhow!("{e}"))?;
                std::fs::write(dir.join(&name), png)?;
                // Product keys only: a payment code is never printed.
                let read: Vec<&str> =
                    keys.iter().map(|k| if k.starts_with("gtin:") { k.as_str() } else { "(other)" }).collect();
                eprintln!(
                    "{name}: {:?} {:?}, {tried} of {candidates} regions tried, hint {hint:?} read {read:?}",
                    case.spec, case.legibility
                );
            }
            contender.outcomes.push(outcome);
        }
        if let Some(baseline) = baseline.as_mut() {
            let t = Instant::now();
            let reads = decode_frame_whole(&frame).unwrap_or_default();
            let micros = t.elapsed().as_secs_f64() * 1e6;
            let keys: Vec<String> = reads.iter().map(|r| key_of(&r.text, r.symbology)).collect();
            baseline.outcomes.push(judge(case, &keys, micros));
        }
        if let Ok(p) = peer.as_mut() {
            match p.decode(&frame) {
                Ok((keys, micros)) => peer_outcomes.push(judge(case, &keys, micros)),
                Err(e) => peer_failure = Some(e),
            }
            if peer_failure.is_some() {
                peer = Err(peer_failure.clone().unwrap_or_default());
            }
        }
    }
    let elapsed = started.elapsed();
    let (peer_name, peer_missing) = match &peer {
        Ok(p) if peer_outcomes.len() == cases.len() => (format!("zxing-cpp {}", p.version), None),
        Ok(_) => ("zxing-cpp".to_owned(), Some("the peer stopped answering".to_owned())),
        Err(e) => ("zxing-cpp".to_owned(), Some(e.clone())),
    };
    let peer_contender = peer_missing.is_none().then(|| Contender { name: peer_name.clone(), outcomes: peer_outcomes });
    let mut all: Vec<&Contender> = contenders.iter().collect();
    if let Some(b) = baseline.as_ref() {
        all.push(b);
    }
    if let Some(p) = peer_contender.as_ref() {
        all.push(p);
    }
    let frames = args.frames;
    let groups = groups(&cases);
    if args.json {
        let summary = |c: &Contender| {
            let group = |name: &str| groups.iter().find(|g| g.0 == name).map(|g| g.1.clone()).unwrap_or_default();
            let coded = &group(LEGIBLE);
            let under15 = &group(UNDER_15);
            let washed = &group("washed out");
            let all_codes = &group("all codes");
            let every = stats(c, &cases, &(0..frames).collect::<Vec<_>>());
            let empty: Vec<usize> = (0..frames).filter(|&i| cases[i].kind == Kind::None).collect();
            let vga: Vec<usize> = (0..frames).filter(|&i| cases[i].spec.width == 640).collect();
            let close_ups = stats(c, &cases, &group(CLOSE_UPS));
            let moving: serde_json::Map<String, Value> = MOVING
                .iter()
                .map(|(name, _, _)| {
                    let s = stats(c, &cases, &group(name));
                    let row = json!({"frames": s.coded, "accuracy": s.accuracy() / 100.0, "median_ms": s.median()});
                    (name.to_string(), row)
                })
                .collect();
            let per_format: serde_json::Map<String, Value> = KINDS
                .iter()
                .filter(|k| **k != Kind::None)
                .map(|k| {
                    let s = stats(c, &cases, &group(k.name()));
                    (
                        k.name().to_owned(),
                        json!({"accuracy": s.accuracy() / 100.0, "median_ms": s.median(), "p99_ms": s.p99()}),
                    )
                })
                .collect();
            let (latency, dropped) = lane_latency(c, frames);
            json!({
                "name": c.name,
                "accuracy": stats(c, &cases, coded).accuracy() / 100.0,
                "accuracy_tilt_under_15": stats(c, &cases, under15).accuracy() / 100.0,
                "accuracy_all_codes_with_washed_out": stats(c, &cases, all_codes).accuracy() / 100.0,
                "washed_out_frames": washed.len(),
                "washed_out_read": stats(c, &cases, washed).correct,
                "false_positives": stats(c, &cases, &empty).false_reads,
                "misreads": stats(c, &cases, all_codes).false_reads,
                "median_ms": every.median(),
                "p99_ms": every.p99(),
                "vga_p99_ms": stats(c, &cases, &vga).p99(),
                "lane_p99_latency_ms_at_30fps": latency,
                "lane_frames_dropped_at_30fps": dropped,
                "per_format": per_format,
                "close_ups": json!({"frames": close_ups.coded, "accuracy": close_ups.accuracy() / 100.0,
                    "median_ms": close_ups.median(), "p99_ms": close_ups.p99()}),
                "moving": moving,
            })
        };
        let mut out = json!({
            "frames": frames,
            "close_ups": args.close_ups,
            "moving": args.moving,
            "seed": args.seed,
            "ours": summary(&contenders[0]),
            "peer": peer_contender.as_ref().map(summary),
        });
        if let Some(missing) = &peer_missing {
            out["peer_missing"] = json!(missing);
        }
        if contenders.len() > 1 || baseline.is_some() {
            out["variants"] = contenders[1..].iter().chain(baseline.iter()).map(summary).collect();
        }
        println!("{out}");
        return Ok(());
    }

    let main = &cases[..frames];
    let coded = main.iter().filter(|c| c.kind != Kind::None).count();
    println!(
        "checkout bench decode: {} frames (seed {}), {} with a code, {} without; {} VGA, {} 720p; \
         and {} close-ups, {} moving; {:.1} s",
        frames,
        args.seed,
        coded,
        frames - coded,
        main.iter().filter(|c| c.spec.width == 640).count(),
        main.iter().filter(|c| c.spec.width == 1280).count(),
        args.close_ups,
        args.moving,
        elapsed.as_secs_f64()
    );
    println!(
        "1D codes tilted up to 45° (a quarter of them upside down), QR at any rotation; perspective, blur, noise,"
    );
    println!("glare, low contrast, clutter. Decode times on one thread, image loading excluded on both sides.");
    match &peer_missing {
        None => println!("peer: {peer_name} (Python, read_barcodes with its defaults), same frames, same run"),
        Some(why) => println!("peer: zxing-cpp not measured: {why}. Our results alone."),
    }
    println!();
    print!("{:<12} {:>5}", "frames", "n");
    for c in &all {
        print!(" | {:^33}", truncate(&c.name, 33));
    }
    println!();
    print!("{:<12} {:>5}", "", "");
    for _ in &all {
        print!(" | {:>7} {:>7} {:>7} {:>9}", "acc %", "med ms", "p99 ms", "false rd");
    }
    println!();
    for (name, indices) in &groups {
        print!("{:<12} {:>5}", truncate(name, 12), indices.len());
        for c in &all {
            let s = stats(c, &cases, indices);
            let acc = if s.coded == 0 { "-".to_owned() } else { format!("{:.1}", s.accuracy()) };
            print!(" | {:>7} {:>7.2} {:>7.2} {:>9}", acc, s.median(), s.p99(), s.false_reads);
        }
        println!();
    }
    println!();
    println!("false rd: reads that are wrong (a wrong text, or any read on a frame with no code).");
    println!("close-ups: codes held near the camera (4 to 20 pixels a module), in no other row.");
    println!("moving: codes that moved while the shutter was open, by how far (modules) across their bars (1D) or in");
    println!("any direction (QR); no glare; in no other row.");
    for c in &all {
        let (latency, dropped) = lane_latency(c, frames);
        println!(
            "{}: lane at 30 fps, newest frame first: p99 frame-to-read latency {:.1} ms, {} of {} frames dropped",
            c.name, latency, dropped, frames
        );
    }
    work.sort_unstable();
    if let (Some(&max), false) = (work.last(), work.is_empty()) {
        println!(
            "ours: work per frame (pixels resampled and handed to rxing) median {}, p99 {}, max {}; budget {}, \
             cut short a fruitless search on {} frames; safety time cap reached on {} frames",
            work[work.len() / 2],
            work[(work.len() - 1) * 99 / 100],
            max,
            VisionConfig::default().work_budget,
            cut,
            timed_out
        );
    }
    if !hints.is_empty() {
        println!(
            "ours: the cashier's hint on frames that read nothing: codes of the set (of them under glare) / moving \
             codes / frames without a code:"
        );
        let list: Vec<String> =
            hints.iter().map(|(k, t)| format!("{k} {} ({}) / {} / {}", t.codes, t.glared, t.moving, t.empty)).collect();
        println!("      {}", list.join("; "));
    }
    Ok(())
}

/// Frames that read nothing and were given one hint, by kind of frame.
#[derive(Default)]
struct HintTally {
    /// Codes of the main set (washed out or not), and of them those under glare, the one cause the set tells
    /// outright.
    codes: usize,
    glared: usize,
    /// Codes of the moving set: motion blur, the cause the hint should tell.
    moving: usize,
    /// Main-set frames without a code: any hint there is a false alarm at the lane.
    empty: usize,
}

impl HintTally {
    fn add(&mut self, case: &Case) {
        match (case.set, case.truth.is_some()) {
            (Set::Moving, _) => self.moving += 1,
            (_, false) => self.empty += 1,
            (_, true) => {
                self.codes += 1;
                self.glared += usize::from(case.spec.distortion.glare > 0.0);
            }
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilt_folds_to_the_nearest_upright() {
        assert!((tilt_of(30.0, false) - 30.0).abs() < 1e-3);
        assert!((tilt_of(-30.0, false) - 30.0).abs() < 1e-3);
        assert!((tilt_of(190.0, false) - 10.0).abs() < 1e-3);
        assert!((tilt_of(100.0, true) - 10.0).abs() < 1e-3);
    }

    #[test]
    fn cases_are_deterministic_and_fit() {
        for i in 0..21 {
            let set = [Set::Main, Set::CloseUp, Set::Moving][i % 3];
            let a = make_case(i, 5, set).unwrap();
            let b = make_case(i, 5, set).unwrap();
            assert_eq!(a.spec, b.spec);
            assert_eq!(a.truth, b.truth);
            assert_eq!(a.truth.is_none(), a.kind == Kind::None);
            assert!(a.truth.is_some() || set == Set::Main, "every close-up and moving frame shows a code");
            assert_eq!(a.spec.distortion.motion_px > 0.0, set == Set::Moving, "only the moving set moves");
        }
    }

    #[test]
    fn lane_latency_drops_frames_when_decoding_is_slow() {
        let slow = Contender {
            name: "x".into(),
            outcomes: vec![Outcome { correct: true, false_read: false, micros: 50_000.0 }; 30],
        };
        let (latency, dropped) = lane_latency(&slow, 30);
        assert!(dropped > 0);
        assert!(latency >= 50.0);
        let fast = Contender {
            name: "y".into(),
            outcomes: vec![Outcome { correct: true, false_read: false, micros: 5_000.0 }; 30],
        };
        let (latency, dropped) = lane_latency(&fast, 30);
        assert_eq!(dropped, 0);
        assert!((latency - 5.0).abs() < 1e-6, "{latency}");
    }
}
