//! Image filters on grey buffers (row-major `u8`, or `f32` profiles), the tools strips and crops are prepared
//! with: sampling between pixels, percentiles and stretches, smoothing, sharpening, local normalisation,
//! upscaling, box means.

/// The grey value at (x, y) of a `w` x `h` buffer, interpolated between its four nearest pixels (clamped to
/// the edges). `w` and `h` must be at least 1.
pub(super) fn bilinear_in(p: &[u8], w: usize, h: usize, x: f32, y: f32) -> f32 {
    let xf = x.clamp(0.0, (w - 1) as f32);
    let yf = y.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (xf as usize, yf as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (xf - x0 as f32, yf - y0 as f32);
    let top = f32::from(p[y0 * w + x0]) * (1.0 - fx) + f32::from(p[y0 * w + x1]) * fx;
    let bottom = f32::from(p[y1 * w + x0]) * (1.0 - fx) + f32::from(p[y1 * w + x1]) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// Percentiles (2nd, 98th) of a grey buffer.
pub(super) fn percentiles(pixels: &[u8]) -> (u8, u8) {
    let mut histogram = [0usize; 256];
    for &p in pixels {
        histogram[p as usize] += 1;
    }
    let n = pixels.len();
    let (lo_count, hi_count) = (n / 50, n - n / 50);
    let (mut lo, mut hi, mut seen) = (0u8, 255u8, 0usize);
    let mut lo_set = false;
    for (v, &c) in histogram.iter().enumerate() {
        seen += c;
        if !lo_set && seen > lo_count {
            lo = v as u8;
            lo_set = true;
        }
        if seen >= hi_count {
            hi = v as u8;
            break;
        }
    }
    (lo, hi)
}

pub(super) fn stretch(pixels: &mut [u8]) {
    let (lo, hi) = percentiles(pixels);
    if hi <= lo.saturating_add(4) {
        return;
    }
    let (lo, range) = (f32::from(lo), f32::from(hi - lo));
    for p in pixels {
        *p = ((f32::from(*p) - lo) * 255.0 / range).clamp(0.0, 255.0) as u8;
    }
}

/// Unsharp mask along each `width`-sample row (a blurred edge gets steeper).
pub(super) fn sharpen(pixels: &[u8], width: usize) -> Vec<u8> {
    let mut out = pixels.to_vec();
    for (row_in, row_out) in pixels.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        for i in 3..width.saturating_sub(3) {
            let smooth = (i32::from(row_in[i - 3])
                + i32::from(row_in[i - 2])
                + i32::from(row_in[i - 1])
                + i32::from(row_in[i])
                + i32::from(row_in[i + 1])
                + i32::from(row_in[i + 2])
                + i32::from(row_in[i + 3]))
                / 7;
            let v = i32::from(row_in[i]);
            row_out[i] = (v + 2 * (v - smooth)).clamp(0, 255) as u8;
        }
    }
    out
}

/// Each row replaced by the mean of the rows within `radius` of it: noise falls, edges stay (the strip's rows
/// run across the bars).
pub(super) fn smooth_across_rows(pixels: &[u8], w: usize, h: usize, radius: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(w * h);
    for r in 0..h {
        let (a, b) = (r.saturating_sub(radius), (r + radius + 1).min(h));
        for i in 0..w {
            let sum: u32 = (a..b).map(|k| u32::from(pixels[k * w + i])).sum();
            out.push((sum / (b - a) as u32) as u8);
        }
    }
    out
}

/// Subtracts a moving average along each `width`-sample row (removes glare and uneven light).
pub(super) fn normalise_locally(pixels: &[u8], width: usize) -> Vec<u8> {
    let radius = 24usize;
    let mut out = pixels.to_vec();
    for (row_in, row_out) in pixels.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        let mut prefix = vec![0i64; width + 1];
        for (i, &p) in row_in.iter().enumerate() {
            prefix[i + 1] = prefix[i] + i64::from(p);
        }
        for (i, o) in row_out.iter_mut().enumerate() {
            let (a, b) = (i.saturating_sub(radius), (i + radius + 1).min(width));
            let mean = (prefix[b] - prefix[a]) / (b - a) as i64;
            *o = (128 + 2 * (i64::from(row_in[i]) - mean)).clamp(0, 255) as u8;
        }
    }
    out
}

