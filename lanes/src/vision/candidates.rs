//! Where codes may be in a frame, and at what angle: candidate regions found from edges, best first.
//!
//! 1. A structure tensor per 16x16 cell (gradients sampled on every other row) gives each cell an edge energy,
//!    a coherence (how much its edges share one direction) and that direction.
//! 2. Coherent, energetic cells are grouped by direction into 1D candidates; energetic cells of any direction
//!    into 2D (QR) candidates. A 2D group that does not look square is split into its cores (cells with a
//!    tenth of its strongest cells' energy, eroded by one cell and grown back: a QR code joined to clutter
//!    by a label's edge, a line or a touching box comes out on its own); a 2D group that a 1D candidate
//!    fills a third of goes after that 1D one (a barcode with print beside it). 1D candidates that look like
//!    fragments of one code (held close, cut by glare) are also joined into one.
//! 3. Each 1D candidate carries how its bars turn along it (`Bend`: perspective), fitted over its cells.
//!
//! What reading a candidate gave (`ReadAttempt`) is defined here too, for both readers and the pipeline.

use std::collections::HashSet;

use super::diagnose::Unreadable;
use super::frame::LumaFrame;
use super::rxing::CodeRead;

/// Side of a cell of the candidate finder, in pixels.
pub(super) const CELL: usize = 16;

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Tensor {
    xx: f32,
    yy: f32,
    xy: f32,
}

impl Tensor {
    fn add(&mut self, o: Tensor) {
        self.xx += o.xx;
        self.yy += o.yy;
        self.xy += o.xy;
    }

    pub(super) fn energy(self) -> f32 {
        self.xx + self.yy
    }

    /// Difference of the eigenvalues: the energy of edges that share one direction.
    pub(super) fn coherent_energy(self) -> f32 {
        ((self.xx - self.yy).powi(2) + 4.0 * self.xy * self.xy).sqrt()
    }

    /// Direction of the dominant gradient (across the bars), in radians in (-pi/2, pi/2].
    pub(super) fn angle(self) -> f32 {
        0.5 * (2.0 * self.xy).atan2(self.xx - self.yy)
    }
}

pub(super) struct CellGrid {
    cols: usize,
    rows: usize,
    /// Per cell, gradient products averaged over the cell's samples.
    cells: Vec<Tensor>,
}

pub(super) fn cell_grid(frame: &LumaFrame) -> CellGrid {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let cols = w / CELL;
    let rows = h / CELL;
    let mut cells = vec![Tensor::default(); cols * rows];
    if cols == 0 || rows == 0 {
        return CellGrid { cols, rows, cells };
    }
    let p = &frame.pixels;
    let mut acc = vec![(0i64, 0i64, 0i64); cols];
    for cy in 0..rows {
        acc.iter_mut().for_each(|a| *a = (0, 0, 0));
        let y_start = (cy * CELL).max(1);
        let y_end = ((cy + 1) * CELL).min(h - 1);
        for y in (y_start..y_end).step_by(2) {
            let row = y * w;
            for (cx, a) in acc.iter_mut().enumerate() {
                let x_start = (cx * CELL).max(1);
                let x_end = ((cx + 1) * CELL).min(w - 1);
                let (mut sxx, mut syy, mut sxy) = (0i32, 0i32, 0i32);
                for x in x_start..x_end {
                    let i = row + x;
                    let gx = i32::from(p[i + 1]) - i32::from(p[i - 1]);
                    let gy = i32::from(p[i + w]) - i32::from(p[i - w]);
                    sxx += gx * gx;
                    syy += gy * gy;
                    sxy += gx * gy;
                }
                a.0 += i64::from(sxx);
                a.1 += i64::from(syy);
                a.2 += i64::from(sxy);
            }
        }
        let samples = (CELL * CELL / 2) as f32;
        for (cx, a) in acc.iter().enumerate() {
            cells[cy * cols + cx] =
                Tensor { xx: a.0 as f32 / samples, yy: a.1 as f32 / samples, xy: a.2 as f32 / samples };
        }
    }
    CellGrid { cols, rows, cells }
}

/// A group of neighbouring cells that may hold a code.
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    pub(super) linear: bool,
    pub(super) cells: Vec<(usize, usize)>,
    pub(super) tensor: Tensor,
    pub(super) score: f32,
    /// A part of it was tried already and covers most of it: its strip is read as it is, without the retries.
    pub(super) plain_only: bool,
    /// How the bars' direction turns along the scan direction (perspective: the bars of a code seen at a
    /// slant converge), fitted over its cells' own directions.
    pub(super) bend: Bend,
}

