//! `checkout decode FILE...`: one JSON line per image file with what the lane's decoder reads in it.

use std::{io::Write, time::Instant};

use checkout_lanes::vision::{DEFAULT_PIXEL_LIMIT, decode_frame, load_frame_file};
use checkout_storage::{ScannedCode, classify};
use serde_json::json;

use crate::cli::DecodeArgs;

pub fn run(args: DecodeArgs) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for file in &args.files {
        let name = file.display().to_string();
        let line = match load_frame_file(file, DEFAULT_PIXEL_LIMIT) {
            Err(e) => json!({"file": name, "ok": false, "error": e.to_string()}),
            Ok(frame) => {
                let started = Instant::now();
                let decoded = decode_frame(&frame);
                let micros = started.elapsed().as_micros() as u64;
                match decoded {
                    Err(e) => json!({"file": name, "ok": false, "micros": micros, "error": e.to_string()}),
                    Ok(reads) => match reads.into_iter().next() {
                        None => json!({"file": name, "ok": false, "micros": micros, "error": "no code found"}),
                        Some(read) => {
                            let (kind, provider, text, error) = match classify(&read.text, read.symbology) {
                                ScannedCode::Product(gtin) => ("product", None, gtin.to_string(), None),
                                // A payment code is printed masked, as everywhere else.
                                ScannedCode::Payment(code) => {
                                    ("payment", Some(code.provider().name()), code.masked().to_string(), None)
                                }
                                ScannedCode::Unrecognised { reason } => ("unrecognised", None, read.text, Some(reason)),
                            };
                            json!({"file": name, "ok": true, "format": read.symbology.name(), "text": text,
                                   "kind": kind, "provider": provider, "micros": micros, "error": error})
                        }
                    },
                }
            }
        };
        writeln!(out, "{line}")?;
    }
    Ok(())
}
