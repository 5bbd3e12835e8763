//! EAN-13, UPC-A, EAN-8 and UPC-E read from grey levels, digit by digit, the strip's scan lines voting.
//!
//! rxing reads a 1D code one binarized scan line at a time: blur that lifts a one-module bar above the
//! threshold, or noise that adds an edge, loses that line, and on a small, blurred, noisy code it loses them
//! all. Here no line is binarized:
//! 1. the strip's rows are averaged in bands (less noise), and each band is made into a darkness profile,
//!    normalised between its local darkest and lightest values (glare and uneven light);
//! 2. the code's ends are where its dark elements stop; the symbology's module count then gives the module
//!    width, the end guards are fitted to a tenth of a module, and the EAN centre guard anchors a quadratic
//!    map from modules to samples that follows perspective;
//! 3. each digit's seven modules are compared, at small shifts, with every digit pattern; the bands' scores are
//!    added up and each digit takes the best pattern;
//! 4. a read counts only with fitting guards, a valid parity pattern and check digit, a clear winner in every
//!    digit, and two bands that read the same code on their own.

use checkout_storage::{Symbology, gtin_check_digit, upc_e_to_upc_a};

use super::CodeRead;
use super::locate::local_extremes;

/// Digit patterns of set A (EAN "L", odd parity), 7 modules, most significant bit first, 1 = dark.
const SET_A: [u8; 10] = [0x0D, 0x19, 0x13, 0x3D, 0x23, 0x31, 0x2F, 0x3B, 0x37, 0x0B];
/// EAN-13's first digit, from the sets of its six left digits (bit 5 = first left digit, 1 = set B).
const FIRST_DIGIT_PARITY: [u8; 10] = [0x00, 0x0B, 0x0D, 0x0E, 0x13, 0x19, 0x1C, 0x15, 0x16, 0x1A];
/// UPC-E's check digit, from the sets of its six digits with number system 0 (1 = set B); number system 1
/// has them the other way round.
const UPC_E_PARITY: [u8; 10] = [0x38, 0x34, 0x32, 0x31, 0x2C, 0x26, 0x23, 0x2A, 0x29, 0x25];

/// Bands of strip rows averaged into one profile.
const BAND_ROWS: usize = 3;
/// Shifts (in modules) at which a digit's modules are compared with the patterns.
const SHIFTS: [f32; 5] = [-0.3, -0.15, 0.0, 0.15, 0.3];
/// Lowest mean fit (a correlation) of a read's guards, per band.
const MIN_GUARD_FIT: f32 = 0.5;
/// Lowest mean fit (a correlation) of a read's digits, per band.
const MIN_MEAN_SCORE: f32 = 0.5;
/// Smallest lead, per band, of each digit's best pattern over its next best.
const MIN_MARGIN: f32 = 0.04;
/// Bands that must read the code on their own, each digit its best pattern.
const MIN_AGREEING_BANDS: usize = 2;

/// The three sets a digit's pattern can come from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Set {
    /// EAN "L", odd parity.
    A,
    /// EAN "G", even parity (set C mirrored).
    B,
    /// EAN "R" (set A with dark and light swapped).
    C,
}

/// A digit pattern's modules: +1 dark, -1 light.
fn modules(set: Set, digit: usize) -> [f32; 7] {
    let a = SET_A[digit];
    let c = !a & 0x7F;
    let bits = match set {
        Set::A => a,
        Set::C => c,
        Set::B => (0..7).fold(0u8, |acc, i| acc | (((c >> i) & 1) << (6 - i))),
    };
    let mut out = [0.0; 7];
    for (j, m) in out.iter_mut().enumerate() {
        *m = if (bits >> (6 - j)) & 1 == 1 { 1.0 } else { -1.0 };
    }
    out
}

/// The symbologies read here, with their layout in modules.
#[derive(Clone, Copy)]
struct Layout {
    symbology: Symbology,
    /// Modules from the start guard's first bar to the end guard's last.
    modules: f32,
    /// Digits and the sets each may come from, with their first module.
    digits: &'static [(f32, &'static [Set])],
    /// The end guard's pattern, with the quiet zone after it and one module of context either side (the
    /// start guard is always bar, space, bar).
    end_guard: &'static [f32],
    /// Where the centre guard starts (EAN), if there is one: five modules, space first.
    centre: Option<f32>,
}

