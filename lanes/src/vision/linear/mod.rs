//! 1D codes (EAN, UPC, Code 128) read from strips.
//!
//! A 1D candidate is resampled along its estimated scan direction into a small horizontal strip (`strip`),
//! checked for enough bar edges, and handed to rxing's 1D readers; if that fails, variants are made one at a
//! time and tried (`variants`): sharpened, normalised against a moving average, stretched between local
//! extremes (after none, one or two sharpenings), and under glare a composite of the rows' best-kept parts.
//! Under glare a failed strip is sampled again, longer and over the bars' whole height. Every read is checked
//! against the strip's rows read one by one (scan lines, `verify`): when a line reads another code, or fewer
//! than three confirm it, the lines and the variants not yet tried vote, and a code counts only when clearly
//! ahead. An EAN-8 or UPC-E read (weak checksums) also needs two agreeing lines and five modules of quiet zone
//! either side (else it is part of a longer code, zxing-cpp #255).
//!
//! When all of that fails on a frame's best 1D candidate, the strip's rows are shifted so that slanted bars
//! stand upright (`rows`), averaged in threes, sharpened, stretched and tried again. With nothing read in the
//! frame, that candidate is read once more: with motion blur across its bars undone (`deblur`) when its strip
//! looks blurred, else with its rows laid between its bars' own ends (`bar_ends`).

mod bar_ends;
mod confirm;
mod deblur;
mod rows;
mod strip;
mod variants;
mod verify;

use rxing::DecodeHints;

use super::candidates::{Candidate, ReadAttempt};
use super::diagnose::{looks_blurred, why_unreadable};
use super::filters::{normalise_envelope, normalise_locally, smooth_across_rows, stretch};
use super::frame::LumaFrame;
use super::rxing::{CodeRead, Guards};
use super::work::Work;

use bar_ends::bar_ends;
use confirm::Original;
use strip::{STRIP_ROWS, Strip, StripOutcome, StripSampler};
use variants::{StripReach, StripVariant, Variants, plan};
use verify::{MIN_EDGES, StripChecks, edges, edges_in, read_code};

/// Which of the 1D steps run (`VisionConfig`'s switches; the benchmark turns them off one by one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::vision) struct Steps {
    /// Resample along the candidate's estimated orientation (otherwise: along x).
    pub(in crate::vision) deskew: bool,
    /// Stretch each strip's contrast to the full grey range.
    pub(in crate::vision) stretch: bool,
    /// Retry a failed strip as variants, longer under glare, straightened, between its bars' ends.
    pub(in crate::vision) retries: bool,
    /// Undo motion blur across the best candidate's bars when its strip looks blurred.
    pub(in crate::vision) deblur: bool,
}

/// Reads a frame's 1D candidates with the steps switched on, charging `work` what it resamples and hands to
/// rxing.
#[derive(Clone, Copy)]
pub(in crate::vision) struct LinearReader<'a> {
    /// The frame the candidates were found in.
    pub(in crate::vision) frame: &'a LumaFrame,
    /// The steps switched on.
    pub(in crate::vision) steps: Steps,
    /// rxing's hints for the 1D formats (a strip as sampled is read with these; its variants never inverted).
    pub(in crate::vision) hints: &'a DecodeHints,
    /// The frame's work counter.
    pub(in crate::vision) work: &'a Work,
}

/// Share of a strip's samples at white, above which a failed strip is tried again longer.
const GLARE_SHARE: f32 = 0.01;

/// How far the strip of a candidate under glare reaches past its ends, as a share of its length.
const GLARE_REACH: f32 = 0.9;

/// Shares of the measured blur a motion-blurred strip is deblurred with, in turn: the measure is good to a few
/// percent on most strips, and a filter for a blur further off reads far fewer (on the moving frames of `bench
/// decode`, this pair read more than the measure alone, and more than a pair further apart).
const DEBLUR_SHARES: [f32; 2] = [0.95, 1.05];

