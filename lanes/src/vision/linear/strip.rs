//! 1D strips: a candidate placed in its frame (`StripSampler`) and resampled along its scan direction into a
//! small horizontal strip (bilinear, half-pixel steps, each strip row averaged along the bars). When the
//! cells' own directions turn along the code (perspective), each column follows the bars' direction at its
//! point; when the bars' ends are known (`BarEnds`), the rows are laid between them.

use crate::vision::candidates::{Bend, CELL, Candidate};
use crate::vision::frame::LumaFrame;
use crate::vision::rxing::CodeRead;

/// A grey strip sampled along a 1D candidate's scan direction: `height` rows of `width` samples, row after row.
pub(super) struct Strip {
    pub(super) width: usize,
    pub(super) height: usize,
    pub(super) pixels: Vec<u8>,
}

/// What reading a strip gave.
pub(super) enum StripOutcome {
    /// Too few bar edges to be a code.
    NotACode,
    /// A code, checked.
    Read(CodeRead),
    /// Nothing read.
    Failed,
    /// rxing panicked on it.
    Panicked,
}

/// Margin added at both ends of a 1D strip, in pixels (quiet zone and end cells the finder missed).
const STRIP_MARGIN: f32 = 28.0;

/// Rows of a 1D strip.
pub(super) const STRIP_ROWS: usize = 12;

/// Longest strip, in samples.
const MAX_STRIP: usize = 2400;

/// A 1D candidate's place in the frame: the mean of its cells' centres, its scan direction (square to its
/// bars, or along x without deskew), and its cells' extent along (`s`) and across (`t`) that direction, in
/// pixels from the centre.
pub(super) struct StripAxes {
    pub(super) centre: (f32, f32),
    pub(super) theta: f32,
    pub(super) along: (f32, f32),
    pub(super) across: (f32, f32),
}

fn strip_axes(candidate: &Candidate, deskew: bool) -> StripAxes {
    let theta = if deskew { candidate.tensor.angle() } else { 0.0 };
    let (ux, uy) = (theta.cos(), theta.sin());
    let half = CELL as f32 / 2.0;
    let centres: Vec<(f32, f32)> =
        candidate.cells.iter().map(|&(cx, cy)| ((cx * CELL) as f32 + half, (cy * CELL) as f32 + half)).collect();
    let n = centres.len() as f32;
    let (mx, my) = centres.iter().fold((0.0, 0.0), |(ax, ay), (x, y)| (ax + x / n, ay + y / n));
    let (mut s0, mut s1, mut t0, mut t1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for (x, y) in &centres {
        let (dx, dy) = (x - mx, y - my);
        let s = dx * ux + dy * uy;
        let t = -dx * uy + dy * ux;
        s0 = s0.min(s);
        s1 = s1.max(s);
        t0 = t0.min(t);
        t1 = t1.max(t);
    }
    StripAxes { centre: (mx, my), theta, along: (s0, s1), across: (t0, t1) }
}

/// Where a 1D candidate's bars begin and end along their own direction, as lines against the place along the
/// scan direction: `t = top + per_pixel * s` and `t = bottom + per_pixel * s` (pixels, from the strip's
/// centre). A label seen in perspective is sheared: its bars slant against its long edges, so rows laid
/// square to the bars run off its top or bottom edge before they reach its ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct BarEnds {
    pub(super) top: f32,
    pub(super) bottom: f32,
    pub(super) per_pixel: f32,
}

/// A 1D candidate placed in its frame, from which strips are sampled.
pub(super) struct StripSampler<'a> {
    pub(super) frame: &'a LumaFrame,
    pub(super) candidate: &'a Candidate,
    pub(super) axes: StripAxes,
}