const LEFT: &[Set] = &[Set::A, Set::B];
const RIGHT: &[Set] = &[Set::C];
const ONLY_A: &[Set] = &[Set::A];

const EAN_13: Layout = Layout {
    symbology: Symbology::Ean13,
    modules: 95.0,
    digits: &[
        (3.0, LEFT),
        (10.0, LEFT),
        (17.0, LEFT),
        (24.0, LEFT),
        (31.0, LEFT),
        (38.0, LEFT),
        (50.0, RIGHT),
        (57.0, RIGHT),
        (64.0, RIGHT),
        (71.0, RIGHT),
        (78.0, RIGHT),
        (85.0, RIGHT),
    ],
    end_guard: &[-1.0, 1.0, -1.0, 1.0, -1.0, -1.0],
    centre: Some(45.0),
};

const EAN_8: Layout = Layout {
    symbology: Symbology::Ean8,
    modules: 67.0,
    digits: &[
        (3.0, ONLY_A),
        (10.0, ONLY_A),
        (17.0, ONLY_A),
        (24.0, ONLY_A),
        (36.0, RIGHT),
        (43.0, RIGHT),
        (50.0, RIGHT),
        (57.0, RIGHT),
    ],
    end_guard: &[-1.0, 1.0, -1.0, 1.0, -1.0, -1.0],
    centre: Some(31.0),
};

const UPC_E: Layout = Layout {
    symbology: Symbology::UpcE,
    modules: 51.0,
    digits: &[(3.0, LEFT), (10.0, LEFT), (17.0, LEFT), (24.0, LEFT), (31.0, LEFT), (38.0, LEFT)],
    end_guard: &[1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, -1.0],
    centre: None,
};

/// Reads an EAN-13, UPC-A, EAN-8 or UPC-E code from a strip (`height` rows of `width` grey samples along the
/// scan direction), either way round. `edge_count` is the strip's bar edges as counted by the caller.
pub(super) fn read_grey(
    pixels: &[u8],
    width: usize,
    height: usize,
    edge_count: usize,
    work: &mut u64,
) -> Option<CodeRead> {
    if width < 32 || height == 0 || pixels.len() != width * height {
        return None;
    }
    *work += (width * height) as u64;
    let radius = (3 * width / (edge_count + 1)).clamp(4, 64);
    let mut bands: Vec<Vec<f32>> = (0..height.div_ceil(BAND_ROWS))
        .map(|b| darkness(&band_mean(pixels, width, b * BAND_ROWS, ((b + 1) * BAND_ROWS).min(height)), radius))
        .collect();
    let whole = darkness(&band_mean(pixels, width, 0, height), radius);
    let forward = read_bands(&whole, &bands);
    bands.iter_mut().for_each(|b| b.reverse());
    let mut whole = whole;
    whole.reverse();
    let backward = read_bands(&whole, &bands);
    match (forward, backward) {
        (Some(a), Some(b)) if a != b => None,
        (Some(a), _) | (None, Some(a)) => Some(a),
        (None, None) => None,
    }
}

fn band_mean(pixels: &[u8], width: usize, from: usize, to: usize) -> Vec<f32> {
    let rows = (to - from).max(1) as f32;
    (0..width).map(|i| (from..to).map(|r| f32::from(pixels[r * width + i])).sum::<f32>() / rows).collect()
}

/// How dark each sample is against its neighbourhood's extremes: about +1 at a bar, -1 at a space.
fn darkness(profile: &[f32], radius: usize) -> Vec<f32> {
    let (lo, hi) = local_extremes(profile, radius);
    (0..profile.len())
        .map(|i| {
            // Below 16 grey levels of spread a stretch is flat paper or print, not bars.
            let spread = (hi[i] - lo[i]).max(16.0);
            ((hi[i] + lo[i]) / 2.0 - profile[i]) * 2.0 / spread
        })
        .map(|d| d.clamp(-1.5, 1.5))
        .collect()
}

