//! A product code read (EAN-13, UPC-A, EAN-8, UPC-E) confirmed on the original pixels: wherever it was read
//! (a strip's sharpened or stretched variant, a deblurred strip, rxing on the whole frame), the code's module
//! pattern, drawn from the text read, is laid along scan lines of the frame as it is, and each digit's
//! pattern must fit the grey levels there better than any other digit's would. Too few lines that show the
//! code, a digit another pattern fits better, or (for a short code) bars in its quiet zone, and the read does
//! not count.

use checkout_storage::Symbology;

use crate::vision::rxing::{CodeRead, Guards};

use crate::vision::frame::LumaFrame;
use crate::vision::work::Work;

use super::rows::RowShifts;
use super::strip::{BarEnds, Layout, STRIP_ROWS, Strip, StripSampler};

/// The seven modules of each digit's L pattern, the first module in the highest bit (1: bar).
const L_PATTERNS: [u8; 10] =
    [0b0001101, 0b0011001, 0b0010011, 0b0111101, 0b0100011, 0b0110001, 0b0101111, 0b0111011, 0b0110111, 0b0001011];

/// Which left-half digits of an EAN-13 are G (even parity), by its first digit (bit 5 is the first of the six).
const EAN13_PARITY: [u8; 10] = [0x00, 0x0B, 0x0D, 0x0E, 0x13, 0x19, 0x1C, 0x15, 0x16, 0x1A];

/// Which digits of a UPC-E of number system 0 are G, by its check digit (number system 1: the others).
const UPCE_PARITY: [u8; 10] = [0x38, 0x34, 0x32, 0x31, 0x2C, 0x26, 0x23, 0x2A, 0x29, 0x25];

/// How a digit may be printed where it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parity {
    L,
    G,
    R,
}

fn pattern(digit: usize, parity: Parity) -> u8 {
    let r = !L_PATTERNS[digit] & 0x7f;
    match parity {
        Parity::L => L_PATTERNS[digit],
        Parity::R => r,
        Parity::G => r.reverse_bits() >> 1,
    }
}

/// A digit of a code: its first module, and the pattern printed there.
#[derive(Debug, Clone, Copy)]
struct Slot {
    at: usize,
    pattern: u8,
    /// The other patterns that could stand there: right-half digits are R; a left-half digit is L or G,
    /// except in an EAN-8 (L only).
    left_half_g: bool,
    right: bool,
}

/// A code's modules as its text says, and its digits.
#[derive(Debug, Clone)]
struct Template {
    modules: Vec<bool>,
    slots: Vec<Slot>,
}

impl Template {
    fn of(read: &CodeRead) -> Option<Template> {
        let digits: Vec<usize> = read.text.bytes().map(|b| b.wrapping_sub(b'0') as usize).collect();
        if digits.iter().any(|&d| d > 9) {
            return None;
        }
        let mut template = Template { modules: Vec::with_capacity(95), slots: Vec::new() };
        match (read.symbology, digits.len()) {
            (Symbology::Ean13, 13) | (Symbology::UpcA, 12) => {
                let digits = if digits.len() == 12 { [&[0][..], &digits].concat() } else { digits };
                let parity = EAN13_PARITY[digits[0]];
                template.guard(&[true, false, true]);
                for (j, &d) in digits[1..7].iter().enumerate() {
                    let g = parity & (1 << (5 - j)) != 0;
                    template.digit(d, if g { Parity::G } else { Parity::L }, true);
                }
                template.guard(&[false, true, false, true, false]);
                for &d in &digits[7..] {
                    template.digit(d, Parity::R, false);
                }
                template.guard(&[true, false, true]);
            }
            (Symbology::Ean8, 8) => {
                template.guard(&[true, false, true]);
                for &d in &digits[..4] {
                    template.digit(d, Parity::L, false);
                }
                template.guard(&[false, true, false, true, false]);
                for &d in &digits[4..] {
                    template.digit(d, Parity::R, false);
                }
                template.guard(&[true, false, true]);
            }
            (Symbology::UpcE, 8) if digits[0] <= 1 => {
                let parity = UPCE_PARITY[digits[7]] ^ if digits[0] == 1 { 0x3f } else { 0 };
                template.guard(&[true, false, true]);
                for (j, &d) in digits[1..7].iter().enumerate() {
                    let g = parity & (1 << (5 - j)) != 0;
                    template.digit(d, if g { Parity::G } else { Parity::L }, true);
                }
                template.guard(&[false, true, false, true, false, true]);
            }
            _ => return None,
        }
        Some(template)
    }

