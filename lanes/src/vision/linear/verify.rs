//! The checks a 1D read must pass before it counts: enough bar edges, scan lines that agree, no bars beside a
//! short code, no other code read the other way, and a vote when the strip's lines and variants disagree.

use checkout_storage::Symbology;
use rxing::DecodeHints;

use crate::vision::filters::percentiles;
use crate::vision::rxing::{Binarizer, CodeRead, Guards, Panicked, read};
use crate::vision::work::Work;

use super::confirm::{Original, modules_wide, side_has_bar};
use super::strip::{Strip, StripOutcome};

/// Fewest bar edges worth handing to rxing: a UPC-E, the shortest code read, has 17 bars (34 edges); blur and
/// glare hide many from the counting threshold (a higher threshold missed small blurred UPC-E codes; a lower
/// one reads no more and costs time).
pub(super) const MIN_EDGES: usize = 14;

/// Bar edges along the strip's best row, counted with hysteresis around the strip's mid grey.
pub(super) fn edges(strip: &Strip) -> usize {
    edges_in(&strip.pixels, strip.width, strip.height)
}

/// Like [`edges`], for a buffer of the strip's size.
pub(super) fn edges_in(pixels: &[u8], width: usize, height: usize) -> usize {
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

/// A strip whose variants are read: the strip as sampled (where bars beside a short code are looked for), its
/// bar edges, and the frame's work counter.
pub(super) struct StripChecks<'a> {
    pub(super) strip: &'a Strip,
    pub(super) edge_count: usize,
    pub(super) work: &'a Work,
    /// Where the strip was sampled from, to confirm product codes on the frame's own pixels (tests of the
    /// strip alone have none).
    pub(super) original: Option<Original<'a>>,
}

impl StripChecks<'_> {
    /// rxing on one variant of the strip, with the checks a 1D read must pass: `Some` ends the search (a read,
    /// or rxing panicked), `None` moves on to the next variant. `later` reads the strip's variants not yet
    /// tried, for a vote when the strip's scan lines disagree or few confirm the read.
    pub(super) fn read_variant(
        &self,
        pixels: &[u8],
        as_sampled: bool,
        hints: &DecodeHints,
        later: &dyn Fn() -> Vec<CodeRead>,
    ) -> Option<StripOutcome> {
        let strip = self.strip;
        let (read, guards) = match read_located(pixels, strip.width, strip.height, hints, self.work) {
            Ok(Some(found)) => found,
            Ok(None) => return None,
            Err(Panicked) => return Some(StripOutcome::Panicked),
        };
        let weak = is_weak(read.symbology);
        // Part of a longer code read as a short one (zxing-cpp #255): the strip has too many bars for it, or
        // bars right beside it. A short code read one way and another code of its kind read the other way: no
        // telling which.
        if too_many_edges_for(read.symbology, self.edge_count)
            || (weak && guards.is_some_and(|guards| bars_beside(strip, read.symbology, guards)))
            || (weak && self.mirror_disagrees(pixels, hints, &read))
        {
            return None;
        }
        let Ok(lines) = self.row_reads(pixels, hints) else {
            return Some(StripOutcome::Panicked);
        };
        // A short code must read the same along two scan lines.
        let agreeing = lines.iter().filter(|line| **line == read).count();
        if weak && agreeing < 2 {
            return None;
        }
        // Measured on held-out frames: a tilted EAN-13 under glare or blur can read as another valid one where
        // other scan lines or later variants read the true code. A read the lines contest, or one that fewer
        // than three lines confirm, goes to a vote with the later variants (they cost time when they fail, so a
        // read many lines confirm is spared them).
        let contested = lines.iter().any(|line| *line != read);
        // A long code that many scan lines of the strip as sampled read alike stands: the frame's pixels were
        // read as they are (confirming it again loses strongly slanted codes on `bench decode`, and no wrong
        // read on the corpus came this way).
        if !contested && agreeing >= CONFIRMING_LINES && as_sampled && !weak {
            return Some(StripOutcome::Read(read));
        }
        let winner = if !contested && agreeing >= CONFIRMING_LINES {
            Some(read.clone())
        } else {
            let later = later();
            if !contested && later.iter().all(|other| *other == read) {
                Some(read.clone())
            } else {
                consensus(&read, lines.iter().chain(&later))
            }
        };
        // Whatever variant found it, the frame's own pixels must show the code (see `confirm`).
        let winner = winner?;
        let confirmed = match (&self.original, guards) {
            (None, _) => true,
            (Some(original), Some(guards)) => original.confirms(&winner, read.symbology, &guards, self.work),
            (Some(_), None) => modules_wide(winner.symbology).is_none(),
        };
        confirmed.then_some(StripOutcome::Read(winner))
    }

    /// Whether the strip variant `pixels` mirrored end to end reads as a different code of the same symbology
    /// (an upside-down UPC-E or EAN-8 can read as another valid one).
    fn mirror_disagrees(&self, pixels: &[u8], hints: &DecodeHints, read: &CodeRead) -> bool {
        let (width, height) = (self.strip.width, self.strip.height);
        let mut mirrored = pixels.to_vec();
        for row in mirrored.chunks_exact_mut(width) {
            row.reverse();
        }
        match read_code(&mirrored, width, height, hints, self.work) {
            Ok(Some(other)) => other.symbology == read.symbology && other.text != read.text,
            _ => false,
        }
    }

    /// What the rows of the strip variant `pixels` read, one row at a time: a retail scanner's scan lines.
    fn row_reads(&self, pixels: &[u8], hints: &DecodeHints) -> Result<Vec<CodeRead>, Panicked> {
        let width = self.strip.width;
        let mut reads = Vec::new();
        for row in pixels.chunks_exact(width) {
            if let Some(read) = read_code(row, width, 1, hints, self.work)? {
                reads.push(read);
            }
        }
        Ok(reads)
    }
}

