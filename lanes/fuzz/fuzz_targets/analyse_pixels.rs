//! Fuzz target: arbitrary grey frames -> the vision pipeline -> classify. Nothing may panic.
//!
//! `decode_image` reaches the pipeline only through images that decode; this one hands it frames of
//! any size from 1x1 up, filled by repeating the input, so short inputs make the stripes and
//! blocks that look like codes to the region finder.
#![no_main]

use checkout_lanes::vision::{LumaFrame, VisionConfig, analyse_frame};
use checkout_storage::classify;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [w, h, rest @ ..] = data else { return };
    let (width, height) = (1 + u32::from(*w) * 3, 1 + u32::from(*h) * 2);
    let mut frame = LumaFrame::new(width, height, 190);
    if !rest.is_empty() {
        for (pixel, value) in frame.pixels.iter_mut().zip(rest.iter().cycle()) {
            *pixel = *value;
        }
    }
    if let Ok(analysis) = analyse_frame(&frame, &VisionConfig::default()) {
        for read in analysis.reads {
            let _ = classify(&read.text, read.symbology);
        }
    }
});