    fn guard(&mut self, modules: &[bool]) {
        self.modules.extend_from_slice(modules);
    }

    fn digit(&mut self, digit: usize, parity: Parity, left_half_g: bool) {
        let pattern = pattern(digit, parity);
        self.slots.push(Slot { at: self.modules.len(), pattern, left_half_g, right: parity == Parity::R });
        self.modules.extend((0..7).rev().map(|bit| pattern & (1 << bit) != 0));
    }
}

/// The patterns that could stand in `slot`'s place.
fn rivals(slot: &Slot) -> impl Iterator<Item = u8> + '_ {
    let parities: &[Parity] = if slot.right {
        &[Parity::R]
    } else if slot.left_half_g {
        &[Parity::L, Parity::G]
    } else {
        &[Parity::L]
    };
    parities.iter().flat_map(|&parity| (0..10).map(move |d| pattern(d, parity))).filter(|&p| p != slot.pattern)
}

/// Pearson correlation of seven module darknesses with a digit's pattern (0 when either is flat).
fn correlation(values: &[f32], pattern: u8) -> f32 {
    correlation_with(values, |k| pattern & (1 << (6 - k)) != 0)
}

/// Pearson correlation of module darknesses with the modules `bar` says are bars (0 when either is flat).
fn correlation_with(values: &[f32], bar: impl Fn(usize) -> bool) -> f32 {
    let n = values.len() as f32;
    let mean = values.iter().sum::<f32>() / n;
    let bars = (0..values.len()).filter(|&k| bar(k)).count() as f32 / n;
    let (mut vt, mut vv, mut tt) = (0.0f32, 0.0f32, 0.0f32);
    for (k, &v) in values.iter().enumerate() {
        let t = if bar(k) { 1.0 } else { 0.0 } - bars;
        let v = v - mean;
        vt += v * t;
        vv += v * v;
        tt += t * t;
    }
    if vv < 1.0 || tt <= 0.0 { 0.0 } else { vt / (vv * tt).sqrt() }
}

/// Where a code `n` modules wide lies along a scan line, in samples: the outer edge of its first module
/// (`origin`), its mean module, which way it reads (`dir`, +1 or -1: an upside-down code reads from right to
/// left), and its perspective (`tilt`: its modules narrow from one end to the other as `1 + tilt` to
/// `1 / (1 + tilt)` times the mean, as a label turned away from the camera shows them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Placement {
    pub(super) origin: f32,
    pub(super) module: f32,
    pub(super) dir: f32,
    pub(super) n: usize,
    pub(super) tilt: f32,
}

/// Modules from the centre of a code's start guard to the centre of its end guard, for the EAN/UPC family;
/// its width in modules.
fn guard_layout(symbology: Symbology) -> Option<(f32, usize)> {
    match symbology {
        Symbology::Ean13 | Symbology::UpcA => Some((92.0, 95)),
        Symbology::Ean8 => Some((64.0, 67)),
        Symbology::UpcE => Some((46.5, 51)),
        _ => None,
    }
}

impl Placement {
    /// The code rxing found between `guards` (centres of its start and end guards, in samples).
    pub(super) fn from_guards(symbology: Symbology, guards: &Guards) -> Option<Placement> {
        let (span, n) = guard_layout(symbology)?;
        let module = (guards.end_x - guards.start_x).abs() / span;
        let dir = if guards.end_x >= guards.start_x { 1.0 } else { -1.0 };
        (module.is_finite() && module > 0.0).then_some(Placement {
            origin: guards.start_x - dir * 1.5 * module,
            module,
            dir,
            n,
            tilt: 0.0,
        })
    }