impl LinearReader<'_> {
    /// Reads a 1D candidate's strip and its variants, and under glare a longer strip; with `straighten` (the
    /// frame's best 1D candidate), its rows straightened as a last resort.
    pub(in crate::vision) fn read(&self, candidate: &Candidate, straighten: bool) -> ReadAttempt {
        let sampler = StripSampler::new(self.frame, candidate, self.steps.deskew);
        let Some(strip) = sampler.strip(0.0, None) else {
            return ReadAttempt::Failed(None);
        };
        let raw = strip.pixels.clone();
        let original = Original::of(&sampler, 0.0, None);
        let outcome = self.read_strip(strip, original, StripReach::Found, straighten);
        let failed = matches!(outcome, StripOutcome::Failed | StripOutcome::NotACode);
        if !failed || !self.steps.retries || saturated_share(&raw) < GLARE_SHARE {
            return finish(outcome, &raw, candidate);
        }
        // Glare: the finder may have seen only the part of the code beside the reflection, and the bars may keep
        // their contrast only near their ends, farthest from it. The strip reaches on past both ends, where the
        // rest of the code would be, and its rows span the candidate's whole height.
        let Some(longer) = sampler.strip(GLARE_REACH, None) else {
            return finish(outcome, &raw, candidate);
        };
        let original = Original::of(&sampler, GLARE_REACH, None);
        finish(self.read_strip(longer, original, StripReach::PastTheEnds, straighten), &raw, candidate)
    }

    /// The frame's best 1D candidate, when nothing was read: once more with motion blur undone when its strip
    /// looks blurred (and `Steps::deblur`), else between its bars' ends. (On `bench decode` the bars' ends read
    /// no frame whose strip looks blurred, and trying both slowed the slowest frames.)
    pub(in crate::vision) fn read_again(&self, candidate: &Candidate) -> Option<CodeRead> {
        let sampler = StripSampler::new(self.frame, candidate, self.steps.deskew);
        let found = sampler.strip(0.0, None)?;
        self.work.charge(3 * found.width * found.height);
        if self.steps.deblur && looks_blurred(&found.pixels, found.width) {
            return self.read_motion_deblurred(found, None);
        }
        self.read_between_bar_ends(&sampler, &found)
    }

    /// A 1D candidate read once more, its rows laid between its bars' own ends and along them where perspective
    /// shears the code (see `BarEnds`; the cells' extent that places the rows at first is a coarse guess of
    /// both). Under glare the strip reaches past the candidate's ends (`found`, its strip as the finder found
    /// it, tells), as the glare strip of [`LinearReader::read`] does.
    fn read_between_bar_ends(&self, sampler: &StripSampler, found: &Strip) -> Option<CodeRead> {
        let reach = if saturated_share(&found.pixels) >= GLARE_SHARE { GLARE_REACH } else { 0.0 };
        let ends = bar_ends(sampler, self.work)?;
        let strip = sampler.strip(reach, Some(ends))?;
        match self.read_strip(strip, Original::of(sampler, reach, Some(ends)), StripReach::BetweenEnds, false) {
            StripOutcome::Read(read) => Some(read),
            StripOutcome::Failed | StripOutcome::NotACode | StripOutcome::Panicked => None,
        }
    }

    /// A 1D candidate's strip read once more with motion blur across its bars undone (see `deblur`): its rows
    /// brought into line, the blur measured on their mean, each row deblurred. Only a strip that looks blurred
    /// is tried (`looks_blurred`): a small share of the frames that a looser test would send here, at no cost
    /// in moving frames read.
    fn read_motion_deblurred(&self, strip: Strip, original: Option<Original>) -> Option<CodeRead> {
        let (width, height) = (strip.width, strip.height);
        let (aligned, shifts) = rows::aligned(&strip.pixels, width, height)?;
        self.work.charge(width * height);
        let profile: Vec<f32> = (0..width)
            .map(|i| (0..height).map(|r| f32::from(aligned[r * width + i])).sum::<f32>() / height as f32)
            .collect();
        let travel = deblur::travel_across_bars(&profile)?;
        let smoothed = smooth_across_rows(&aligned, width, height, 1);
        for share in DEBLUR_SHARES {
            let pixels = deblur::undo_box_blur(&smoothed, width, travel * share);
            let deblurred = Strip { width, height, pixels };
            let original = original.map(|o| Original { shifts: Some(shifts), ..o });
            if let StripOutcome::Read(read) = self.read_strip(deblurred, original, StripReach::Deblurred, false) {
                return Some(read);
            }
        }
        None
    }

    /// Reads a strip as it is, then (with `Steps::retries`) its variants in the order [`plan`] gives for its
    /// `reach`, each made only when the ones before it failed; then, when `straighten` (the frame's best 1D
    /// candidate), its rows straightened.
    fn read_strip(
        &self,
        mut strip: Strip,
        original: Option<Original>,
        reach: StripReach,
        straighten: bool,
    ) -> StripOutcome {
        // Three bilinear samples a strip pixel.
        self.work.charge(3 * strip.width * strip.height);
        let raw = Strip { pixels: strip.pixels.clone(), ..strip };
        if self.steps.stretch {
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
        let plain = DecodeHints { AlsoInverted: Some(false), ..self.hints.clone() };
        let variants = Variants { strip: &strip, raw: &raw, normalised: &normalised, edge_count };
        let checks = StripChecks { strip: &strip, edge_count, work: self.work, original };
        let tried = plan(reach, self.steps.retries, glared);
        for (position, &variant) in tried.iter().enumerate() {
            let pixels = variants.make(variant);
            let hints = if variant == StripVariant::AsSampled { self.hints } else { &plain };
            let later = || -> Vec<CodeRead> {
                tried[position + 1..]
                    .iter()
                    .filter_map(|&later| {
                        read_code(&variants.make(later), strip.width, strip.height, &plain, self.work).ok().flatten()
                    })
                    .collect()
            };
            if let Some(outcome) = checks.read_variant(&pixels, variant == StripVariant::AsSampled, hints, &later) {
                return outcome;
            }
        }
        if !self.steps.retries || !straighten {
            return StripOutcome::Failed;
        }
        // Bars that cross the strip at a slant: rows shifted upright, averaged in threes (less noise), sharpened
        // and stretched. (On `bench decode` the averaged rows as they are read no frame, nor did a reader of the
        // grey levels that voted digit by digit, once in `ean_grey.rs`, which also read a code wrong and slowed
        // the frames without a readable code.)
        let Some((aligned, shifts)) = rows::aligned(&raw.pixels, raw.width, raw.height) else {
            return StripOutcome::Failed;
        };
        self.work.charge(raw.width * raw.height);
        let straightened = variants.straightened(&aligned);
        // The strip's other variants read nothing: its scan lines alone vote.
        let checks = StripChecks { original: original.map(|o| Original { shifts: Some(shifts), ..o }), ..checks };
        checks.read_variant(&straightened, false, &plain, &Vec::new).unwrap_or(StripOutcome::Failed)
    }
}

