//! Judging reads against the truth and summing them up: accuracy, false reads, percentiles, groups of frames, the lane's latency.

use checkout_lanes::synthetic::{Distortion, Legibility};

use super::cases::{Case, KINDS, Kind, Set, blurring_travel};

/// How one decoder did on one frame.
#[derive(Clone, Copy)]
pub(super) struct Outcome {
    pub(super) correct: bool,
    /// Read something on a frame without a code, or a wrong text.
    pub(super) false_read: bool,
    pub(super) micros: f64,
}

pub(super) fn judge(case: &Case, keys: &[String], micros: f64) -> Outcome {
    let correct = case.truth.as_ref().is_some_and(|t| keys.iter().any(|k| k == t));
    let false_read = keys.iter().any(|k| case.truth.as_ref() != Some(k));
    Outcome { correct, false_read, micros }
}

/// A decoder under test and its outcomes, frame by frame.
pub(super) struct Contender {
    pub(super) name: String,
    pub(super) outcomes: Vec<Outcome>,
}

pub(super) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[derive(Default)]
pub(super) struct Stats {
    pub(super) frames: usize,
    /// Frames that show a code.
    pub(super) coded: usize,
    pub(super) correct: usize,
    pub(super) false_reads: usize,
    pub(super) millis: Vec<f64>,
}

impl Stats {
    pub(super) fn add(&mut self, o: &Outcome, coded: bool) {
        self.frames += 1;
        self.coded += usize::from(coded);
        self.correct += usize::from(o.correct);
        self.false_reads += usize::from(o.false_read);
        self.millis.push(o.micros / 1000.0);
    }

    pub(super) fn accuracy(&self) -> f64 {
        100.0 * self.correct as f64 / self.coded.max(1) as f64
    }

    pub(super) fn sorted(&self) -> Vec<f64> {
        let mut m = self.millis.clone();
        m.sort_by(f64::total_cmp);
        m
    }

    pub(super) fn median(&self) -> f64 {
        percentile(&self.sorted(), 50.0)
    }

    pub(super) fn p99(&self) -> f64 {
        percentile(&self.sorted(), 99.0)
    }
}

/// Whether a frame's distortion belongs to a report line.
pub(super) type DistortionTest<'a> = &'a dyn Fn(&Distortion) -> bool;

/// The group whose accuracy the targets are about: frames whose code is still in the pixels.
pub(super) const LEGIBLE: &str = "codes";
pub(super) const UNDER_15: &str = "tilt < 15°";

/// Groups of frames a report line is about. Per format and by distortion, frames whose code glare washed out
/// (unreadable by construction, see [`Legibility::WashedOut`]) are left out; they have a line of their own.
/// The table's rows over the main set, then the close-up and moving sets on rows of their own.
pub(super) fn groups(all: &[Case]) -> Vec<(String, Vec<usize>)> {
    let frames = all.iter().filter(|c| c.set == Set::Main).count();
    let cases = &all[..frames];
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    let legible = |i: &usize| cases[*i].kind != Kind::None && cases[*i].legibility == Legibility::Legible;
    let pick = |f: &dyn Fn(&Case) -> bool| (0..cases.len()).filter(|i| f(&cases[*i])).collect::<Vec<_>>();
    for kind in KINDS {
        let of_kind = pick(&|c| c.kind == kind);
        out.push((kind.name().to_owned(), of_kind.into_iter().filter(|i| kind == Kind::None || legible(i)).collect()));
    }
    out.push((LEGIBLE.to_owned(), (0..cases.len()).filter(legible).collect()));
    out.push((UNDER_15.to_owned(), (0..cases.len()).filter(|i| legible(i) && cases[*i].tilt < 15.0).collect()));
    out.push(("tilt >= 15°".to_owned(), (0..cases.len()).filter(|i| legible(i) && cases[*i].tilt >= 15.0).collect()));
    let distortions: [(&str, DistortionTest); 7] = [
        ("  glare", &|d| d.glare > 0.0),
        ("  blur>=0.8", &|d| d.blur_sigma >= 0.8),
        // Module size is `scale` pixels (the bench renders at 1 pixel a module before scaling).
        ("  blur>=.6mod", &|d| d.blur_sigma >= 0.6 * d.scale),
        ("  contr<0.45", &|d| d.contrast < 0.45),
        ("  module<2px", &|d| d.scale < 2.0),
        ("  persp>=.15", &|d| d.perspective_x.abs().max(d.perspective_y.abs()) >= 0.15),
        ("  none above", &|d| {
            d.glare == 0.0
                && d.blur_sigma < 0.8
                && d.contrast >= 0.45
                && d.scale >= 2.0
                && d.perspective_x.abs().max(d.perspective_y.abs()) < 0.15
        }),
    ];
    for (name, f) in distortions {
        out.push((name.to_owned(), (0..cases.len()).filter(|i| legible(i) && f(&cases[*i].spec.distortion)).collect()));
    }
    out.push(("washed out".to_owned(), pick(&|c| c.kind != Kind::None && c.legibility == Legibility::WashedOut)));
    out.push(("all codes".to_owned(), pick(&|c| c.kind != Kind::None)));
    out.push(("VGA frames".to_owned(), pick(&|c| c.spec.width == 640)));
    out.push(("720p frames".to_owned(), pick(&|c| c.spec.width == 1280)));
    out.push(("every frame".to_owned(), (0..cases.len()).collect()));
    let other = |set: Set, f: &dyn Fn(&Case) -> bool| -> Vec<usize> {
        (frames..all.len())
            .filter(|&i| all[i].set == set && all[i].legibility == Legibility::Legible && f(&all[i]))
            .collect()
    };
    out.push((CLOSE_UPS.to_owned(), other(Set::CloseUp, &|_| true)));
    for (name, low, high) in MOVING {
        out.push((name.to_owned(), other(Set::Moving, &|c| (low..high).contains(&blurring_travel(c)))));
    }
    out
}