/// The bars' direction along a 1D candidate, against its mean direction: `at_centre + per_pixel * s` radians,
/// `s` pixels along the scan direction from the mean of its cells' centres.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Bend {
    pub(super) at_centre: f32,
    pub(super) per_pixel: f32,
}

/// What reading a candidate gave.
pub(super) enum ReadAttempt {
    /// A code.
    Read(CodeRead),
    /// No code, and why when the pixels tell.
    Failed(Option<Unreadable>),
    /// rxing panicked on it (it was skipped).
    Panicked,
}

/// Smallest mean squared gradient (per sample) of a cell worth looking at.
const MIN_ENERGY: f32 = 80.0;

/// Coherence (coherent energy / energy) above which a cell is a 1D candidate.
const MIN_COHERENCE: f32 = 0.55;

/// Fewest cells of a 1D candidate.
const MIN_LINEAR_CELLS: usize = 6;

/// Largest difference in direction between neighbouring cells of one 1D candidate.
const MAX_ANGLE_STEP: f32 = 0.3;

fn angle_diff(a: f32, b: f32) -> f32 {
    let d = (a - b).abs() % std::f32::consts::PI;
    d.min(std::f32::consts::PI - d)
}

/// The signed difference `a - b` of two directions (lines, not arrows), in (-pi/2, pi/2].
fn direction_difference(a: f32, b: f32) -> f32 {
    use std::f32::consts::{FRAC_PI_2, PI};
    let d = (a - b).rem_euclid(PI);
    if d > FRAC_PI_2 { d - PI } else { d }
}

pub(super) fn find_candidates(grid: &CellGrid) -> Vec<Candidate> {
    let n = grid.cells.len();
    if n == 0 {
        return Vec::new();
    }
    let mut energies: Vec<f32> = grid.cells.iter().map(|t| t.energy()).collect();
    let median = {
        let mid = n / 2;
        *energies.select_nth_unstable_by(mid, f32::total_cmp).1
    };
    let threshold = MIN_ENERGY.max(2.0 * median);
    let strong: Vec<bool> = grid.cells.iter().map(|t| t.energy() >= threshold).collect();
    let coherent: Vec<bool> =
        grid.cells.iter().zip(&strong).map(|(t, &s)| s && t.coherent_energy() >= MIN_COHERENCE * t.energy()).collect();

    let mut out = Vec::new();
    // 1D: coherent cells joined with neighbours of a similar direction.
    let mut seen = vec![false; n];
    for start in 0..n {
        if !coherent[start] || seen[start] {
            continue;
        }
        let cells = flood(grid, start, &mut seen, |from, to| {
            coherent[to] && angle_diff(grid.cells[from].angle(), grid.cells[to].angle()) < MAX_ANGLE_STEP
        });
        // The smallest code read (an EAN-8 at 1.5 pixels a module) covers some 20 cells; stripes cover fewer.
        if cells.len() >= MIN_LINEAR_CELLS {
            out.push(candidate(grid, cells, true));
        }
    }
    // Which 1D candidate each cell belongs to.
    let mut linear_of = vec![None; n];
    for (k, c) in out.iter().enumerate() {
        for &(cx, cy) in &c.cells {
            linear_of[cy * grid.cols + cx] = Some(k);
        }
    }
    // 2D: every strong cell, in groups of neighbours; mostly coherent groups are 1D codes, already taken.
    let mut seen = vec![false; n];
    let mut squares = Vec::new();
    let mut groups = Vec::new();
    for start in 0..n {
        if !strong[start] || seen[start] {
            continue;
        }
        let cells = flood(grid, start, &mut seen, |_, to| strong[to]);
        if cells.len() >= 4 {
            groups.push((cells, 0));
        }
    }
    while let Some((cells, splits)) = groups.pop() {
        if !looks_square(&cells, splits > 0) {
            if splits < MAX_SPLITS {
                groups.extend(group_cores(grid, &cells).into_iter().map(|core| (core, splits + 1)));
            }
        } else {
            let mut c = candidate(grid, cells, false);
            if c.tensor.coherent_energy() < 0.6 * c.tensor.energy() {
                // A group a 1D candidate fills much of is a 1D code with clutter or glare around it: its
                // strip is tried first (the QR reader's attempts on a barcode's region were among the slowest
                // frames).
                if let Some(linear) = largest_overlap(&c.cells, &linear_of, grid.cols, out.len())
                    .filter(|&(_, shared)| shared * 10 >= c.cells.len() * OVERLAP_TENTHS)
                    .map(|(k, _)| &out[k])
                {
                    c.score = c.score.min(0.99 * linear.score);
                }
                squares.push(c);
            }
        }
    }
    let fragments_joined = join_fragments(grid, &out);
    out.extend(squares);
    out.extend(fragments_joined);
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out
}