    /// The centre of the code.
    pub(super) fn centre(&self) -> f32 {
        self.origin + self.dir * self.module * self.n as f32 / 2.0
    }

    /// A code `n` modules wide centred on `centre`, its modules even.
    pub(super) fn centred(centre: f32, n: usize, module: f32, dir: f32) -> Placement {
        Placement { origin: centre - dir * module * n as f32 / 2.0, module, dir, n, tilt: 0.0 }
    }

    /// Where the code's module edge `k` lies.
    fn at(&self, k: f32) -> f32 {
        let u = k / self.n as f32;
        let t = self.tilt;
        self.origin + self.dir * self.module * self.n as f32 * u * (1.0 + t) / (1.0 + t * u)
    }

    /// The width of the module at edge `k`.
    fn module_at(&self, k: f32) -> f32 {
        let u = k / self.n as f32;
        self.module * (1.0 + self.tilt) / (1.0 + self.tilt * u).powi(2)
    }

    /// The same code with its ends moved by `start` and `end` samples along its reading direction.
    fn stretched(&self, start: f32, end: f32) -> Placement {
        let length = self.module * self.n as f32 + end - start;
        Placement { origin: self.origin + self.dir * start, module: length / self.n as f32, ..*self }
    }
}

/// A scan line's grey levels.
struct Line<'a>(&'a [u8]);

impl Line<'_> {
    /// Darkness (255 minus grey) at `x`, between samples.
    fn dark(&self, x: f32) -> f32 {
        let n = self.0.len();
        let x = x.clamp(0.0, (n - 1) as f32);
        let i = x as usize;
        let f = x - i as f32;
        let (a, b) = (f32::from(self.0[i]), f32::from(self.0[(i + 1).min(n - 1)]));
        255.0 - (a + (b - a) * f)
    }

    /// The darkness of the seven modules from `from` where `placement` puts them, shifted by `shift`
    /// modules: the mean at each module's centre and a quarter module either side.
    fn digit(&self, placement: &Placement, from: usize, shift: f32) -> [f32; 7] {
        std::array::from_fn(|k| {
            let k = (from + k) as f32 + 0.5 + shift;
            let (x, quarter) = (placement.at(k), placement.module_at(k) / 4.0);
            (self.dark(x - quarter) + self.dark(x) + self.dark(x + quarter)) / 3.0
        })
    }

    /// How well the code fits the line where `placement` puts it: the mean correlation of its digits and of
    /// its two ends (guard and a module of quiet zone), each module sampled at its centre alone, as the
    /// placement is searched.
    fn fit(&self, template: &Template, placement: &Placement) -> f32 {
        let at = |k: isize| self.dark(placement.at(k as f32 + 0.5));
        let digits: f32 = template
            .slots
            .iter()
            .map(|s| {
                let values: [f32; 7] = std::array::from_fn(|k| at((s.at + k) as isize));
                correlation(&values, s.pattern)
            })
            .sum();
        let n = template.modules.len() as isize;
        let bar = |k: isize| (0..n).contains(&k) && template.modules[k as usize];
        let ends: f32 = [-1, n - 6]
            .iter()
            .map(|&from| {
                let values: [f32; 7] = std::array::from_fn(|k| at(from + k as isize));
                correlation_with(&values, |k| bar(from + k as isize))
            })
            .sum();
        (digits + ends) / (template.slots.len() + 2) as f32
    }

    /// The placement near `guess` (moved by up to `slack` samples, each end by a module and a half more, in
    /// perspective up to [`MAX_TILT`]) where the code fits best: the line may be another row of a code that
    /// slants or narrows across its rows, and may show it in perspective.
    fn best_placement(&self, template: &Template, guess: &Placement, slack: f32) -> Placement {
        let fit = |placement: &Placement| self.fit(template, placement);
        let best = |placements: &mut dyn Iterator<Item = Placement>, or: Placement| {
            best_of(placements, fit).map_or(or, |(placement, _)| placement)
        };
        let quarter = guess.module / 4.0;
        let tilted = |found: Placement| {
            let tilts = (-TILTS..=TILTS).map(|k| Placement { tilt: MAX_TILT * k as f32 / TILTS as f32, ..found });
            best(&mut tilts.into_iter(), found)
        };
        // The guards are where rxing saw them on its line: first the perspective between them, then how far
        // this line is moved against that one, then each end.
        let mut found = tilted(*guess);
        let steps = (slack / quarter).ceil() as i32;
        found = best(&mut (-steps..=steps).map(|k| found.stretched(k as f32 * quarter, k as f32 * quarter)), found);
        for reach in [6, 2] {
            found = tilted(found);
            found = best(&mut (-reach..=reach).map(|k| found.stretched(k as f32 * quarter, 0.0)), found);
            found = best(&mut (-reach..=reach).map(|k| found.stretched(0.0, k as f32 * quarter)), found);
        }
        // A tilt a step off moves the code's middle by a third of a module: finer, and its ends again.
        let fine = MAX_TILT / TILTS as f32 / 4.0;
        for _ in 0..2 {
            found = best(&mut (-4..=4).map(|k| Placement { tilt: found.tilt + k as f32 * fine, ..found }), found);
            found = best(&mut (-2..=2).map(|k| found.stretched(k as f32 * quarter / 2.0, 0.0)), found);
            found = best(&mut (-2..=2).map(|k| found.stretched(0.0, k as f32 * quarter / 2.0)), found);
        }
        found
    }
}

