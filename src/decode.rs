//! `checkout decode FILE...`: one JSON line per image file with what the lane's decoder reads in it.

use std::{io::Write, time::Instant};

use checkout_lanes::vision::{CodeRead, VisionConfig, analyse_frame, load_frame_file};
use checkout_storage::{MaskedCode, ScannedCode, classify};
use serde_json::{Value, json};

use crate::cli::DecodeArgs;

/// One line of output: every key is always present (`null` when it does not apply).
fn line(
    file: &str,
    micros: Option<u64>,
    read: Option<(&str, String, &str, Option<&str>)>,
    error: Option<String>,
) -> Value {
    let (format, text, kind, provider) = match read {
        Some((format, text, kind, provider)) => (Some(format), Some(text), Some(kind), provider),
        None => (None, None, None, None),
    };
    json!({"file": file, "ok": format.is_some(), "format": format, "text": text,
           "kind": kind, "provider": provider, "micros": micros, "error": error})
}

/// The line of one code read in `file`: a product's GTIN, a payment code masked, or the text of anything else.
fn read_line(file: &str, micros: Option<u64>, read: CodeRead) -> Value {
    let format = read.symbology.name();
    match classify(&read.text, read.symbology) {
        ScannedCode::Product(gtin) => line(file, micros, Some((format, gtin.to_string(), "product", None)), None),
        // A payment code is printed masked, as everywhere else.
        ScannedCode::Payment(code) => {
            line(file, micros, Some((format, code.masked().to_string(), "payment", Some(code.provider().name()))), None)
        }
        // A member code names the member (not a secret: its signature only proves the store made it).
        ScannedCode::Member(code) => {
            line(file, micros, Some((format, code.claimed_member().to_string(), "member", None)), None)
        }
        ScannedCode::Coupon(code) => line(file, micros, Some((format, code.text(), "coupon", None)), None),
        ScannedCode::Unrecognised { reason } => {
            // A long run of digits may be a wallet code of a provider we do not know: masked.
            let text = if read.text.len() > 14 && read.text.bytes().all(|b| b.is_ascii_digit()) {
                MaskedCode::of(&read.text).to_string()
            } else {
                read.text
            };
            line(file, micros, Some((format, text, "unrecognised", None)), Some(reason))
        }
    }
}

/// What to look for: the first code (as a lane), or every code of the photo (`--all`).
fn config_for(all: bool) -> VisionConfig {
    // Files are photos from anywhere, not a lane's camera.
    let config = VisionConfig::photos();
    if !all {
        return config;
    }
    // Every region, with the work to go with them: a sheet of labels holds dozens.
    let (candidates, budget) = (64, config.work_budget.saturating_mul(16));
    VisionConfig { first_read_ends: false, max_candidates: candidates, work_budget: budget, ..config }
}

/// The lines of one file: a line a code read, or one line saying why none was.
fn lines_of(file: &std::path::Path, args: &DecodeArgs, config: &VisionConfig) -> Vec<Value> {
    let name = file.display().to_string();
    let frame = match load_frame_file(file, args.max_pixels) {
        Ok(frame) => frame,
        Err(e) => return vec![line(&name, None, None, Some(e.to_string()))],
    };
    let started = Instant::now();
    let decoded = analyse_frame(&frame, config);
    let micros = Some(started.elapsed().as_micros() as u64);
    let analysis = match decoded {
        Ok(analysis) => analysis,
        Err(e) => return vec![line(&name, micros, None, Some(e.to_string()))],
    };
    if analysis.reads.is_empty() {
        let error = match analysis.unreadable {
            Some(why) => format!("no code read: {why}"),
            None => "no code found".to_owned(),
        };
        return vec![line(&name, micros, None, Some(error))];
    }
    let keep = if args.all { analysis.reads.len() } else { 1 };
    analysis.reads.into_iter().take(keep).map(|read| read_line(&name, micros, read)).collect()
}

pub fn run(args: DecodeArgs) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let config = config_for(args.all);
    for file in &args.files {
        for value in lines_of(file, &args, &config) {
            writeln!(out, "{value}")?;
        }
    }
    Ok(())
}