/// Dark runs of a profile: (start, end) in samples, at the zero crossings.
fn dark_runs(d: &[f32]) -> Vec<(f32, f32)> {
    let mut runs = Vec::new();
    let mut start: Option<f32> = None;
    for i in 1..d.len() {
        let (a, b) = (d[i - 1], d[i]);
        let crossing = (i - 1) as f32 + a / (a - b);
        if a <= 0.0 && b > 0.0 {
            start = Some(crossing);
        } else if a > 0.0
            && b <= 0.0
            && let Some(s) = start.take()
        {
            runs.push((s, crossing));
        }
    }
    runs
}

/// Darkness at a fractional sample position (linear between samples, light beyond the ends).
fn at(d: &[f32], x: f32) -> f32 {
    if !(x >= 0.0 && x <= (d.len() - 1) as f32) {
        return -1.0;
    }
    let i = x as usize;
    let f = x - i as f32;
    let next = d[(i + 1).min(d.len() - 1)];
    d[i] * (1.0 - f) + next * f
}

/// A module's darkness: the mean of three samples across its middle.
fn module_value(d: &[f32], map: &Map, u: f32) -> f32 {
    (at(d, map.x(u - 0.2)) + at(d, map.x(u)) + at(d, map.x(u + 0.2))) / 3.0
}

/// Where module positions fall in the profile: a quadratic through three anchors.
struct Map {
    /// x = a + b u + c u^2.
    a: f32,
    b: f32,
    c: f32,
}

impl Map {
    fn linear(start: f32, end: f32, modules: f32) -> Map {
        Map { a: start, b: (end - start) / modules, c: 0.0 }
    }

    /// Through (0, x0), (u1, x1), (u2, x2).
    fn through(x0: f32, u1: f32, x1: f32, u2: f32, x2: f32) -> Map {
        let s1 = (x1 - x0) / u1;
        let s2 = (x2 - x0) / u2;
        let c = (s2 - s1) / (u2 - u1);
        Map { a: x0, b: s1 - c * u1, c }
    }

    fn x(&self, u: f32) -> f32 {
        self.a + self.b * u + self.c * u * u
    }

    fn shifted(&self, by: f32) -> Map {
        Map { a: self.a + by, ..*self }
    }
}

/// A pattern's modules (+1 dark, -1 light) as a blur of `blur` (the share each module takes from either
/// neighbour) shows them; `pattern` has one module of context either side, left out of the result.
fn blurred(pattern: &[f32], blur: f32) -> Vec<f32> {
    pattern.windows(3).map(|w| blur * w[0] + (1.0 - 2.0 * blur) * w[1] + blur * w[2]).collect()
}

/// Pearson correlation of two equally long vectors (0 when either is flat).
fn correlation(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len() as f32;
    let (ma, mb) = (a.iter().sum::<f32>() / n, b.iter().sum::<f32>() / n);
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        ab += (x - ma) * (y - mb);
        aa += (x - ma) * (x - ma);
        bb += (y - mb) * (y - mb);
    }
    if aa <= 1e-6 || bb <= 1e-6 { 0.0 } else { ab / (aa * bb).sqrt() }
}

/// The darkness of `count` modules from `u0`.
fn module_values(d: &[f32], map: &Map, u0: f32, count: usize) -> Vec<f32> {
    (0..count).map(|j| module_value(d, map, u0 + j as f32 + 0.5)).collect()
}

/// How well `pattern` (with its context modules) fits at modules `u0..` under `blur`: a correlation.
fn fit(d: &[f32], map: &Map, u0: f32, pattern: &[f32], blur: f32) -> f32 {
    correlation(&module_values(d, map, u0, pattern.len() - 2), &blurred(pattern, blur))
}

/// The start guard with the quiet zone before it, and context: (quiet) (quiet) bar space bar (a digit's
/// first module, light).
const START_GUARD: [f32; 6] = [-1.0, -1.0, 1.0, -1.0, 1.0, -1.0];
/// The centre guard, space bar space bar space, between a left digit's last module (dark) and a right
/// digit's first (dark).
const CENTRE_GUARD: [f32; 7] = [1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0];
/// Blurs tried (share of a module's darkness that spreads to each neighbour).
const BLURS: [f32; 4] = [0.0, 0.12, 0.24, 0.33];

