//! Frames and codes: load camera frames and image files, find and read the codes in them, render codes into
//! frames. This file is the public API (and searches large frames again at half size); below it:
//!
//! - `pipeline`: the per-frame plan (which candidates, which readers, in which order, within the work budget);
//!   the only user of the two readers, `linear` (1D codes, read from strips) and `square` (QR codes, read from
//!   crops and module grids);
//! - `candidates` (where codes may be) and `diagnose` (why a code in view did not read);
//! - `frame` (grey frames: loading, PNG) and `render` (codes drawn, for the synthetic camera and tests);
//! - the leaves, which use nothing else of `vision`: `filters` (image filters), `rxing` (every call into rxing,
//!   behind `catch_unwind`) and `work` (the work counter).

mod candidates;
mod diagnose;
mod filters;
mod frame;
mod linear;
mod pipeline;
mod render;
#[cfg(test)]
mod robustness;
mod rxing;
#[cfg(test)]
mod scenes;
mod square;
mod work;

pub use self::rxing::CodeRead;
pub use diagnose::Unreadable;
pub use frame::{
    DEFAULT_PIXEL_LIMIT, FrameError, LumaFrame, PHOTO_PIXEL_LIMIT, encode_png, load_frame, load_frame_file,
};
pub use pipeline::{FrameAnalysis, VisionConfig};
pub use render::{RenderError, paste, render_code};

use std::borrow::Cow;

use self::rxing::{Failure, read_whole_frame};

/// Why a frame could not be decoded (finding no code is not an error).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// rxing panicked on this frame.
    #[error("the decoder crashed on this frame")]
    Panicked,
    /// The frame's pixel buffer does not match its dimensions.
    #[error("the frame's pixel buffer holds {len} bytes, not {width}x{height}")]
    InvalidFrame {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Actual buffer length.
        len: usize,
    },
    /// rxing failed for another reason than not finding a code.
    #[error("the decoder failed: {reason}")]
    Decoder {
        /// rxing's message.
        reason: String,
    },
}

/// Decodes the codes in a frame: QR, Code 128, EAN-13, EAN-8, UPC-A, UPC-E. Ok(empty vec) when no code is found.
///
/// Runs the candidate-region pipeline ([`analyse_frame`]) with the default [`VisionConfig`]. rxing is called
/// behind `catch_unwind`; a panic in it, with nothing read, comes back as [`DecodeError::Panicked`].
pub fn decode_frame(frame: &LumaFrame) -> Result<Vec<CodeRead>, DecodeError> {
    analyse_frame(frame, &VisionConfig::default()).map(|analysis| analysis.reads)
}

/// Finds and reads the codes in a frame, and says why a code in view could not be read when it can tell.
pub fn analyse_frame(frame: &LumaFrame, config: &VisionConfig) -> Result<FrameAnalysis, DecodeError> {
    if !frame.is_consistent() {
        return Err(DecodeError::InvalidFrame { width: frame.width, height: frame.height, len: frame.pixels.len() });
    }
    if frame.width == 0 || frame.height == 0 {
        return Ok(FrameAnalysis::default());
    }
    let mut budget = FrameBudget { left: config.frame_work_budget };
    if !config.framed_fallback {
        let mut analysis = analyse_levels(frame, config, &mut budget);
        if analysis.reads.is_empty() && config.negative_fallback {
            analysis = kept_reason(analysis, analyse_levels(&negative(frame), config, &mut budget));
        }
        return finished(frame, analysis);
    }
    // Framed: the whole-frame pass runs on a frame of at most lane size (a larger photo's framed frame is
    // small), not on every level of a photo; a light code on a dark ground is looked for framed too. A large
    // photo is searched framed first: that is a fraction of its pixels, and the close-ups and screens it reads
    // then come cheap (on the corpus the reads' work fell from 5.5 to 3.9 million at the 99th percentile).
    let lane_sized = frame.width.max(frame.height) <= PYRAMID_ABOVE;
    let in_place = VisionConfig { whole_frame_fallback: config.whole_frame_fallback && lane_sized, ..config.clone() };
    let mut analysis = if lane_sized {
        let analysis = analyse_levels(frame, &in_place, &mut budget);
        if analysis.reads.is_empty() { kept_reason(analysis, budget.analyse(&framed(frame), config)) } else { analysis }
    } else {
        let analysis = budget.analyse(&framed(frame), config);
        if analysis.reads.is_empty() {
            combined(analysis, analyse_levels(frame, &in_place, &mut budget))
        } else {
            analysis
        }
    };
    if analysis.reads.is_empty() && config.negative_fallback {
        let negative = framed(&negative(frame));
        let no_whole = VisionConfig { whole_frame_fallback: false, ..config.clone() };
        analysis = kept_reason(analysis, budget.analyse(&negative, &no_whole));
    }
    finished(frame, analysis)
}

