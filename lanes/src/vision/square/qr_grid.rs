//! QR codes rxing's own sampler misses: the module grid read from the grey crop, each module judged against its
//! neighbours, with the bottom-right corner found by search.
//!
//! rxing finds the three finder patterns well, but then samples a binarized image, and for a version 1 code
//! (payment codes are short: 21 x 21 modules) it has no alignment pattern, so it guesses the bottom-right
//! corner by completing a parallelogram. Under perspective that guess is a module or two off, under glare the
//! binarized modules near the reflection are lost, and a version 1 code at error correction level L survives
//! only three wrong codewords. Here, after the finder patterns are found:
//! 1. each module's grey value is sampled (five points around its centre) through the perspective transform;
//! 2. a module is dark when it is darker than the middle of its 5 x 5 neighbourhood's extremes (glare and
//!    uneven light move that middle with them); a second grid judges each module's value sharpened against
//!    its eight neighbours' mean (a small blurred module bleeds into its neighbours), and the search goes on
//!    with (and makes only) the grids whose format information reads at the first guess;
//! 3. the bottom-right corner is moved about the parallelogram's guess, nearest first, half a module at a time,
//!    within a disc of some two modules, until the grid decodes. Reed-Solomon decoding is the judge: a wrong
//!    corner does not decode.

use rxing::common::{BitMatrix, PerspectiveTransform, Quadrilateral};
use rxing::qrcode::decoder::BitMatrixParser;
use rxing::qrcode::decoder::qrcode_decoder::decode_bitmatrix_with_hints;
use rxing::qrcode::detector::{FinderPatternFinder, FinderPatternInfo};

use rxing::{DecodeHints, Point, point};

use crate::vision::filters::{Integral, bilinear_in};
use crate::vision::work::Work;

/// How far the bottom-right corner is searched from the parallelogram's guess, in modules, any way: a disc.
/// (On `bench decode` the corners the search read lay within about two modules of the guess; a square of 2
/// modules each way also tried the corners farther out, which read nothing and made a fruitless search longer.)
const CORNER_REACH: f32 = 2.1;
/// Largest version whose grid is read here: a larger code has alignment patterns, which rxing's own sampler
/// follows, and its grid is too large for one corner to place it.
const MAX_GRID_VERSION: f32 = 10.0;
/// Step of that search, in modules.
const CORNER_STEP: f32 = 0.5;
/// Half the side of the neighbourhood a module is judged against, in modules.
const NEIGHBOURHOOD: usize = 2;

/// Reads a QR code from a grey crop by sampling its module grid; the decoded text, if any. `work` grows by the
/// samples taken.
pub(super) fn read_by_grid(
    pixels: &[u8],
    width: usize,
    height: usize,
    hints: &DecodeHints,
    work: &Work,
) -> Option<String> {
    let reader = GridReader { grey: Grey { pixels, width, height }, hints, work };
    let info = reader.finder_patterns()?;
    let finders = Finders {
        tl: Point::from(info.getTopLeft()),
        tr: Point::from(info.getTopRight()),
        bl: Point::from(info.getBottomLeft()),
    };
    let module = (info.getTopLeft().getEstimatedModuleSize()
        + info.getTopRight().getEstimatedModuleSize()
        + info.getBottomLeft().getEstimatedModuleSize())
        / 3.0;
    if module < 1.0 {
        return None;
    }
    for dimension in finders.dimensions(module) {
        if let Some(text) = reader.search_corner(&finders, dimension) {
            return Some(text);
        }
    }
    None
}

/// A grey crop whose module grid is being read: rxing's hints, and the frame's work counter.
struct GridReader<'a> {
    grey: Grey<'a>,
    hints: &'a DecodeHints,
    work: &'a Work,
}

/// The centres of a code's three finder patterns: top left, top right, bottom left.
#[derive(Clone, Copy)]
struct Finders {
    tl: Point,
    tr: Point,
    bl: Point,
}