/// Scores, per digit position, of each (set, digit) pattern, added up over bands.
type Scores = Vec<[[f32; 10]; 3]>;

fn set_index(set: Set) -> usize {
    match set {
        Set::A => 0,
        Set::B => 1,
        Set::C => 2,
    }
}

/// A band's map from modules to samples, fitting the guards near where the extent puts them: (map, blur, mean
/// guard fit).
fn map_band(d: &[f32], layout: &Layout, start: f32, end: f32) -> Option<(Map, f32, f32)> {
    let mut best: Option<(Map, f32, f32)> = None;
    for blur in BLURS {
        let (map, fit) = map_band_at(d, layout, start, end, blur, true);
        if best.as_ref().is_none_or(|b| fit > b.2) {
            best = Some((map, blur, fit));
        }
    }
    best
}

/// Fits the end guards, and when `with_centre` the centre guard too, at one blur: (map, mean guard fit).
fn map_band_at(d: &[f32], layout: &Layout, start: f32, end: f32, blur: f32, with_centre: bool) -> (Map, f32) {
    let linear = Map::linear(start, end, layout.modules);
    let module = linear.b;
    let steps = |reach: f32| (-(reach * 10.0) as i32..=(reach * 10.0) as i32).map(|k| k as f32 / 10.0);
    let best = |f: &dyn Fn(f32) -> f32, reach: f32| {
        steps(reach).map(|s| (s, f(s))).max_by(|a, b| a.1.total_cmp(&b.1)).unwrap_or((0.0, -1.0))
    };
    let (ds, start_fit) = best(&|s| fit(d, &linear.shifted(s * module), -1.0, &START_GUARD, blur), 0.6);
    let end_at = layout.modules - layout.end_guard.len() as f32 + 3.0;
    let (de, end_fit) = best(&|s| fit(d, &linear.shifted(s * module), end_at, layout.end_guard, blur), 0.6);
    let (x0, x2) = (start + ds * module, end + de * module);
    let linear = Map::linear(x0, x2, layout.modules);
    let Some(centre) = layout.centre.filter(|_| with_centre) else {
        return (linear, (start_fit + end_fit) / 2.0);
    };
    let (dc, centre_fit) = best(&|s| fit(d, &linear.shifted(s * module), centre, &CENTRE_GUARD, blur), 1.5);
    let uc = centre + 2.5;
    let map = Map::through(x0, uc, linear.x(uc) + dc * module, layout.modules, x2);
    (map, (start_fit + end_fit + centre_fit) / 3.0)
}

/// How darkness follows a blurred pattern in a band: darkness = gain * pattern + offset, fitted by least
/// squares over the guards' modules.
fn gain_and_offset(d: &[f32], layout: &Layout, map: &Map, blur: f32) -> Option<(f32, f32)> {
    let mut pairs: Vec<(f32, f32)> = Vec::new();
    let mut add = |u0: f32, pattern: &[f32]| {
        let values = module_values(d, map, u0, pattern.len() - 2);
        pairs.extend(blurred(pattern, blur).into_iter().zip(values));
    };
    add(-1.0, &START_GUARD);
    add(layout.modules - layout.end_guard.len() as f32 + 3.0, layout.end_guard);
    if let Some(centre) = layout.centre {
        add(centre, &CENTRE_GUARD);
    }
    let n = pairs.len() as f32;
    let (mt, mv) = pairs.iter().fold((0.0, 0.0), |(a, b), (t, v)| (a + t / n, b + v / n));
    let (tv, tt) = pairs.iter().fold((0.0, 0.0), |(a, b), (t, v)| (a + (t - mt) * (v - mv), b + (t - mt) * (t - mt)));
    let gain = tv / tt.max(1e-6);
    (gain > 0.1).then_some((gain, mv - gain * mt))
}