/// rxing's readers on a `width` x `height` strip buffer, charged to `work`: the code read, if any.
pub(super) fn read_code(
    pixels: &[u8],
    width: usize,
    height: usize,
    hints: &DecodeHints,
    work: &Work,
) -> Result<Option<CodeRead>, Panicked> {
    Ok(read_located(pixels, width, height, hints, work)?.map(|(read, _)| read))
}

/// Like [`read_code`], with where rxing found the code's guards.
fn read_located(
    pixels: &[u8],
    width: usize,
    height: usize,
    hints: &DecodeHints,
    work: &Work,
) -> Result<Option<(CodeRead, Option<Guards>)>, Panicked> {
    work.charge(width * height);
    read(pixels, width, height, hints, Binarizer::Hybrid)
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

/// Whether the strip as sampled shows a bar within [`super::confirm::QUIET_MODULES`] beyond either end of the code rxing
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
    // One sample is a bar here: the strip has a module in one or two samples.
    side_has_bar(&line, guards.start_x + out * 1.5 * module, out, module, 1)
        || side_has_bar(&line, guards.end_x - out * end_half * module, -out, module, 1)
}

/// What rxing's 1D readers alone read in a strip (tests compare the pipeline's own readers with it).
#[cfg(test)]
pub(super) fn rxing_text(pixels: &[u8], width: usize, height: usize, work: &Work) -> Option<String> {
    use crate::vision::rxing::{LINEAR_FORMATS, hints};
    read_code(pixels, width, height, &hints(&LINEAR_FORMATS, false, false), work).ok().flatten().map(|r| r.text)
}

#[cfg(test)]
pub(super) fn read_located_for_tests(strip: &Strip) -> Option<(CodeRead, Option<Guards>)> {
    use crate::vision::rxing::{LINEAR_FORMATS, hints};
    read_located(&strip.pixels, strip.width, strip.height, &hints(&LINEAR_FORMATS, false, false), &Work::default())
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::linear::strip::STRIP_ROWS;
    use crate::vision::rxing::{LINEAR_FORMATS, hints};

    #[test]
    fn a_short_code_must_read_the_same_along_two_rows() {
        let code = crate::vision::render::render_code("96385074", Symbology::Ean8, 3, 1).unwrap();
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
        let read = |strip: &Strip, work: &Work| {
            let checks = StripChecks { strip, edge_count: 20, work, original: None };
            match checks.read_variant(&strip.pixels, true, &hints, &Vec::new) {
                Some(StripOutcome::Read(read)) => Some(read.text),
                _ => None,
            }
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
        let code = crate::vision::render::render_code("02766072", Symbology::UpcE, 3, 1).unwrap();
        let width = code.width as usize;
        let strip_of = |row: &[u8]| Strip { width, height: STRIP_ROWS, pixels: row.repeat(STRIP_ROWS) };
        let hints = hints(&LINEAR_FORMATS, false, false);
        let work = Work::default();
        let located = |strip: &Strip, work: &Work| {
            let (read, guards) = read_located(&strip.pixels, width, STRIP_ROWS, &hints, work).unwrap().unwrap();
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
        let checks = |strip| StripChecks { strip, edge_count: 20, work: &work, original: None };
        assert!(checks(&crowded).read_variant(&crowded.pixels, true, &hints, &Vec::new).is_none());
        assert!(matches!(
            checks(&clean).read_variant(&clean.pixels, true, &hints, &Vec::new),
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
}
