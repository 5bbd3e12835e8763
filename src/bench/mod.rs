//! `checkout bench decode`: renders a seeded set of distorted frames and measures our decoder against zxing-cpp on them.
//!
//! The frames are made by the synthetic camera (VGA and 720p; 1D codes tilted up to 45 degrees, QR codes at
//! any rotation; perspective, blur, noise, glare, low contrast, clutter; one frame in seven shows no code).
//! Each frame is decoded by our pipeline on this thread (one core), then piped as raw grey bytes to a small
//! Python script that times `zxingcpp.read_barcodes` on it (image loading excluded on both sides).
//! Decoded texts are compared as the lane would use them (a GTIN normalised, a payment code's digits); a
//! payment code is never printed.

use std::{collections::BTreeMap, time::Instant};

use checkout_lanes::{
    synthetic::render_frame_judged,
    vision::{VisionConfig, analyse_frame, decode_frame_whole, encode_png},
};
use serde_json::{Value, json};

use crate::cli::BenchDecodeArgs;

mod cases;
mod peer;
pub mod photos;
mod stats;

use cases::{Case, KINDS, Kind, Set, blurring_travel, key_of, make_case};
use peer::Peer;
use stats::*;

/// What one run of `bench decode` measured.
struct Measured {
    cases: Vec<Case>,
    /// "ours" first, then the ablations.
    contenders: Vec<Contender>,
    baseline: Option<Contender>,
    peer: Option<Contender>,
    peer_name: String,
    /// Why zxing-cpp was not measured, if it was not.
    peer_missing: Option<String>,
    /// Hints given on frames that read nothing, by hint (and "none"): see [`HintTally`].
    hints: BTreeMap<String, HintTally>,
    /// Work spent by "ours" per frame of the main set, frames whose search the work budget cut short, and
    /// frames that reached the safety time cap.
    work: Vec<u64>,
    cut: usize,
    timed_out: usize,
    elapsed: std::time::Duration,
}

impl Measured {
    /// Every contender that has a column: ours (and its ablations), the baseline, the peer.
    fn columns(&self) -> Vec<&Contender> {
        self.contenders.iter().chain(self.baseline.iter()).chain(self.peer.iter()).collect()
    }
}

pub fn run(args: BenchDecodeArgs) -> anyhow::Result<()> {
    let measured = measure(&args)?;
    if args.json {
        print_json(&args, &measured);
    } else {
        print_table(&args, &measured);
    }
    Ok(())
}