/// Largest angle between two 1D candidates taken for fragments of one code, in radians (about 11 degrees: the
/// bars of a code in strong perspective turn that much from one end to the other).
const FRAGMENT_ANGLE: f32 = 0.2;

/// Largest gap between two fragments of one code along its scan direction, between their nearest cell
/// centres, in pixels: a 4-module space at 11 pixels a module (an EAN-13 as wide as a 720p frame).
const FRAGMENT_GAP: f32 = 64.0;

/// A 1D candidate's cell centres as (along its scan direction, along its bars) ranges, in the frame of `angle`.
fn extent(cells: &[(usize, usize)], angle: f32) -> ((f32, f32), (f32, f32)) {
    let (ux, uy) = (angle.cos(), angle.sin());
    let (mut along, mut across) = ((f32::MAX, f32::MIN), (f32::MAX, f32::MIN));
    for &(cx, cy) in cells {
        let (x, y) = ((cx * CELL) as f32, (cy * CELL) as f32);
        let (s, t) = (x * ux + y * uy, y * ux - x * uy);
        along = (along.0.min(s), along.1.max(s));
        across = (across.0.min(t), across.1.max(t));
    }
    (along, across)
}

/// Whether two 1D candidates look like parts of one code: the same direction, side by side along it with a
/// gap no wider than a code's widest space, and their bars overlapping for most of their length.
fn are_fragments(a: &Candidate, b: &Candidate) -> bool {
    let angle = a.tensor.angle();
    if angle_diff(angle, b.tensor.angle()) >= FRAGMENT_ANGLE {
        return false;
    }
    let (a_along, a_across) = extent(&a.cells, angle);
    let (b_along, b_across) = extent(&b.cells, angle);
    let gap = (b_along.0 - a_along.1).max(a_along.0 - b_along.1);
    let half = CELL as f32 / 2.0;
    let shared = a_across.1.min(b_across.1) - a_across.0.max(b_across.0) + CELL as f32;
    let shorter = (a_across.1 - a_across.0).min(b_across.1 - b_across.0) + CELL as f32;
    gap > 0.0 && gap - half <= FRAGMENT_GAP && shared >= 0.5 * shorter
}

/// A part with this many tenths of a joined candidate's cells has had the retries that could read it.
const LARGEST_PART_TENTHS: usize = 7;

/// 1D candidates made of fragments of one code, each as one more candidate. A code with modules wider than a
/// few pixels (held close to the camera) has spaces wider than a cell, and glare can cut a code in two: the
/// finder sees the parts apart, and none of them alone holds the whole code.
fn join_fragments(grid: &CellGrid, candidates: &[Candidate]) -> Vec<Candidate> {
    let linear: Vec<&Candidate> = candidates.iter().filter(|c| c.linear).collect();
    // Union-find over the 1D candidates.
    let mut parent: Vec<usize> = (0..linear.len()).collect();
    fn root(parent: &mut [usize], mut k: usize) -> usize {
        while parent[k] != k {
            parent[k] = parent[parent[k]];
            k = parent[k];
        }
        k
    }
    for i in 0..linear.len() {
        for j in i + 1..linear.len() {
            if are_fragments(linear[i], linear[j]) {
                let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
                parent[ri] = rj;
            }
        }
    }
    let mut codes: Vec<Vec<usize>> = vec![Vec::new(); linear.len()];
    for k in 0..linear.len() {
        let r = root(&mut parent, k);
        codes[r].push(k);
    }
    codes
        .into_iter()
        .filter(|parts| parts.len() > 1)
        .map(|parts| {
            let mut whole =
                candidate(grid, parts.iter().flat_map(|&k| linear[k].cells.iter().copied()).collect(), true);
            // Tried right after its most promising part: a code with a stray mark beside it reads from its own
            // strip. When one part holds most of the cells, that part's retries have covered the rest: the
            // joined strip is read once, as it is (measured: a frame's slowest attempts were such joins).
            let best = parts.iter().map(|&k| linear[k].score).fold(0.0, f32::max);
            let largest = parts.iter().map(|&k| linear[k].cells.len()).max().unwrap_or(0);
            whole.score = 0.99 * best;
            whole.plain_only = largest * 10 >= whole.cells.len() * LARGEST_PART_TENTHS;
            whole
        })
        .collect()
}

