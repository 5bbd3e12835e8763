//! Fuzz target: arbitrary grey frames -> the vision pipeline -> classify. Nothing may panic.
//!
//! `decode_image` reaches the pipeline only through images that decode; this one hands it frames of
//! any size from 1x1 up (wider than a lane's frames too), filled by repeating the input, so short inputs make the stripes and
//! blocks that look like codes to the region finder.
#![no_main]

use checkout_lanes::vision::{LumaFrame, VisionConfig, analyse_frame};
use checkout_storage::classify;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [w, h, rest @ ..] = data else { return };
    // Up to 1531 x 766: wider than 1280, so the coarser levels of a photo are searched too.
    let (width, height) = (1 + u32::from(*w) * 6, 1 + u32::from(*h) * 3);
    let mut frame = LumaFrame::new(width, height, 190);
    if !rest.is_empty() {
        for (pixel, value) in frame.pixels.iter_mut().zip(rest.iter().cycle()) {
            *pixel = *value;
        }
    }
    // Odd widths also search the negative, as `checkout decode` does.
    let config = VisionConfig { negative_fallback: w % 2 == 1, ..VisionConfig::default() };
    if let Ok(analysis) = analyse_frame(&frame, &config) {
        for read in analysis.reads {
            let _ = classify(&read.text, read.symbology);
        }
    }
});