impl<'a> StripSampler<'a> {
    /// `candidate` of `frame`, scanned square to its bars (`deskew`) or along x.
    pub(super) fn new(frame: &'a LumaFrame, candidate: &'a Candidate, deskew: bool) -> StripSampler<'a> {
        StripSampler { frame, candidate, axes: strip_axes(candidate, deskew) }
    }

    /// The direction of the bars (a unit vector) at `s` pixels along the scan direction (see `Bend`).
    pub(super) fn bars_at(&self, s: f32) -> (f32, f32) {
        let turned = self.axes.theta + self.candidate.bend.at_centre + self.candidate.bend.per_pixel * s;
        (-turned.sin(), turned.cos())
    }

    /// Samples the candidate along its scan direction, reaching past its ends by `reach` times its length.
    /// With a reach (a second look under glare), the rows span the candidate's whole height, ends of the bars
    /// included, rather than its middle 80%. With `ends`, the rows span the bars between their ends (the middle
    /// 80%, or all with a reach) and follow them where they slant.
    pub(super) fn strip(&self, reach: f32, ends: Option<BarEnds>) -> Option<Strip> {
        self.layout(reach, ends).map(|layout| self.sample(&layout))
    }

    /// Where the strip of [`StripSampler::strip`] for `reach` and `ends` lies, without sampling it.
    pub(super) fn layout(&self, reach: f32, ends: Option<BarEnds>) -> Option<Layout> {
        let axes = &self.axes;
        let half = CELL as f32 / 2.0;
        let (mut s0, mut s1) = axes.along;
        let extra = half + STRIP_MARGIN + reach * (s1 - s0);
        s0 -= extra;
        s1 += extra;
        let length = s1 - s0;
        let step = if length * 2.0 <= MAX_STRIP as f32 { 0.5 } else { length / MAX_STRIP as f32 };
        let width = (length / step) as usize;
        if width < 16 {
            return None;
        }
        // Rows spread over the middle of the candidate's extent across the bars (or all of it, cells included).
        let (t0, t1) = axes.across;
        let cover = if reach > 0.0 { 1.0 } else { 0.8 };
        let (t0, t1, slant) = match ends {
            Some(ends) => (ends.top, ends.bottom, ends.per_pixel),
            None if reach > 0.0 => (t0 - half, t1 + half, 0.0),
            None => (t0, t1, 0.0),
        };
        Some(Layout { start: s0, step, width, top: t0, across: (t1 - t0).max(1.0), cover, slant })
    }

    /// The rows of `layout`, sampled from the frame.
    pub(super) fn sample(&self, layout: &Layout) -> Strip {
        let StripSampler { frame, candidate, axes } = self;
        let (ux, uy) = (axes.theta.cos(), axes.theta.sin());
        let (mx, my) = axes.centre;
        let Layout { start, step, width, top, across, cover, slant } = *layout;
        // Each column runs along the bars as they run at its point of the code (see `Bend`).
        let along_bars: Vec<(f32, f32)> = if candidate.bend == Bend::default() {
            vec![self.bars_at(0.0); width]
        } else {
            (0..width).map(|i| self.bars_at(start + i as f32 * step)).collect()
        };
        let mut pixels = Vec::with_capacity(width * STRIP_ROWS);
        for r in 0..STRIP_ROWS {
            let t = top + across * ((1.0 - cover) / 2.0 + cover * (r as f32 + 0.5) / STRIP_ROWS as f32);
            for (i, &(vx, vy)) in along_bars.iter().enumerate() {
                let s = start + i as f32 * step;
                let t = t + slant * s;
                let (x, y) = (mx + s * ux + t * vx, my + s * uy + t * vy);
                // Average three samples along the bars: less noise, same edges.
                let v = (frame.interpolated(x - 1.5 * vx, y - 1.5 * vy)
                    + frame.interpolated(x, y)
                    + frame.interpolated(x + 1.5 * vx, y + 1.5 * vy))
                    / 3.0;
                pixels.push(v as u8);
            }
        }
        Strip { width, height: STRIP_ROWS, pixels }
    }
}

/// Where a strip lies along its candidate: its first column `start` pixels along the scan direction from the
/// candidate's centre, `step` pixels a column, `width` columns; its rows spread over `cover` of `across` pixels
/// from `top` across the bars, turning by `slant` a pixel along them (see `BarEnds`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Layout {
    pub(super) start: f32,
    pub(super) step: f32,
    pub(super) width: usize,
    top: f32,
    across: f32,
    cover: f32,
    slant: f32,
}

impl Layout {
    /// The same rows, over `width` columns `step` pixels apart from `start` along the scan direction.
    pub(super) fn over(&self, start: f32, step: f32, width: usize) -> Layout {
        Layout { start, step, width, ..*self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::Distortion;
    use crate::vision::candidates::{cell_grid, find_candidates};
    use crate::vision::scenes::{ean13, reads, scene};
    use checkout_storage::Symbology;

    fn linear_strip(frame: &LumaFrame, candidate: &Candidate, deskew: bool, reach: f32) -> Option<Strip> {
        StripSampler::new(frame, candidate, deskew).strip(reach, None)
    }

    /// How far (in samples) the bars in columns `columns` of a strip move from its first row to its last: the
    /// shift that best lines the last row up with the first.
    fn slant(strip: &Strip, columns: std::ops::Range<usize>) -> i32 {
        let row = |r: usize| &strip.pixels[r * strip.width..(r + 1) * strip.width];
        let (first, last) = (row(0), row(strip.height - 1));
        let difference = |k: i32| -> u64 {
            columns.clone().map(|i| u64::from(first[i].abs_diff(last[(i as i32 + k) as usize]))).sum()
        };
        (-40..=40).min_by_key(|&k| difference(k)).unwrap()
    }

    #[test]
    fn a_barcode_seen_in_perspective_is_sampled_along_its_converging_bars() {
        // In perspective the bars converge downwards: they lean one way at the left end, the other at the right.
        let frame = scene(&ean13(), Symbology::Ean13, 3.0, Distortion { perspective_y: 0.12, ..Distortion::default() });
        let grid = cell_grid(&frame);
        let found = find_candidates(&grid).into_iter().find(|c| c.linear).unwrap();
        assert_ne!(found.bend, Bend::default());
        let straight = Candidate { bend: Bend::default(), ..found.clone() };
        let (bent, straight) =
            (linear_strip(&frame, &found, true, 0.0).unwrap(), linear_strip(&frame, &straight, true, 0.0).unwrap());
        let ends = |strip: &Strip| {
            let third = strip.width / 3;
            (slant(strip, 40..third), slant(strip, 2 * third..strip.width - 40))
        };
        let ((bent_left, bent_right), (straight_left, straight_right)) = (ends(&bent), ends(&straight));
        // Half-pixel samples, over some 120 pixels of bar height: the straight strip's bars lean 8 pixels at
        // either end, the bent strip's at most 2.
        assert!(straight_left >= 12 && straight_right <= -12, "straight strip: {straight_left} and {straight_right}");
        assert!(bent_left.abs() <= 4 && bent_right.abs() <= 4, "bent strip: {bent_left} and {bent_right}");
        assert_eq!(reads(&frame), vec![ean13()]);
    }
}