/// Stretches each `width`-sample row between its local darkest and lightest values (a window of a few bars
/// either side, for a strip showing `edge_count` bar edges): a glare ramp or uneven light across the code no
/// longer moves the threshold, so one threshold fits the row.
pub(super) fn normalise_envelope(pixels: &[u8], width: usize, edge_count: usize) -> Vec<u8> {
    let (stretched, _) = stretched_between_local_extremes(pixels, width, edge_count);
    stretched.into_iter().map(|v| (128.0 + v).clamp(0.0, 255.0) as u8).collect()
}

/// Below this spread (grey levels) a window is flat (a quiet zone, the label): not stretched into bars.
const FLAT_SPREAD: f32 = 16.0;

/// Each sample of each row against its row's local extremes: its offset from their middle, scaled so that
/// the extremes are 255 apart, and the spread between them (at least [`FLAT_SPREAD`]).
fn stretched_between_local_extremes(pixels: &[u8], width: usize, edge_count: usize) -> (Vec<f32>, Vec<f32>) {
    // Some three bars and spaces either side: the window always holds a bar and a space.
    let radius = (3 * width / (edge_count + 1)).clamp(4, 64);
    let mut stretched = Vec::with_capacity(pixels.len());
    let mut spreads = Vec::with_capacity(pixels.len());
    for row in pixels.chunks_exact(width) {
        let values: Vec<f32> = row.iter().map(|&p| f32::from(p)).collect();
        let (lo, hi) = local_extremes(&values, radius);
        for i in 0..width {
            let spread = (hi[i] - lo[i]).max(FLAT_SPREAD);
            let mid = (hi[i] + lo[i]) / 2.0;
            stretched.push((values[i] - mid) * 255.0 / spread);
            spreads.push(spread);
        }
    }
    (stretched, spreads)
}

/// Rows within this many of a row make its composite (see [`composite_rows`]).
const COMPOSITE_REACH: usize = 3;

/// Power of a row's local contrast that weighs it in a composite: high, so that the best-kept row dominates.
const COMPOSITE_POWER: i32 = 8;

/// Each row stretched between its local extremes (like [`normalise_envelope`]), then, at each position, the
/// rows within [`COMPOSITE_REACH`] averaged with weights that grow steeply with their local contrast: under
/// glare a bar keeps its contrast only along part of its length, and a scan line made of the best-kept parts
/// reads where every plain one crosses washed-out bars.
pub(super) fn composite_rows(pixels: &[u8], width: usize, height: usize, edge_count: usize) -> Vec<u8> {
    let (stretched, spreads) = stretched_between_local_extremes(pixels, width, edge_count);
    let stretched: Vec<f32> = stretched.into_iter().map(|v| v.clamp(-128.0, 127.0)).collect();
    // Relative to the flat spread, so that the power stays within f32.
    let weights: Vec<f32> = spreads.into_iter().map(|spread| (spread / FLAT_SPREAD).powi(COMPOSITE_POWER)).collect();
    let mut out = Vec::with_capacity(pixels.len());
    for r in 0..height {
        let rows = r.saturating_sub(COMPOSITE_REACH)..(r + COMPOSITE_REACH + 1).min(height);
        for i in 0..width {
            let (sum, total) = rows.clone().fold((0.0f32, 0.0f32), |(sum, total), q| {
                let k = q * width + i;
                (sum + stretched[k] * weights[k], total + weights[k])
            });
            out.push((128.0 + sum / total.max(f32::MIN_POSITIVE)).clamp(0.0, 255.0) as u8);
        }
    }
    out
}