/// What is left of [`VisionConfig::frame_work_budget`] for a frame's further searches (its coarser levels,
/// framed, its negative).
struct FrameBudget {
    left: u64,
}

impl FrameBudget {
    /// The pipeline on `frame` within what is left (and at most `config.work_budget`); nothing once it is
    /// spent.
    fn analyse(&mut self, frame: &LumaFrame, config: &VisionConfig) -> FrameAnalysis {
        if self.left == 0 {
            return FrameAnalysis::default();
        }
        let within = VisionConfig { work_budget: config.work_budget.min(self.left), ..config.clone() };
        let analysis = pipeline::analyse(frame, &within);
        self.left = self.left.saturating_sub(analysis.work);
        analysis
    }
}

/// The frame with its light and dark swapped: a light code on a dark ground (some packaging, a screen in dark
/// mode) becomes dark on light.
fn negative(frame: &LumaFrame) -> LumaFrame {
    LumaFrame { pixels: frame.pixels.iter().map(|&p| 255 - p).collect(), ..*frame }
}

/// A search after `earlier` failed: its reads, and the first search's reason (the frame as the camera saw it).
fn kept_reason(earlier: FrameAnalysis, later: FrameAnalysis) -> FrameAnalysis {
    FrameAnalysis { unreadable: earlier.unreadable, ..combined(earlier, later) }
}

/// The analysis, or the error of a frame on which rxing only panicked.
fn finished(frame: &LumaFrame, analysis: FrameAnalysis) -> Result<FrameAnalysis, DecodeError> {
    if analysis.panicked && analysis.reads.is_empty() {
        tracing::warn!(width = frame.width, height = frame.height, "rxing panicked while decoding a frame");
        return Err(DecodeError::Panicked);
    }
    Ok(analysis)
}

/// The pipeline on a frame and, while nothing is read, on its coarser levels.
///
/// A photo (a phone's, a document camera's) can hold a code far larger than a lane camera shows one: bars and
/// modules wider than the finder's cells, which it sees as separate fragments. Such frames are also searched
/// at half size, then a quarter, and so on, until one level reads or the frame is lane-sized.
fn analyse_levels(frame: &LumaFrame, config: &VisionConfig, budget: &mut FrameBudget) -> FrameAnalysis {
    let mut analysis = budget.analyse(frame, config);
    let mut level = Cow::Borrowed(frame);
    while analysis.reads.is_empty()
        && budget.left > 0
        && level.width.max(level.height) > PYRAMID_ABOVE
        && level.width.min(level.height) >= 64
    {
        level = Cow::Owned(half_size(&level));
        let coarser = budget.analyse(&level, config);
        // The coarser level sees a large code whole: its reason for not reading one is the better guess.
        analysis = combined(analysis, coarser);
    }
    analysis
}

/// An earlier search and a later one: the later one's reads, and its reason when it gives one.
fn combined(earlier: FrameAnalysis, later: FrameAnalysis) -> FrameAnalysis {
    FrameAnalysis {
        unreadable: later.unreadable.or(earlier.unreadable),
        candidates: earlier.candidates + later.candidates,
        tried: earlier.tried + later.tried,
        panicked: earlier.panicked || later.panicked,
        work: earlier.work + later.work,
        timed_out: earlier.timed_out || later.timed_out,
        reads: later.reads,
    }
}

/// Frames whose longer side is above this many pixels are also searched at half size (and so on): larger
/// than the lane cameras' 720p, and than any frame the benchmark's accuracy targets were measured on.
pub const PYRAMID_ABOVE: u32 = 1280;

/// The frame at half its width and height (rounded down), each pixel the mean of the 2 x 2 it replaces.
fn half_size(frame: &LumaFrame) -> LumaFrame {
    let (w, h) = (frame.width as usize / 2, frame.height as usize / 2);
    let source = frame.width as usize;
    let mut pixels = Vec::with_capacity(w * h);
    for y in 0..h {
        let (top, bottom) = (&frame.pixels[2 * y * source..], &frame.pixels[(2 * y + 1) * source..]);
        pixels.extend((0..w).map(|x| {
            let sum = u16::from(top[2 * x])
                + u16::from(top[2 * x + 1])
                + u16::from(bottom[2 * x])
                + u16::from(bottom[2 * x + 1]);
            // A sum of four u8 over four fits a u8.
            ((sum + 2) / 4) as u8
        }));
    }
    LumaFrame { width: w as u32, height: h as u32, pixels }
}

