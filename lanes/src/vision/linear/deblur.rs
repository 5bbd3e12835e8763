//! Motion blur across a 1D code's bars, measured and undone: a code that moved while the shutter was open
//! turns every edge into a ramp as wide as its travel, which rxing cannot threshold once narrow bars fade.
//!
//! A 1D code is the same along its bars, so whatever the direction of the motion, only its part across the
//! bars blurs the code: a box of that width along the scan line. Its width is read from the ramps: an edge
//! between two wide elements rises by the code's full contrast over the box's width, so contrast over the
//! steepest slope gives the width. A Wiener filter along each row then undoes the box.

/// Narrowest blur (samples) worth undoing: below it the strip's own variants read the code.
const LEAST_TRAVEL: f32 = 2.5;
/// Widest: past it a code has lost its narrow bars.
const MOST_TRAVEL: f32 = 40.0;
/// Fewest edges a profile must show for its ramps to be measured.
const FEWEST_EDGES: usize = 8;
/// Noise-to-signal power of the Wiener filter: how far it trusts frequencies that the box all but removed.
const WIENER_NOISE: f32 = 0.01;

/// Width (samples) of the box blur across a strip's bars, from its mean profile along the bars (rows brought
/// into line and averaged), or `None` when the profile shows too few edges or no blur worth undoing.
///
/// The steepest ramps are those between elements wider than the blur: each rises by the full contrast over
/// the box's width. The median of the top quarter of slopes stands for them.
pub(super) fn travel_across_bars(profile: &[f32]) -> Option<f32> {
    if profile.len() < 8 {
        return None;
    }
    let n = profile.len();
    let smooth = crate::vision::filters::smooth_121(profile);
    let mut sorted = smooth.clone();
    sorted.sort_by(f32::total_cmp);
    let contrast = sorted[n * 97 / 100] - sorted[n * 3 / 100];
    if contrast <= 0.0 {
        return None;
    }
    let slopes: Vec<f32> = smooth.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    // Ramps, not noise: a quarter of the steepest slope at least.
    let least = 0.25 * slopes.iter().fold(0.0f32, |a, &b| a.max(b));
    let mut peaks: Vec<f32> = (1..slopes.len().saturating_sub(1))
        .filter(|&i| slopes[i] >= slopes[i - 1] && slopes[i] > slopes[i + 1] && slopes[i] > least)
        .map(|i| slopes[i])
        .collect();
    if peaks.len() < FEWEST_EDGES {
        return None;
    }
    peaks.sort_by(f32::total_cmp);
    let top = &peaks[peaks.len() * 3 / 4..];
    let steepest = top[top.len() / 2];
    let travel = contrast / steepest;
    (LEAST_TRAVEL..=MOST_TRAVEL).contains(&travel).then_some(travel)
}

/// Each `width`-sample row of `pixels` with a box blur `travel` samples wide undone (a Wiener filter).
pub(super) fn undo_box_blur(pixels: &[u8], width: usize, travel: f32) -> Vec<u8> {
    if width == 0 || pixels.is_empty() {
        return pixels.to_vec();
    }
    let reach = (travel / 2.0).ceil() as usize + 1;
    let size = (width + 2 * reach).next_power_of_two();
    let kernel = box_kernel(travel, size);
    let mut out = Vec::with_capacity(pixels.len());
    for row in pixels.chunks_exact(width) {
        let mean = row.iter().map(|&p| f32::from(p)).sum::<f32>() / width as f32;
        // The row centred on its mean, its ends carried on flat so that the filter does not ring off them.
        let mut signal: Vec<Complex> = (0..size)
            .map(|i| {
                let at = i.saturating_sub(reach).min(width - 1);
                Complex(f32::from(row[at]) - mean, 0.0)
            })
            .collect();
        fft(&mut signal, false);
        for (s, k) in signal.iter_mut().zip(&kernel) {
            let power = k.0 * k.0 + k.1 * k.1;
            *s = s.times(Complex(k.0, -k.1)).scaled(1.0 / (power + WIENER_NOISE));
        }
        fft(&mut signal, true);
        out.extend(signal[reach..reach + width].iter().map(|c| (c.0 + mean).round().clamp(0.0, 255.0) as u8));
    }
    out
}