pub(super) const CLOSE_UPS: &str = "close-ups";
/// The moving set's rows, by [`blurring_travel`] (modules).
pub(super) const MOVING: [(&str, f32, f32); 3] =
    [("moving <1", 0.0, 1.0), ("moving 1-2", 1.0, 2.0), ("moving >=2", 2.0, f32::INFINITY)];

pub(super) fn stats(contender: &Contender, cases: &[Case], indices: &[usize]) -> Stats {
    let mut s = Stats::default();
    for &i in indices {
        s.add(&contender.outcomes[i], cases[i].truth.is_some());
    }
    s
}

/// Frame-to-read latency of a lane at 30 fps with one decoder thread that always takes the newest frame,
/// replayed from the measured decode times: (p99 latency in ms, frames dropped).
pub(super) fn lane_latency(contender: &Contender, frames: usize) -> (f64, usize) {
    let interval = 1000.0 / 30.0;
    let mut free_at = 0.0f64;
    let mut latencies = Vec::new();
    let mut dropped = 0;
    let mut i = 0usize;
    let n = contender.outcomes.len().min(frames);
    while i < n {
        let arrival = i as f64 * interval;
        let start = free_at.max(arrival);
        // Frames that arrived while the decoder was busy, except the newest, are dropped.
        let newest = ((start / interval).floor() as usize).max(i).min(n - 1);
        dropped += newest - i;
        let arrival = newest as f64 * interval;
        let done = start.max(arrival) + contender.outcomes[newest].micros / 1000.0;
        latencies.push(done - arrival);
        free_at = done;
        i = newest + 1;
    }
    latencies.sort_by(f64::total_cmp);
    (percentile(&latencies, 99.0), dropped)
}

/// Frames that read nothing and were given one hint, by kind of frame.
#[derive(Default)]
pub(super) struct HintTally {
    /// Codes of the main set (washed out or not), and of them those under glare, the one cause the set tells
    /// outright.
    pub(super) codes: usize,
    pub(super) glared: usize,
    /// Codes of the moving set: motion blur, the cause the hint should tell.
    pub(super) moving: usize,
    /// Main-set frames without a code: any hint there is a false alarm at the lane.
    pub(super) empty: usize,
}

impl HintTally {
    pub(super) fn add(&mut self, case: &Case) {
        match (case.set, case.truth.is_some()) {
            (Set::Moving, _) => self.moving += 1,
            (_, false) => self.empty += 1,
            (_, true) => {
                self.codes += 1;
                self.glared += usize::from(case.spec.distortion.glare > 0.0);
            }
        }
    }
}

pub(super) fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