/// Renders the set and decodes every frame with each contender.
fn measure(args: &BenchDecodeArgs) -> anyhow::Result<Measured> {
    let mut cases: Vec<Case> = (0..args.frames)
        .map(|i| make_case(i, args.seed, Set::Main))
        .chain((0..args.close_ups).map(|i| make_case(i, args.seed, Set::CloseUp)))
        .chain((0..args.moving).map(|i| make_case(i, args.seed, Set::Moving)))
        .collect::<anyhow::Result<_>>()?;
    let mut peer = if args.no_peer { Err("not run (--no-peer)".to_owned()) } else { Peer::start(&args.python) };
    let mut variants: Vec<(String, VisionConfig)> = vec![("ours".to_owned(), VisionConfig::default())];
    if args.ablate {
        let base = VisionConfig::default();
        variants.push(("ours, no deskew".to_owned(), VisionConfig { deskew: false, ..base.clone() }));
        variants.push(("ours + stretch".to_owned(), VisionConfig { stretch: true, ..base.clone() }));
        variants.push(("ours, no retries".to_owned(), VisionConfig { retries: false, ..base.clone() }));
        variants.push(("ours, no deblur".to_owned(), VisionConfig { deblur: false, ..base.clone() }));
        variants.push(("ours + inverted".to_owned(), VisionConfig { inverted: true, ..base.clone() }));
        variants.push(("ours + whole-frame fallback".to_owned(), VisionConfig { whole_frame_fallback: true, ..base }));
    }
    let mut contenders: Vec<Contender> =
        variants.iter().map(|(name, _)| Contender { name: name.clone(), outcomes: Vec::new() }).collect();
    let mut baseline = args.baseline.then(|| Contender { name: "rxing whole frame".to_owned(), outcomes: Vec::new() });
    let mut peer_outcomes = Vec::new();
    let mut peer_failure: Option<String> = None;
    // Hints given on frames that read nothing, by hint (and "none"): see [`HintTally`].
    let mut hints: BTreeMap<String, HintTally> = BTreeMap::new();
    // Work spent by "ours" per frame, and frames whose search the work budget cut short.
    let mut work: Vec<u64> = Vec::new();
    let (mut cut, mut timed_out) = (0usize, 0usize);
    let started = Instant::now();
    for case in &mut cases {
        let (frame, legibility) =
            render_frame_judged(&case.spec).map_err(|e| anyhow::anyhow!("rendering {:?}: {e}", case.spec))?;
        case.legibility = legibility;
        let case = &*case;
        for ((_, config), contender) in variants.iter().zip(contenders.iter_mut()) {
            let t = Instant::now();
            let analysis = analyse_frame(&frame, config);
            let micros = t.elapsed().as_secs_f64() * 1e6;
            // The work figures are the main set's, like the table's rows above the close-ups.
            let counted = contender.name == "ours" && case.set == Set::Main;
            if counted && let Ok(a) = &analysis {
                work.push(a.work);
                cut += usize::from(a.reads.is_empty() && a.tried < a.candidates.min(config.max_candidates));
                timed_out += usize::from(a.timed_out);
            }
            let (tried, candidates) = analysis.as_ref().map_or((0, 0), |a| (a.tried, a.candidates));
            let (keys, hint) = match analysis {
                Ok(a) => (a.reads.iter().map(|r| key_of(&r.text, r.symbology)).collect::<Vec<_>>(), a.unreadable),
                Err(_) => (Vec::new(), None),
            };
            let outcome = judge(case, &keys, micros);
            if contender.name == "ours" && keys.is_empty() && case.set != Set::CloseUp {
                let name = hint.map_or_else(|| "none".to_owned(), |hint| format!("{hint:?}"));
                hints.entry(name).or_default().add(case);
            }
            if contender.name == "ours"
                && (outcome.false_read || (case.truth.is_some() && !outcome.correct))
                && let Some(dir) = &args.failures
            {
                let at = contender.outcomes.len();
                keep_failure(dir, at, case, &frame, &keys, (tried, candidates), hint.as_ref())?;
            }
            contender.outcomes.push(outcome);
        }
        if let Some(baseline) = baseline.as_mut() {
            let t = Instant::now();
            let reads = decode_frame_whole(&frame).unwrap_or_default();
            let micros = t.elapsed().as_secs_f64() * 1e6;
            let keys: Vec<String> = reads.iter().map(|r| key_of(&r.text, r.symbology)).collect();
            baseline.outcomes.push(judge(case, &keys, micros));
        }
        if let Ok(p) = peer.as_mut() {
            match p.decode(&frame) {
                Ok((keys, micros)) => peer_outcomes.push(judge(case, &keys, micros)),
                Err(e) => peer_failure = Some(e),
            }
            if peer_failure.is_some() {
                peer = Err(peer_failure.clone().unwrap_or_default());
            }
        }
    }
    let elapsed = started.elapsed();
    let (peer_name, peer_missing) = match &peer {
        Ok(p) if peer_outcomes.len() == cases.len() => (format!("zxing-cpp {}", p.version), None),
        Ok(_) => ("zxing-cpp".to_owned(), Some("the peer stopped answering".to_owned())),
        Err(e) => ("zxing-cpp".to_owned(), Some(e.clone())),
    };
    let peer = peer_missing.is_none().then(|| Contender { name: peer_name.clone(), outcomes: peer_outcomes });
    Ok(Measured { cases, contenders, baseline, peer, peer_name, peer_missing, hints, work, cut, timed_out, elapsed })
}

/// Writes a frame "ours" got wrong to `dir` as PNG, and says what it read (product keys only: a payment
/// code is never printed).
fn keep_failure(
    dir: &std::path::Path,
    at: usize,
    case: &Case,
    frame: &checkout_lanes::vision::LumaFrame,
    keys: &[String],
    (tried, candidates): (usize, usize),
    hint: Option<&checkout_lanes::vision::Unreadable>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let set = match case.set {
        Set::Main => String::new(),
        Set::CloseUp => "-close".to_owned(),
        Set::Moving => format!("-moving{:.1}", blurring_travel(case)),
    };
    let name = format!("{at:04}-{}-tilt{:.0}{set}.png", case.kind.name(), case.tilt);
    let png = encode_png(frame).map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::write(dir.join(&name), png)?;
    let read: Vec<&str> = keys.iter().map(|k| if k.starts_with("gtin:") { k.as_str() } else { "(other)" }).collect();
    eprintln!(
        "{name}: {:?} {:?}, {tried} of {candidates} regions tried, hint {hint:?} read {read:?}",
        case.spec, case.legibility
    );
    Ok(())
}

