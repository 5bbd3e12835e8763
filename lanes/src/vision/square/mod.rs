//! QR codes: a 2D candidate is cropped upright and handed to rxing's QR reader, which handles rotation itself;
//! then, while that fails, the crop prepared other ways (`CropVariant`). When all of that fails on one of a
//! frame's best 2D candidates, its module grid is read from the grey crop with the bottom-right corner searched
//! for (`qr_grid`): perspective and glare.

mod qr_grid;

use checkout_storage::Symbology;
use rxing::DecodeHints;

use super::candidates::{CELL, Candidate, ReadAttempt};
use super::diagnose::{Unreadable, why_unreadable};
use super::filters::{Integral, bilinear_in, upscale2};
use super::frame::LumaFrame;
use super::rxing::{Binarizer, CodeRead, Panicked, guarded, read};
use super::work::Work;

/// Largest QR crop handed to rxing, in pixels: a whole 720p frame. (rxing's QR search on a crop of texture a
/// few times larger, in a large photo, took seconds.) A larger frame is also searched at half size, where such a
/// code fits.
const MAX_SQUARE_CROP: usize = 1280 * 720;

/// Longest side of a crop that is also read at twice its size: rxing's finder-pattern search needs a few pixels
/// a module. Larger crops hold larger modules (upscaling larger crops too read hardly a QR code more, and cost
/// much p99 time).
const SMALL_CROP: usize = 200;

/// Reads a frame's 2D candidates, charging `work` what it hands to rxing and samples.
pub(in crate::vision) struct SquareReader<'a> {
    /// The frame the candidates were found in.
    pub(in crate::vision) frame: &'a LumaFrame,
    /// rxing's hints for QR codes.
    pub(in crate::vision) hints: &'a DecodeHints,
    /// The frame's work counter.
    pub(in crate::vision) work: &'a Work,
    /// Whether the best candidates are also read unsquashed (see [`super::VisionConfig::unsquash`]).
    pub(in crate::vision) unsquash: bool,
}

impl SquareReader<'_> {
    /// Reads a 2D candidate's crop as it is, then its variants in turn; with `grid` (one of the frame's best 2D
    /// candidates), then its module grid.
    pub(in crate::vision) fn read(&self, candidate: &Candidate, grid: bool) -> ReadAttempt {
        let Some(crop) = Crop::of(self.frame, candidate) else {
            return ReadAttempt::Failed(None);
        };
        let unsquash = grid && self.unsquash;
        let variants = CROP_VARIANTS.iter().filter(|&&variant| unsquash || variant != CropVariant::Unsquashed);
        for prepared in variants.filter_map(|variant| variant.of(&crop)) {
            self.work.charge(prepared.width * prepared.height);
            match read(&prepared.pixels, prepared.width, prepared.height, self.hints, prepared.binarizer) {
                Ok(Some((read, _))) => return ReadAttempt::Read(read),
                Ok(None) => {}
                Err(Panicked) => return ReadAttempt::Panicked,
            }
        }
        // rxing found no code: its finder patterns, if it sees them, and the module grid read from the grey crop.
        if grid {
            let sized = crop.sized(crop.pixels.clone());
            // rxing's finder and decoder run here too: behind `catch_unwind`, like every call into rxing.
            match guarded(|| qr_grid::read_by_grid(&sized.pixels, sized.width, sized.height, self.hints, self.work)) {
                Ok(Some(text)) => return ReadAttempt::Read(CodeRead { text, symbology: Symbology::QrCode }),
                Ok(None) => {}
                Err(Panicked) => return ReadAttempt::Panicked,
            }
        }
        ReadAttempt::Failed(crop.why_unreadable())
    }
}

/// A grey crop for rxing, and how rxing is to binarize it.
struct Crop {
    pixels: Vec<u8>,
    width: usize,
    height: usize,
    binarizer: Binarizer,
    /// How much of the candidate's edge energy shares one direction (0: edges every way, as a QR code's; 1:
    /// parallel bars).
    coherence: f32,
}