/// The spectrum of a box `travel` samples wide, centred on sample 0 (its ends weighted by how much of them it
/// covers), over `size` samples.
fn box_kernel(travel: f32, size: usize) -> Vec<Complex> {
    let half = travel / 2.0;
    let reach = half.ceil() as i64 + 1;
    let mut kernel = vec![Complex(0.0, 0.0); size];
    let mut total = 0.0;
    for i in -reach..=reach {
        let x = i as f32;
        let weight = ((x + 0.5).min(half) - (x - 0.5).max(-half)).max(0.0);
        kernel[i.rem_euclid(size as i64) as usize].0 += weight;
        total += weight;
    }
    for k in &mut kernel {
        k.0 /= total;
    }
    fft(&mut kernel, false);
    kernel
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Complex(f32, f32);

impl Complex {
    fn times(self, o: Complex) -> Complex {
        Complex(self.0 * o.0 - self.1 * o.1, self.0 * o.1 + self.1 * o.0)
    }

    fn scaled(self, k: f32) -> Complex {
        Complex(self.0 * k, self.1 * k)
    }
}

/// In-place radix-2 FFT (`inverse`: the inverse, scaled by 1/n). `values.len()` must be a power of two.
fn fft(values: &mut [Complex], inverse: bool) {
    let n = values.len();
    if n < 2 {
        return;
    }
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            values.swap(i, j);
        }
    }
    let sign = if inverse { 1.0 } else { -1.0 };
    let mut len = 2;
    while len <= n {
        let angle = sign * 2.0 * std::f32::consts::PI / len as f32;
        let step = Complex(angle.cos(), angle.sin());
        for start in (0..n).step_by(len) {
            let mut w = Complex(1.0, 0.0);
            for k in 0..len / 2 {
                let a = values[start + k];
                let b = values[start + k + len / 2].times(w);
                values[start + k] = Complex(a.0 + b.0, a.1 + b.1);
                values[start + k + len / 2] = Complex(a.0 - b.0, a.1 - b.1);
                w = w.times(step);
            }
        }
        len <<= 1;
    }
    if inverse {
        let k = 1.0 / n as f32;
        for v in values {
            *v = v.scaled(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bars and spaces of 1 to 4 modules, `module` samples each, between quiet zones.
    fn bars(module: usize) -> Vec<f32> {
        let widths = [1, 1, 2, 3, 1, 2, 1, 4, 2, 1, 1, 3, 2, 2, 1, 1, 3, 1, 2, 1, 4, 1, 1, 2, 3, 1, 2, 2];
        let mut out = vec![220.0; 10 * module];
        for (k, w) in widths.iter().enumerate() {
            out.extend(std::iter::repeat_n(if k % 2 == 0 { 30.0 } else { 220.0 }, w * module));
        }
        out.extend(std::iter::repeat_n(220.0, 10 * module));
        out
    }

    /// `values` blurred by a box `travel` samples wide (whole samples).
    fn boxed(values: &[f32], travel: usize) -> Vec<f32> {
        let n = values.len() as i64;
        (0..n)
            .map(|i| {
                let from = i - (travel as i64 - 1) / 2;
                (from..from + travel as i64).map(|j| values[j.clamp(0, n - 1) as usize]).sum::<f32>() / travel as f32
            })
            .collect()
    }

    #[test]
    fn the_fft_round_trips_and_finds_a_tone() {
        let original: Vec<Complex> = (0..16).map(|i| Complex((i as f32 * 0.7).sin(), 0.0)).collect();
        let mut values = original.clone();
        fft(&mut values, false);
        fft(&mut values, true);
        for (a, b) in values.iter().zip(&original) {
            assert!((a.0 - b.0).abs() < 1e-4 && a.1.abs() < 1e-4);
        }
        let mut tone: Vec<Complex> =
            (0..32).map(|i| Complex((i as f32 * 2.0 * std::f32::consts::PI * 3.0 / 32.0).cos(), 0.0)).collect();
        fft(&mut tone, false);
        let loudest = (0..16).max_by(|&a, &b| tone[a].0.hypot(tone[a].1).total_cmp(&tone[b].0.hypot(tone[b].1)));
        assert_eq!(loudest, Some(3));
    }

    #[test]
    fn the_travel_is_read_from_the_ramps() {
        for (module, travel) in [(3, 5), (3, 6), (4, 7), (4, 8), (5, 9)] {
            let found = travel_across_bars(&boxed(&bars(module), travel)).expect("a blur");
            assert!((found - travel as f32).abs() <= 0.15 * travel as f32, "module {module}: {travel} read as {found}");
        }
        assert_eq!(travel_across_bars(&bars(3)), None, "sharp bars: nothing to undo");
        assert_eq!(travel_across_bars(&[120.0; 300]), None, "no edges");
    }

    #[test]
    fn undoing_the_blur_brings_the_narrow_bars_back() {
        // Moved two and a quarter modules: the narrow bars no longer reach the middle grey.
        let sharp = bars(4);
        let blurred = boxed(&sharp, 9);
        let pixels: Vec<u8> = blurred.iter().map(|&v| v.round() as u8).collect();
        let restored: Vec<f32> = undo_box_blur(&pixels, pixels.len(), 9.0).iter().map(|&p| f32::from(p)).collect();
        let wrong = |values: &[f32]| values.iter().zip(&sharp).filter(|(v, s)| (**v < 125.0) != (**s < 125.0)).count();
        assert!(wrong(&blurred) > 20, "the blur merges narrow bars: {} samples off", wrong(&blurred));
        assert!(wrong(&restored) <= 6, "{} samples off after", wrong(&restored));
    }
}