/// The run as one JSON object.
fn print_json(args: &BenchDecodeArgs, measured: &Measured) {
    let cases = &measured.cases;
    let frames = args.frames;
    let groups = groups(cases);
    let summary = |c: &Contender| {
        let group = |name: &str| groups.iter().find(|g| g.0 == name).map(|g| g.1.clone()).unwrap_or_default();
        let coded = &group(LEGIBLE);
        let under15 = &group(UNDER_15);
        let washed = &group("washed out");
        let all_codes = &group("all codes");
        let every = stats(c, cases, &(0..frames).collect::<Vec<_>>());
        let empty: Vec<usize> = (0..frames).filter(|&i| cases[i].kind == Kind::None).collect();
        let vga: Vec<usize> = (0..frames).filter(|&i| cases[i].spec.width == 640).collect();
        let close_ups = stats(c, cases, &group(CLOSE_UPS));
        let moving: serde_json::Map<String, Value> = MOVING
            .iter()
            .map(|(name, _, _)| {
                let s = stats(c, cases, &group(name));
                let row = json!({"frames": s.coded, "accuracy": s.accuracy() / 100.0, "median_ms": s.median()});
                (name.to_string(), row)
            })
            .collect();
        let per_format: serde_json::Map<String, Value> = KINDS
            .iter()
            .filter(|k| **k != Kind::None)
            .map(|k| {
                let s = stats(c, cases, &group(k.name()));
                (
                    k.name().to_owned(),
                    json!({"accuracy": s.accuracy() / 100.0, "median_ms": s.median(), "p99_ms": s.p99()}),
                )
            })
            .collect();
        let (latency, dropped) = lane_latency(c, frames);
        json!({
            "name": c.name,
            "accuracy": stats(c, cases, coded).accuracy() / 100.0,
            "accuracy_tilt_under_15": stats(c, cases, under15).accuracy() / 100.0,
            "accuracy_all_codes_with_washed_out": stats(c, cases, all_codes).accuracy() / 100.0,
            "washed_out_frames": washed.len(),
            "washed_out_read": stats(c, cases, washed).correct,
            "false_positives": stats(c, cases, &empty).false_reads,
            "misreads": stats(c, cases, all_codes).false_reads,
            "median_ms": every.median(),
            "p99_ms": every.p99(),
            "vga_p99_ms": stats(c, cases, &vga).p99(),
            "lane_p99_latency_ms_at_30fps": latency,
            "lane_frames_dropped_at_30fps": dropped,
            "per_format": per_format,
            "close_ups": json!({"frames": close_ups.coded, "accuracy": close_ups.accuracy() / 100.0,
                "median_ms": close_ups.median(), "p99_ms": close_ups.p99()}),
            "moving": moving,
        })
    };
    let mut out = json!({
        "frames": frames,
        "close_ups": args.close_ups,
        "moving": args.moving,
        "seed": args.seed,
        "ours": summary(&measured.contenders[0]),
        "peer": measured.peer.as_ref().map(summary),
    });
    if let Some(missing) = &measured.peer_missing {
        out["peer_missing"] = json!(missing);
    }
    if measured.contenders.len() > 1 || measured.baseline.is_some() {
        let variants = measured.contenders[1..].iter().chain(measured.baseline.iter());
        out["variants"] = variants.map(summary).collect();
    }
    println!("{out}");
}

