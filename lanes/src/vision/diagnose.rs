//! Why a code in view did not read, told from a failed strip's or crop's grey levels: glare, low contrast,
//! modules too small, blur. The cashier sees the hint; a frame without a code must not get one.

use std::fmt;

use super::filters::percentiles;

/// Why a code in view could not be read, when the frame tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unreadable {
    /// A bright reflection washes out part of the code.
    Glare,
    /// Bars and spaces differ too little in brightness.
    LowContrast,
    /// The code's modules are too small in the frame: hold it closer.
    TooSmall,
    /// The code is out of focus or moving.
    TooBlurred,
}

impl Unreadable {
    /// A short hint for the cashier.
    pub fn hint(self) -> &'static str {
        match self {
            Unreadable::Glare => "glare on the code: tilt it away from the light",
            Unreadable::LowContrast => "the code is too faint: more light or a brighter screen",
            Unreadable::TooSmall => "the code is too small: hold it closer",
            Unreadable::TooBlurred => "the code is blurred: hold it still",
        }
    }
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hint())
    }
}

/// Whether a strip's middle row (rows of `width` samples) lies between its two levels as much as a blur hint
/// asks (see [`BLURRED_SHARE`]).
pub(super) fn looks_blurred(pixels: &[u8], width: usize) -> bool {
    let (lo, hi) = percentiles(pixels);
    share_between_levels(middle_row(pixels, width), f32::from(lo), f32::from(hi)) > BLURRED_SHARE
}

/// Why a failed strip or crop (rows of `width` samples) did not read, if its statistics tell.
pub(super) fn why_unreadable(raw: &[u8], width: usize) -> Option<Unreadable> {
    if raw.is_empty() || width < 3 {
        return None;
    }
    let saturated = raw.iter().filter(|&&p| p >= 250).count() as f32 / raw.len() as f32;
    let (lo, hi) = percentiles(raw);
    let contrast = f32::from(hi) - f32::from(lo);
    if saturated > 0.12 {
        return Some(Unreadable::Glare);
    }
    // Edges along the middle row: how steep, and how far apart.
    let row = middle_row(raw, width);
    let threshold = (f32::from(lo) + f32::from(hi)) / 2.0;
    let mut crossings = 0usize;
    let mut steepest = 0f32;
    for pair in row.windows(3) {
        let (a, b) = (f32::from(pair[0]), f32::from(pair[2]));
        steepest = steepest.max((b - a).abs() / 2.0);
        if (a < threshold) != (f32::from(pair[1]) < threshold) {
            crossings += 1;
        }
    }
    if crossings < MIN_HINT_CROSSINGS {
        return None;
    }
    if contrast < 45.0 {
        return Some(Unreadable::LowContrast);
    }
    // Strips are sampled at half-pixel steps when short: 2 samples a pixel.
    let samples_per_edge = width as f32 / crossings.max(1) as f32;
    if crossings >= 20 && samples_per_edge < 3.0 {
        return Some(Unreadable::TooSmall);
    }
    if steepest < contrast * 0.12 || share_between_levels(row, f32::from(lo), f32::from(hi)) > BLURRED_SHARE {
        return Some(Unreadable::TooBlurred);
    }
    None
}

/// The middle one of the `width`-sample rows of `pixels` (which holds at least one).
fn middle_row(pixels: &[u8], width: usize) -> &[u8] {
    &pixels[(pixels.len() / width / 2) * width..][..width]
}

/// Fewest crossings of its middle by a strip's middle row for a hint other than glare: fewer is an edge, a
/// stroke or a gradient, not bars, and a hint there would be a false alarm at the lane (on `bench decode`'s
/// frames without a code, most hints came from strips crossed only a few times; the strips of the codes left
/// unread are crossed more often than this).
const MIN_HINT_CROSSINGS: usize = 10;

/// Share of a failed strip's middle row between its two levels (see [`share_between_levels`]) above which it is
/// too blurred to read.
const BLURRED_SHARE: f32 = 0.4;