impl Crop {
    /// A 2D candidate's cells and a cell around them, upright; `None` when that is empty or larger than
    /// [`MAX_SQUARE_CROP`].
    fn of(frame: &LumaFrame, candidate: &Candidate) -> Option<Crop> {
        let (w, h) = (frame.width as usize, frame.height as usize);
        let x0 = candidate.cells.iter().map(|c| c.0).min().unwrap_or(0).saturating_sub(1) * CELL;
        let y0 = candidate.cells.iter().map(|c| c.1).min().unwrap_or(0).saturating_sub(1) * CELL;
        let x1 = ((candidate.cells.iter().map(|c| c.0).max().unwrap_or(0) + 2) * CELL).min(w);
        let y1 = ((candidate.cells.iter().map(|c| c.1).max().unwrap_or(0) + 2) * CELL).min(h);
        if x1 <= x0 || y1 <= y0 {
            return None;
        }
        let (cw, ch) = (x1 - x0, y1 - y0);
        if cw * ch > MAX_SQUARE_CROP {
            // rxing's QR search on a crop this large takes seconds; a code this large reads at a coarser level.
            return None;
        }
        let mut pixels = Vec::with_capacity(cw * ch);
        for y in y0..y1 {
            pixels.extend_from_slice(&frame.pixels[y * w + x0..y * w + x1]);
        }
        let coherence = candidate.tensor.coherent_energy() / candidate.tensor.energy().max(f32::MIN_POSITIVE);
        Some(Crop { pixels, width: cw, height: ch, binarizer: Binarizer::Hybrid, coherence })
    }

    /// Whether the crop is also read at twice its size (see [`SMALL_CROP`]).
    fn is_small(&self) -> bool {
        self.width.max(self.height) <= SMALL_CROP
    }

    /// `pixels` (a filtered copy of this crop's), at twice the size when the crop is small.
    fn sized(&self, pixels: Vec<u8>) -> Crop {
        if self.is_small() {
            self.doubled(&pixels, self.width, self.height)
        } else {
            Crop {
                pixels,
                width: self.width,
                height: self.height,
                binarizer: Binarizer::Hybrid,
                coherence: self.coherence,
            }
        }
    }

    /// `pixels`, a `width` x `height` resampling of this crop, doubled when this crop is small.
    fn sized_as(&self, pixels: Vec<u8>, width: usize, height: usize) -> Crop {
        if self.is_small() {
            self.doubled(&pixels, width, height)
        } else {
            Crop { pixels, width, height, binarizer: Binarizer::Hybrid, coherence: self.coherence }
        }
    }

    /// A `width` x `height` buffer at twice its size.
    fn doubled(&self, pixels: &[u8], width: usize, height: usize) -> Crop {
        Crop {
            pixels: upscale2(pixels, width, height),
            width: width * 2,
            height: height * 2,
            binarizer: Binarizer::Hybrid,
            coherence: self.coherence,
        }
    }

    /// Why the crop did not read, if it tells: too small to read, or what its pixels show.
    fn why_unreadable(&self) -> Option<Unreadable> {
        if self.width.min(self.height) < 3 * CELL {
            return Some(Unreadable::TooSmall);
        }
        why_unreadable(&self.pixels, self.width)
    }
}

/// Modules this many times narrower one way than the other are unsquashed (a square code seen at about 40
/// degrees from straight on; rxing's finder takes a finder pattern whose height and width differ by less).
const SQUASHED: f32 = 1.35;
/// Transitions denser than this many times one way are not a square code seen at a slant (bars of a 1D
/// code, lines of print): not unsquashed.
const MAX_UNSQUASH: f32 = 2.5;

/// How much to stretch a crop across and down, when its modules are narrower one way: the ratio of its dark
/// to light transitions along rows and along columns (a square grid seen foreshortened has more per pixel
/// across the short way). `None` when they are about as dense both ways.
fn unsquashing(pixels: &[u8], width: usize, height: usize) -> Option<(f32, f32)> {
    if width < 2 || height < 2 {
        return None;
    }
    let mean = (pixels.iter().map(|&p| u64::from(p)).sum::<u64>() / pixels.len() as u64) as u8;
    let dark = |x: usize, y: usize| pixels[y * width + x] < mean;
    let (mut across, mut down) = (0u64, 0u64);
    for y in 0..height {
        for x in 0..width {
            let here = dark(x, y);
            across += u64::from(x + 1 < width && here != dark(x + 1, y));
            down += u64::from(y + 1 < height && here != dark(x, y + 1));
        }
    }
    if across == 0 || down == 0 {
        return None;
    }
    let ratio = across as f32 / down as f32;
    if (SQUASHED..=MAX_UNSQUASH).contains(&ratio) {
        Some((ratio, 1.0))
    } else if (SQUASHED..=MAX_UNSQUASH).contains(&(1.0 / ratio)) {
        Some((1.0, 1.0 / ratio))
    } else {
        None
    }
}

/// A `width` x `height` buffer resampled (bilinear) to `to_width` x `to_height`.
fn stretched(pixels: &[u8], width: usize, height: usize, to_width: usize, to_height: usize) -> Vec<u8> {
    let (sx, sy) = (width as f32 / to_width.max(1) as f32, height as f32 / to_height.max(1) as f32);
    let mut out = Vec::with_capacity(to_width * to_height);
    for y in 0..to_height {
        let source_y = (y as f32 + 0.5) * sy - 0.5;
        out.extend((0..to_width).map(|x| {
            let source_x = (x as f32 + 0.5) * sx - 0.5;
            bilinear_in(pixels, width, height, source_x, source_y).round() as u8
        }));
    }
    out
}