/// Whether the frame's own pixels confirm a code rxing read on the whole frame (`guards`: where, see
/// `confirm`). A product code rxing does not say the place of is not taken.
pub(in crate::vision) fn confirms_whole_frame_read(
    frame: &LumaFrame,
    read: &CodeRead,
    guards: Option<&Guards>,
    work: &Work,
) -> bool {
    match guards {
        Some(guards) => confirm::confirms_in_frame(frame, read, guards, work),
        None => confirm::modules_wide(read.symbology).is_none(),
    }
}

fn saturated_share(pixels: &[u8]) -> f32 {
    pixels.iter().filter(|&&p| p >= 250).count() as f32 / pixels.len().max(1) as f32
}

/// What reading a candidate gave, from what reading its strip gave; a hint when it failed, from `raw` (its
/// strip as the finder found it).
fn finish(outcome: StripOutcome, raw: &[u8], candidate: &Candidate) -> ReadAttempt {
    match outcome {
        StripOutcome::Read(read) => ReadAttempt::Read(read),
        StripOutcome::Panicked => ReadAttempt::Panicked,
        // Only regions that look like a code get a hint: several cells, mostly one direction.
        StripOutcome::NotACode | StripOutcome::Failed if candidate.cells.len() < 6 => ReadAttempt::Failed(None),
        StripOutcome::NotACode | StripOutcome::Failed => {
            ReadAttempt::Failed(why_unreadable(raw, raw.len() / STRIP_ROWS))
        }
    }
}

#[cfg(test)]
mod tests {
    use checkout_storage::Symbology;

    use crate::synthetic::Distortion;
    use crate::vision::scenes::{ean13, patient, reads, scene};
    use crate::vision::{Unreadable, VisionConfig, analyse_frame};

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