/// The run as the table a person reads.
fn print_table(args: &BenchDecodeArgs, measured: &Measured) {
    let Measured { cases, hints, cut, timed_out, elapsed, peer_name, peer_missing, .. } = measured;
    let frames = args.frames;
    let groups = groups(cases);
    let all = measured.columns();
    let main = &cases[..frames];
    let coded = main.iter().filter(|c| c.kind != Kind::None).count();
    println!(
        "checkout bench decode: {} frames (seed {}), {} with a code, {} without; {} VGA, {} 720p; \
         and {} close-ups, {} moving; {:.1} s",
        frames,
        args.seed,
        coded,
        frames - coded,
        main.iter().filter(|c| c.spec.width == 640).count(),
        main.iter().filter(|c| c.spec.width == 1280).count(),
        args.close_ups,
        args.moving,
        elapsed.as_secs_f64()
    );
    println!(
        "1D codes tilted up to 45° (a quarter of them upside down), QR at any rotation; perspective, blur, noise,"
    );
    println!("glare, low contrast, clutter. Decode times on one thread, image loading excluded on both sides.");
    match &peer_missing {
        None => println!("peer: {peer_name} (Python, read_barcodes with its defaults), same frames, same run"),
        Some(why) => println!("peer: zxing-cpp not measured: {why}. Our results alone."),
    }
    println!();
    print!("{:<12} {:>5}", "frames", "n");
    for c in &all {
        print!(" | {:^33}", truncate(&c.name, 33));
    }
    println!();
    print!("{:<12} {:>5}", "", "");
    for _ in &all {
        print!(" | {:>7} {:>7} {:>7} {:>9}", "acc %", "med ms", "p99 ms", "false rd");
    }
    println!();
    for (name, indices) in &groups {
        print!("{:<12} {:>5}", truncate(name, 12), indices.len());
        for c in &all {
            let s = stats(c, cases, indices);
            let acc = if s.coded == 0 { "-".to_owned() } else { format!("{:.1}", s.accuracy()) };
            print!(" | {:>7} {:>7.2} {:>7.2} {:>9}", acc, s.median(), s.p99(), s.false_reads);
        }
        println!();
    }
    println!();
    println!("false rd: reads that are wrong (a wrong text, or any read on a frame with no code).");
    println!("close-ups: codes held near the camera (4 to 20 pixels a module), in no other row.");
    println!("moving: codes that moved while the shutter was open, by how far (modules) across their bars (1D) or in");
    println!("any direction (QR); no glare; in no other row.");
    for c in &all {
        let (latency, dropped) = lane_latency(c, frames);
        println!(
            "{}: lane at 30 fps, newest frame first: p99 frame-to-read latency {:.1} ms, {} of {} frames dropped",
            c.name, latency, dropped, frames
        );
    }
    let mut work = measured.work.clone();
    work.sort_unstable();
    if let (Some(&max), false) = (work.last(), work.is_empty()) {
        println!(
            "ours: work per frame (pixels resampled and handed to rxing) median {}, p99 {}, max {}; budget {}, \
             cut short a fruitless search on {} frames; safety time cap reached on {} frames",
            work[work.len() / 2],
            work[(work.len() - 1) * 99 / 100],
            max,
            VisionConfig::default().work_budget,
            cut,
            timed_out
        );
    }
    if !hints.is_empty() {
        println!(
            "ours: the cashier's hint on frames that read nothing: codes of the set (of them under glare) / moving \
             codes / frames without a code:"
        );
        let list: Vec<String> =
            hints.iter().map(|(k, t)| format!("{k} {} ({}) / {} / {}", t.codes, t.glared, t.moving, t.empty)).collect();
        println!("      {}", list.join("; "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::cases::tilt_of;

    #[test]
    fn tilt_folds_to_the_nearest_upright() {
        assert!((tilt_of(30.0, false) - 30.0).abs() < 1e-3);
        assert!((tilt_of(-30.0, false) - 30.0).abs() < 1e-3);
        assert!((tilt_of(190.0, false) - 10.0).abs() < 1e-3);
        assert!((tilt_of(100.0, true) - 10.0).abs() < 1e-3);
    }

    #[test]
    fn cases_are_deterministic_and_fit() {
        for i in 0..21 {
            let set = [Set::Main, Set::CloseUp, Set::Moving][i % 3];
            let a = make_case(i, 5, set).unwrap();
            let b = make_case(i, 5, set).unwrap();
            assert_eq!(a.spec, b.spec);
            assert_eq!(a.truth, b.truth);
            assert_eq!(a.truth.is_none(), a.kind == Kind::None);
            assert!(a.truth.is_some() || set == Set::Main, "every close-up and moving frame shows a code");
            assert_eq!(a.spec.distortion.motion_px > 0.0, set == Set::Moving, "only the moving set moves");
        }
    }

    #[test]
    fn lane_latency_drops_frames_when_decoding_is_slow() {
        let slow = Contender {
            name: "x".into(),
            outcomes: vec![Outcome { correct: true, false_read: false, micros: 50_000.0 }; 30],
        };
        let (latency, dropped) = lane_latency(&slow, 30);
        assert!(dropped > 0);
        assert!(latency >= 50.0);
        let fast = Contender {
            name: "y".into(),
            outcomes: vec![Outcome { correct: true, false_read: false, micros: 5_000.0 }; 30],
        };
        let (latency, dropped) = lane_latency(&fast, 30);
        assert_eq!(dropped, 0);
        assert!((latency - 5.0).abs() < 1e-6, "{latency}");
    }
}