/// A framed frame is at most this long (halved until it is) and at least [`FRAMED_MIN_SIDE`] on its shorter
/// side (enlarged until it is): a code that fills it then spans several of the finder's cells, and not a
/// hundred.
const FRAMED_MAX_SIDE: u32 = 800;
const FRAMED_MIN_SIDE: u32 = 240;

/// `frame` at a size where a code that fills it is seen whole (halved, or enlarged by repeating pixels),
/// inside a quiet zone a quarter of its shorter side wide, of its own light (the 95th percentile of its
/// pixels).
fn framed(frame: &LumaFrame) -> LumaFrame {
    let mut level = Cow::Borrowed(frame);
    while level.width.max(level.height) > FRAMED_MAX_SIDE && level.width.min(level.height) >= 2 * FRAMED_MIN_SIDE {
        level = Cow::Owned(half_size(&level));
    }
    let frame = level.as_ref();
    let mut histogram = [0usize; 256];
    frame.pixels.iter().for_each(|&p| histogram[usize::from(p)] += 1);
    let mut below = 0;
    let light = (0..=255u8)
        .find(|&level| {
            below += histogram[usize::from(level)];
            below * 100 >= frame.pixels.len() * 95
        })
        .unwrap_or(255);
    let scale = (FRAMED_MIN_SIDE.div_ceil(frame.width.min(frame.height).max(1))).clamp(1, 4) as usize;
    let (w, h) = (frame.width as usize * scale, frame.height as usize * scale);
    let margin = (w.min(h) / 4).max(16);
    let (fw, fh) = (w + 2 * margin, h + 2 * margin);
    let mut pixels = vec![light; fw * fh];
    for y in 0..h {
        let source = &frame.pixels[(y / scale) * frame.width as usize..][..frame.width as usize];
        let row = &mut pixels[(y + margin) * fw + margin..][..w];
        for (x, p) in row.iter_mut().enumerate() {
            *p = source[x / scale];
        }
    }
    LumaFrame { width: fw as u32, height: fh as u32, pixels }
}

