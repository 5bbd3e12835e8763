//! Where a 1D candidate's bars begin and end, found from the bars' activity along them: a label seen in
//! perspective is sheared, and rows laid square to its bars run off its edges before they reach its ends.

use crate::vision::candidates::CELL;
use crate::vision::filters::box_smooth;
use crate::vision::work::Work;

use super::strip::{BarEnds, StripSampler};

/// Width of a block of columns whose bars' ends are found together, in pixels.
const END_BLOCK: usize = 8;

/// Most samples of the grid in which the bars' ends are looked for (a code filling a 4K frame would take long;
/// held that close, its rows are not what fails).
const MAX_END_GRID: usize = 600_000;

/// Most the bars' ends may slant against the square to the bars: `tan(15°)` (beyond, the fit found clutter).
const MAX_END_SLANT: f32 = 0.27;

/// Most the two ends' slants may differ and still be one shear: `tan(6°)`.
const END_SLANT_AGREEMENT: f32 = 0.105;

/// Finds the bars' ends of a 1D candidate: a grid one pixel a sample, along the bars and half the cells'
/// height past them above and below, is cut into blocks of `END_BLOCK` columns; in each block the bars' activity
/// (sum of differences between neighbouring columns) along the bars rises at the code's top and falls at its
/// bottom. Lines through those points (the median of the slopes between pairs: outliers do not move it) are
/// the ends. `None` when too few blocks show both ends. When the two lines slant apart, or too far, the code
/// is taken as not sheared.
pub(super) fn bar_ends(sampler: &StripSampler, work: &Work) -> Option<BarEnds> {
    let (frame, axes) = (sampler.frame, &sampler.axes);
    let half = CELL as f32 / 2.0;
    let (s0, s1) = (axes.along.0 - half, axes.along.1 + half);
    let height = axes.across.1 - axes.across.0 + CELL as f32;
    let (ta, tb) = (axes.across.0 - half - 0.5 * height, axes.across.1 + half + 0.5 * height);
    let (columns, rows) = ((s1 - s0) as usize, (tb - ta) as usize);
    if columns < 3 * END_BLOCK || rows < 8 || columns * rows > MAX_END_GRID {
        return None;
    }
    work.charge(columns * rows);
    let (ux, uy) = (axes.theta.cos(), axes.theta.sin());
    let (mx, my) = axes.centre;
    let bars: Vec<(f32, f32)> = (0..columns).map(|i| sampler.bars_at(s0 + i as f32)).collect();
    let mut grid = vec![0f32; columns * rows];
    for (j, row) in grid.chunks_exact_mut(columns).enumerate() {
        let t = ta + j as f32;
        for (i, (value, &(bx, by))) in row.iter_mut().zip(&bars).enumerate() {
            let s = s0 + i as f32;
            *value = frame.interpolated(mx + s * ux + t * bx, my + s * uy + t * by);
        }
    }
    let activity: Vec<(f32, Vec<f32>)> = (0..columns / END_BLOCK)
        .map(|b| {
            let along: Vec<f32> = grid
                .chunks_exact(columns)
                .map(|row| row[b * END_BLOCK..(b + 1) * END_BLOCK].windows(2).map(|w| (w[1] - w[0]).abs()).sum())
                .collect();
            (s0 + ((b * END_BLOCK) as f32) + END_BLOCK as f32 / 2.0, box_smooth(&along, 2))
        })
        .collect();
    let peaks: Vec<f32> = activity.iter().map(|(_, a)| a.iter().copied().fold(0.0, f32::max)).collect();
    let mut sorted = peaks.clone();
    sorted.sort_by(f32::total_cmp);
    let strong = sorted[sorted.len() * 9 / 10];
    let (mut tops, mut bottoms) = (Vec::new(), Vec::new());
    for ((s, along), &peak) in activity.iter().zip(&peaks) {
        // Blocks washed out by glare, or off the code, say nothing of its ends.
        if peak < 0.3 * strong {
            continue;
        }
        let (Some(first), Some(last)) =
            (along.iter().position(|&a| a > 0.5 * peak), along.iter().rposition(|&a| a > 0.5 * peak))
        else {
            continue;
        };
        // Bars that run on to the grid's edge: their end is not in view.
        if first == 0 || last + 1 == rows {
            continue;
        }
        tops.push((*s, ta + first as f32));
        bottoms.push((*s, ta + last as f32));
    }
    if tops.len() < 4 {
        return None;
    }
    let (top_slant, bottom_slant) = (median_slope(&tops)?, median_slope(&bottoms)?);
    let mut per_pixel = 0.5 * (top_slant + bottom_slant);
    if (top_slant - bottom_slant).abs() > END_SLANT_AGREEMENT || per_pixel.abs() > MAX_END_SLANT {
        per_pixel = 0.0;
    }
    let offset = |points: &[(f32, f32)]| median(points.iter().map(|(s, t)| t - per_pixel * s).collect());
    Some(BarEnds { top: offset(&tops)?, bottom: offset(&bottoms)?, per_pixel })
}

/// The middle value (the upper one of an even count), `None` for no values.
fn median(mut values: Vec<f32>) -> Option<f32> {
    values.sort_by(f32::total_cmp);
    values.get(values.len() / 2).copied()
}

/// The median of the slopes between pairs of points at least 4 pixels apart (Theil-Sen).
fn median_slope(points: &[(f32, f32)]) -> Option<f32> {
    let mut slopes = Vec::with_capacity(points.len() * points.len() / 2);
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            if (b.0 - a.0).abs() > 4.0 {
                slopes.push((b.1 - a.1) / (b.0 - a.0));
            }
        }
    }
    median(slopes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::candidates::{cell_grid, find_candidates};
    use crate::vision::frame::LumaFrame;
    use crate::vision::scenes::reads;
    use checkout_storage::Symbology;

    #[test]
    fn a_label_sheared_in_perspective_is_read_along_its_slanting_edges() {
        // A Code 128 payment code whose bars stand upright while the label's long edges fall 12 degrees (a box
        // seen from one side). The fall along the code is longer than its bars: no scan line square to the
        // bars crosses the whole code.
        let text = "134567890123456789";
        let code = crate::vision::render::render_code(text, Symbology::Code128, 1, 1).unwrap();
        let (module, bar_height, fall) = (2.5f32, 50.0f32, 12f32.to_radians().tan());
        let length = code.width as f32 * module;
        assert!(length * fall > bar_height);
        let left = (640.0 - length) / 2.0;
        let mut frame = LumaFrame::new(640, 480, 150);
        for y in 0..480 {
            for x in 0..640 {
                let along = (x as f32 - left) / module;
                let down = y as f32 - 240.0 + (x as f32 - 320.0) * fall + bar_height / 2.0;
                if along >= 0.0 && (along as u32) < code.width && (0.0..bar_height).contains(&down) {
                    frame.set(x, y, if code.get(along as u32, 0) < 128 { 40 } else { 220 });
                }
            }
        }
        let found = find_candidates(&cell_grid(&frame)).into_iter().find(|c| c.linear).unwrap();
        let ends = bar_ends(&StripSampler::new(&frame, &found, true), &Work::default()).unwrap();
        assert!((ends.per_pixel + fall).abs() < 0.03, "slant {} for a fall of {fall}", ends.per_pixel);
        assert!((ends.bottom - ends.top - bar_height).abs() < 8.0, "bars from {} to {}", ends.top, ends.bottom);
        assert_eq!(reads(&frame), vec![text]);
    }
}