/// Each digit position's scores in one band: how closely its modules follow each pattern, as blurred, at
/// the guards' gain and offset (1 - mean squared error in units of the gain; 1 is a perfect fit).
fn score_band(d: &[f32], layout: &Layout, map: &Map, blur: f32) -> Option<Scores> {
    let (gain, offset) = gain_and_offset(d, layout, map, blur)?;
    let module = map.b.abs().max(0.1);
    let templates: Vec<[Vec<f32>; 10]> = [Set::A, Set::B, Set::C]
        .iter()
        .map(|&set| {
            std::array::from_fn(|digit| {
                let m = modules(set, digit);
                let mut with_context = vec![-m[0]];
                with_context.extend_from_slice(&m);
                with_context.push(-m[6]);
                blurred(&with_context, blur).into_iter().map(|t| gain * t + offset).collect()
            })
        })
        .collect();
    let scale = 7.0 * gain * gain;
    Some(
        layout
            .digits
            .iter()
            .map(|(u0, sets)| {
                let mut table = [[-10.0f32; 10]; 3];
                for &shift in &SHIFTS {
                    let values = module_values(d, &map.shifted(shift * module), *u0, 7);
                    for &set in *sets {
                        let k = set_index(set);
                        for (digit, score) in table[k].iter_mut().enumerate() {
                            let error: f32 =
                                values.iter().zip(&templates[k][digit]).map(|(v, t)| (v - t) * (v - t)).sum();
                            *score = score.max(1.0 - error / scale);
                        }
                    }
                }
                table
            })
            .collect(),
    )
}

/// The best pattern per position with its score and its lead over the position's next best pattern.
fn choose(scores: &Scores, layout: &Layout) -> Vec<(Set, usize, f32, f32)> {
    scores
        .iter()
        .zip(layout.digits)
        .map(|(table, (_, sets))| {
            let (mut best, mut second) = ((Set::A, 0, f32::MIN), f32::MIN);
            for &set in *sets {
                for (digit, &score) in table[set_index(set)].iter().enumerate() {
                    if score > best.2 {
                        second = best.2;
                        best = (set, digit, score);
                    } else if score > second {
                        second = score;
                    }
                }
            }
            (best.0, best.1, best.2, best.2 - second)
        })
        .collect()
}

/// The chosen patterns' code, if it is valid.
fn code_of(chosen: &[(Set, usize, f32, f32)], layout: &Layout) -> Option<CodeRead> {
    let patterns: Vec<(Set, usize)> = chosen.iter().map(|c| (c.0, c.1)).collect();
    assemble(&patterns, layout)
}

/// The code's text from the chosen patterns, if its parity pattern and check digit are valid.
fn assemble(chosen: &[(Set, usize)], layout: &Layout) -> Option<CodeRead> {
    let digit = |k: usize| char::from(b'0' + chosen[k].1 as u8);
    let parity = |range: std::ops::Range<usize>| range.fold(0u8, |acc, k| (acc << 1) | u8::from(chosen[k].0 == Set::B));
    let (text, symbology) = match layout.symbology {
        Symbology::Ean13 => {
            let first = FIRST_DIGIT_PARITY.iter().position(|&p| p == parity(0..6))?;
            let text: String = std::iter::once(char::from(b'0' + first as u8)).chain((0..12).map(digit)).collect();
            if first == 0 { (text[1..].to_owned(), Symbology::UpcA) } else { (text, Symbology::Ean13) }
        }
        Symbology::Ean8 => ((0..8).map(digit).collect::<String>(), Symbology::Ean8),
        Symbology::UpcE => {
            let p = parity(0..6);
            let (system, check) = UPC_E_PARITY
                .iter()
                .position(|&q| q == p)
                .map(|c| (0, c))
                .or_else(|| UPC_E_PARITY.iter().position(|&q| q == !p & 0x3F).map(|c| (1, c)))?;
            let body: String = (0..6).map(digit).collect();
            (format!("{system}{body}{check}"), Symbology::UpcE)
        }
        _ => return None,
    };
    let valid = match symbology {
        Symbology::UpcE => {
            let upc_a = upc_e_to_upc_a(&text)?;
            gtin_check_digit(&upc_a.as_bytes()[..11]) == upc_a.as_bytes()[11] - b'0'
        }
        _ => {
            let (body, check) = text.split_at(text.len() - 1);
            gtin_check_digit(body.as_bytes()) == check.as_bytes()[0] - b'0'
        }
    };
    valid.then_some(CodeRead { text, symbology })
}

