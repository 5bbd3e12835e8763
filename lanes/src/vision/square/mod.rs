//! QR codes: a 2D candidate is cropped upright and handed to rxing's QR reader, which handles rotation itself;
//! then, while that fails, the crop prepared other ways (`CropVariant`). When all of that fails on one of a
//! frame's best 2D candidates, its module grid is read from the grey crop with the bottom-right corner searched
//! for (`qr_grid`): perspective and glare.

mod qr_grid;

use checkout_storage::Symbology;
use rxing::DecodeHints;

use super::candidates::{CELL, Candidate, ReadAttempt};
use super::diagnose::{Unreadable, why_unreadable};
use super::filters::{Integral, upscale2};
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
}

impl SquareReader<'_> {
    /// Reads a 2D candidate's crop as it is, then its variants in turn; with `grid` (one of the frame's best 2D
    /// candidates), then its module grid.
    pub(in crate::vision) fn read(&self, candidate: &Candidate, grid: bool) -> ReadAttempt {
        let Some(crop) = Crop::of(self.frame, candidate) else {
            return ReadAttempt::Failed(None);
        };
        for prepared in CROP_VARIANTS.iter().filter_map(|variant| variant.of(&crop)) {
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
        Some(Crop { pixels, width: cw, height: ch, binarizer: Binarizer::Hybrid })
    }

    /// Whether the crop is also read at twice its size (see [`SMALL_CROP`]).
    fn is_small(&self) -> bool {
        self.width.max(self.height) <= SMALL_CROP
    }

    /// `pixels` (a filtered copy of this crop's), at twice the size when the crop is small.
    fn sized(&self, pixels: Vec<u8>) -> Crop {
        if self.is_small() {
            Crop::doubled(&pixels, self.width, self.height)
        } else {
            Crop { pixels, width: self.width, height: self.height, binarizer: Binarizer::Hybrid }
        }
    }

    /// A `width` x `height` buffer at twice its size.
    fn doubled(pixels: &[u8], width: usize, height: usize) -> Crop {
        Crop {
            pixels: upscale2(pixels, width, height),
            width: width * 2,
            height: height * 2,
            binarizer: Binarizer::Hybrid,
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

/// A way of preparing a QR crop for rxing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CropVariant {
    /// The crop as it is.
    AsCropped,
    /// Twice the size, when the crop is small.
    Doubled,
    /// Binarized with one global threshold (some faint small codes).
    GlobalThreshold,
    /// Denoised and unsharp-masked (blur and noise), twice the size when small.
    Unsharp,
    /// Flattened against a wide local mean (glare), twice the size when small.
    Flattened,
}

/// The crop's variants in the order tried, each made only when the ones before it failed (measured order on
/// `bench decode`).
const CROP_VARIANTS: [CropVariant; 5] = [
    CropVariant::AsCropped,
    CropVariant::Doubled,
    CropVariant::GlobalThreshold,
    CropVariant::Unsharp,
    CropVariant::Flattened,
];

impl CropVariant {
    /// This variant of `crop`, or `None` when it does not apply.
    fn of(self, crop: &Crop) -> Option<Crop> {
        let (pixels, width, height) = (&crop.pixels, crop.width, crop.height);
        match self {
            CropVariant::AsCropped => {
                Some(Crop { pixels: pixels.clone(), width, height, binarizer: Binarizer::Hybrid })
            }
            CropVariant::Doubled => crop.is_small().then(|| Crop::doubled(pixels, width, height)),
            CropVariant::GlobalThreshold => {
                Some(Crop { pixels: pixels.clone(), width, height, binarizer: Binarizer::GlobalHistogram })
            }
            CropVariant::Unsharp => Some(crop.sized(Integral::new(pixels, width, height).unsharp())),
            CropVariant::Flattened => {
                Some(crop.sized(Integral::new(pixels, width, height).flattened(width.max(height) / 6)))
            }
        }
    }
}