/// The strongest perspective looked for (modules at one end of a code 1.7 times as wide as at the other), and
/// in how many steps either way.
const MAX_TILT: f32 = 0.3;
const TILTS: i32 = 6;

/// The placement that `fit` scores best, with its score.
fn best_of(placements: impl Iterator<Item = Placement>, fit: impl Fn(&Placement) -> f32) -> Option<(Placement, f32)> {
    placements.map(|p| (p, fit(&p))).max_by(|a, b| a.1.total_cmp(&b.1))
}

/// How one of a read's digits shows on a line.
#[derive(Debug, Clone, Copy)]
struct DigitSeen {
    /// How well its own pattern fits (correlation), and how well the best other one does.
    own: f32,
    rival: f32,
    /// The darkness between its darkest and lightest module.
    contrast: f32,
}

/// What one scan line says of a read.
#[derive(Debug, Clone)]
struct LineVerdict {
    /// Per digit: how it shows.
    digits: Vec<DigitSeen>,
    /// Bars within the quiet zone on either side.
    bars_beside: bool,
}

/// How far (modules) each pattern is looked for around where a digit was placed, either way: the placement
/// is a straight fit, the print is not. Every pattern is given the same room.
const DIGIT_SHIFT: f32 = 0.25;

fn judge_line(line: &Line, template: &Template, guess: &Placement, slack: f32) -> LineVerdict {
    let n = template.modules.len();
    let placement = line.best_placement(template, guess, slack);
    let digits = template
        .slots
        .iter()
        .map(|slot| {
            let shifted = [-DIGIT_SHIFT, 0.0, DIGIT_SHIFT].map(|shift| line.digit(&placement, slot.at, shift));
            let best = |pattern: u8| shifted.iter().map(|v| correlation(v, pattern)).fold(f32::MIN, f32::max);
            let (low, high) = shifted[1].iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
            DigitSeen {
                own: best(slot.pattern),
                rival: rivals(slot).map(best).fold(f32::MIN, f32::max),
                contrast: high - low,
            }
        })
        .collect();
    let grey: Vec<f32> = line.0.iter().map(|&p| f32::from(p)).collect();
    // Lines are sampled four to a module: a bar is at least half a module wide.
    let bar = |module: f32| (module / 2.0).round() as usize;
    let (start, end) = (placement.module_at(0.0), placement.module_at(n as f32));
    let bars_beside = side_has_bar(&grey, placement.at(0.0), -placement.dir, start, bar(start))
        || side_has_bar(&grey, placement.at(n as f32), placement.dir, end, bar(end));
    LineVerdict { digits, bars_beside }
}

