//! The reading pipeline around rxing: find where codes are and at what angle, then decode small deskewed crops.
//!
//! 1. A structure tensor per 16x16 cell (gradients sampled on every other row) gives each cell an edge energy,
//!    a coherence (how much its edges share one direction) and that direction.
//! 2. Coherent, energetic cells are grouped by direction into 1D candidates; energetic cells of any direction
//!    into 2D (QR) candidates. A 2D group that does not look square is split into its cores (cells with a
//!    tenth of its strongest cells' energy, eroded by one cell and grown back: a QR code joined to clutter
//!    by a label's edge, a line or a touching box comes out on its own); a 2D group that a 1D candidate
//!    fills a third of goes after that 1D one (a barcode with print beside it). Candidates are tried best
//!    first, within a budget of work (pixels resampled and handed to rxing), so that what a frame yields
//!    does not depend on how busy the machine is; the search ends at the first code read.
//! 3. A 1D candidate is resampled along its estimated scan direction into a small horizontal strip (bilinear,
//!    half-pixel steps, each strip row averaged along the bars; when the cells' own directions turn along the
//!    code by more than 3 degrees, perspective, each column follows the bars' direction at its point),
//!    checked for enough bar edges, and handed to rxing's 1D readers; if that fails, variants are made one at
//!    a time and tried: sharpened, normalised against a moving average, stretched between local extremes
//!    (after none, one or two sharpenings), and under glare a composite of the rows' best-kept parts. Under
//!    glare a failed strip is sampled again, longer and over the bars' whole height. Every read is checked
//!    against the strip's rows read one by one (scan lines): when a line reads another code, or fewer than
//!    three confirm it, the lines and the variants not yet tried vote, and a code counts only when clearly
//!    ahead. An EAN-8 or UPC-E read (weak checksums) also needs two agreeing lines and five modules of quiet
//!    zone either side (else it is part of a longer code, zxing-cpp #255).
//!    When all of that fails on a frame's best 1D candidate, the strip's rows are shifted so that slanted bars
//!    stand upright (`rows`), averaged in threes, sharpened, stretched and tried again.
//! 4. A 2D candidate is cropped upright and handed to rxing's QR reader, which handles rotation itself; then
//!    twice the size when small, with a global threshold, denoised and unsharp-masked, flattened against a wide
//!    local mean. When all of that fails on a frame's best 2D candidate, its module grid is read
//!    from the grey crop with the bottom-right corner searched for (`qr_grid`): perspective and glare.
//! 5. When a candidate looks like a code but nothing decodes, the strip's statistics say why if they can:
//!    glare, low contrast, too small, too blurred.

use std::time::{Duration, Instant};

use rxing::{BarcodeFormat, DecodeHints};

use checkout_storage::Symbology;

use super::LumaFrame;
use super::candidates::{
    Bend, CELL, Candidate, ReadAttempt, cell_grid, covered_by_a_square, fills_a_square, find_candidates,
};
use super::diagnose::{Unreadable, looks_blurred, why_unreadable};
use super::filters::{
    box_smooth, composite_rows, normalise_envelope, normalise_locally, percentiles, sharpen, smooth_across_rows,
    stretch,
};
use super::rxing::{Binarizer, CodeRead, Guards, LINEAR_FORMATS, READ_FORMATS, hints, read};
use super::square::SquareReader;
use super::work::Work;

/// Which steps of the pipeline run (the benchmark switches them off one by one to measure them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisionConfig {
    /// Work after which no further candidate is tried: pixels resampled into strips plus pixels handed to
    /// rxing (a crop of w x h handed over twice costs 2wh). Counted, not timed: the same frame always gets the
    /// same attempts, however loaded the machine is.
    pub work_budget: u64,
    /// Wall-clock safety cap, a last resort against pathological images (rxing stuck in a loop on a crop): no
    /// further candidate is started after it. Far above what the work budget takes on a loaded machine.
    pub time_cap: Duration,
    /// At most this many candidates are tried per frame.
    pub max_candidates: usize,
    /// Stop at the first code read (a lane is shown one code at a time; the regions left are mostly clutter).
    pub first_read_ends: bool,
    /// Resample 1D candidates along their estimated orientation (otherwise: upright crops).
    pub deskew: bool,
    /// Stretch each strip's contrast to the full grey range.
    pub stretch: bool,
    /// Retry a failed strip sharpened, then locally normalised (for blur and glare).
    pub retries: bool,
    /// With nothing read, undo motion blur across the best 1D candidate's bars and read it again (a code
    /// moved while the shutter was open; see `vision/deblur.rs`).
    pub deblur: bool,
    /// Also try inverted crops (light bars on a dark screen).
    pub inverted: bool,
    /// When no candidate decodes, run rxing once on the whole frame (without TryHarder).
    pub whole_frame_fallback: bool,
    /// When nothing is read, search the frame's negative too: light codes on a dark ground (some packaging, a
    /// screen in dark mode). Doubles the time of a frame without a code, so it is for photos, not the lanes.
    pub negative_fallback: bool,
}

impl Default for VisionConfig {
    fn default() -> Self {
        VisionConfig {
            work_budget: DEFAULT_WORK_BUDGET,
            time_cap: Duration::from_millis(250),
            // Measured on four seeds of `bench decode`: a 7th to 9th candidate read no frame, and cost the
            // slowest frames (those without a readable code) 7% more work.
            max_candidates: 6,
            first_read_ends: true,
            deskew: true,
            // Measured on `checkout bench decode --ablate`: no accuracy gained on 1D strips, a little time lost.
            stretch: false,
            retries: true,
            deblur: true,
            // Measured: costs about 0.5 ms a frame; retail and wallet codes are dark on light.
            inverted: false,
            whole_frame_fallback: false,
            // Wallet codes and retail barcodes are dark on light, and a lane's empty frames stay cheap.
            negative_fallback: false,
        }
    }
}

/// Default [`VisionConfig::work_budget`].
pub const DEFAULT_WORK_BUDGET: u64 = 2_500_000;

/// What the pipeline found in one frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameAnalysis {
    /// Codes read (at most one per candidate region, no duplicates; only the first unless
    /// [`VisionConfig::first_read_ends`] is off).
    pub reads: Vec<CodeRead>,
    /// Why a code-like region could not be read, if nothing was read and the reason shows.
    pub unreadable: Option<Unreadable>,
    /// Candidate regions found.
    pub candidates: usize,
    /// Candidate regions tried before the budget ran out.
    pub tried: usize,
    /// rxing panicked on a crop (the crop was skipped).
    pub panicked: bool,
    /// Work spent (see [`VisionConfig::work_budget`]).
    pub work: u64,
    /// The wall-clock safety cap stopped the search (never on a sane image).
    pub timed_out: bool,
}

/// Runs rxing on a grey buffer behind `catch_unwind`. `Err(())` if it panicked.
fn rxing_read(
    pixels: &[u8],
    width: usize,
    height: usize,
    hints: &DecodeHints,
    work: &Work,
) -> Result<Option<CodeRead>, ()> {
    rxing_read_with(pixels, width, height, hints, false, work)
}