/// Where a layout's code may lie: pairs of a dark run's start and a later one's end with a quiet zone (five
/// modules at least, for the module width the pair implies) before and after, best guard fit first.
fn extents(whole: &[f32], runs: &[(f32, f32)], layout: &Layout) -> Vec<(f32, f32, f32)> {
    let mut out = Vec::new();
    for (i, first) in runs.iter().enumerate() {
        let before = first.0 - if i == 0 { 0.0 } else { runs[i - 1].1 };
        for (j, last) in runs.iter().enumerate().skip(i + MIN_RUNS) {
            let module = (last.1 - first.0) / layout.modules;
            // Half-pixel samples: below 1.5 samples a module, no code is read.
            if module < 1.5 || before < QUIET * module {
                continue;
            }
            let after = runs.get(j + 1).map_or(whole.len() as f32, |next| next.0) - last.1;
            if after < QUIET * module {
                continue;
            }
            // Ranked by the end guards at one middling blur (the vote fits the centre guard and the blur band by
            // band).
            let (_, fit) = map_band_at(whole, layout, first.0, last.1, BLURS[1], false);
            out.push((first.0, last.1, fit));
        }
    }
    out.sort_by(|a, b| b.2.total_cmp(&a.2));
    out
}

/// Fewest dark runs (bars, some merged by blur) between a code's ends.
const MIN_RUNS: usize = 5;
/// Shortest quiet zone looked for beside a code, in modules.
const QUIET: f32 = 5.0;
/// Extents tried per layout, best guard fit first.
const EXTENTS_TRIED: usize = 2;

/// One orientation: every layout and its likeliest extents, the bands voting; a read only if all that read
/// agree.
fn read_bands(whole: &[f32], bands: &[Vec<f32>]) -> Option<CodeRead> {
    let runs = dark_runs(whole);
    if runs.len() < MIN_RUNS + 1 {
        return None;
    }
    let mut found: Option<CodeRead> = None;
    for layout in [EAN_13, EAN_8, UPC_E] {
        for (start, end, fit) in extents(whole, &runs, &layout).into_iter().take(EXTENTS_TRIED) {
            if fit < MIN_GUARD_FIT {
                break;
            }
            let Some(read) = vote(bands, &layout, start, end) else {
                continue;
            };
            if found.as_ref().is_some_and(|f| *f != read) {
                return None;
            }
            found = Some(read);
            break;
        }
    }
    found
}

/// The bands' vote on a layout at an extent.
fn vote(bands: &[Vec<f32>], layout: &Layout, start: f32, end: f32) -> Option<CodeRead> {
    let mut total: Scores = vec![[[0.0; 10]; 3]; layout.digits.len()];
    let mut singles = Vec::new();
    let mut guards = 0.0;
    for d in bands {
        let (map, blur, guard_fit) = map_band(d, layout, start, end)?;
        guards += guard_fit / bands.len() as f32;
        let Some(scores) = score_band(d, layout, &map, blur) else {
            continue;
        };
        for (t, s) in total.iter_mut().zip(&scores) {
            for (tt, ss) in t.iter_mut().zip(s) {
                for (a, b) in tt.iter_mut().zip(ss) {
                    *a += b.max(-3.0);
                }
            }
        }
        singles.push(code_of(&choose(&scores, layout), layout));
    }
    if guards < MIN_GUARD_FIT {
        return None;
    }
    let chosen = choose(&total, layout);
    let read = code_of(&chosen, layout)?;
    let n = bands.len() as f32;
    let mean = chosen.iter().map(|c| c.2).sum::<f32>() / chosen.len() as f32 / n;
    let margin = chosen.iter().map(|c| c.3).fold(f32::MAX, f32::min) / n;
    let agreeing = singles.iter().filter(|s| s.as_ref() == Some(&read)).count();
    (mean >= MIN_MEAN_SCORE && margin >= MIN_MARGIN && agreeing >= MIN_AGREEING_BANDS).then_some(read)
}

