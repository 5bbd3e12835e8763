//! Fuzz target: image bytes -> load (pixel limit) -> decode (the whole pipeline) -> classify. Nothing may panic.
#![no_main]

use checkout_lanes::vision::{VisionConfig, analyse_frame, load_frame};
use checkout_storage::classify;
use libfuzzer_sys::fuzz_target;

/// Small enough that a forged header cannot make one run slow or large.
const PIXEL_LIMIT: u64 = 2_000_000;

fuzz_target!(
    init: {
        // libfuzzer-sys aborts on any panic, even one the library catches on purpose (`load_frame` turns a
        // panicking image decoder into `FrameError::Corrupt`). A panic that escapes is still a crash: the
        // harness runs each input under `catch_unwind` and aborts when it unwinds out.
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| {
    let Ok(frame) = load_frame(data, PIXEL_LIMIT) else { return };
    assert!(u64::from(frame.width) * u64::from(frame.height) <= PIXEL_LIMIT);
    if let Ok(analysis) = analyse_frame(&frame, &VisionConfig::default()) {
        for read in analysis.reads {
            let _ = classify(&read.text, read.symbology);
        }
    }
    }
);