/// Like [`rxing_read`], with rxing's global-histogram binarizer when `global` (better on some small QR codes).
fn rxing_read_with(
    pixels: &[u8],
    width: usize,
    height: usize,
    hints: &DecodeHints,
    global: bool,
    work: &Work,
) -> Result<Option<CodeRead>, ()> {
    Ok(rxing_read_located(pixels, width, height, hints, global, work)?.map(|(read, _)| read))
}

/// Like [`rxing_read_with`], with where a 1D code was found.
fn rxing_read_located(
    pixels: &[u8],
    width: usize,
    height: usize,
    hints: &DecodeHints,
    global: bool,
    work: &Work,
) -> Result<Option<(CodeRead, Option<Guards>)>, ()> {
    work.charge(width * height);
    let binarizer = if global { Binarizer::GlobalHistogram } else { Binarizer::Hybrid };
    read(pixels, width, height, hints, binarizer).map_err(|_| ())
}

/// What rxing's 1D readers alone read in a strip (tests compare the pipeline's own readers with it).
#[cfg(test)]
pub(super) fn rxing_text(pixels: &[u8], width: usize, height: usize, work: &Work) -> Option<String> {
    rxing_read(pixels, width, height, &hints(&LINEAR_FORMATS, false, false), work).ok().flatten().map(|r| r.text)
}

/// Runs the pipeline on a frame whose buffer matches its dimensions.
pub(super) fn analyse(frame: &LumaFrame, config: &VisionConfig) -> FrameAnalysis {
    let started = Instant::now();
    let grid = cell_grid(frame);
    let candidates = find_candidates(&grid);
    let mut analysis = FrameAnalysis { candidates: candidates.len(), ..FrameAnalysis::default() };
    let mut why: Option<(f32, Option<Unreadable>)> = None;
    let linear_hints = hints(&LINEAR_FORMATS, false, config.inverted);
    let qr_hints = hints(&[BarcodeFormat::QR_CODE], true, config.inverted);
    let work = Work::default();
    let square_reader = SquareReader { frame, hints: &qr_hints, work: &work };
    let (mut squares, mut lines) = (0, 0);
    let plain = VisionConfig { retries: false, ..config.clone() };
    for candidate in candidates.iter().take(config.max_candidates) {
        if work.spent() >= config.work_budget {
            break;
        }
        if started.elapsed() >= config.time_cap {
            analysis.timed_out = true;
            tracing::warn!(width = frame.width, height = frame.height, "frame search stopped by the safety time cap");
            break;
        }
        analysis.tried += 1;
        let outcome = if candidate.linear {
            lines += 1;
            let config = if candidate.plain_only { &plain } else { config };
            read_linear(frame, candidate, config, &linear_hints, lines <= STRAIGHTENED_READS, &work)
        } else {
            squares += 1;
            square_reader.read(candidate, squares <= GRID_READS)
        };
        match outcome {
            ReadAttempt::Read(read) => {
                if !analysis.reads.contains(&read) {
                    analysis.reads.push(read);
                }
                if config.first_read_ends {
                    break;
                }
            }
            ReadAttempt::Panicked => analysis.panicked = true,
            ReadAttempt::Failed(reason) => {
                if why.as_ref().is_none_or(|(score, _)| candidate.score > *score) {
                    why = Some((candidate.score, reason));
                }
            }
        }
    }
    // With nothing read, the best 1D candidate once more, its rows between its bars' ends; not on a frame
    // that has already taken much work, the slowest (measured on five seeds of `bench decode`: 10 frames and a
    // close-up more, none wrong, p99 no slower; no frame read past 40% of the budget).
    if analysis.reads.is_empty()
        && config.retries
        && work.spent() < config.work_budget / 5 * 2
        && !analysis.timed_out
        && let Some(best) = candidates.iter().take(config.max_candidates).find(|c| c.linear && !c.plain_only)
    {
        analysis.reads.extend(read_best_linear_again(frame, best, config, &linear_hints, &work));
    }
    // A QR code blurred by motion keeps only the edges across the motion: the finder takes it for a 1D code.
    // With nothing read, the best 1D candidate that is square and that no 2D candidate covers is also tried
    // as a QR code, once (with the grid reader, whose sharpened grid undoes some blur, if the frame has not
    // used it yet).
    if analysis.reads.is_empty()
        && work.spent() < config.work_budget
        && !analysis.timed_out
        && let Some(blurred) = candidates.iter().take(config.max_candidates).find(|c| c.linear)
        && fills_a_square(&blurred.cells)
        && !covered_by_a_square(&candidates, blurred)
        && let ReadAttempt::Read(read) = square_reader.read(blurred, squares < GRID_READS)
    {
        analysis.reads.push(read);
    }
    if analysis.reads.is_empty()
        && config.whole_frame_fallback
        && work.spent() < config.work_budget
        && !analysis.timed_out
        && let Ok(Some(read)) = rxing_read(
            &frame.pixels,
            frame.width as usize,
            frame.height as usize,
            &hints(&READ_FORMATS, false, false),
            &work,
        )
    {
        analysis.reads.push(read);
    }
    analysis.work = work.spent();
    if analysis.reads.is_empty() {
        analysis.unreadable = why.and_then(|(_, reason)| reason);
    }
    analysis
}