/// Quiet zone, in modules, a short code must show on both sides (GS1 asks for 7 beside an EAN-8 and 7 to 9
/// beside a UPC-E; 5 leaves room for error in where the code's edges are).
pub(super) const QUIET_MODULES: f32 = 5.0;

/// Whether, going `out` (+1 or -1) from a code's edge at `edge`, a bar darker than halfway between the
/// code's own dark and light (over its nearest seven modules) lies between one and [`QUIET_MODULES`]
/// modules out (the first module may hold the edge bar's blur), at least `bar_samples` samples wide (fewer
/// dark samples in a row are noise).
pub(super) fn side_has_bar(line: &[f32], edge: f32, out: f32, module: f32, bar_samples: usize) -> bool {
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
    let mut run = 0;
    for v in (module.ceil() as usize..(QUIET_MODULES * module) as usize).filter_map(|k| at(edge + out * k as f32)) {
        run = if v < mid { run + 1 } else { 0 };
        if run >= bar_samples.max(1) {
            return true;
        }
    }
    false
}

/// Modules either side of a code that its confirming lines take in (its quiet zone, and room to place it).
pub(super) const BEYOND_MODULES: f32 = QUIET_MODULES + 3.0;

/// The width in modules of a product code of `symbology`.
pub(super) fn modules_wide(symbology: Symbology) -> Option<usize> {
    guard_layout(symbology).map(|(_, n)| n)
}

/// A digit's pattern counts as seen on a line when it, or another, fits it at least this well; another
/// pattern contradicts it when it fits better by more than [`CONTRADICTION`] (and at least this well).
const SEEN: f32 = 0.6;
const CONTRADICTION: f32 = 0.1;

/// Lines by which the lines contradicting a digit must outnumber those confirming it for that digit to be
/// contradicted. A valid code read wrong differs from the printed one in two digits or more (the check digit
/// catches one), so two contradicted digits reject a read; one never does (a smudge, a crease).
const OUTNUMBERED_BY: usize = 3;
const CONTRADICTED_DIGITS: usize = 2;

/// Whether the original pixels confirm `read`: `lines` are scan lines across the code as the frame shows it
/// (rows of a strip sampled from the frame, not processed), `guess` where the code lies along them (within
/// `slack` samples: a line may be shifted against the one the code was read on). Codes other than EAN/UPC
/// are not judged here.
///
/// On each line the read's modules are placed where they fit best, and each digit's pattern is compared
/// with every other pattern that could stand there. The read is refused when two of its digits are
/// contradicted (more lines show another pattern than its own, see [`OUTNUMBERED_BY`]), and a short code
/// (EAN-8, UPC-E: part of a longer code, zxing-cpp #255) also when no line shows it whole or when bars stand
/// in its quiet zone on more than half of the lines that do (a label may print its outer digits beside the
/// guards, level with the bars' lower part, where a few lines pass).
pub(super) fn confirmed(lines: &Strip, read: &CodeRead, guess: &Placement, slack: f32) -> bool {
    let Some(template) = Template::of(read) else {
        return true;
    };
    let verdicts: Vec<LineVerdict> =
        lines.pixels.chunks_exact(lines.width).map(|row| judge_line(&Line(row), &template, guess, slack)).collect();
    // Glare and shadow leave parts of a line without the code's contrast: there a pattern fits the noise.
    let mut contrasts: Vec<f32> = verdicts.iter().flat_map(|v| v.digits.iter().map(|d| d.contrast)).collect();
    contrasts.sort_unstable_by(f32::total_cmp);
    let visible = VISIBLE * contrasts[contrasts.len() * 3 / 4];
    let contradicted = (0..template.slots.len())
        .filter(|&j| {
            let placed = verdicts.iter().filter(|v| v.fit() >= PLACED);
            let seen = placed.map(|v| v.digits[j]).filter(|d| d.contrast >= visible);
            let (own, other): (usize, usize) = seen.fold((0, 0), |(own, other), d| {
                let confirms = d.own >= d.rival && d.own >= SEEN;
                let contradicts = d.rival >= SEEN && d.own < d.rival - CONTRADICTION;
                (own + usize::from(confirms), other + usize::from(contradicts))
            });
            other >= own + OUTNUMBERED_BY
        })
        .count();
    if contradicted >= CONTRADICTED_DIGITS {
        return false;
    }
    if !matches!(read.symbology, Symbology::Ean8 | Symbology::UpcE) {
        return true;
    }
    let whole: Vec<&LineVerdict> = verdicts.iter().filter(|v| v.shows_whole(visible)).collect();
    let crowded = whole.iter().filter(|v| v.bars_beside).count();
    !whole.is_empty() && 2 * crowded <= whole.len()
}