/// A way of preparing a QR crop for rxing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CropVariant {
    /// The crop as it is.
    AsCropped,
    /// Twice the size, when the crop is small.
    Doubled,
    /// Stretched along the axis its modules are narrower on (a code seen at a slant: rxing's finder wants
    /// a finder pattern about as tall as wide), when they are clearly narrower on one.
    Unsquashed,
    /// Binarized with one global threshold (some faint small codes).
    GlobalThreshold,
    /// Denoised and unsharp-masked (blur and noise), twice the size when small.
    Unsharp,
    /// Flattened against a wide local mean (glare), twice the size when small.
    Flattened,
}

/// The crop's variants in the order tried, each made only when the ones before it failed (measured order on
/// `bench decode`).
const CROP_VARIANTS: [CropVariant; 6] = [
    CropVariant::AsCropped,
    CropVariant::Doubled,
    CropVariant::GlobalThreshold,
    CropVariant::Unsharp,
    CropVariant::Flattened,
    CropVariant::Unsquashed,
];

impl CropVariant {
    /// This variant of `crop`, or `None` when it does not apply.
    fn of(self, crop: &Crop) -> Option<Crop> {
        let (pixels, width, height) = (&crop.pixels, crop.width, crop.height);
        match self {
            CropVariant::AsCropped => Some(Crop {
                pixels: pixels.clone(),
                width,
                height,
                binarizer: Binarizer::Hybrid,
                coherence: crop.coherence,
            }),
            CropVariant::Doubled => crop.is_small().then(|| crop.doubled(pixels, width, height)),
            CropVariant::Unsquashed => {
                let (sx, sy) = unsquashing(pixels, width, height)?;
                let (w, h) = ((width as f32 * sx) as usize, (height as f32 * sy) as usize);
                let pixels = stretched(pixels, width, height, w, h);
                Some(crop.sized_as(pixels, w, h))
            }
            CropVariant::GlobalThreshold => Some(Crop {
                pixels: pixels.clone(),
                width,
                height,
                binarizer: Binarizer::GlobalHistogram,
                coherence: crop.coherence,
            }),
            CropVariant::Unsharp => Some(crop.sized(Integral::new(pixels, width, height).unsharp())),
            CropVariant::Flattened => {
                Some(crop.sized(Integral::new(pixels, width, height).flattened(width.max(height) / 6)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::{VisionConfig, analyse_frame, paste, render_code};

    /// A QR code on a card turned away from the camera: its modules half as wide as they are tall.
    fn slanted_code_frame(text: &str) -> LumaFrame {
        let code = render_code(text, Symbology::QrCode, 6, 0).unwrap();
        let (w, h) = (code.width as usize, code.height as usize);
        let narrow = stretched(&code.pixels, w, h, w * 9 / 20, h);
        let code = LumaFrame { width: (w * 9 / 20) as u32, height: h as u32, pixels: narrow };
        let mut frame = LumaFrame::new(640, 480, 190);
        paste(&mut frame, &code, 250, 60);
        frame
    }

    #[test]
    fn a_qr_code_seen_at_a_slant_reads_when_unsquashed() {
        let frame = slanted_code_frame("TEST 10 CM");
        let unsquashed = analyse_frame(&frame, &VisionConfig { unsquash: true, ..VisionConfig::default() }).unwrap();
        assert_eq!(unsquashed.reads.iter().map(|r| r.text.as_str()).collect::<Vec<_>>(), ["TEST 10 CM"]);
        let as_seen = analyse_frame(&frame, &VisionConfig { unsquash: false, ..VisionConfig::default() }).unwrap();
        assert_eq!(as_seen.reads, vec![], "read without unsquashing: the test no longer shows what unsquashing does");
    }

    #[test]
    fn transitions_as_dense_both_ways_are_not_unsquashed() {
        let code = render_code("TEST 10 CM", Symbology::QrCode, 6, 0).unwrap();
        assert_eq!(unsquashing(&code.pixels, code.width as usize, code.height as usize), None);
        let (w, h) = (code.width as usize, code.height as usize);
        let narrow = stretched(&code.pixels, w, h, w / 2, h);
        let (across, down) = unsquashing(&narrow, w / 2, h).unwrap();
        assert!((1.6..=2.4).contains(&across) && down == 1.0, "{across} {down}");
    }
}
