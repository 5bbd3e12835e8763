//! Codes drawn as images: `render_code` (through rxing's encoder) and `paste`, for the synthetic camera, the
//! benchmark and the tests.

use ::rxing::common::BitMatrix;
use checkout_storage::Symbology;

use super::frame::{DEFAULT_PIXEL_LIMIT, LumaFrame};
use super::rxing::{Failure, encode};

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

#[cfg(test)]
mod tests {
    use super::*;
    use checkout_storage::gtin_check_digit;

    /// 18 digits, like a wallet's payment code.
    const WECHAT_LIKE: &str = "134567890123456789";

    #[test]
    fn render_geometry() {
        let qr = render_code(WECHAT_LIKE, Symbology::QrCode, 3, 999).unwrap();
        // 18 digits fit a version 1 QR: 21 modules + 2 * 4 quiet.
        assert_eq!((qr.width, qr.height), (29 * 3, 29 * 3));
        assert_eq!(qr.get(4 * 3 - 1, 4 * 3 - 1), 255);
        assert_eq!(qr.get(4 * 3, 4 * 3), 0, "finder pattern corner");
        assert!(qr.pixels.iter().all(|&p| p == 0 || p == 255));

        let ean13 = format!("690123400001{}", gtin_check_digit(b"690123400001"));
        let ean = render_code(&ean13, Symbology::Ean13, 2, 50).unwrap();
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
}