/// The darkest and lightest of `values` (lightly smoothed, 1-2-1) within `radius` either side of each position,
/// each then averaged over `radius / 2` either side: the envelope a local threshold sits in the middle of.
fn local_extremes(values: &[f32], radius: usize) -> (Vec<f32>, Vec<f32>) {
    let n = values.len();
    let smooth = smooth_121(values);
    let (mut lo, mut hi) = (vec![0.0; n], vec![0.0; n]);
    sliding_extreme(&smooth, radius, &mut lo, |a, b| a <= b);
    sliding_extreme(&smooth, radius, &mut hi, |a, b| a >= b);
    (box_smooth(&lo, radius / 2), box_smooth(&hi, radius / 2))
}

/// The extreme (by `keeps`: `a` wins over `b`) of `values` within `radius` either side of each position, in one
/// pass (a monotonic queue of candidates).
fn sliding_extreme(values: &[f32], radius: usize, out: &mut [f32], keeps: impl Fn(f32, f32) -> bool) {
    let n = values.len();
    let mut queue: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    let mut next = 0;
    for (i, o) in out.iter_mut().enumerate().take(n) {
        // Take in everything up to i + radius; a new value retires the ones it beats.
        while next < n && next <= i + radius {
            while queue.back().is_some_and(|&b| keeps(values[next], values[b])) {
                queue.pop_back();
            }
            queue.push_back(next);
            next += 1;
        }
        while queue.front().is_some_and(|&f| f + radius < i) {
            queue.pop_front();
        }
        *o = queue.front().map_or(values[i], |&f| values[f]);
    }
}

/// `values` lightly smoothed: each the mean of itself (twice) and its two neighbours (the ends repeated).
pub(super) fn smooth_121(values: &[f32]) -> Vec<f32> {
    let n = values.len();
    (0..n).map(|i| (values[i.saturating_sub(1)] + 2.0 * values[i] + values[(i + 1).min(n - 1)]) / 4.0).collect()
}

/// Moving average of `radius` either side.
pub(super) fn box_smooth(values: &[f32], radius: usize) -> Vec<f32> {
    let mut prefix = vec![0f64; values.len() + 1];
    for (i, &v) in values.iter().enumerate() {
        prefix[i + 1] = prefix[i] + f64::from(v);
    }
    (0..values.len())
        .map(|i| {
            let (a, b) = (i.saturating_sub(radius), (i + radius + 1).min(values.len()));
            ((prefix[b] - prefix[a]) / (b - a) as f64) as f32
        })
        .collect()
}

/// Box means over a grey crop, from its integral image.
pub(super) struct Integral {
    w: usize,
    h: usize,
    pixels: Vec<u8>,
    sums: Vec<u32>,
}

impl Integral {
    pub(super) fn new(pixels: &[u8], w: usize, h: usize) -> Integral {
        let mut sums = vec![0u32; (w + 1) * (h + 1)];
        for y in 0..h {
            let mut row = 0u32;
            for x in 0..w {
                row += u32::from(pixels[y * w + x]);
                sums[(y + 1) * (w + 1) + x + 1] = sums[y * (w + 1) + x + 1] + row;
            }
        }
        Integral { w, h, pixels: pixels.to_vec(), sums }
    }

    /// Sum of the pixels in columns `x0..x1` of rows `y0..y1`.
    pub(super) fn sum(&self, x0: usize, y0: usize, x1: usize, y1: usize) -> u32 {
        let (s, w) = (&self.sums, self.w + 1);
        s[y1 * w + x1] + s[y0 * w + x0] - s[y0 * w + x1] - s[y1 * w + x0]
    }

    /// Mean of the square of `r` pixels either side of (x, y), clipped to the crop.
    fn mean(&self, x: usize, y: usize, r: usize) -> f32 {
        let (x0, y0) = (x.saturating_sub(r), y.saturating_sub(r));
        let (x1, y1) = ((x + r + 1).min(self.w), (y + r + 1).min(self.h));
        self.sum(x0, y0, x1, y1) as f32 / ((x1 - x0) * (y1 - y0)) as f32
    }

