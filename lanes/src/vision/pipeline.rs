//! The per-frame plan: which candidate regions are tried, by which reader, in which order, within what budget.
//!
//! The candidates (`candidates`) are tried best first, 1D ones by the `linear` reader and 2D ones by the
//! `square` reader, within a budget of work (pixels resampled and handed to rxing, see `work`), so that what a
//! frame yields does not depend on how busy the machine is; the search ends at the first code read. With
//! nothing read, the frame's best 1D candidate is read once more (motion blur undone, or between its bars'
//! ends), and the best 1D candidate that looks square is tried as a QR code blurred by motion. When a candidate
//! looks like a code but nothing decodes, its pixels say why if they can (`diagnose`): glare, low contrast,
//! too small, too blurred.

use std::time::{Duration, Instant};

use rxing::BarcodeFormat;

use super::candidates::{ReadAttempt, cell_grid, covered_by_a_square, fills_a_square, find_candidates};
use super::diagnose::Unreadable;
use super::frame::LumaFrame;
use super::linear::{LinearReader, Steps, confirms_whole_frame_read};
use super::rxing::{Binarizer, CodeRead, Guards, LINEAR_FORMATS, Panicked, READ_FORMATS, hints, read};
use super::square::SquareReader;
use super::work::Work;

/// Which steps of the pipeline run (the benchmark switches them off one by one to measure them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisionConfig {
    /// Work after which no further candidate is tried: pixels resampled into strips plus pixels handed to
    /// rxing (a crop of w x h handed over twice costs 2wh). Counted, not timed: the same frame always gets the
    /// same attempts, however loaded the machine is.
    pub work_budget: u64,
    /// Work after which no further search of the frame starts (its coarser levels, framed, its negative: a
    /// photo is searched several ways, a lane's frame once). Spent searches count whole, so a search that
    /// overshoots its own budget shortens the next.
    pub frame_work_budget: u64,
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
    /// moved while the shutter was open; see `vision/linear/deblur.rs`).
    pub deblur: bool,
    /// Also try inverted crops (light bars on a dark screen).
    pub inverted: bool,
    /// When no candidate decodes, run rxing once on the whole frame (with TryHarder on a frame up to 800x600:
    /// a small, tight crop of a 1D code whose bars the region finder does not group), the read confirmed on
    /// the frame's pixels.
    pub whole_frame_fallback: bool,
    /// When nothing is read, search the frame's negative too: light codes on a dark ground (some packaging, a
    /// screen in dark mode). Doubles the time of a frame without a code, so it is for photos, not the lanes.
    pub negative_fallback: bool,
    /// When nothing is read, search the frame again inside a quiet zone of its own light, enlarged when it is
    /// small: a code that fills the picture or touches its edges (a tight crop, a phone held close).
    pub framed_fallback: bool,
    /// When rxing cannot read one of the frame's best 2D candidates, read it once more stretched along the
    /// axis its modules are narrower on (a QR code seen at a slant, foreshortened).
    pub unsquash: bool,
}

impl VisionConfig {
    /// For photos from anywhere (`checkout decode`, `bench photos`): a code may be light on dark, fill the
    /// picture or touch its edges, and a last pass of rxing over the whole frame is worth its time.
    pub fn photos() -> VisionConfig {
        VisionConfig {
            negative_fallback: true,
            framed_fallback: true,
            whole_frame_fallback: true,
            unsquash: true,
            frame_work_budget: PHOTO_WORK_BUDGET,
            ..VisionConfig::default()
        }
    }
}

impl Default for VisionConfig {
    fn default() -> Self {
        VisionConfig {
            work_budget: DEFAULT_WORK_BUDGET,
            frame_work_budget: u64::MAX,
            time_cap: Duration::from_millis(250),
            // More candidates read no more frames on `bench decode`, and cost the slowest frames (those without a
            // readable code) more work.
            max_candidates: 6,
            first_read_ends: true,
            deskew: true,
            // Measured on `checkout bench decode --ablate`: no accuracy gained on 1D strips, a little time lost.
            stretch: false,
            retries: true,
            deblur: true,
            // Costs time on every frame; retail and wallet codes are dark on light.
            inverted: false,
            whole_frame_fallback: false,
            // Wallet codes and retail barcodes are dark on light, and a lane's empty frames stay cheap.
            negative_fallback: false,
            framed_fallback: false,
            // Measured on `bench decode` (seeds 2026 and 7): reads no frame more (its codes lean back at most
            // about 7 degrees), and the work it takes costs one or two frames at the edge of the budget.
            unsquash: false,
        }
    }
}