#[cfg(test)]
mod tests {
    use super::super::locate::box_smooth;
    use super::*;
    use crate::vision::render_code;

    /// A strip of `rows` rows showing `text` at `module` samples a module, blurred by a moving average of
    /// `blur` samples, with light noise.
    fn strip(text: &str, symbology: Symbology, module: u32, blur: usize, rows: usize) -> (Vec<u8>, usize) {
        let code = render_code(text, symbology, module, 1).unwrap();
        let width = code.width as usize;
        let row: Vec<f32> = code.pixels.iter().map(|&p| 60.0 + f32::from(p) * 0.5).collect();
        let blurred = box_smooth(&row, blur);
        let mut pixels = Vec::with_capacity(width * rows);
        let mut seed = 7u32;
        for _ in 0..rows {
            for &v in &blurred {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let noise = ((seed >> 16) % 13) as f32 - 6.0;
                pixels.push((v + noise).clamp(0.0, 255.0) as u8);
            }
        }
        (pixels, width)
    }

    fn read(text: &str, symbology: Symbology, module: u32, blur: usize) -> Option<CodeRead> {
        let (pixels, width) = strip(text, symbology, module, blur, 12);
        let mut work = 0;
        read_grey(&pixels, width, 12, 60, &mut work)
    }

    #[test]
    fn patterns_follow_the_standard() {
        assert_eq!(modules(Set::A, 0), [-1.0, -1.0, -1.0, 1.0, 1.0, -1.0, 1.0]);
        assert_eq!(modules(Set::C, 0), [1.0, 1.0, 1.0, -1.0, -1.0, 1.0, -1.0]);
        // Set B's 0 is set C's 0 mirrored: 0100111.
        assert_eq!(modules(Set::B, 0), [-1.0, 1.0, -1.0, -1.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn every_symbology_reads_both_ways_round() {
        for (text, symbology, expected) in [
            ("5901234123457", Symbology::Ean13, Symbology::Ean13),
            ("036000291452", Symbology::UpcA, Symbology::UpcA),
            ("96385074", Symbology::Ean8, Symbology::Ean8),
            ("01234565", Symbology::UpcE, Symbology::UpcE),
        ] {
            let got = read(text, symbology, 3, 1).unwrap_or_else(|| panic!("{text} not read"));
            assert_eq!((got.text.as_str(), got.symbology), (text, expected));
            let (mut pixels, width) = strip(text, symbology, 3, 1, 12);
            pixels.chunks_exact_mut(width).for_each(<[u8]>::reverse);
            let mut work = 0;
            assert_eq!(read_grey(&pixels, width, 12, 60, &mut work).map(|r| r.text), Some(text.to_owned()));
        }
    }

    #[test]
    fn blur_that_defeats_rxing_still_reads() {
        // Three and four samples a module, blurred over three samples.
        for (module, blur) in [(3, 1), (4, 1)] {
            let text = "5901234123457";
            let (pixels, width) = strip(text, Symbology::Ean13, module, blur, 12);
            let mut work = 0;
            let rxing = super::super::locate::rxing_text(&pixels, width, 12, &mut work);
            assert_eq!(rxing, None, "module {module}, blur {blur}: rxing reads it now");
            let ours = read(text, Symbology::Ean13, module, blur).map(|r| r.text);
            assert_eq!(ours, Some(text.to_owned()), "module {module}, blur {blur}");
        }
    }

    #[test]
    fn a_wrong_check_digit_or_no_code_reads_nothing() {
        // Stripes that are not a code.
        let stripes: Vec<u8> = (0..12 * 400).map(|i| if (i % 400 / 3) % 3 == 0 { 40 } else { 200 }).collect();
        let mut work = 0;
        assert_eq!(read_grey(&stripes, 400, 12, 60, &mut work), None);
        // Flat paper.
        assert_eq!(read_grey(&[180; 12 * 400], 400, 12, 60, &mut work), None);
    }
}
