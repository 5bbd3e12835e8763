//! `checkout decode FILE...`: one JSON line per image file with what the lane's decoder reads in it.

use std::{io::Write, time::Instant};

use checkout_lanes::vision::{VisionConfig, analyse_frame, load_frame_file};
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

pub fn run(args: DecodeArgs) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // Files are photos from anywhere, not a lane's camera: light codes on dark are looked for too.
    let config = VisionConfig { negative_fallback: true, ..VisionConfig::default() };
    for file in &args.files {
        let name = file.display().to_string();
        let value = match load_frame_file(file, args.max_pixels) {
            Err(e) => line(&name, None, None, Some(e.to_string())),
            Ok(frame) => {
                let started = Instant::now();
                let decoded = analyse_frame(&frame, &config);
                let micros = Some(started.elapsed().as_micros() as u64);
                match decoded {
                    Err(e) => line(&name, micros, None, Some(e.to_string())),
                    Ok(analysis) => match analysis.reads.into_iter().next() {
                        None => {
                            let error = match analysis.unreadable {
                                Some(why) => format!("no code read: {why}"),
                                None => "no code found".to_owned(),
                            };
                            line(&name, micros, None, Some(error))
                        }
                        Some(read) => {
                            let format = read.symbology.name();
                            match classify(&read.text, read.symbology) {
                                ScannedCode::Product(gtin) => {
                                    line(&name, micros, Some((format, gtin.to_string(), "product", None)), None)
                                }
                                // A payment code is printed masked, as everywhere else.
                                ScannedCode::Payment(code) => line(
                                    &name,
                                    micros,
                                    Some((format, code.masked().to_string(), "payment", Some(code.provider().name()))),
                                    None,
                                ),
                                ScannedCode::Unrecognised { reason } => {
                                    // A long run of digits may be a wallet code of a provider we do not know: masked.
                                    let text = if read.text.len() > 14 && read.text.bytes().all(|b| b.is_ascii_digit())
                                    {
                                        MaskedCode::of(&read.text).to_string()
                                    } else {
                                        read.text
                                    };
                                    line(&name, micros, Some((format, text, "unrecognised", None)), Some(reason))
                                }
                            }
                        }
                    },
                }
            }
        };
        writeln!(out, "{value}")?;
    }
    Ok(())
}