/// Default [`VisionConfig::work_budget`].
pub const DEFAULT_WORK_BUDGET: u64 = 2_500_000;

/// [`VisionConfig::frame_work_budget`] of a photo: a bound on the photos nothing reads (a 12 Mpx photo searched
/// at three levels, framed and as its negative). Measured on the corpus: every read took at most 5.8 million;
/// at 4 million, one close-up was lost.
pub const PHOTO_WORK_BUDGET: u64 = 8_000_000;

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
    let steps =
        Steps { deskew: config.deskew, stretch: config.stretch, retries: config.retries, deblur: config.deblur };
    let linear_reader = LinearReader { frame, steps, hints: &linear_hints, work: &work };
    // A joined candidate whose largest part was tried already (`plain_only`): its strip is read as it is.
    let plain_reader = LinearReader { steps: Steps { retries: false, ..steps }, ..linear_reader };
    let square_reader = SquareReader { frame, hints: &qr_hints, work: &work, unsquash: config.unsquash };
    let (mut squares, mut lines) = (0, 0);
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
            let reader = if candidate.plain_only { &plain_reader } else { &linear_reader };
            reader.read(candidate, lines <= STRAIGHTENED_READS)
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
    // With nothing read, the best 1D candidate once more, motion blur undone or its rows between its bars' ends;
    // not on a frame that has already taken much work, the slowest (on `bench decode` it reads frames nothing
    // else reads, none wrong, at no cost in p99, and none that had already spent two fifths of the budget).
    if analysis.reads.is_empty()
        && config.retries
        && work.spent() < config.work_budget / 5 * 2
        && !analysis.timed_out
        && let Some(best) = candidates.iter().take(config.max_candidates).find(|c| c.linear && !c.plain_only)
    {
        analysis.reads.extend(linear_reader.read_again(best));
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
        && let Ok(Some((read, guards))) = read_whole(frame, &work)
        && confirms_whole_frame_read(frame, &read, guards.as_ref(), &work)
    {
        analysis.reads.push(read);
    }
    analysis.work = work.spent();
    if analysis.reads.is_empty() {
        analysis.unreadable = why.and_then(|(_, reason)| reason);
    }
    analysis
}

/// rxing once on the whole frame, TryHarder when it is small (see [`VisionConfig::whole_frame_fallback`]).
fn read_whole(frame: &LumaFrame, work: &Work) -> Result<Option<(CodeRead, Option<Guards>)>, Panicked> {
    let (width, height) = (frame.width as usize, frame.height as usize);
    let try_harder = width * height <= TRY_HARDER_PIXELS;
    work.charge(if try_harder { 4 } else { 1 } * width * height);
    read(&frame.pixels, width, height, &hints(&READ_FORMATS, try_harder, false), Binarizer::Hybrid)
}

/// Frames up to this size get rxing's harder search (every row, both ways) in the whole-frame pass.
const TRY_HARDER_PIXELS: usize = 800 * 600;

/// The 2D candidates of a frame, best first, whose module grid is read when rxing fails on them. (On `bench
/// decode` a second one still reads a few QR codes more, for a little p99 time: a QR code beside a block of
/// print is often the second.)
const GRID_READS: usize = 2;
/// The 1D candidates of a frame, best first, whose strip is straightened when all else fails on them
/// (measured: a second one read none more).
const STRAIGHTENED_READS: usize = 1;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{Distortion, FrameSpec, render_frame};
    use crate::vision::analyse_frame;
    use crate::vision::candidates::{CELL, Candidate, box_shape};
    use crate::vision::scenes::{clutter, ean13, patient, reads, scene, scene_spec};
    use checkout_storage::Symbology;

    #[test]
    fn a_qr_code_joined_to_clutter_by_a_faint_line_is_still_a_candidate() {
        let mut frame = LumaFrame::new(800, 240, 160);
        let code = crate::vision::render::render_code("2594191774197841", Symbology::QrCode, 4, 0).unwrap();
        crate::vision::render::paste(&mut frame, &code, 40, 60);
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
        let code = crate::vision::render::render_code(text, Symbology::QrCode, 5, 0).unwrap();
        let mut sharp = LumaFrame::new(640, 480, 150);
        crate::vision::render::paste(&mut sharp, &code, 220, 130);
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
            let frame =
                clutter(Distortion { clutter: 12, noise_sigma: 4.0, blur_sigma: 0.5, ..Distortion::default() }, seed);
            let analysis = analyse_frame(&frame, &patient()).unwrap();
            assert_eq!(analysis.reads, vec![], "seed {seed}");
        }
    }
}