impl GridReader<'_> {
    /// The three finder patterns, found by rxing on the crop judged pixel by pixel against the mean around it (a
    /// dark clutter beside a faint code does not pull the threshold down as it does in rxing's own blocks).
    fn finder_patterns(&self) -> Option<FinderPatternInfo> {
        let Grey { pixels, width, height } = self.grey;
        let integral = Integral::new(pixels, width, height);
        let wide = (width.min(height) / 10).clamp(8, 32);
        // A wide window first; a narrower one follows a reflection's slope more closely.
        for radius in [wide, (wide / 2).max(6)] {
            let mut bits = BitMatrix::new(u32::try_from(width).ok()?, u32::try_from(height).ok()?).ok()?;
            for y in 0..height {
                let (y0, y1) = (y.saturating_sub(radius), (y + radius + 1).min(height));
                for x in 0..width {
                    let (x0, x1) = (x.saturating_sub(radius), (x + radius + 1).min(width));
                    let area = ((x1 - x0) * (y1 - y0)) as u32;
                    // Darker than the mean around it by two grey levels.
                    if (u32::from(pixels[y * width + x]) + 2) * area < integral.sum(x0, y0, x1, y1) {
                        bits.set(x as u32, y as u32);
                    }
                }
            }
            self.work.charge(width * height);
            let mut finder = FinderPatternFinder::new(&bits);
            if let Ok(info) = finder.find(self.hints) {
                return Some(info);
            }
            // Not one finder-like pattern: clutter, not a code the other window would show.
            if finder.getPossibleCenters().is_empty() {
                return None;
            }
        }
        None
    }

    /// The grid of a `dimension`-module code read with its bottom-right corner moved about the parallelogram's
    /// guess, nearest first, until it decodes.
    fn search_corner(&self, finders: &Finders, dimension: u32) -> Option<String> {
        let Finders { tl, tr, bl } = *finders;
        let d = dimension as f32;
        let span = d - 7.0;
        // Unit steps of one module along the code's top edge and down its left edge.
        let u = point((tr.x - tl.x) / span, (tr.y - tl.y) / span);
        let v = point((bl.x - tl.x) / span, (bl.y - tl.y) / span);
        let guess = point(tr.x - tl.x + bl.x, tr.y - tl.y + bl.y);
        let steps = (CORNER_REACH / CORNER_STEP) as i32;
        let mut offsets: Vec<(f32, f32)> = (-steps..=steps)
            .flat_map(|a| (-steps..=steps).map(move |b| (a as f32 * CORNER_STEP, b as f32 * CORNER_STEP)))
            .filter(|(a, b)| a.hypot(*b) <= CORNER_REACH)
            .collect();
        offsets.sort_by(|p, q| (p.0.hypot(p.1)).total_cmp(&q.0.hypot(q.1)));
        let modules = (d - 3.5, 3.5);
        let dst = Quadrilateral::new(
            point(3.5, 3.5),
            point(modules.0, 3.5),
            point(modules.0, modules.0),
            point(modules.1, modules.0),
        );
        // Which of the two grids (as sampled, sharpened) the search goes on with: decided at the first guess.
        let mut kept = [true; 2];
        for (n, (a, b)) in offsets.into_iter().enumerate() {
            let br = point(guess.x + a * u.x + b * v.x, guess.y + a * u.y + b * v.y);
            let Ok(transform) =
                PerspectiveTransform::quadrilateralToQuadrilateral(dst, Quadrilateral::new(tl, tr, br, bl))
            else {
                continue;
            };
            let Some(values) = self.sample(&transform, dimension) else {
                continue;
            };
            let grids = [
                kept[0].then(|| threshold_grid(&values, dimension)).flatten(),
                kept[1].then(|| threshold_grid(&sharpened(&values, dimension as usize), dimension)).flatten(),
            ];
            // The format information sits beside the three finder patterns, where the corner hardly moves the
            // grid: when it does not read at the first guess, these are not a code's finder patterns. The same
            // decides which grids the search goes on with.
            if n == 0 {
                for (grid, keep) in grids.iter().zip(&mut kept) {
                    *keep = grid.as_ref().is_some_and(|bits| {
                        BitMatrixParser::new(bits.clone())
                            .and_then(|mut p| p.readFormatInformation().map(|_| ()))
                            .is_ok()
                    });
                }
                if !kept.contains(&true) {
                    return None;
                }
            }
            for bits in grids.iter().zip(kept).filter_map(|(grid, keep)| grid.as_ref().filter(|_| keep)) {
                if let Ok(result) = decode_bitmatrix_with_hints(bits, self.hints) {
                    return Some(result.getText().to_owned());
                }
            }
        }
        None
    }

    /// Each module's grey value through `transform`, row by row.
    fn sample(&self, transform: &PerspectiveTransform, dimension: u32) -> Option<Vec<f32>> {
        let n = dimension as usize;
        let mut values = vec![0f32; n * n];
        for y in 0..n {
            for x in 0..n {
                let p = transform.transform_point(point(x as f32 + 0.5, y as f32 + 0.5));
                if !(p.x.is_finite() && p.y.is_finite()) {
                    return None;
                }
                values[y * n + x] = self.grey.at(p.x, p.y);
            }
        }
        self.work.charge(n * n);
        Some(values)
    }
}