/// The plain approach, kept as the benchmark's baseline: rxing on the whole frame with TryHarder and
/// AlsoInverted, behind `catch_unwind`.
pub fn decode_frame_whole(frame: &LumaFrame) -> Result<Vec<CodeRead>, DecodeError> {
    if !frame.is_consistent() {
        return Err(DecodeError::InvalidFrame { width: frame.width, height: frame.height, len: frame.pixels.len() });
    }
    if frame.width == 0 || frame.height == 0 {
        return Ok(Vec::new());
    }
    match read_whole_frame(&frame.pixels, frame.width, frame.height) {
        Ok(read) => Ok(read.into_iter().collect()),
        Err(Failure::Error(reason)) => Err(DecodeError::Decoder { reason }),
        Err(Failure::Panicked) => {
            tracing::warn!(width = frame.width, height = frame.height, "rxing panicked while decoding a frame");
            Err(DecodeError::Panicked)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkout_storage::{Symbology, gtin_check_digit, upc_e_to_upc_a};
    use image::{ExtendedColorType, ImageEncoder};
    use std::time::Instant;

    /// `body` followed by its GTIN check digit.
    fn with_check(body: &str) -> String {
        format!("{body}{}", gtin_check_digit(body.as_bytes()))
    }

    /// A valid 8-digit UPC-E for the 7 digits `body` (number system + 6).
    fn upc_e(body: &str) -> String {
        let upc_a = upc_e_to_upc_a(&format!("{body}0")).unwrap();
        format!("{body}{}", gtin_check_digit(&upc_a.as_bytes()[..11]))
    }

    fn canvas_with(text: &str, symbology: Symbology, x: i64, y: i64) -> LumaFrame {
        let (module_px, bar_height) = if symbology == Symbology::QrCode { (4, 0) } else { (2, 90) };
        let code = render_code(text, symbology, module_px, bar_height).unwrap();
        let mut canvas = LumaFrame::new(640, 480, 200);
        paste(&mut canvas, &code, x, y);
        canvas
    }

    fn assert_round_trip(text: &str, symbology: Symbology, x: i64, y: i64) {
        let canvas = canvas_with(text, symbology, x, y);
        let started = Instant::now();
        let reads = decode_frame(&canvas).unwrap();
        eprintln!("decode {} at ({x}, {y}): {:?}", symbology.name(), started.elapsed());
        assert_eq!(reads, vec![CodeRead { text: text.to_owned(), symbology }], "{}", symbology.name());
    }

    const WECHAT_LIKE: &str = "134567890123456789";

    #[test]
    fn round_trip_ean13() {
        let text = with_check("690123400001");
        assert_eq!(text.len(), 13);
        assert_round_trip(&text, Symbology::Ean13, 30, 340);
    }

    #[test]
    fn round_trip_ean8() {
        assert_round_trip(&with_check("9638507"), Symbology::Ean8, 400, 50);
    }

    #[test]
    fn round_trip_upc_a() {
        assert_round_trip(&with_check("03600029145"), Symbology::UpcA, 320, 370);
    }

    #[test]
    fn round_trip_upc_e() {
        let text = upc_e("0123456");
        assert_eq!(text.len(), 8);
        assert_round_trip(&text, Symbology::UpcE, 10, 10);
    }

    #[test]
    fn round_trip_code128_wechat_like() {
        assert_round_trip(WECHAT_LIKE, Symbology::Code128, 300, 360);
    }

    #[test]
    fn round_trip_qr_wechat_like() {
        assert_round_trip(WECHAT_LIKE, Symbology::QrCode, 470, 30);
    }

    #[test]
    fn round_trip_qr_near_bottom_left() {
        assert_round_trip("https://example.com/pay?x=1", Symbology::QrCode, 8, 340);
    }

    /// A photo-sized frame (a phone's) with one code much larger than a lane camera shows one.
    fn photo_with(text: &str, symbology: Symbology, module_px: u32) -> LumaFrame {
        let code = render_code(text, symbology, module_px, 40 * module_px).unwrap();
        let mut photo = LumaFrame::new(3000, 2000, 120);
        paste(&mut photo, &code, 100, 150);
        photo
    }

    #[test]
    fn a_photo_of_a_code_filling_it_reads_at_a_coarser_level() {
        let ean = with_check("690123400001");
        for (text, symbology, module_px) in [(ean.as_str(), Symbology::Ean13, 24), (WECHAT_LIKE, Symbology::QrCode, 60)]
        {
            let photo = photo_with(text, symbology, module_px);
            // At full size, the spaces and modules are wider than the finder's cells: it sees fragments.
            assert!(pipeline::analyse(&photo, &VisionConfig::default()).reads.is_empty(), "{}", symbology.name());
            let analysis = analyse_frame(&photo, &VisionConfig::default()).unwrap();
            assert_eq!(analysis.reads, vec![CodeRead { text: text.to_owned(), symbology }], "{}", symbology.name());
        }
    }

    #[test]
    fn a_small_code_in_a_photo_still_reads_at_full_size() {
        let ean = with_check("690123400001");
        let photo = photo_with(&ean, Symbology::Ean13, 2);
        assert_eq!(half_size(&photo).width, 1500);
        assert_eq!(decode_frame(&photo).unwrap(), vec![CodeRead { text: ean, symbology: Symbology::Ean13 }]);
    }

    #[test]
    fn empty_frame_has_no_code() {
        let frame = LumaFrame::new(640, 480, 200);
        let started = Instant::now();
        assert_eq!(decode_frame(&frame).unwrap(), vec![]);
        eprintln!("decode empty 640x480: {:?}", started.elapsed());
        assert_eq!(decode_frame(&LumaFrame::new(0, 0, 0)).unwrap(), vec![]);
        assert_eq!(decode_frame(&LumaFrame::new(640, 480, 0)).unwrap(), vec![]);
        assert_eq!(decode_frame(&LumaFrame::new(1, 1, 255)).unwrap(), vec![]);
    }

    #[test]
    fn a_photo_with_nothing_to_read_stops_at_its_work_budget() {
        // Patches of random blocks (labels, print) spread over a 12 Mpx photo: each looks like a QR code to the
        // region finder, and none reads.
        let (w, h) = (4000u32, 3000u32);
        let mut frame = LumaFrame::new(w, h, 180);
        let mut state = 0x9e37_79b9u32;
        for (px, py) in (0..10).flat_map(|i| (0..7).map(move |j| (40 + 400 * i, 40 + 420 * j))) {
            for (bx, by) in (0..30).flat_map(|i| (0..30).map(move |j| (i, j))) {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let grey = if state & 1 == 0 { 30 } else { 200 };
                for (x, y) in (0..8).flat_map(|i| (0..8).map(move |j| (i, j))) {
                    frame.set(px + bx * 8 + x, py + by * 8 + y, grey);
                }
            }
        }
        let budget = 3_000_000;
        let bounded =
            analyse_frame(&frame, &VisionConfig { frame_work_budget: budget, ..VisionConfig::photos() }).unwrap();
        let unbounded =
            analyse_frame(&frame, &VisionConfig { frame_work_budget: u64::MAX, ..VisionConfig::photos() }).unwrap();
        assert_eq!((bounded.reads.len(), unbounded.reads.len()), (0, 0));
        assert!(unbounded.work > budget + pipeline::DEFAULT_WORK_BUDGET, "{}", unbounded.work);
        // A search under way finishes its candidate: the budget is overshot by at most about one search's.
        assert!(bounded.work <= budget + pipeline::DEFAULT_WORK_BUDGET, "{}", bounded.work);
    }

    #[test]
    fn noise_frame_has_no_code() {
        let mut frame = LumaFrame::new(320, 240, 0);
        let mut state = 0x1234_5678u32;
        for p in &mut frame.pixels {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *p = state as u8;
        }
        assert_eq!(decode_frame(&frame).unwrap(), vec![]);
    }

    #[test]
    fn inconsistent_frame_is_an_error() {
        let frame = LumaFrame { width: 10, height: 10, pixels: vec![0; 99] };
        assert!(matches!(decode_frame(&frame), Err(DecodeError::InvalidFrame { len: 99, .. })));
        assert!(matches!(encode_png(&frame), Err(FrameError::Encode { .. })));
    }

    /// A lane sees the same code in frame after frame: what a frame yields must not depend on when it is read or
    /// how busy the machine is. The search is bounded by counted work, not time: reading a frame again gives the
    /// same codes, the same hint and the same work, all within the budget.
    #[test]
    fn a_frame_read_again_gives_the_same_analysis() {
        // A safety time cap that a busy test machine cannot reach: only the work budget bounds the search.
        let config = VisionConfig { time_cap: std::time::Duration::from_secs(5), ..VisionConfig::default() };
        let ean = with_check("690123400001");
        let frames = [
            ("empty", LumaFrame::new(640, 480, 200), None),
            ("qr", canvas_with(WECHAT_LIKE, Symbology::QrCode, 470, 30), Some((WECHAT_LIKE, Symbology::QrCode))),
            (
                "code128",
                canvas_with(WECHAT_LIKE, Symbology::Code128, 300, 360),
                Some((WECHAT_LIKE, Symbology::Code128)),
            ),
            ("ean13", canvas_with(&ean, Symbology::Ean13, 30, 340), Some((ean.as_str(), Symbology::Ean13))),
        ];
        for (name, frame, code) in &frames {
            let first = analyse_frame(frame, &config).unwrap();
            let expected: Vec<CodeRead> =
                code.iter().map(|&(text, symbology)| CodeRead { text: text.to_owned(), symbology }).collect();
            assert_eq!(first.reads, expected, "{name}");
            assert!(first.work <= config.work_budget, "{name}: work {}", first.work);
            for _ in 0..2 {
                assert_eq!(analyse_frame(frame, &config).unwrap(), first, "{name}: read again");
            }
        }
    }

    #[test]
    fn file_round_trip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("frame.png");
        let frame = canvas_with(WECHAT_LIKE, Symbology::QrCode, 100, 100);
        std::fs::write(&path, encode_png(&frame).unwrap()).unwrap();
        assert_eq!(load_frame_file(&path, DEFAULT_PIXEL_LIMIT).unwrap(), frame);
        let missing = dir.path().join("missing.png");
        let e = load_frame_file(&missing, DEFAULT_PIXEL_LIMIT).unwrap_err();
        assert!(matches!(&e, FrameError::Io { path, .. } if *path == missing), "{e}");
        assert!(e.to_string().contains("missing.png"), "{e}");
    }

    #[test]
    fn jpeg_frame_decodes() {
        let frame = canvas_with(WECHAT_LIKE, Symbology::QrCode, 200, 150);
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
            .write_image(&frame.pixels, frame.width, frame.height, ExtendedColorType::L8)
            .unwrap();
        let loaded = load_frame(&jpeg, DEFAULT_PIXEL_LIMIT).unwrap();
        assert_eq!((loaded.width, loaded.height), (640, 480));
        assert_eq!(
            decode_frame(&loaded).unwrap(),
            vec![CodeRead { text: WECHAT_LIKE.to_owned(), symbology: Symbology::QrCode }]
        );
    }

    #[test]
    fn truncated_png_is_corrupt() {
        let frame = canvas_with(WECHAT_LIKE, Symbology::QrCode, 100, 100);
        let png = encode_png(&frame).unwrap();
        for cut in [png.len() / 2, png.len() - 13, 30, 20, 8] {
            let e = load_frame(&png[..cut], DEFAULT_PIXEL_LIMIT).unwrap_err();
            assert!(matches!(e, FrameError::Corrupt { .. }), "cut at {cut}: {e}");
        }
    }
}