/// Share of the code's usual contrast (its digits' upper quartile) a digit must show on a line to count.
const VISIBLE: f32 = 0.35;

/// How well a line's digits must fit their own patterns on the whole for the line to vote on each (a line
/// where the code was not found, or was placed a module off, says nothing of its digits).
const PLACED: f32 = 0.5;

impl LineVerdict {
    /// How well the read's digits fit the line on the whole.
    fn fit(&self) -> f32 {
        self.digits.iter().map(|d| d.own).sum::<f32>() / self.digits.len() as f32
    }

    /// Whether the line shows the read code: most digits visible, none of those contradicted, their own
    /// patterns fitting well on the whole.
    fn shows_whole(&self, visible: f32) -> bool {
        let shown: Vec<&DigitSeen> = self.digits.iter().filter(|d| d.contrast >= visible).collect();
        2 * shown.len() > self.digits.len()
            && shown.iter().all(|d| d.own >= d.rival - CONTRADICTION)
            && self.fit() >= SEEN
    }
}

/// Where a strip was sampled from: its candidate in the frame, and its layout there. Its reads are confirmed
/// on lines sampled afresh from the frame, over the code and its quiet zones.
#[derive(Clone, Copy)]
pub(super) struct Original<'a> {
    pub(super) sampler: &'a StripSampler<'a>,
    pub(super) layout: Layout,
    /// How the rows of the variant read were shifted to stand its bars upright, if they were.
    pub(super) shifts: Option<RowShifts>,
}

/// Modules a line may be shifted against the one a code was read on (bars slanting across the strip).
const SLANT_MODULES: f32 = 3.0;

impl<'a> Original<'a> {
    /// The strip `sampler` samples for `reach` and `ends`, if it is long enough to be one.
    pub(super) fn of(sampler: &'a StripSampler<'a>, reach: f32, ends: Option<BarEnds>) -> Option<Original<'a>> {
        sampler.layout(reach, ends).map(|layout| Original { sampler, layout, shifts: None })
    }

    /// Whether the frame confirms `read`, found where `guards` say on a variant of the strip, a code of
    /// `found_as` (what rxing read there; the vote may have chosen another code at the same place).
    pub(super) fn confirms(&self, read: &CodeRead, found_as: Symbology, guards: &Guards, work: &Work) -> bool {
        // Where the code was in the strip as sampled.
        let shift = self.shifts.map_or(0.0, |shifts| shifts.at(guards.row));
        let guards = Guards { start_x: guards.start_x + shift, end_x: guards.end_x + shift, ..*guards };
        let (Some(n), Some(found)) = (modules_wide(read.symbology), Placement::from_guards(found_as, &guards)) else {
            return modules_wide(read.symbology).is_none();
        };
        let layout = &self.layout;
        let centre = layout.start + found.centre() * layout.step;
        let module = found.module * layout.step;
        let slack = SLANT_MODULES * module;
        let half = (n as f32 / 2.0 + BEYOND_MODULES) * module + slack;
        let step = (module / 4.0).max(0.2);
        let width = ((2.0 * half / step) as usize).min(MAX_LINE);
        let lines = self.sampler.sample(&layout.over(centre - half, step, width));
        work.charge(3 * lines.width * lines.height);
        let guess = Placement::centred((centre - (centre - half)) / step, n, module / step, found.dir);
        confirmed(&lines, read, &guess, slack / step)
    }
}