/// Share of a row's samples between its bars' and its spaces' levels (the middle two fifths of the span from
/// `lo` to `hi`), from its first to its last crossing of the middle: a sharp code steps from one level to the
/// other, a blurred one spends much of its length on the way.
fn share_between_levels(row: &[u8], lo: f32, hi: f32) -> f32 {
    let smooth: Vec<f32> =
        row.windows(3).map(|w| (f32::from(w[0]) + 2.0 * f32::from(w[1]) + f32::from(w[2])) / 4.0).collect();
    let (middle, band) = ((lo + hi) / 2.0, (hi - lo) * 0.2);
    let below: Vec<bool> = smooth.iter().map(|&v| v < middle).collect();
    let crossings: Vec<usize> = (1..below.len()).filter(|&i| below[i] != below[i - 1]).collect();
    let (Some(&first), Some(&last)) = (crossings.first(), crossings.last()) else {
        return 0.0;
    };
    if last <= first {
        return 0.0;
    }
    let span = &smooth[first..last];
    span.iter().filter(|&&v| (v - middle).abs() < band).count() as f32 / span.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::Distortion;
    use crate::vision::analyse_frame;
    use crate::vision::scenes::{ean13, patient, scene};
    use checkout_storage::Symbology;

    #[test]
    fn unreadable_codes_say_why() {
        // A strip of bars and spaces, 2 samples a module, from `dark` to `light`.
        let bars = |dark: u8, light: u8, module: usize| -> Vec<u8> {
            (0..400).map(|i| if (i / module).is_multiple_of(3) { dark } else { light }).collect()
        };
        assert_eq!(why_unreadable(&bars(120, 150, 4), 400), Some(Unreadable::LowContrast));
        let mut glare = bars(40, 200, 4);
        glare[100..250].fill(255);
        assert_eq!(why_unreadable(&glare, 400), Some(Unreadable::Glare));
        assert_eq!(why_unreadable(&bars(30, 220, 1), 400), Some(Unreadable::TooSmall));
        let smooth: Vec<u8> = (0..400).map(|i| (128.0 + 90.0 * (i as f32 / 8.0).sin()) as u8).collect();
        assert_eq!(why_unreadable(&smooth, 400), Some(Unreadable::TooBlurred));
        // Bars (4 samples a module) that moved 7 samples across: every ramp still steep, the narrow bars faint.
        let widths = [1, 1, 2, 3, 1, 2, 1, 4, 2, 1, 1, 3, 2, 2, 1, 1, 3, 1, 2, 1, 4, 1, 1, 2, 3, 1, 2, 2, 1, 3];
        let sharp: Vec<f32> = widths
            .iter()
            .enumerate()
            .flat_map(|(k, &w)| std::iter::repeat_n(if k % 2 == 0 { 30.0 } else { 220.0 }, 4 * w))
            .collect();
        let moved: Vec<u8> = (0..sharp.len())
            .map(|i| (0..7).map(|k| sharp[(i + k).saturating_sub(3).min(sharp.len() - 1)]).sum::<f32>() / 7.0)
            .map(|v| v.round() as u8)
            .collect();
        assert_eq!(why_unreadable(&moved, moved.len()), Some(Unreadable::TooBlurred));
        // A lone soft edge or a stroke is no code: nothing to tell the cashier.
        let edge: Vec<u8> = (0..400).map(|i| (125.0 + 90.0 * ((i as f32 - 200.0) / 30.0).tanh()) as u8).collect();
        assert_eq!(why_unreadable(&edge, 400), None);
        assert_eq!(why_unreadable(&bars(30, 220, 6), 400), None, "a sharp, contrasted strip: no reason to tell");
        // A whole frame: a code blurred far beyond reading is found, and the hint says why.
        let blurred = Distortion { rotation_deg: 10.0, blur_sigma: 3.0, ..Distortion::default() };
        let analysis = analyse_frame(&scene(&ean13(), Symbology::Ean13, 2.5, blurred), &patient()).unwrap();
        assert_eq!(analysis.reads, vec![]);
        assert_eq!(analysis.unreadable, Some(Unreadable::TooBlurred));
    }
}
