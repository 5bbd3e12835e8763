//! A strip's scan lines brought into line: bars that cross the strip at a slant (an angle estimate a little
//! off, perspective) are shifted upright row by row, so that rows can be averaged without blurring the bars.

use crate::vision::filters::box_smooth;

/// Largest shift of a row against the middle one, in samples.
const MAX_SHIFT: i32 = 24;
/// Weakest correlation with the middle row at which a row's shift is trusted.
const MIN_CORRELATION: f32 = 0.4;

/// Each row minus its moving average (radius 8): the bars' ups and downs, without the label's edge or glare.
fn detail(row: &[u8]) -> Vec<f32> {
    let values: Vec<f32> = row.iter().map(|&p| f32::from(p)).collect();
    values.iter().zip(box_smooth(&values, 8)).map(|(v, mean)| v - mean).collect()
}

/// The shift (samples, sub-sample) that best lines `row` up with `reference`, and its correlation.
fn best_shift(row: &[f32], reference: &[f32]) -> (f32, f32) {
    let n = row.len() as i32;
    let correlation_at = |k: i32| {
        let (mut ab, mut aa, mut bb) = (0.0f32, 0.0f32, 0.0f32);
        for i in MAX_SHIFT..n - MAX_SHIFT {
            let (a, b) = (row[(i + k) as usize], reference[i as usize]);
            ab += a * b;
            aa += a * a;
            bb += b * b;
        }
        if aa <= 1e-3 || bb <= 1e-3 { 0.0 } else { ab / (aa * bb).sqrt() }
    };
    let scores: Vec<f32> = (-MAX_SHIFT..=MAX_SHIFT).map(correlation_at).collect();
    let (best, &score) = scores.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap_or((0, &0.0));
    // A parabola through the peak and its neighbours places it between samples.
    let refine = if best > 0 && best + 1 < scores.len() {
        let (l, c, r) = (scores[best - 1], scores[best], scores[best + 1]);
        let denominator = l - 2.0 * c + r;
        if denominator < 0.0 { (0.5 * (l - r) / denominator).clamp(-0.5, 0.5) } else { 0.0 }
    } else {
        0.0
    };
    (best as f32 - MAX_SHIFT as f32 + refine, score)
}

/// How far each row of a strip was shifted to stand its bars upright: what a row's column `x` shows after,
/// its column `x + at(row)` showed before.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct RowShifts {
    intercept: f32,
    slope: f32,
    middle: usize,
}

impl RowShifts {
    /// The shift of row `row`, in samples.
    pub(super) fn at(&self, row: usize) -> f32 {
        self.intercept + self.slope * (row as f32 - self.middle as f32)
    }
}

/// The strip's rows shifted so that its bars stand upright, and by how much, or `None` when too few rows line
/// up with the middle one to tell the slant. The shifts follow a straight line fitted over the rows that line
/// up.
pub(super) fn aligned(pixels: &[u8], width: usize, height: usize) -> Option<(Vec<u8>, RowShifts)> {
    if height < 3 || width < (4 * MAX_SHIFT) as usize || pixels.len() != width * height {
        return None;
    }
    let details: Vec<Vec<f32>> = pixels.chunks_exact(width).map(detail).collect();
    let middle = height / 2;
    let mut points: Vec<(f32, f32, f32)> = Vec::new();
    for (r, d) in details.iter().enumerate() {
        let (shift, score) = if r == middle { (0.0, 1.0) } else { best_shift(d, &details[middle]) };
        if score >= MIN_CORRELATION {
            points.push((r as f32 - middle as f32, shift, score));
        }
    }
    if points.len() < height / 2 {
        return None;
    }
    // Weighted least squares: shift = a + b * (row - middle).
    let total: f32 = points.iter().map(|p| p.2).sum();
    let (mr, ms) = points.iter().fold((0.0, 0.0), |(r, s), p| (r + p.0 * p.2 / total, s + p.1 * p.2 / total));
    let (rs, rr) =
        points.iter().fold((0.0, 0.0), |(a, b), p| (a + p.2 * (p.0 - mr) * (p.1 - ms), b + p.2 * (p.0 - mr).powi(2)));
    let slope = if rr > 1e-6 { rs / rr } else { 0.0 };
    let shifts = RowShifts { intercept: ms - slope * mr, slope, middle };
    let mut out = Vec::with_capacity(pixels.len());
    for (r, row) in pixels.chunks_exact(width).enumerate() {
        let shift = shifts.at(r);
        for i in 0..width {
            let x = (i as f32 + shift).clamp(0.0, (width - 1) as f32);
            let i0 = x as usize;
            let f = x - i0 as f32;
            let i1 = (i0 + 1).min(width - 1);
            out.push((f32::from(row[i0]) * (1.0 - f) + f32::from(row[i1]) * f).round() as u8);
        }
    }
    Some((out, shifts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slanted_bars_stand_upright() {
        // Bars of irregular widths, each row shifted 1.5 samples further right than the one above.
        let (width, height) = (300, 12);
        let bar = |x: f32| {
            let cell = (x / 4.0).floor() as i64;
            if (cell * cell * 7919 + cell * 31).rem_euclid(11) < 5 { 40u8 } else { 210u8 }
        };
        let slanted: Vec<u8> =
            (0..height).flat_map(|r| (0..width).map(move |i| bar(i as f32 - 1.5 * r as f32 + 100.0))).collect();
        let (upright, shifts) = aligned(&slanted, width, height).expect("rows line up");
        assert!((shifts.at(11) - shifts.at(1) - 15.0).abs() < 1.0, "{shifts:?}");
        let middle = &upright[6 * width..7 * width];
        for r in [0, 3, 9, 11] {
            let row = &upright[r * width..(r + 1) * width];
            let differing = row[40..260].iter().zip(&middle[40..260]).filter(|(a, b)| a.abs_diff(**b) > 60).count();
            assert!(differing <= 8, "row {r}: {differing} samples differ from the middle row");
        }
    }

    #[test]
    fn rows_without_a_common_pattern_are_left_alone() {
        let mut seed = 1u32;
        let noise: Vec<u8> = (0..300 * 12)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (seed >> 24) as u8
            })
            .collect();
        assert_eq!(aligned(&noise, 300, 12), None);
    }
}
