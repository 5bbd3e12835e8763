//! Fuzz target: image bytes -> load (pixel limit) -> decode (the whole pipeline) -> classify. Nothing may panic.
#![no_main]

use checkout_lanes::vision::{VisionConfig, analyse_frame, load_frame};
use checkout_storage::classify;
use libfuzzer_sys::fuzz_target;

/// Small enough that a forged header cannot make one run slow or large.
const PIXEL_LIMIT: u64 = 2_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = load_frame(data, PIXEL_LIMIT) else { return };
    assert!(u64::from(frame.width) * u64::from(frame.height) <= PIXEL_LIMIT);
    if let Ok(analysis) = analyse_frame(&frame, &VisionConfig::default()) {
        for read in analysis.reads {
            let _ = classify(&read.text, read.symbology);
        }
    }
});