/// Whether a group of cells spans about as many columns as rows (at most 3 to 2 either way) and fills at least
/// [`SQUARE_FILL`] of that box: a code's shape, not a long diagonal stripe whose box is the whole frame.
pub(super) fn fills_a_square(cells: &[(usize, usize)]) -> bool {
    let (aspect, fill) = box_shape(cells);
    aspect <= 1.5 && fill >= SQUARE_FILL
}

/// Share of its box that a QR code's cells fill, at least. A square turned by 10 to 45 degrees fills 75 to 50%
/// of its upright box, and the cells along its sides, half on the code, are not all energetic enough to count
/// (a QR code turned a little and blurred by motion fills less than half).
const SQUARE_FILL: f32 = 0.4;

/// Whether a 2D candidate covers a good part ([`OVERLAP_TENTHS`]) of the 1D candidate `linear`.
pub(super) fn covered_by_a_square(candidates: &[Candidate], linear: &Candidate) -> bool {
    let cells: HashSet<&(usize, usize)> = linear.cells.iter().collect();
    candidates.iter().filter(|c| !c.linear).any(|square| {
        let shared = square.cells.iter().filter(|cell| cells.contains(cell)).count();
        shared * 10 >= linear.cells.len() * OVERLAP_TENTHS
    })
}

/// Times a group of strong cells that does not look square is split into its cores.
const MAX_SPLITS: usize = 2;

/// A core's cells have at least this share of the energy of the group's most energetic tenth.
const CORE_SHARE: f32 = 0.1;

/// The cores of a group of strong cells: its cells with at least [`CORE_SHARE`] of the energy of its most
/// energetic tenth and all eight neighbours in the group, in groups of neighbours, each grown back by one ring
/// of the group's cells. A QR code joined to clutter by a faint edge (a label's) or a thin one (a line, a
/// touching box's corner) comes out on its own.
fn group_cores(grid: &CellGrid, cells: &[(usize, usize)]) -> Vec<Vec<(usize, usize)>> {
    let (cols, rows) = (grid.cols, grid.rows);
    let index = |&(cx, cy): &(usize, usize)| cy * cols + cx;
    let mut energies: Vec<f32> = cells.iter().map(|c| grid.cells[index(c)].energy()).collect();
    let Some(top) = energies.len().checked_sub(1).map(|last| last.min(energies.len() * 9 / 10)) else {
        return Vec::new();
    };
    let floor = CORE_SHARE * *energies.select_nth_unstable_by(top, f32::total_cmp).1;
    let mut in_group = vec![false; grid.cells.len()];
    for c in cells {
        in_group[index(c)] = true;
    }
    let neighbours = |(cx, cy): (usize, usize)| {
        let xs = cx.saturating_sub(1)..=(cx + 1).min(cols - 1);
        xs.flat_map(move |x| (cy.saturating_sub(1)..=(cy + 1).min(rows - 1)).map(move |y| (x, y)))
            .filter(move |&n| n != (cx, cy))
    };
    let mut core = vec![false; grid.cells.len()];
    for &c in cells {
        let inner = c.0 > 0 && c.1 > 0 && c.0 + 1 < cols && c.1 + 1 < rows;
        core[index(&c)] = inner
            && grid.cells[index(&c)].energy() >= floor
            && neighbours(c).all(|n| in_group[index(&n)] && grid.cells[index(&n)].energy() >= floor);
    }
    let mut seen = vec![false; grid.cells.len()];
    let mut cores = Vec::new();
    for c in cells {
        let i = index(c);
        if !core[i] || seen[i] {
            continue;
        }
        let mut group = flood(grid, i, &mut seen, |_, to| core[to]);
        let mut grown = vec![false; grid.cells.len()];
        for &c in &group {
            grown[index(&c)] = true;
        }
        let ring: Vec<(usize, usize)> = group
            .iter()
            .flat_map(|&c| neighbours(c))
            .filter(|n| in_group[index(n)] && !std::mem::replace(&mut grown[index(n)], true))
            .collect();
        group.extend(ring);
        if group.len() >= 4 && group.len() < cells.len() {
            cores.push(group);
        }
    }
    cores
}