/// A grey crop, sampled between pixels.
#[derive(Clone, Copy)]
struct Grey<'a> {
    pixels: &'a [u8],
    width: usize,
    height: usize,
}

impl Grey<'_> {
    fn at(&self, x: f32, y: f32) -> f32 {
        bilinear_in(self.pixels, self.width, self.height, x, y)
    }
}

impl Finders {
    /// Side lengths (in modules) a code with these finder centres may have, likeliest first: 17 + 4 * version.
    fn dimensions(&self, module: f32) -> Vec<u32> {
        let Finders { tl, tr, bl } = *self;
        let across = (Point::distance(tl, tr) / module + Point::distance(tl, bl) / module) / 2.0 + 7.0;
        let nearest = ((across - 17.0) / 4.0).round().max(1.0);
        let mut out = vec![nearest];
        // Between two sizes: the other one too.
        let other = if across > 17.0 + 4.0 * nearest { nearest + 1.0 } else { nearest - 1.0 };
        if other >= 1.0 && ((across - 17.0) / 4.0 - nearest).abs() > 0.25 {
            out.push(other);
        }
        out.into_iter().filter(|v| *v <= MAX_GRID_VERSION).map(|v| 17 + 4 * v as u32).collect()
    }
}

/// How much of its difference from its eight neighbours' mean a module's grey value gains before it is judged
/// (a blurred module bleeds into its neighbours; this takes some of the bleed back).
const DEBLUR: f32 = 1.0;

/// An `n` x `n` grid of module values, each inner one sharpened against its eight neighbours' mean (blur).
fn sharpened(values: &[f32], n: usize) -> Vec<f32> {
    let mut sharpened = values.to_vec();
    for y in 1..n.saturating_sub(1) {
        for x in 1..n - 1 {
            let around: f32 = (y - 1..=y + 1)
                .flat_map(|yy| (x - 1..=x + 1).map(move |xx| (xx, yy)))
                .filter(|&(xx, yy)| (xx, yy) != (x, y))
                .map(|(xx, yy)| values[yy * n + xx])
                .sum();
            sharpened[y * n + x] += DEBLUR * (values[y * n + x] - around / 8.0);
        }
    }
    sharpened
}