/// Longest confirming line, in samples (a code and its quiet zones take some 500).
const MAX_LINE: usize = 2400;

/// Whether the frame confirms `read`, found by rxing on the whole frame between `guards` (frame columns, on
/// row `guards.row`): lines along the rows around it, a module apart.
pub(super) fn confirms_in_frame(frame: &LumaFrame, read: &CodeRead, guards: &Guards, work: &Work) -> bool {
    let (Some(n), Some(found)) = (modules_wide(read.symbology), Placement::from_guards(read.symbology, guards)) else {
        return modules_wide(read.symbology).is_none();
    };
    let module = found.module;
    let centre = found.centre();
    let slack = SLANT_MODULES * module;
    let half = (n as f32 / 2.0 + BEYOND_MODULES) * module + slack;
    let step = (module / 4.0).max(0.2);
    let width = ((2.0 * half / step) as usize).min(MAX_LINE);
    let start = centre - half;
    let mut pixels = Vec::with_capacity(width * STRIP_ROWS);
    for r in 0..STRIP_ROWS {
        let y = guards.row as f32 + (r as f32 - (STRIP_ROWS / 2) as f32) * module;
        for i in 0..width {
            let x = start + i as f32 * step;
            let v = (frame.interpolated(x, y - 1.5) + frame.interpolated(x, y) + frame.interpolated(x, y + 1.5)) / 3.0;
            pixels.push(v as u8);
        }
    }
    work.charge(3 * width * STRIP_ROWS);
    let lines = Strip { width, height: STRIP_ROWS, pixels };
    let guess = Placement::centred(half / step, n, module / step, found.dir);
    confirmed(&lines, read, &guess, slack / step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::rxing::encode;

    fn code(text: &str, symbology: Symbology) -> CodeRead {
        CodeRead { text: text.to_owned(), symbology }
    }

    #[test]
    fn the_modules_drawn_from_a_text_are_those_rxing_prints() {
        for (text, symbology) in [
            ("5901234123457", Symbology::Ean13),
            ("4006381333931", Symbology::Ean13),
            ("036000291452", Symbology::UpcA),
            ("96385074", Symbology::Ean8),
            ("01234565", Symbology::UpcE),
            ("12345670", Symbology::UpcE),
        ] {
            let matrix = encode(text, symbology).unwrap();
            let printed: Vec<bool> = (0..matrix.width()).map(|x| matrix.get(x, 0)).collect();
            assert_eq!(Template::of(&code(text, symbology)).unwrap().modules, printed, "{text}");
        }
    }
}

#[cfg(test)]
mod frame_tests {
    use super::*;
    use crate::synthetic::Distortion;
    use crate::vision::candidates::{cell_grid, find_candidates};
    use crate::vision::linear::verify::read_located_for_tests;
    use crate::vision::scenes::{ean13, scene};

    #[test]
    fn a_clean_code_is_confirmed_where_it_was_read() {
        for (rotation_deg, perspective_x, perspective_y) in
            [(0.0, 0.0, 0.0), (12.0, 0.0, 0.0), (190.0, 0.0, 0.0), (5.0, 0.15, 0.0), (5.0, 0.0, 0.12), (30.0, 0.1, 0.1)]
        {
            let d = Distortion { rotation_deg, perspective_x, perspective_y, ..Distortion::default() };
            let frame = scene(&ean13(), Symbology::Ean13, 2.5, d);
            let candidates = find_candidates(&cell_grid(&frame));
            let candidate = candidates.iter().find(|c| c.linear).unwrap();
            let sampler = StripSampler::new(&frame, candidate, true);
            let strip = sampler.strip(0.0, None).unwrap();
            let (read, guards) = read_located_for_tests(&strip).unwrap();
            let original = Original::of(&sampler, 0.0, None).unwrap();
            assert!(original.confirms(&read, read.symbology, &guards.unwrap(), &Work::default()), "{rotation_deg}");
        }
    }
}