/// Share, in tenths of a 2D candidate's cells, that one 1D candidate must hold for the 1D one to go first.
const OVERLAP_TENTHS: usize = 3;

/// The 1D candidate (of `linears`) holding most of `cells`, and how many it holds.
fn largest_overlap(
    cells: &[(usize, usize)],
    linear_of: &[Option<usize>],
    cols: usize,
    linears: usize,
) -> Option<(usize, usize)> {
    let mut shared = vec![0usize; linears];
    for &(cx, cy) in cells {
        if let Some(k) = linear_of[cy * cols + cx] {
            shared[k] += 1;
        }
    }
    shared.into_iter().enumerate().filter(|&(_, n)| n > 0).max_by_key(|&(_, n)| n)
}

/// Whether a group of cells could be a QR code: about as wide as tall, and mostly filled (a box's outline or
/// a line of print is not). A core split out of a larger group must be squarer and fuller (it is cut from
/// clutter).
fn looks_square(cells: &[(usize, usize)], split: bool) -> bool {
    let (aspect, fill) = box_shape(cells);
    let (max_aspect, min_fill) = if split { (2.0, 0.5) } else { (4.0, 0.3) };
    aspect <= max_aspect && fill >= min_fill
}

/// The bounding box of a group of cells: its longer side over its shorter, and the share of it the cells fill.
pub(super) fn box_shape(cells: &[(usize, usize)]) -> (f32, f32) {
    let (mut x0, mut x1, mut y0, mut y1) = (usize::MAX, 0, usize::MAX, 0);
    for &(x, y) in cells {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let (w, h) = ((x1.saturating_sub(x0) + 1) as f32, (y1.saturating_sub(y0) + 1) as f32);
    (w.max(h) / w.min(h), cells.len() as f32 / (w * h))
}

fn flood(
    grid: &CellGrid,
    start: usize,
    seen: &mut [bool],
    joins: impl Fn(usize, usize) -> bool,
) -> Vec<(usize, usize)> {
    let mut stack = vec![start];
    seen[start] = true;
    let mut cells = Vec::new();
    while let Some(i) = stack.pop() {
        let (cx, cy) = (i % grid.cols, i / grid.cols);
        cells.push((cx, cy));
        let mut visit = |j: usize| {
            if !seen[j] && joins(i, j) {
                seen[j] = true;
                stack.push(j);
            }
        };
        if cx > 0 {
            visit(i - 1);
        }
        if cx + 1 < grid.cols {
            visit(i + 1);
        }
        if cy > 0 {
            visit(i - grid.cols);
        }
        if cy + 1 < grid.rows {
            visit(i + grid.cols);
        }
    }
    cells
}

fn candidate(grid: &CellGrid, cells: Vec<(usize, usize)>, linear: bool) -> Candidate {
    let mut tensor = Tensor::default();
    for &(cx, cy) in &cells {
        tensor.add(grid.cells[cy * grid.cols + cx]);
    }
    let score = if linear { tensor.coherent_energy() } else { tensor.energy() } * (cells.len() as f32).sqrt();
    let bend = if linear { bend_of(grid, &cells, tensor.angle()) } else { Bend::default() };
    Candidate { linear, cells, tensor, score, plain_only: false, bend }
}

/// Most a code's bars may turn from one end of it to the other, in radians (a fit beyond is noise).
const MAX_BEND: f32 = 0.35;

/// Least turn of the bars from one end of a code to the other, in radians (3 degrees), that the strip
/// follows: below it the fit is within its own noise. (On `bench decode`, following every fitted turn read
/// fewer frames more than following it from this turn on, and one of them wrong.)
const MIN_BEND: f32 = 0.05;

/// How the bars' direction turns along the scan direction `theta`: a weighted least-squares line through each
/// cell's direction (its difference from `theta`) against the cell's place along the scan direction, each
/// cell weighted by its coherent energy.
fn bend_of(grid: &CellGrid, cells: &[(usize, usize)], theta: f32) -> Bend {
    if cells.len() < 3 {
        return Bend::default();
    }
    let (ux, uy) = (theta.cos(), theta.sin());
    let along: Vec<f32> = cells.iter().map(|&(cx, cy)| (cx * CELL) as f32 * ux + (cy * CELL) as f32 * uy).collect();
    let n = cells.len() as f32;
    let mean = along.iter().fold(0.0, |a, s| a + s / n);
    let points: Vec<(f32, f32, f32)> = cells
        .iter()
        .zip(&along)
        .map(|(&(cx, cy), s)| {
            let tensor = grid.cells[cy * grid.cols + cx];
            (s - mean, direction_difference(tensor.angle(), theta), tensor.coherent_energy())
        })
        .collect();
    let total: f32 = points.iter().map(|p| p.2).sum();
    if total <= 0.0 {
        return Bend::default();
    }
    let (ms, md) = points.iter().fold((0.0, 0.0), |(a, b), p| (a + p.0 * p.2 / total, b + p.1 * p.2 / total));
    let (sd, ss) =
        points.iter().fold((0.0, 0.0), |(a, b), p| (a + p.2 * (p.0 - ms) * (p.1 - md), b + p.2 * (p.0 - ms).powi(2)));
    if ss <= 1e-3 {
        return Bend::default();
    }
    let (lo, hi) = points.iter().fold((f32::MAX, f32::MIN), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let span = (hi - lo).max(CELL as f32);
    let per_pixel = (sd / ss).clamp(-MAX_BEND / span, MAX_BEND / span);
    if per_pixel.abs() * span < MIN_BEND {
        return Bend::default();
    }
    Bend { at_centre: (md - per_pixel * ms).clamp(-MAX_BEND, MAX_BEND), per_pixel }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angle_difference_wraps_at_half_a_turn() {
        assert!(angle_diff(0.05, std::f32::consts::PI - 0.05) < 0.11);
        assert!((angle_diff(0.0, std::f32::consts::FRAC_PI_2) - std::f32::consts::FRAC_PI_2).abs() < 1e-5);
    }

    #[test]
    fn a_signed_direction_difference_wraps_at_half_a_turn() {
        use std::f32::consts::PI;
        assert!((direction_difference(0.05, PI - 0.05) - 0.1).abs() < 1e-5);
        assert!((direction_difference(PI - 0.05, 0.05) + 0.1).abs() < 1e-5);
        assert!((direction_difference(-1.4, 1.4) - (PI - 2.8)).abs() < 1e-5);
        assert!((direction_difference(0.3, 0.1) - 0.2).abs() < 1e-5);
    }

    /// Dark vertical bars, 3 pixels wide, over x 100..220 and y 80..160.
    fn draw_bars(frame: &mut LumaFrame) {
        for y in 80..160 {
            for x in (100..220).filter(|x| (x / 3) % 2 == 0) {
                frame.set(x, y, 20);
            }
        }
    }

    #[test]
    fn vertical_bars_make_one_coherent_candidate_across_x() {
        let mut frame = LumaFrame::new(320, 240, 200);
        draw_bars(&mut frame);
        let candidates = find_candidates(&cell_grid(&frame));
        let first = candidates.first().expect("a candidate");
        assert!(first.linear);
        assert!(angle_diff(first.tensor.angle(), 0.0) < 0.05, "{}", first.tensor.angle());
    }

    #[test]
    fn a_barcode_with_print_beside_it_is_tried_as_a_barcode_first() {
        let mut frame = LumaFrame::new(480, 240, 200);
        draw_bars(&mut frame);
        // Print (a checkerboard) right beside the bars: one group of strong cells holds both.
        for y in 80..160 {
            for x in 220..360 {
                if (x / 8 + y / 8) % 2 == 0 {
                    frame.set(x, y, 20);
                }
            }
        }
        let candidates = find_candidates(&cell_grid(&frame));
        assert!(candidates.iter().any(|c| !c.linear && c.cells.len() > 40), "the bars and print as one 2D group");
        assert!(candidates[0].linear, "the bars' strip goes first");
    }

    #[test]
    fn flat_frame_has_no_candidate() {
        assert!(find_candidates(&cell_grid(&LumaFrame::new(640, 480, 128))).is_empty());
        assert!(find_candidates(&cell_grid(&LumaFrame::new(8, 8, 128))).is_empty());
    }
}