/// Each module of a grid of grey values dark when darker than the middle of its 5 x 5 neighbourhood.
fn threshold_grid(values: &[f32], dimension: u32) -> Option<BitMatrix> {
    let n = dimension as usize;
    let (lo, hi) = values.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let (global, global_range) = ((lo + hi) / 2.0, hi - lo);
    let near = |i: usize| i.saturating_sub(NEIGHBOURHOOD)..(i + NEIGHBOURHOOD + 1).min(n);
    // The neighbourhood's extremes along each row, then down the columns of those (the same extremes as over
    // the square, in a fifth of the comparisons).
    let (mut row_lo, mut row_hi) = (vec![0f32; n * n], vec![0f32; n * n]);
    for y in 0..n {
        let row = &values[y * n..(y + 1) * n];
        for x in 0..n {
            let window = &row[near(x)];
            row_lo[y * n + x] = window.iter().copied().fold(f32::MAX, f32::min);
            row_hi[y * n + x] = window.iter().copied().fold(f32::MIN, f32::max);
        }
    }
    let mut bits = BitMatrix::new(dimension, dimension).ok()?;
    for y in 0..n {
        for x in 0..n {
            let lo = near(y).map(|yy| row_lo[yy * n + x]).fold(f32::MAX, f32::min);
            let hi = near(y).map(|yy| row_hi[yy * n + x]).fold(f32::MIN, f32::max);
            // A flat neighbourhood (all dark or all light) is judged against the whole code.
            let threshold = if hi - lo >= 0.25 * global_range { (lo + hi) / 2.0 } else { global };
            if values[y * n + x] < threshold {
                bits.set(x as u32, y as u32);
            }
        }
    }
    Some(bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{Distortion, FrameSpec, render_frame};
    use crate::vision::frame::LumaFrame;
    use crate::vision::render::render_code;
    use crate::vision::scenes::clutter;
    use crate::vision::{VisionConfig, analyse_frame, decode_frame_whole};
    use checkout_storage::Symbology;

    fn qr_hints() -> DecodeHints {
        DecodeHints {
            TryHarder: Some(true),
            PossibleFormats: Some([rxing::BarcodeFormat::QR_CODE].into_iter().collect()),
            ..DecodeHints::default()
        }
    }

    /// A VGA frame with a QR code in the middle, seen through `distortion`.
    fn vga_frame_with_qr(text: &str, distortion: Distortion) -> LumaFrame {
        let spec = FrameSpec {
            width: 640,
            height: 480,
            code: Some((text.to_owned(), Symbology::QrCode)),
            module_px: 1,
            centre_x_permille: 500,
            centre_y_permille: 500,
            background: 150,
            distortion,
            seed: 5,
        };
        render_frame(&spec).unwrap()
    }

    #[test]
    fn a_plain_code_reads_by_its_grid() {
        let text = "134567890123456789";
        let code = render_code(text, Symbology::QrCode, 4, 1).unwrap();
        let work = Work::default();
        let read = read_by_grid(&code.pixels, code.width as usize, code.height as usize, &qr_hints(), &work);
        assert_eq!(read.as_deref(), Some(text));
        assert!(work.spent() > 0);
    }

    #[test]
    fn a_code_in_strong_perspective_reads_by_its_grid_where_rxing_alone_does_not() {
        let text = "113012345678909963";
        for (perspective_x, perspective_y, glare) in [(0.0, 0.2, 0.0), (0.18, 0.13, 0.0), (0.06, 0.19, 0.4)] {
            let frame = vga_frame_with_qr(
                text,
                Distortion {
                    scale: 3.9,
                    rotation_deg: 1.4,
                    perspective_x,
                    perspective_y,
                    glare,
                    blur_sigma: 0.5,
                    contrast: 0.56,
                    ..Distortion::default()
                },
            );
            let label = format!("perspective ({perspective_x}, {perspective_y}), glare {glare}");
            assert_eq!(decode_frame_whole(&frame).unwrap(), vec![], "{label}: rxing alone reads it now");
            let work = Work::default();
            let read = read_by_grid(&frame.pixels, 640, 480, &qr_hints(), &work);
            assert_eq!(read.as_deref(), Some(text), "{label}");
        }
    }

    #[test]
    fn a_small_blurred_code_reads_from_its_sharpened_grid() {
        let text = "2827004732285814101";
        for (scale, rotation_deg, perspective_x, perspective_y, blur_sigma) in
            [(2.58, 270.6, 0.127, 0.087, 1.13), (2.6, 344.6, -0.02, 0.04, 1.14)]
        {
            let frame = vga_frame_with_qr(
                text,
                Distortion {
                    scale,
                    rotation_deg,
                    perspective_x,
                    perspective_y,
                    blur_sigma,
                    contrast: 0.76,
                    ..Distortion::default()
                },
            );
            let label = format!("scale {scale}, blur {blur_sigma}, perspective ({perspective_x}, {perspective_y})");
            assert_eq!(decode_frame_whole(&frame).unwrap(), vec![], "{label}: rxing alone reads it now");
            let reads = analyse_frame(&frame, &VisionConfig::default()).unwrap().reads;
            assert_eq!(reads.iter().map(|r| r.text.as_str()).collect::<Vec<_>>(), [text], "{label}");
        }
    }

    #[test]
    fn clutter_without_a_code_reads_nothing() {
        let frame = clutter(Distortion { clutter: 14, noise_sigma: 4.0, ..Distortion::default() }, 11);
        let work = Work::default();
        assert_eq!(read_by_grid(&frame.pixels, 640, 480, &qr_hints(), &work), None);
    }

    #[test]
    fn version_sizes_from_finder_distances() {
        let (tl, tr, bl) = (point(10.0, 10.0), point(10.0 + 14.0 * 3.0, 10.0), point(10.0, 10.0 + 14.0 * 3.0));
        assert_eq!(Finders { tl, tr, bl }.dimensions(3.0), vec![21]);
        // Half way between version 1 and 2: both, the nearer first.
        let (tr, bl) = (point(10.0 + 16.0 * 3.0, 10.0), point(10.0, 10.0 + 16.0 * 3.0));
        assert_eq!(Finders { tl, tr, bl }.dimensions(3.0), vec![25, 21]);
    }
}
