//! Frames and codes: load camera frames and image files, decode them with rxing, render codes into frames.

mod deblur;
mod filters;
mod locate;
mod qr_grid;
#[cfg(test)]
mod robustness;
mod rows;
mod rxing;

pub use self::rxing::CodeRead;
pub use locate::{FrameAnalysis, Unreadable, VisionConfig};

use std::borrow::Cow;
use std::fmt;
use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use ::rxing::common::BitMatrix;
use checkout_storage::Symbology;
use image::codecs::png::PngEncoder;
use image::{DynamicImage, ExtendedColorType, ImageEncoder, ImageError, ImageFormat, ImageReader, Limits};

use self::rxing::{Failure, encode, read_whole_frame};

/// An 8-bit grey frame, row-major, `width * height` bytes (0 is black, 255 is white).
#[derive(Clone, PartialEq, Eq)]
pub struct LumaFrame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height` grey values, row after row.
    pub pixels: Vec<u8>,
}

impl LumaFrame {
    /// A `width` x `height` frame with every pixel set to `fill`.
    pub fn new(width: u32, height: u32, fill: u8) -> LumaFrame {
        LumaFrame { width, height, pixels: vec![fill; width as usize * height as usize] }
    }

    /// The pixel at column `x`, row `y`. Panics if (x, y) is outside the frame.
    pub fn get(&self, x: u32, y: u32) -> u8 {
        self.pixels[self.index(x, y)]
    }

    /// The grey value at (x, y), interpolated between the four nearest pixels (clamped to the edges); 0 in an
    /// empty frame.
    pub fn interpolated(&self, x: f32, y: f32) -> f32 {
        if self.width == 0 || self.height == 0 {
            return 0.0;
        }
        filters::bilinear_in(&self.pixels, self.width as usize, self.height as usize, x, y)
    }

    /// Sets the pixel at column `x`, row `y`. Panics if (x, y) is outside the frame.
    pub fn set(&mut self, x: u32, y: u32, v: u8) {
        let i = self.index(x, y);
        self.pixels[i] = v;
    }

    fn index(&self, x: u32, y: u32) -> usize {
        assert!(
            x < self.width && y < self.height,
            "pixel ({x}, {y}) is outside a {}x{} frame",
            self.width,
            self.height
        );
        y as usize * self.width as usize + x as usize
    }

    /// Whether `pixels` holds exactly `width * height` bytes.
    fn is_consistent(&self) -> bool {
        self.pixels.len() as u64 == u64::from(self.width) * u64::from(self.height)
    }
}

impl fmt::Debug for LumaFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LumaFrame").field("width", &self.width).field("height", &self.height).finish_non_exhaustive()
    }
}

/// Why an image could not be loaded as a frame, or a frame not written as PNG.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not any known image format.
    #[error("not an image (neither PNG nor JPEG)")]
    NotAnImage,
    /// The image is corrupt or truncated.
    #[error("corrupt or truncated image: {reason}")]
    Corrupt {
        /// The image crate's reason.
        reason: String,
    },
    /// The image has no pixels.
    #[error("the image is empty ({width}x{height})")]
    ZeroSized {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },
    /// The image has more pixels than allowed (checked from its header, before decoding).
    #[error("the image is {width}x{height} pixels, more than the limit of {limit} pixels")]
    TooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The pixel limit that was exceeded.
        limit: u64,
    },
    /// The image format (or a feature of it) is not supported.
    #[error("unsupported image format: {format}")]
    Unsupported {
        /// The format, or the image crate's reason.
        format: String,
    },
    /// The frame could not be encoded.
    #[error("cannot encode the frame as PNG: {reason}")]
    Encode {
        /// Why.
        reason: String,
    },
}

/// The default largest frame `load_frame` accepts, in pixels.
pub const DEFAULT_PIXEL_LIMIT: u64 = 40_000_000;
/// The default largest photo `checkout decode` accepts, in pixels: a 48 or 50 Mpx phone photo (8000 x 6000,
/// 8160 x 6144) fits. Decoding one takes some 200 MB (RGB, then grey); the lanes keep the lower
/// [`DEFAULT_PIXEL_LIMIT`].
pub const PHOTO_PIXEL_LIMIT: u64 = 64_000_000;

/// Loads a PNG or JPEG image and converts it to grey (transparent pixels are composited onto white).
///
/// The dimensions are checked against `pixel_limit` from the header before any pixel is decoded.
pub fn load_frame(bytes: &[u8], pixel_limit: u64) -> Result<LumaFrame, FrameError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| FrameError::Corrupt { reason: e.to_string() })?;
    let format = match reader.format() {
        Some(format @ (ImageFormat::Png | ImageFormat::Jpeg)) => format,
        Some(other) => return Err(FrameError::Unsupported { format: format!("{other:?}") }),
        None => return Err(FrameError::NotAnImage),
    };
    if format == ImageFormat::Png
        && let Some((width, height)) = png_header_dimensions(bytes)
    {
        check_dimensions(width, height, pixel_limit)?;
    }
    let (width, height) = reader.into_dimensions().map_err(image_error)?;
    check_dimensions(width, height, pixel_limit)?;

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    // Enough for the largest allowed frame at 8 bytes a pixel (RGBA16), never below the crate's default.
    limits.max_alloc = Some(pixel_limit.saturating_mul(8).max(Limits::default().max_alloc.unwrap_or(0)));
    reader.limits(limits);
    // The JPEG decoder has debug assertions that corrupt input can trip (found by the fuzz target): a panic
    // in a decoder is a corrupt image, not a crash.
    let decoded = catch_unwind(AssertUnwindSafe(|| reader.decode()))
        .map_err(|_| FrameError::Corrupt { reason: "the image decoder gave up on corrupt data".to_owned() })?;
    let image = decoded.map_err(|e| match e {
        ImageError::Limits(_) => FrameError::TooLarge { width, height, limit: pixel_limit },
        other => image_error(other),
    })?;
    Ok(to_luma(image))
}

/// Reads a PNG or JPEG file and loads it like [`load_frame`].
pub fn load_frame_file(path: &Path, pixel_limit: u64) -> Result<LumaFrame, FrameError> {
    let bytes = std::fs::read(path).map_err(|source| FrameError::Io { path: path.to_path_buf(), source })?;
    load_frame(&bytes, pixel_limit)
}

/// Width and height from a PNG's IHDR chunk, read straight from the bytes.
fn png_header_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    let width = u32::from_be_bytes(bytes.get(16..20)?.try_into().ok()?);
    let height = u32::from_be_bytes(bytes.get(20..24)?.try_into().ok()?);
    Some((width, height))
}

fn check_dimensions(width: u32, height: u32, pixel_limit: u64) -> Result<(), FrameError> {
    if width == 0 || height == 0 {
        return Err(FrameError::ZeroSized { width, height });
    }
    if u64::from(width) * u64::from(height) > pixel_limit {
        return Err(FrameError::TooLarge { width, height, limit: pixel_limit });
    }
    Ok(())
}

fn image_error(e: ImageError) -> FrameError {
    match e {
        ImageError::Unsupported(u) => FrameError::Unsupported { format: u.to_string() },
        other => FrameError::Corrupt { reason: other.to_string() },
    }
}

fn to_luma(image: DynamicImage) -> LumaFrame {
    let (width, height) = (image.width(), image.height());
    let pixels = if image.color().has_alpha() {
        image
            .into_luma_alpha8()
            .pixels()
            .map(|p| {
                let [l, a] = p.0;
                let (l, a) = (u32::from(l), u32::from(a));
                ((l * a + 255 * (255 - a) + 127) / 255) as u8
            })
            .collect()
    } else {
        image.into_luma8().into_raw()
    };
    LumaFrame { width, height, pixels }
}

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
    let mut analysis = analyse_levels(frame, config);
    if analysis.reads.is_empty() && config.negative_fallback {
        let negative = LumaFrame { pixels: frame.pixels.iter().map(|&p| 255 - p).collect(), ..*frame };
        let light_on_dark = analyse_levels(&negative, config);
        analysis = FrameAnalysis { unreadable: analysis.unreadable, ..combined(analysis, light_on_dark) };
    }
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
fn analyse_levels(frame: &LumaFrame, config: &VisionConfig) -> FrameAnalysis {
    let mut analysis = locate::analyse(frame, config);
    let mut level = Cow::Borrowed(frame);
    while analysis.reads.is_empty()
        && level.width.max(level.height) > PYRAMID_ABOVE
        && level.width.min(level.height) >= 64
    {
        level = Cow::Owned(half_size(&level));
        let coarser = locate::analyse(&level, config);
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

/// Why a code could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The text cannot be encoded in the symbology (wrong length, bad characters, bad check digit...).
    #[error("cannot encode this text as {}: {reason}", .symbology.name())]
    Unencodable {
        /// The requested symbology.
        symbology: Symbology,
        /// rxing's message.
        reason: String,
    },
    /// `module_px` is 0, or `bar_height` is 0 for a 1D code.
    #[error("module size and bar height must be at least 1 pixel")]
    ZeroSize,
    /// The image would have more than [`DEFAULT_PIXEL_LIMIT`] pixels.
    #[error("the rendered code would be {width}x{height} pixels, too large")]
    TooLarge {
        /// Would-be width.
        width: u64,
        /// Would-be height.
        height: u64,
    },
    /// rxing panicked on this text.
    #[error("the encoder crashed on this text")]
    Panicked,
}

/// Quiet zone around a QR code, in modules.
const QR_QUIET_MODULES: u32 = 4;
/// Quiet zone left and right of a 1D code, in modules.
const LINEAR_QUIET_MODULES: u32 = 10;

/// Renders `text` as a code image: black modules on white, each module `module_px` pixels, with a quiet zone
/// (4 modules for QR, 10 for 1D), 1D bars `bar_height` pixels tall (ignored for QR).
///
/// A 1D image is exactly `bar_height` tall (no quiet zone above or below). EAN/UPC text may omit the check
/// digit, which rxing then adds; a wrong check digit is an error.
pub fn render_code(
    text: &str,
    symbology: Symbology,
    module_px: u32,
    bar_height: u32,
) -> Result<LumaFrame, RenderError> {
    let is_qr = symbology == Symbology::QrCode;
    if module_px == 0 || (!is_qr && bar_height == 0) {
        return Err(RenderError::ZeroSize);
    }
    let matrix = encode(text, symbology).map_err(|failure| match failure {
        Failure::Panicked => RenderError::Panicked,
        Failure::Error(reason) => RenderError::Unencodable { symbology, reason },
    })?;
    if is_qr { render_qr(&matrix, module_px) } else { render_linear(&matrix, module_px, bar_height) }
}

fn blank_canvas(width: u64, height: u64) -> Result<LumaFrame, RenderError> {
    let too_large = RenderError::TooLarge { width, height };
    if width.saturating_mul(height) > DEFAULT_PIXEL_LIMIT {
        return Err(too_large);
    }
    let (Ok(w), Ok(h)) = (u32::try_from(width), u32::try_from(height)) else {
        return Err(too_large);
    };
    Ok(LumaFrame::new(w, h, 255))
}

fn render_qr(matrix: &BitMatrix, module_px: u32) -> Result<LumaFrame, RenderError> {
    let px = u64::from(module_px);
    let quiet = u64::from(QR_QUIET_MODULES);
    let width = (u64::from(matrix.width()) + 2 * quiet).saturating_mul(px);
    let height = (u64::from(matrix.height()) + 2 * quiet).saturating_mul(px);
    let mut frame = blank_canvas(width, height)?;
    let stride = frame.width as usize;
    let px = module_px as usize;
    let quiet = QR_QUIET_MODULES as usize;
    for my in 0..matrix.height() {
        for mx in 0..matrix.width() {
            if !matrix.get(mx, my) {
                continue;
            }
            let left = (mx as usize + quiet) * px;
            for y in (my as usize + quiet) * px..(my as usize + quiet + 1) * px {
                frame.pixels[y * stride + left..y * stride + left + px].fill(0);
            }
        }
    }
    Ok(frame)
}

fn render_linear(matrix: &BitMatrix, module_px: u32, bar_height: u32) -> Result<LumaFrame, RenderError> {
    let quiet = u64::from(LINEAR_QUIET_MODULES);
    let width = (u64::from(matrix.width()) + 2 * quiet).saturating_mul(u64::from(module_px));
    let mut frame = blank_canvas(width, u64::from(bar_height))?;
    let stride = frame.width as usize;
    let px = module_px as usize;
    let mut row = vec![255u8; stride];
    for mx in 0..matrix.width() {
        if matrix.get(mx, 0) {
            let left = (mx as usize + LINEAR_QUIET_MODULES as usize) * px;
            row[left..left + px].fill(0);
        }
    }
    for line in frame.pixels.chunks_exact_mut(stride) {
        line.copy_from_slice(&row);
    }
    Ok(frame)
}

/// Copies `code` into `canvas` with its top-left at (x, y), clipped at the edges.
///
/// Does nothing if either frame's pixel buffer does not match its dimensions.
pub fn paste(canvas: &mut LumaFrame, code: &LumaFrame, x: i64, y: i64) {
    if !canvas.is_consistent() || !code.is_consistent() {
        return;
    }
    let x0 = x.max(0);
    let x1 = x.saturating_add(i64::from(code.width)).min(i64::from(canvas.width));
    let y0 = y.max(0);
    let y1 = y.saturating_add(i64::from(code.height)).min(i64::from(canvas.height));
    if x0 >= x1 || y0 >= y1 {
        return;
    }
    // All of x0..x1 and y0..y1 lie inside both frames, so the casts and slices below are in range.
    let (src_left, src_right) = ((x0 - x) as usize, (x1 - x) as usize);
    let (dst_left, dst_right) = (x0 as usize, x1 as usize);
    for cy in y0..y1 {
        let src_row = (cy - y) as usize * code.width as usize;
        let dst_row = cy as usize * canvas.width as usize;
        canvas.pixels[dst_row + dst_left..dst_row + dst_right]
            .copy_from_slice(&code.pixels[src_row + src_left..src_row + src_right]);
    }
}

/// Encodes a frame as PNG bytes (for tests and tools that write frames to disk).
pub fn encode_png(frame: &LumaFrame) -> Result<Vec<u8>, FrameError> {
    if frame.width == 0 || frame.height == 0 {
        return Err(FrameError::ZeroSized { width: frame.width, height: frame.height });
    }
    if !frame.is_consistent() {
        return Err(FrameError::Encode {
            reason: format!(
                "the pixel buffer holds {} bytes, not {}x{}",
                frame.pixels.len(),
                frame.width,
                frame.height
            ),
        });
    }
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(&frame.pixels, frame.width, frame.height, ExtendedColorType::L8)
        .map_err(|e| FrameError::Encode { reason: e.to_string() })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkout_storage::{gtin_check_digit, upc_e_to_upc_a};
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
            assert!(locate::analyse(&photo, &VisionConfig::default()).reads.is_empty(), "{}", symbology.name());
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

    #[test]
    fn timing_empty_and_with_code() {
        let empty = LumaFrame::new(640, 480, 200);
        let qr = canvas_with(WECHAT_LIKE, Symbology::QrCode, 470, 30);
        let c128 = canvas_with(WECHAT_LIKE, Symbology::Code128, 300, 360);
        let ean = canvas_with(&with_check("690123400001"), Symbology::Ean13, 30, 340);
        for (name, frame) in [("empty", &empty), ("qr", &qr), ("code128", &c128), ("ean13", &ean)] {
            let runs = 5;
            let started = Instant::now();
            for _ in 0..runs {
                let _ = decode_frame(frame).unwrap();
            }
            eprintln!("timing {name}: {:?} per decode", started.elapsed() / runs);
        }
    }

    #[test]
    fn render_geometry() {
        let qr = render_code(WECHAT_LIKE, Symbology::QrCode, 3, 999).unwrap();
        // 18 digits fit a version 1 QR: 21 modules + 2 * 4 quiet.
        assert_eq!((qr.width, qr.height), (29 * 3, 29 * 3));
        assert_eq!(qr.get(4 * 3 - 1, 4 * 3 - 1), 255);
        assert_eq!(qr.get(4 * 3, 4 * 3), 0, "finder pattern corner");
        assert!(qr.pixels.iter().all(|&p| p == 0 || p == 255));

        let ean = render_code(&with_check("690123400001"), Symbology::Ean13, 2, 50).unwrap();
        assert_eq!((ean.width, ean.height), ((95 + 20) * 2, 50));
        assert_eq!(ean.get(10 * 2 - 1, 0), 255);
        assert_eq!(ean.get(10 * 2, 49), 0, "start guard");
        assert_eq!(ean.get(ean.width - 10 * 2 - 1, 0), 0, "end guard");
        assert_eq!(ean.get(ean.width - 10 * 2, 0), 255);
    }

    #[test]
    fn render_errors() {
        assert!(matches!(
            render_code("69012340000X", Symbology::Ean13, 2, 50),
            Err(RenderError::Unencodable { symbology: Symbology::Ean13, .. })
        ));
        assert!(matches!(render_code("6901234000011", Symbology::Ean13, 2, 50), Err(RenderError::Unencodable { .. })));
        assert!(matches!(render_code("123", Symbology::Ean8, 2, 50), Err(RenderError::Unencodable { .. })));
        assert!(matches!(render_code("", Symbology::QrCode, 2, 0), Err(RenderError::Unencodable { .. })));
        assert!(matches!(render_code("1", Symbology::Code128, 0, 50), Err(RenderError::ZeroSize)));
        assert!(matches!(render_code("1", Symbology::Code128, 2, 0), Err(RenderError::ZeroSize)));
        assert!(matches!(render_code("1", Symbology::QrCode, 100_000, 0), Err(RenderError::TooLarge { .. })));
        let e = render_code("12AB", Symbology::UpcA, 2, 50).unwrap_err();
        assert!(e.to_string().starts_with("cannot encode this text as UPC_A: "), "{e}");
    }

    #[test]
    fn paste_clips_at_every_edge() {
        let mut code = LumaFrame::new(3, 2, 0);
        code.set(0, 0, 10);
        code.set(2, 1, 20);
        let mut canvas = LumaFrame::new(4, 4, 255);
        paste(&mut canvas, &code, -2, -1);
        assert_eq!(canvas.get(0, 0), 20);
        assert_eq!(canvas.pixels.iter().filter(|&&p| p != 255).count(), 1);

        let mut canvas = LumaFrame::new(4, 4, 255);
        paste(&mut canvas, &code, 3, 3);
        assert_eq!(canvas.get(3, 3), 10);
        assert_eq!(canvas.pixels.iter().filter(|&&p| p != 255).count(), 1);

        let mut canvas = LumaFrame::new(4, 4, 255);
        paste(&mut canvas, &code, 1, 1);
        assert_eq!(canvas.get(1, 1), 10);
        assert_eq!(canvas.get(3, 2), 20);
        assert_eq!(canvas.pixels.iter().filter(|&&p| p != 255).count(), 6);

        let untouched = LumaFrame::new(4, 4, 255);
        for (x, y) in [(4, 0), (0, 4), (-3, 0), (0, -2), (i64::MAX, i64::MAX), (i64::MIN, i64::MIN)] {
            let mut canvas = untouched.clone();
            paste(&mut canvas, &code, x, y);
            assert_eq!(canvas, untouched, "({x}, {y})");
        }
    }

    #[test]
    fn debug_prints_only_dimensions() {
        assert_eq!(format!("{:?}", LumaFrame::new(3, 2, 7)), "LumaFrame { width: 3, height: 2, .. }");
    }

    #[test]
    fn png_round_trip() {
        let mut frame = LumaFrame::new(37, 23, 0);
        for (i, p) in frame.pixels.iter_mut().enumerate() {
            *p = (i * 7) as u8;
        }
        let png = encode_png(&frame).unwrap();
        assert_eq!(load_frame(&png, DEFAULT_PIXEL_LIMIT).unwrap(), frame);
        assert!(matches!(encode_png(&LumaFrame::new(0, 5, 0)), Err(FrameError::ZeroSized { .. })));
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
    fn colour_and_alpha_become_grey_on_white() {
        // 2x1 RGBA: opaque red, fully transparent black.
        let rgba = [255u8, 0, 0, 255, 0, 0, 0, 0];
        let mut png = Vec::new();
        PngEncoder::new(&mut png).write_image(&rgba, 2, 1, ExtendedColorType::Rgba8).unwrap();
        let frame = load_frame(&png, DEFAULT_PIXEL_LIMIT).unwrap();
        assert_eq!((frame.width, frame.height), (2, 1));
        assert!(frame.get(0, 0) > 40 && frame.get(0, 0) < 100, "red is darkish grey: {}", frame.get(0, 0));
        assert_eq!(frame.get(1, 0), 255);
    }

    #[test]
    fn garbage_is_not_an_image() {
        assert!(matches!(
            load_frame(b"hello, this is not an image at all", DEFAULT_PIXEL_LIMIT),
            Err(FrameError::NotAnImage)
        ));
        assert!(matches!(load_frame(&[], DEFAULT_PIXEL_LIMIT), Err(FrameError::NotAnImage)));
        assert!(matches!(
            load_frame(b"GIF89a\x01\x00\x01\x00", DEFAULT_PIXEL_LIMIT),
            Err(FrameError::Unsupported { .. })
        ));
        // A PNG signature followed by garbage.
        let mut bad = b"\x89PNG\r\n\x1a\n".to_vec();
        bad.extend_from_slice(&[0xAB; 40]);
        assert!(matches!(load_frame(&bad, DEFAULT_PIXEL_LIMIT), Err(FrameError::Corrupt { .. })));
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

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    /// A PNG signature and an IHDR chunk (8-bit grey) declaring `width` x `height`, then `rest`.
    fn png_with_header(width: u32, height: u32, rest: &[u8]) -> Vec<u8> {
        let mut chunk = b"IHDR".to_vec();
        chunk.extend_from_slice(&width.to_be_bytes());
        chunk.extend_from_slice(&height.to_be_bytes());
        chunk.extend_from_slice(&[8, 0, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&crc32(&chunk).to_be_bytes());
        png.extend_from_slice(rest);
        png
    }

    #[test]
    fn crc32_matches_a_real_png() {
        let png = encode_png(&LumaFrame::new(5, 3, 9)).unwrap();
        let ihdr = png_with_header(5, 3, &[]);
        assert_eq!(png[..33], ihdr[..], "our IHDR and CRC equal the encoder's");
    }

    #[test]
    fn huge_png_is_refused_from_its_header() {
        let iend = {
            let mut c = 0u32.to_be_bytes().to_vec();
            c.extend_from_slice(b"IEND");
            c.extend_from_slice(&crc32(b"IEND").to_be_bytes());
            c
        };
        for rest in [&[][..], &iend[..]] {
            let png = png_with_header(100_000, 100_000, rest);
            let started = Instant::now();
            let e = load_frame(&png, DEFAULT_PIXEL_LIMIT).unwrap_err();
            assert!(
                matches!(e, FrameError::TooLarge { width: 100_000, height: 100_000, limit: DEFAULT_PIXEL_LIMIT }),
                "{e}"
            );
            assert!(started.elapsed().as_millis() < 100);
        }
        // A real image above a small limit.
        let png = encode_png(&LumaFrame::new(64, 64, 1)).unwrap();
        assert!(matches!(load_frame(&png, 64 * 64 - 1), Err(FrameError::TooLarge { width: 64, height: 64, .. })));
        assert!(load_frame(&png, 64 * 64).is_ok());
    }

    #[test]
    fn zero_sized_png_is_an_error() {
        for (w, h) in [(0, 0), (0, 10), (10, 0)] {
            let e = load_frame(&png_with_header(w, h, &[]), DEFAULT_PIXEL_LIMIT).unwrap_err();
            assert!(matches!(e, FrameError::ZeroSized { .. }), "{w}x{h}: {e}");
        }
    }
}
