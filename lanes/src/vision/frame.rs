//! Grey frames: the `LumaFrame` every step works on, loaded from PNG or JPEG bytes (bounded by a pixel limit
//! read from the header) and written back as PNG.

use std::fmt;
use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use image::codecs::png::PngEncoder;
use image::{DynamicImage, ExtendedColorType, ImageEncoder, ImageError, ImageFormat, ImageReader, Limits};

use super::filters::bilinear_in;

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
        bilinear_in(&self.pixels, self.width as usize, self.height as usize, x, y)
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
    pub(super) fn is_consistent(&self) -> bool {
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
    use std::time::Instant;

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