    fn map(&self, f: impl Fn(usize, usize, f32) -> f32) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.w * self.h);
        for y in 0..self.h {
            for x in 0..self.w {
                out.push(f(x, y, f32::from(self.pixels[y * self.w + x])).clamp(0.0, 255.0) as u8);
            }
        }
        out
    }

    /// A 3x3 mean (less noise) sharpened against a 7x7 mean: v + 1.5 (v - wide).
    pub(super) fn unsharp(&self) -> Vec<u8> {
        self.map(|x, y, _| {
            let v = self.mean(x, y, 1);
            v + 1.5 * (v - self.mean(x, y, 3))
        })
    }

    /// Each pixel against the mean of `radius` either side, doubled around mid grey: a reflection's slope and
    /// uneven light are taken out.
    pub(super) fn flattened(&self, radius: usize) -> Vec<u8> {
        let radius = radius.max(4);
        self.map(|x, y, v| 128.0 + 2.0 * (v - self.mean(x, y, radius)))
    }
}

/// Bilinear upscale by two (each new pixel 3/4 of its nearest source pixel and 1/4 of the next, both ways),
/// in integers.
pub(super) fn upscale2(pixels: &[u8], w: usize, h: usize) -> Vec<u8> {
    let (w2, h2) = (w * 2, h * 2);
    // Rows upscaled along x, times 4.
    let wide: Vec<u16> = pixels
        .chunks_exact(w)
        .flat_map(|row| {
            (0..w).flat_map(move |x| {
                let centre = 3 * u16::from(row[x]);
                [centre + u16::from(row[x.saturating_sub(1)]), centre + u16::from(row[(x + 1).min(w - 1)])]
            })
        })
        .collect();
    let mut out = vec![0u8; w2 * h2];
    for y in 0..h {
        let row = &wide[y * w2..(y + 1) * w2];
        let above = &wide[y.saturating_sub(1) * w2..][..w2];
        let below = &wide[(y + 1).min(h - 1) * w2..][..w2];
        for (neighbour, out_row) in [(above, 2 * y), (below, 2 * y + 1)] {
            let dst = &mut out[out_row * w2..(out_row + 1) * w2];
            for ((d, &c), &n) in dst.iter_mut().zip(row).zip(neighbour) {
                *d = ((3 * c + n + 8) / 16) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_extremes_match_a_plain_scan() {
        let values: Vec<f32> = (0..200u32).map(|i| ((i * 37 + 11) % 97) as f32).collect();
        for radius in [0, 1, 4, 13] {
            let (mut lo, mut hi) = (vec![0.0; 200], vec![0.0; 200]);
            sliding_extreme(&values, radius, &mut lo, |a, b| a <= b);
            sliding_extreme(&values, radius, &mut hi, |a, b| a >= b);
            for i in 0..200usize {
                let window = &values[i.saturating_sub(radius)..(i + radius + 1).min(200)];
                assert_eq!(lo[i], window.iter().copied().fold(f32::MAX, f32::min), "radius {radius} at {i}");
                assert_eq!(hi[i], window.iter().copied().fold(f32::MIN, f32::max), "radius {radius} at {i}");
            }
        }
    }

    #[test]
    fn upscale_by_two_keeps_flat_areas_and_edges() {
        let pixels = [0u8, 0, 255, 255, 0, 0, 255, 255];
        let up = upscale2(&pixels, 4, 2);
        assert_eq!(up.len(), 32);
        for row in up.chunks_exact(8) {
            assert_eq!(row, &[0, 0, 0, 64, 191, 255, 255, 255]);
        }
        assert_eq!(upscale2(&[7], 1, 1), vec![7; 4]);
    }

    #[test]
    fn percentiles_and_stretch() {
        let mut pixels: Vec<u8> = (100..=150).collect();
        assert_eq!(percentiles(&pixels), (101, 149));
        stretch(&mut pixels);
        assert_eq!(pixels[1], 0);
        assert_eq!(pixels[49], 255);
    }
}