/// A grey strip sampled along a 1D candidate's scan direction.
struct Strip {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

/// Margin added at both ends of a 1D strip, in pixels (quiet zone and end cells the finder missed).
const STRIP_MARGIN: f32 = 28.0;
/// Rows of a 1D strip.
const STRIP_ROWS: usize = 12;
/// Longest strip, in samples.
const MAX_STRIP: usize = 2400;

/// A 1D candidate's place in the frame: the mean of its cells' centres, its scan direction (square to its
/// bars, or along x without deskew), and its cells' extent along (`s`) and across (`t`) that direction, in
/// pixels from the centre.
struct StripAxes {
    centre: (f32, f32),
    theta: f32,
    along: (f32, f32),
    across: (f32, f32),
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

/// The direction of the bars (a unit vector) at `s` pixels along the scan direction (see `Bend`).
fn bars_at(candidate: &Candidate, axes: &StripAxes, s: f32) -> (f32, f32) {
    let turned = axes.theta + candidate.bend.at_centre + candidate.bend.per_pixel * s;
    (-turned.sin(), turned.cos())
}

/// Where a 1D candidate's bars begin and end along their own direction, as lines against the place along the
/// scan direction: `t = top + per_pixel * s` and `t = bottom + per_pixel * s` (pixels, from the strip's
/// centre). A label seen in perspective is sheared: its bars slant against its long edges, so rows laid
/// square to the bars run off its top or bottom edge before they reach its ends.
#[derive(Debug, Clone, Copy, PartialEq)]
struct BarEnds {
    top: f32,
    bottom: f32,
    per_pixel: f32,
}

/// Width of a block of columns whose bars' ends are found together, in pixels.
const END_BLOCK: usize = 8;
/// Most samples of the grid in which the bars' ends are looked for (a code filling a 4K frame would take
/// tens of milliseconds; held that close, its rows are not what fails).
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
fn bar_ends(frame: &LumaFrame, candidate: &Candidate, axes: &StripAxes, work: &Work) -> Option<BarEnds> {
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
    let bars: Vec<(f32, f32)> = (0..columns).map(|i| bars_at(candidate, axes, s0 + i as f32)).collect();
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

/// Samples a candidate along its scan direction, reaching past its ends by `reach` times its length.
/// With a reach (a second look under glare), the rows span the candidate's whole height, ends of the bars
/// included, rather than its middle 80%. With `ends`, the rows span the bars between their ends (the middle
/// 80%, or all with a reach) and follow them where they slant.
fn sample_strip(
    frame: &LumaFrame,
    candidate: &Candidate,
    axes: &StripAxes,
    reach: f32,
    ends: Option<BarEnds>,
) -> Option<Strip> {
    let (ux, uy) = (axes.theta.cos(), axes.theta.sin());
    let (mx, my) = axes.centre;
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
    let across = (t1 - t0).max(1.0);
    // Each column runs along the bars as they run at its point of the code (see `Bend`).
    let along_bars: Vec<(f32, f32)> = if candidate.bend == Bend::default() {
        vec![bars_at(candidate, axes, 0.0); width]
    } else {
        (0..width).map(|i| bars_at(candidate, axes, s0 + i as f32 * step)).collect()
    };
    let mut pixels = Vec::with_capacity(width * STRIP_ROWS);
    for r in 0..STRIP_ROWS {
        let t = t0 + across * ((1.0 - cover) / 2.0 + cover * (r as f32 + 0.5) / STRIP_ROWS as f32);
        for (i, &(vx, vy)) in along_bars.iter().enumerate() {
            let s = s0 + i as f32 * step;
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
    Some(Strip { width, height: STRIP_ROWS, pixels })
}

/// Fewest bar edges worth handing to rxing: a UPC-E, the shortest code read, has 17 bars (34 edges); blur and
/// glare hide many from the counting threshold (measured: 20 missed one small blurred UPC-E in ten, 14 reads
/// them; 10 reads no more and costs time).
const MIN_EDGES: usize = 14;

/// Bar edges along the strip's best row, counted with hysteresis around the strip's mid grey.
fn edges(strip: &Strip) -> usize {
    edges_in(&strip.pixels, strip.width, strip.height)
}

fn edges_in(pixels: &[u8], width: usize, height: usize) -> usize {
    let strip = Strip { width, height, pixels: pixels.to_vec() };
    let (lo, hi) = percentiles(&strip.pixels);
    let (lo, hi) = (i32::from(lo), i32::from(hi));
    let (mid, band) = ((lo + hi) / 2, (hi - lo) / 6);
    let mut best = 0;
    for r in [strip.height / 4, strip.height / 2, 3 * strip.height / 4] {
        let row = &strip.pixels[r * strip.width..(r + 1) * strip.width];
        let mut dark = i32::from(row[0]) < mid;
        let mut count = 0;
        for &p in row {
            let p = i32::from(p);
            if dark && p > mid + band {
                dark = false;
                count += 1;
            } else if !dark && p < mid - band {
                dark = true;
                count += 1;
            }
        }
        best = best.max(count);
    }
    best
}

/// Whether a strip shows clearly more bar edges than a short symbology has (UPC-E 34, EAN-8 44; EAN-13 and
/// UPC-A have 60).
fn too_many_edges_for(symbology: Symbology, edges: usize) -> bool {
    match symbology {
        Symbology::UpcE => edges >= 50,
        Symbology::Ean8 => edges >= 56,
        _ => false,
    }
}

fn is_weak(symbology: Symbology) -> bool {
    matches!(symbology, Symbology::UpcE | Symbology::Ean8)
}

/// Whether the strip mirrored end to end reads as a different code of the same symbology (an upside-down
/// UPC-E or EAN-8 can read as another valid one).
fn mirror_disagrees(pixels: &[u8], strip: &Strip, hints: &DecodeHints, read: &CodeRead, work: &Work) -> bool {
    let mut mirrored = pixels.to_vec();
    for row in mirrored.chunks_exact_mut(strip.width) {
        row.reverse();
    }
    match rxing_read(&mirrored, strip.width, strip.height, hints, work) {
        Ok(Some(other)) => other.symbology == read.symbology && other.text != read.text,
        _ => false,
    }
}

/// What the strip's rows read, one row at a time: a retail scanner's scan lines. `Err(())` if rxing panicked.
fn row_reads(pixels: &[u8], strip: &Strip, hints: &DecodeHints, work: &Work) -> Result<Vec<CodeRead>, ()> {
    let mut reads = Vec::new();
    for row in pixels.chunks_exact(strip.width) {
        if let Some(read) = rxing_read(row, strip.width, 1, hints, work)? {
            reads.push(read);
        }
    }
    Ok(reads)
}

/// The code a contested strip reads: `read` (rxing's read of the whole strip variant) and `others` (its scan
/// lines' and later variants' reads) vote, and the code with the most votes counts if it has more than 1.5
/// times the runner-up's. When two reads saw an EAN-13 or UPC-A, short codes are parts of it (zxing-cpp
/// #255) and do not vote. A short code never wins against the code rxing read: it has its own checks.
fn consensus<'a>(read: &'a CodeRead, others: impl Iterator<Item = &'a CodeRead>) -> Option<CodeRead> {
    let mut votes: Vec<(&CodeRead, usize)> = vec![(read, 1)];
    for other in others {
        match votes.iter_mut().find(|(code, _)| *code == other) {
            Some((_, n)) => *n += 1,
            None => votes.push((other, 1)),
        }
    }
    if votes.iter().any(|(code, n)| is_long_retail(code.symbology) && *n >= 2) {
        votes.retain(|(code, _)| !is_weak(code.symbology));
    }
    votes.sort_by_key(|vote| std::cmp::Reverse(vote.1));
    let (winner, n) = *votes.first()?;
    let runner_up = votes.get(1).map_or(0, |v| v.1);
    if 2 * n <= 3 * runner_up || (winner != read && is_weak(winner.symbology)) {
        return None;
    }
    Some(winner.clone())
}

fn is_long_retail(symbology: Symbology) -> bool {
    matches!(symbology, Symbology::Ean13 | Symbology::UpcA)
}

fn read_linear(
    frame: &LumaFrame,
    candidate: &Candidate,
    config: &VisionConfig,
    hints: &DecodeHints,
    straighten: bool,
    work: &Work,
) -> ReadAttempt {
    let axes = strip_axes(candidate, config.deskew);
    let Some(strip) = sample_strip(frame, candidate, &axes, 0.0, None) else {
        return ReadAttempt::Failed(None);
    };
    let raw = strip.pixels.clone();
    let outcome = read_strip(strip, StripReach::Found, config, hints, straighten, work);
    let failed = matches!(outcome, StripOutcome::Failed | StripOutcome::NotACode);
    if !failed || !config.retries || saturated_share(&raw) < GLARE_SHARE {
        return finish(outcome, &raw, candidate);
    }
    // Glare: the finder may have seen only the part of the code beside the reflection, and the bars may keep
    // their contrast only near their ends, farthest from it. The strip reaches on past both ends, where the
    // rest of the code would be, and its rows span the candidate's whole height.
    let Some(longer) = sample_strip(frame, candidate, &axes, GLARE_REACH, None) else {
        return finish(outcome, &raw, candidate);
    };
    finish(read_strip(longer, StripReach::PastTheEnds, config, hints, straighten, work), &raw, candidate)
}

/// The frame's best 1D candidate, when nothing was read: once more with motion blur undone when its strip looks
/// blurred (and `config.deblur`), else between its bars' ends. (Measured on seeds 2026, 7 and 4242: the bars'
/// ends read no frame whose strip looks blurred, and trying both cost the slowest frames some 2 ms.)
fn read_best_linear_again(
    frame: &LumaFrame,
    candidate: &Candidate,
    config: &VisionConfig,
    hints: &DecodeHints,
    work: &Work,
) -> Option<CodeRead> {
    let axes = strip_axes(candidate, config.deskew);
    let found = sample_strip(frame, candidate, &axes, 0.0, None)?;
    work.charge(3 * found.width * found.height);
    if config.deblur && looks_blurred(&found.pixels, found.width) {
        return read_motion_deblurred(found, config, hints, work);
    }
    read_between_bar_ends(frame, candidate, &axes, &found, config, hints, work)
}

/// A 1D candidate read once more, its rows laid between its bars' own ends and along them where perspective
/// shears the code (see [`BarEnds`]; the cells' extent that places the rows at first is a coarse guess of
/// both). Under glare the strip reaches past the candidate's ends, as the glare strip of [`read_linear`] does.
fn read_between_bar_ends(
    frame: &LumaFrame,
    candidate: &Candidate,
    axes: &StripAxes,
    found: &Strip,
    config: &VisionConfig,
    hints: &DecodeHints,
    work: &Work,
) -> Option<CodeRead> {
    let reach = if saturated_share(&found.pixels) >= GLARE_SHARE { GLARE_REACH } else { 0.0 };
    let ends = bar_ends(frame, candidate, axes, work)?;
    let strip = sample_strip(frame, candidate, axes, reach, Some(ends))?;
    match read_strip(strip, StripReach::BetweenEnds, config, hints, false, work) {
        StripOutcome::Read(read) => Some(read),
        StripOutcome::Failed | StripOutcome::NotACode | StripOutcome::Panicked => None,
    }
}

/// Shares of the measured blur a motion-blurred strip is deblurred with, in turn: the measure is good to some
/// 5% on most strips, and a filter for a blur 10% off reads far fewer (measured on the moving frames of `bench
/// decode`: 0.95 and 1.05 read 8 frames more than 1.0 alone, 0.9 and 1.0 5 fewer).
const DEBLUR_SHARES: [f32; 2] = [0.95, 1.05];

/// A 1D candidate's strip read once more with motion blur across its bars undone (see [`super::deblur`]): its
/// rows brought into line, the blur measured on their mean, each row deblurred. Only a strip that looks blurred
/// is tried ([`looks_blurred`]): on seed 2026's set, 12 frames of 1,400 rather than 213, at no cost in moving
/// frames read; 1.5 ms on each of them, 3.2 at most.
fn read_motion_deblurred(strip: Strip, config: &VisionConfig, hints: &DecodeHints, work: &Work) -> Option<CodeRead> {
    let (width, height) = (strip.width, strip.height);
    let aligned = super::rows::aligned(&strip.pixels, width, height)?;
    work.charge(width * height);
    let profile: Vec<f32> = (0..width)
        .map(|i| (0..height).map(|r| f32::from(aligned[r * width + i])).sum::<f32>() / height as f32)
        .collect();
    let travel = super::deblur::travel_across_bars(&profile)?;
    let rows = smooth_across_rows(&aligned, width, height, 1);
    for share in DEBLUR_SHARES {
        let pixels = super::deblur::undo_box_blur(&rows, width, travel * share);
        let deblurred = Strip { width, height, pixels };
        if let StripOutcome::Read(read) = read_strip(deblurred, StripReach::Deblurred, config, hints, false, work) {
            return Some(read);
        }
    }
    None
}

/// Which strip of a 1D candidate is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StripReach {
    /// Over the cells the finder found.
    Found,
    /// On past both ends and over the bars' whole height, under glare (see [`GLARE_REACH`]).
    PastTheEnds,
    /// Between the bars' ends, along them (see [`BarEnds`]); on past both ends under glare.
    BetweenEnds,
    /// Rows in line, motion blur undone (see [`read_motion_deblurred`]).
    Deblurred,
}

/// Share of a strip's samples at white, above which a failed strip is tried again longer.
const GLARE_SHARE: f32 = 0.01;
/// How far the strip of a candidate under glare reaches past its ends, as a share of its length.
const GLARE_REACH: f32 = 0.9;

fn saturated_share(pixels: &[u8]) -> f32 {
    pixels.iter().filter(|&&p| p >= 250).count() as f32 / pixels.len().max(1) as f32
}

enum StripOutcome {
    /// Too few bar edges to be a code.
    NotACode,
    Read(CodeRead),
    Failed,
    Panicked,
}

fn finish(outcome: StripOutcome, raw: &[u8], candidate: &Candidate) -> ReadAttempt {
    match outcome {
        StripOutcome::Read(read) => ReadAttempt::Read(read),
        StripOutcome::Panicked => ReadAttempt::Panicked,
        StripOutcome::NotACode | StripOutcome::Failed => {
            ReadAttempt::Failed(diagnose(raw, raw.len() / STRIP_ROWS, candidate))
        }
    }
}

/// Reads a strip as it is, then (when `config.retries`) sharpened, locally normalised and envelope-stretched
/// in turn, each made only when the ones before it failed; then, when `straighten` (the frame's best 1D
/// candidate), its rows straightened.
fn read_strip(
    mut strip: Strip,
    reach: StripReach,
    config: &VisionConfig,
    hints: &DecodeHints,
    straighten: bool,
    work: &Work,
) -> StripOutcome {
    // Three bilinear samples a strip pixel.
    work.charge(3 * strip.width * strip.height);
    let raw = Strip { pixels: strip.pixels.clone(), ..strip };
    if config.stretch {
        stretch(&mut strip.pixels);
    }
    // Stripes, shelf edges and print are not codes: too few edges to be worth rxing's time. Glare hides
    // edges from a strip-wide threshold, so they are also counted on the locally normalised strip.
    let normalised = normalise_locally(&raw.pixels, raw.width);
    let glared = saturated_share(&raw.pixels) >= GLARE_SHARE;
    let mut edge_count = edges(&strip).max(edges_in(&normalised, strip.width, strip.height));
    if edge_count < MIN_EDGES && glared {
        // Clipped bars leave faint edges that only a local stretch shows.
        let stretched = normalise_envelope(&raw.pixels, raw.width, 2 * MIN_EDGES);
        edge_count = edge_count.max(edges_in(&stretched, strip.width, strip.height));
    }
    if edge_count < MIN_EDGES {
        return StripOutcome::NotACode;
    }
    let plain = DecodeHints { AlsoInverted: Some(false), ..hints.clone() };
    let sharpened = |pixels: Vec<u8>| sharpen(&pixels, raw.width);
    let envelope = |pixels: Vec<u8>| normalise_envelope(&pixels, raw.width, edge_count);
    // Measured order (bench decode): as it is; sharpened (blur); normalised against a moving average (glare);
    // stretched between local extremes (glare ramps, faint bars); sharpened then stretched; sharpened twice
    // then stretched (small blurred modules); under glare, the rows' best-kept parts composed.
    // Inverted bars (config.inverted) are looked for in the strip as it is only.
    let variants: [&dyn Fn() -> Vec<u8>; 7] = [
        &|| strip.pixels.clone(),
        &|| sharpen(&strip.pixels, strip.width),
        &|| normalised.clone(),
        &|| envelope(raw.pixels.clone()),
        &|| envelope(sharpened(raw.pixels.clone())),
        &|| envelope(sharpened(sharpened(raw.pixels.clone()))),
        &|| composite_rows(&raw.pixels, raw.width, raw.height, edge_count),
    ];
    // The strip past the ends skips the locally normalised and the twice-sharpened variants (measured on four
    // seeds: there they read no frame, and cost some 2 ms a fruitless try). A strip under glare is also tried
    // as a composite of its best-kept rows (measured on five seeds: 7 frames and a close-up more, one wrong
    // read fewer, within the noise of p99).
    // The strip between the bars' ends is a retry itself, tried only stretched between local extremes, plain
    // and sharpened (measured on three seeds: the other variants read 2 of its 11 frames, and cost the slowest
    // frames some 2 ms). So is the deblurred strip: as it is, then stretched (measured on the moving frames of
    // seed 2026: stretched and sharpened too read 3 frames more, but cost the frames that try it 0.5 ms more,
    // up to 1.7 ms; stretched alone reads one frame fewer).
    let composite = glared.then_some(6);
    let tried: Vec<usize> = match (config.retries, reach) {
        (false, _) => vec![0],
        (true, StripReach::Found) => [0, 1, 2, 3, 4, 5].into_iter().chain(composite).collect(),
        (true, StripReach::PastTheEnds) => [0, 1, 3, 4].into_iter().chain(composite).collect(),
        (true, StripReach::BetweenEnds) => vec![3, 4],
        (true, StripReach::Deblurred) => vec![0, 3],
    };
    for (position, &k) in tried.iter().enumerate() {
        let pixels = variants[k]();
        let hints = if k == 0 { hints } else { &plain };
        let later = || -> Vec<CodeRead> {
            tried[position + 1..]
                .iter()
                .filter_map(|&j| rxing_read(&variants[j](), strip.width, strip.height, &plain, work).ok().flatten())
                .collect()
        };
        if let Some(outcome) = read_variant(&pixels, &strip, hints, edge_count, &later, work) {
            return outcome;
        }
    }
    if !config.retries || !straighten {
        return StripOutcome::Failed;
    }
    // Bars that cross the strip at a slant: rows shifted upright, averaged in threes (less noise), sharpened
    // and stretched. (Measured on four seeds of `bench decode`: the averaged rows as they are read no frame,
    // nor did a reader of the grey levels that voted digit by digit, once in `ean_grey.rs`; the second read
    // one frame wrong and cost 4 to 9 ms on the frames without a readable code.)
    let Some(aligned) = super::rows::aligned(&raw.pixels, raw.width, raw.height) else {
        return StripOutcome::Failed;
    };
    work.charge(raw.width * raw.height);
    let straightened = envelope(sharpened(smooth_across_rows(&aligned, raw.width, raw.height, 1)));
    // The strip's other variants read nothing: its scan lines alone vote.
    read_variant(&straightened, &strip, &plain, edge_count, &Vec::new, work).unwrap_or(StripOutcome::Failed)
}

/// rxing on one variant of a strip, with the checks a 1D read must pass: `Some` ends the search (a read, or
/// rxing panicked), `None` moves on to the next variant. `later` reads the strip's variants not yet tried,
/// for a vote when the strip's scan lines disagree or few confirm the read.
fn read_variant(
    pixels: &[u8],
    strip: &Strip,
    hints: &DecodeHints,
    edge_count: usize,
    later: &dyn Fn() -> Vec<CodeRead>,
    work: &Work,
) -> Option<StripOutcome> {
    let (read, guards) = match rxing_read_located(pixels, strip.width, strip.height, hints, false, work) {
        Ok(Some(found)) => found,
        Ok(None) => return None,
        Err(()) => return Some(StripOutcome::Panicked),
    };
    let weak = is_weak(read.symbology);
    // Part of a longer code read as a short one (zxing-cpp #255): the strip has too many bars for it, or bars
    // right beside it. A short code read one way and another code of its kind read the other way: no telling
    // which.
    if too_many_edges_for(read.symbology, edge_count)
        || (weak && guards.is_some_and(|guards| bars_beside(strip, read.symbology, guards)))
        || (weak && mirror_disagrees(pixels, strip, hints, &read, work))
    {
        return None;
    }
    let Ok(lines) = row_reads(pixels, strip, hints, work) else {
        return Some(StripOutcome::Panicked);
    };
    // A short code must read the same along two scan lines.
    let agreeing = lines.iter().filter(|line| **line == read).count();
    if weak && agreeing < 2 {
        return None;
    }
    // Measured on held-out frames: a tilted EAN-13 under glare or blur can read as another valid one where
    // other scan lines or later variants read the true code. A read the lines contest, or one that fewer
    // than three lines confirm, goes to a vote with the later variants (they cost some 1.5 ms when they fail,
    // so a read many lines confirm is spared them).
    let contested = lines.iter().any(|line| *line != read);
    if !contested && agreeing >= CONFIRMING_LINES {
        return Some(StripOutcome::Read(read));
    }
    let later = later();
    if !contested && later.iter().all(|other| *other == read) {
        return Some(StripOutcome::Read(read));
    }
    consensus(&read, lines.iter().chain(&later)).map(StripOutcome::Read)
}

/// Scan lines that, reading a strip's code alike and none another, confirm it without a vote.
const CONFIRMING_LINES: usize = 3;

/// Modules from the centre of a code's start guard to the centre of its end guard, and half its end guard's
/// width, for the EAN/UPC family.
fn guard_span(symbology: Symbology) -> Option<(f32, f32)> {
    match symbology {
        Symbology::Ean13 | Symbology::UpcA => Some((92.0, 1.5)),
        Symbology::Ean8 => Some((64.0, 1.5)),
        Symbology::UpcE => Some((46.5, 3.0)),
        _ => None,
    }
}

/// Quiet zone, in modules, a short code must show on both sides (GS1 asks for 7 beside an EAN-8 and 7 to 9
/// beside a UPC-E; 5 leaves room for error in where the code's edges are).
const QUIET_MODULES: f32 = 5.0;

/// Whether the strip as sampled shows a bar within [`QUIET_MODULES`] beyond either end of the code rxing
/// found (`guards`): the code is then part of a longer one, a UPC-E inside an EAN-13 or an EAN-8 inside a
/// UPC-A or a Code 128 (zxing-cpp #255). rxing itself asks for only three modules.
fn bars_beside(strip: &Strip, symbology: Symbology, guards: Guards) -> bool {
    let Some((span, end_half)) = guard_span(symbology) else {
        return false;
    };
    let module = (guards.end_x - guards.start_x).abs() / span;
    // Too small to judge (or not a number).
    if module.is_nan() || module < 0.5 {
        return false;
    }
    let out = (guards.start_x - guards.end_x).signum();
    // The line rxing read, averaged with its neighbours.
    let (w, h) = (strip.width, strip.height);
    let rows = guards.row.saturating_sub(1)..(guards.row + 2).min(h);
    let n = rows.len() as f32;
    let line: Vec<f32> =
        (0..w).map(|x| rows.clone().map(|r| f32::from(strip.pixels[r * w + x])).sum::<f32>() / n).collect();
    side_has_bar(&line, guards.start_x + out * 1.5 * module, out, module)
        || side_has_bar(&line, guards.end_x - out * end_half * module, -out, module)
}

/// Whether, going `out` (+1 or -1) from a code's edge at `edge`, a bar darker than halfway between the
/// code's own dark and light (over its nearest seven modules) lies between one and [`QUIET_MODULES`]
/// modules out (the first module may hold the edge bar's blur).
fn side_has_bar(line: &[f32], edge: f32, out: f32, module: f32) -> bool {
    let at = |x: f32| {
        let i = x.round();
        (i >= 0.0 && i < line.len() as f32).then(|| line[i as usize])
    };
    let inside: Vec<f32> = (0..(7.0 * module) as usize).filter_map(|k| at(edge - out * k as f32)).collect();
    if inside.is_empty() {
        return false;
    }
    let dark = inside.iter().copied().fold(f32::MAX, f32::min);
    let light = inside.iter().copied().fold(f32::MIN, f32::max);
    let mid = (dark + light) / 2.0;
    (module.ceil() as usize..(QUIET_MODULES * module) as usize)
        .filter_map(|k| at(edge + out * k as f32))
        .any(|v| v < mid)
}

/// The 2D candidates of a frame, best first, whose module grid is read when rxing fails on them. (Measured on
/// five seeds of `bench decode`, once the grid search had got faster: a second one reads four QR codes more in
/// 7,600 frames, two of them tilted under 15 degrees, and costs about 1 ms of VGA p99; a QR code beside a
/// block of print is often the second.)
const GRID_READS: usize = 2;
/// The 1D candidates of a frame, best first, whose strip is straightened when all else fails on them
/// (measured: a second one read none more).
const STRAIGHTENED_READS: usize = 1;

/// Why a strip that looks like a 1D code did not decode, if its statistics tell.
fn diagnose(raw: &[u8], width: usize, candidate: &Candidate) -> Option<Unreadable> {
    // Only regions that look like a code: several cells, mostly one direction.
    if candidate.cells.len() < 6 {
        return None;
    }
    why_unreadable(raw, width)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::candidates::box_shape;

    #[test]
    fn a_qr_code_joined_to_clutter_by_a_faint_line_is_still_a_candidate() {
        let mut frame = LumaFrame::new(800, 240, 160);
        let code = crate::vision::render_code("2594191774197841", Symbology::QrCode, 4, 0).unwrap();
        crate::vision::paste(&mut frame, &code, 40, 60);
        let (qr_x, qr_y, side) = (40, 60, code.width);
        // A faint line (a shelf edge) from the code to a dark box: one group of cells, far wider than tall.
        for x in qr_x + side..760 {
            for y in 100..102 {
                frame.set(x, y, 130);
            }
        }
        for y in 80..130 {
            for x in 720..760 {
                frame.set(x, y, 20);
            }
        }
        let squares: Vec<Candidate> = find_candidates(&cell_grid(&frame)).into_iter().filter(|c| !c.linear).collect();
        let over_the_code = |c: &Candidate| {
            c.cells.iter().all(|&(cx, cy)| {
                let (x, y) = ((cx * CELL) as u32, (cy * CELL) as u32);
                x + CELL as u32 > qr_x && x < qr_x + side && y + CELL as u32 > qr_y && y < qr_y + side
            })
        };
        assert!(squares.iter().any(over_the_code), "{:?}", squares.iter().map(|c| c.cells.len()).collect::<Vec<_>>());
        let reads = analyse(&frame, &VisionConfig::default()).reads;
        assert_eq!(reads.iter().map(|r| r.text.as_str()).collect::<Vec<_>>(), ["2594191774197841"]);
    }

    #[test]
    fn a_short_code_must_read_the_same_along_two_rows() {
        let code = crate::vision::render_code("96385074", Symbology::Ean8, 3, 1).unwrap();
        let width = code.width as usize;
        let strip_of = |rows_with_code: std::ops::Range<usize>| {
            let mut pixels = vec![255u8; width * STRIP_ROWS];
            for (r, row) in pixels.chunks_exact_mut(width).enumerate() {
                if rows_with_code.contains(&r) {
                    row.copy_from_slice(&code.pixels);
                }
            }
            Strip { width, height: STRIP_ROWS, pixels }
        };
        let hints = hints(&LINEAR_FORMATS, false, false);
        let work = Work::default();
        let read = |strip: &Strip, work: &Work| match read_variant(&strip.pixels, strip, &hints, 20, &Vec::new, work) {
            Some(StripOutcome::Read(read)) => Some(read.text),
            _ => None,
        };
        // rxing reads the strip from its one printed row, but one scan line is not enough for a short code.
        let one = strip_of(5..6);
        assert_eq!(rxing_text(&one.pixels, width, STRIP_ROWS, &work).as_deref(), Some("96385074"));
        assert_eq!(read(&one, &work), None, "one row is not enough");
        assert_eq!(read(&strip_of(5..7), &work).as_deref(), Some("96385074"));
        assert!(work.spent() > 0);
    }

    #[test]
    fn a_short_code_with_bars_beside_it_is_part_of_a_longer_one() {
        let code = crate::vision::render_code("02766072", Symbology::UpcE, 3, 1).unwrap();
        let width = code.width as usize;
        let strip_of = |row: &[u8]| Strip { width, height: STRIP_ROWS, pixels: row.repeat(STRIP_ROWS) };
        let hints = hints(&LINEAR_FORMATS, false, false);
        let work = Work::default();
        let located = |strip: &Strip, work: &Work| {
            let (read, guards) =
                rxing_read_located(&strip.pixels, width, STRIP_ROWS, &hints, false, work).unwrap().unwrap();
            assert_eq!(read.text, "02766072");
            bars_beside(strip, read.symbology, guards.expect("rxing says where a 1D code is"))
        };
        let clean = strip_of(&code.pixels);
        assert!(!located(&clean, &work), "ten modules of quiet zone either side");
        // A bar four modules before the start (rendered at 3 pixels a module after 10 modules of quiet zone):
        // rxing, which asks for three there, still reads the UPC-E; a strip with a bar that close holds a
        // longer code.
        let mut crowded = code.pixels.clone();
        crowded[12..18].fill(0);
        let crowded = strip_of(&crowded);
        assert!(located(&crowded, &work));
        assert!(read_variant(&crowded.pixels, &crowded, &hints, 20, &Vec::new, &work).is_none());
        assert!(matches!(
            read_variant(&clean.pixels, &clean, &hints, 20, &Vec::new, &work),
            Some(StripOutcome::Read(_))
        ));
    }

    fn code(text: &str, symbology: Symbology) -> CodeRead {
        CodeRead { text: text.to_owned(), symbology }
    }

    #[test]
    fn contested_reads_go_to_the_code_most_scan_lines_read() {
        let wrong = code("6727434114144", Symbology::Ean13);
        let right = code("5727848114144", Symbology::Ean13);
        // Two lines for the true code, one for rxing's: a tie with rxing's own read, so nothing counts.
        assert_eq!(consensus(&wrong, [&right, &right, &wrong].into_iter()), None);
        // Three against two: not clearly ahead either.
        assert_eq!(consensus(&wrong, [&right, &right, &right, &wrong].into_iter()), None);
        assert_eq!(consensus(&wrong, [&right, &right, &right, &right].into_iter()), Some(right.clone()));
        // rxing's read wins when most lines agree with it.
        assert_eq!(consensus(&right, [&right, &right, &wrong].into_iter()), Some(right.clone()));
    }

    #[test]
    fn a_short_code_gives_way_to_the_long_code_it_is_part_of() {
        let upc_e = code("18659231", Symbology::UpcE);
        let ean_13 = code("1865923516835", Symbology::Ean13);
        // zxing-cpp #255: two reads of the EAN-13 outweigh three of the UPC-E inside it.
        assert_eq!(consensus(&upc_e, [&upc_e, &upc_e, &ean_13, &ean_13].into_iter()), Some(ean_13.clone()));
        // One stray EAN-13 read does not.
        assert_eq!(consensus(&upc_e, [&upc_e, &upc_e, &ean_13].into_iter()), Some(upc_e.clone()));
        // Another short code never wins against rxing's read: it did not pass the short-code checks.
        let other = code("18659237", Symbology::UpcE);
        assert_eq!(consensus(&upc_e, [&other, &other, &other].into_iter()), None);
    }

    #[test]
    fn a_composite_of_rows_reads_a_code_that_glare_washes_out_along_every_row() {
        let text = ean13();
        let code = crate::vision::render_code(&text, Symbology::Ean13, 3, 1).unwrap();
        let width = code.width as usize;
        let row: Vec<u8> = code.pixels.iter().map(|&p| 60 + p / 2).collect();
        // Glare clips the left half of the upper rows and the right half of the lower ones to white.
        let mut pixels = Vec::with_capacity(width * STRIP_ROWS);
        for r in 0..STRIP_ROWS {
            let washed = if r < STRIP_ROWS / 2 { 0..width / 2 } else { width / 2..width };
            pixels.extend(row.iter().enumerate().map(|(i, &p)| if washed.contains(&i) { 255 } else { p }));
        }
        let work = Work::default();
        assert_eq!(rxing_text(&pixels, width, STRIP_ROWS, &work), None, "every row has lost half the code");
        let strip = Strip { width, height: STRIP_ROWS, pixels };
        let composite = composite_rows(&strip.pixels, width, STRIP_ROWS, edges(&strip));
        assert_eq!(rxing_text(&composite, width, STRIP_ROWS, &work), Some(text));
    }

    use crate::synthetic::{Distortion, FrameSpec, render_frame};
    use crate::vision::analyse_frame;
    use checkout_storage::{Symbology, gtin_check_digit};

    fn scene(text: &str, symbology: Symbology, module: f32, distortion: Distortion) -> LumaFrame {
        render_frame(&scene_spec(text, symbology, module, distortion)).unwrap()
    }

    /// A VGA frame with the code right of centre.
    fn scene_spec(text: &str, symbology: Symbology, module: f32, distortion: Distortion) -> FrameSpec {
        FrameSpec {
            width: 640,
            height: 480,
            code: Some((text.to_owned(), symbology)),
            module_px: 1,
            centre_x_permille: 520,
            centre_y_permille: 480,
            background: 170,
            distortion: Distortion { scale: module, ..distortion },
            seed: 99,
        }
    }

    fn ean13() -> String {
        let body = "690123456789";
        format!("{body}{}", gtin_check_digit(body.as_bytes()))
    }

    /// The default pipeline with a safety time cap that a busy test machine cannot reach.
    fn patient() -> VisionConfig {
        VisionConfig { time_cap: Duration::from_secs(2), ..VisionConfig::default() }
    }

    fn reads(frame: &LumaFrame) -> Vec<String> {
        analyse_frame(frame, &patient()).unwrap().reads.into_iter().map(|r| r.text).collect()
    }

    #[test]
    fn a_barcode_held_close_to_the_camera_reads_though_its_spaces_split_it() {
        for (text, symbology, module, rotation_deg) in
            [(ean13(), Symbology::Ean13, 10.0, 3.0), ("96385074".to_owned(), Symbology::Ean8, 12.0, -8.0)]
        {
            let d = Distortion { rotation_deg, blur_sigma: 2.0, noise_sigma: 3.0, ..Distortion::default() };
            let spec = FrameSpec {
                width: 1280,
                height: 720,
                centre_x_permille: 500,
                centre_y_permille: 500,
                background: 150,
                seed: 5,
                ..scene_spec(&text, symbology, module, d)
            };
            let frame = render_frame(&spec).unwrap();
            let candidates = find_candidates(&cell_grid(&frame));
            // Its widest spaces are wider than a cell: the finder sees the code as several 1D candidates.
            assert!(candidates.iter().filter(|c| c.linear).count() > 2, "{}", symbology.name());
            assert_eq!(reads(&frame), vec![text], "{}", symbology.name());
        }
    }

    fn linear_strip(frame: &LumaFrame, candidate: &Candidate, deskew: bool, reach: f32) -> Option<Strip> {
        sample_strip(frame, candidate, &strip_axes(candidate, deskew), reach, None)
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

    #[test]
    fn a_label_sheared_in_perspective_is_read_along_its_slanting_edges() {
        // A Code 128 payment code whose bars stand upright while the label's long edges fall 12 degrees (a box
        // seen from one side). The fall along the code is longer than its bars: no scan line square to the
        // bars crosses the whole code.
        let text = "134567890123456789";
        let code = crate::vision::render_code(text, Symbology::Code128, 1, 1).unwrap();
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
        let ends = bar_ends(&frame, &found, &strip_axes(&found, true), &Work::default()).unwrap();
        assert!((ends.per_pixel + fall).abs() < 0.03, "slant {} for a fall of {fall}", ends.per_pixel);
        assert!((ends.bottom - ends.top - bar_height).abs() < 8.0, "bars from {} to {}", ends.top, ends.bottom);
        assert_eq!(reads(&frame), vec![text]);
    }

    /// The phone moved 8 pixels sideways while the shutter was open: each pixel is the mean of 9 in a row (the 4
    /// columns at either edge are left as they are).
    fn blurred_sideways(sharp: &LumaFrame) -> LumaFrame {
        let mut frame = sharp.clone();
        for y in 0..sharp.height {
            for x in 4..sharp.width - 4 {
                let sum: u32 = (x - 4..=x + 4).map(|x| u32::from(sharp.get(x, y))).sum();
                frame.set(x, y, (sum / 9) as u8);
            }
        }
        frame
    }

    #[test]
    fn a_qr_code_blurred_by_motion_is_tried_as_a_qr_code() {
        let text = "134567890123456789";
        let code = crate::vision::render_code(text, Symbology::QrCode, 5, 0).unwrap();
        let mut sharp = LumaFrame::new(640, 480, 150);
        crate::vision::paste(&mut sharp, &code, 220, 130);
        let frame = blurred_sideways(&sharp);
        let candidates = find_candidates(&cell_grid(&frame));
        assert!(candidates.first().is_some_and(|c| c.linear), "taken for a 1D code");
        assert_eq!(reads(&frame), vec![text.to_owned()]);
    }

    #[test]
    fn a_tilted_qr_code_blurred_by_motion_is_tried_as_a_qr_code() {
        let text = "134567890123456789";
        let d = Distortion { rotation_deg: 10.0, noise_sigma: 2.0, ..Distortion::default() };
        let frame = blurred_sideways(&scene(text, Symbology::QrCode, 5.0, d));
        let candidates = find_candidates(&cell_grid(&frame));
        let first = candidates.first().expect("a candidate");
        assert!(first.linear, "taken for a 1D code");
        // Turned, it fills less than half of its upright box.
        assert!(box_shape(&first.cells).1 < 0.5, "{:?}", box_shape(&first.cells));
        assert_eq!(reads(&frame), vec![text.to_owned()]);
    }

    #[test]
    fn ean13_tilted_30_degrees_decodes() {
        for rotation_deg in [30.0, -30.0, 210.0, 44.0] {
            let d = Distortion { rotation_deg, clutter: 6, noise_sigma: 3.0, ..Distortion::default() };
            let frame = scene(&ean13(), Symbology::Ean13, 2.5, d);
            assert_eq!(reads(&frame), vec![ean13()], "rotation {rotation_deg}");
        }
    }

    #[test]
    fn every_tilt_up_to_45_degrees_reads_where_plain_rxing_often_fails() {
        let mut plain = 0;
        for step in 0..=9 {
            let rotation_deg = step as f32 * 5.0;
            let d = Distortion { rotation_deg, noise_sigma: 4.0, blur_sigma: 0.5, clutter: 3, ..Distortion::default() };
            let frame = scene(&ean13(), Symbology::Ean13, 2.5, d);
            assert_eq!(reads(&frame), vec![ean13()], "rotation {rotation_deg}");
            plain += usize::from(!crate::vision::decode_frame_whole(&frame).unwrap().is_empty());
        }
        eprintln!("whole-frame rxing (TryHarder) read {plain} of 10 tilts");
        assert!(plain < 10);
    }

    #[test]
    fn rotated_qr_in_perspective_decodes() {
        let code = "284567890123456789";
        for rotation_deg in [37.0, 128.0, 260.0] {
            let d = Distortion { rotation_deg, perspective_x: 0.15, clutter: 6, ..Distortion::default() };
            let frame = scene(code, Symbology::QrCode, 4.0, d);
            assert_eq!(reads(&frame), vec![code.to_owned()], "rotation {rotation_deg}");
        }
    }

    #[test]
    fn code128_payment_code_tilted_decodes() {
        let code = "134567890123456789";
        let d = Distortion { rotation_deg: 25.0, perspective_y: 0.1, ..Distortion::default() };
        let frame = scene(code, Symbology::Code128, 2.0, d);
        assert_eq!(reads(&frame), vec![code.to_owned()]);
    }

    #[test]
    fn blurred_low_contrast_noisy_codes_decode() {
        let d = Distortion {
            rotation_deg: 12.0,
            blur_sigma: 0.9,
            contrast: 0.3,
            noise_sigma: 5.0,
            clutter: 4,
            ..Distortion::default()
        };
        let frame = scene(&ean13(), Symbology::Ean13, 2.5, d);
        assert_eq!(reads(&frame), vec![ean13()]);
        let code = "6212345678901234567";
        let frame = scene(code, Symbology::QrCode, 4.0, Distortion { rotation_deg: 70.0, ..d });
        assert_eq!(reads(&frame), vec![code.to_owned()]);
    }

    #[test]
    fn a_frame_with_clutter_and_no_code_gives_no_read() {
        for seed in 0..20 {
            let spec = FrameSpec {
                width: 640,
                height: 480,
                code: None,
                module_px: 1,
                centre_x_permille: 500,
                centre_y_permille: 500,
                background: 150,
                distortion: Distortion { clutter: 12, noise_sigma: 4.0, blur_sigma: 0.5, ..Distortion::default() },
                seed,
            };
            let frame = render_frame(&spec).unwrap();
            let analysis = analyse_frame(&frame, &patient()).unwrap();
            assert_eq!(analysis.reads, vec![], "seed {seed}");
        }
    }

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

    #[test]
    fn a_code_moving_across_its_bars_reads_once_the_blur_is_undone() {
        // Bars of 2.5 pixels a module, moving 2 modules (at 20° to the bars' normal) while the shutter is open:
        // each edge a ramp wider than a narrow bar, which fades.
        let d = Distortion {
            rotation_deg: 12.0,
            motion_px: 5.0,
            motion_deg: 32.0,
            noise_sigma: 3.0,
            contrast: 0.7,
            clutter: 4,
            ..Distortion::default()
        };
        let frame = scene(&ean13(), Symbology::Ean13, 2.5, d);
        assert_eq!(reads(&frame), vec![ean13()]);
        let without = analyse_frame(&frame, &VisionConfig { deblur: false, ..patient() }).unwrap();
        assert_eq!(without.reads, vec![], "read without undoing the blur");
        // Moving as far along its bars blurs nothing that matters.
        let along = Distortion { motion_deg: 102.0, ..d };
        let analysis =
            analyse_frame(&scene(&ean13(), Symbology::Ean13, 2.5, along), &VisionConfig { deblur: false, ..patient() });
        assert_eq!(analysis.unwrap().reads.into_iter().map(|r| r.text).collect::<Vec<_>>(), vec![ean13()]);
        // Moving too far: nothing reads, and the cashier is told why.
        let too_far = Distortion { motion_px: 8.75, ..d };
        let analysis = analyse_frame(&scene(&ean13(), Symbology::Ean13, 2.5, too_far), &patient()).unwrap();
        assert_eq!(analysis.reads, vec![]);
        assert_eq!(analysis.unreadable, Some(Unreadable::TooBlurred));
    }
}
