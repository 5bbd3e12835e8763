//! Scenes for the tests: a code (or clutter alone) in a VGA frame seen through a distortion, and what the whole
//! pipeline reads in a frame (through the public API, as the lanes call it).

use std::time::Duration;

use checkout_storage::{Symbology, gtin_check_digit};

use crate::synthetic::{Distortion, FrameSpec, render_frame};
use crate::vision::{LumaFrame, VisionConfig, analyse_frame};

/// A VGA frame with a `module`-pixel code right of centre, seen through `distortion`.
pub(super) fn scene(text: &str, symbology: Symbology, module: f32, distortion: Distortion) -> LumaFrame {
    render_frame(&scene_spec(text, symbology, module, distortion)).unwrap()
}

/// The spec of [`scene`]'s frame.
pub(super) fn scene_spec(text: &str, symbology: Symbology, module: f32, distortion: Distortion) -> FrameSpec {
    FrameSpec {
        width: 640,
        height: 480,
        code: Some((text.to_owned(), symbology)),
        module_px: 1,
        centre_x_permille: 520,
        centre_y_permille: 480,
        background: 170,
        distortion: Distortion { scale: module, ..distortion },
        seed: 99,
    }
}

/// A VGA frame of clutter and no code, seen through `distortion`.
pub(super) fn clutter(distortion: Distortion, seed: u64) -> LumaFrame {
    let spec = FrameSpec {
        width: 640,
        height: 480,
        code: None,
        module_px: 1,
        centre_x_permille: 500,
        centre_y_permille: 500,
        background: 150,
        distortion,
        seed,
    };
    render_frame(&spec).unwrap()
}

/// An EAN-13 with its check digit.
pub(super) fn ean13() -> String {
    let body = "690123456789";
    format!("{body}{}", gtin_check_digit(body.as_bytes()))
}

/// The default pipeline with a safety time cap that a busy test machine cannot reach.
pub(super) fn patient() -> VisionConfig {
    VisionConfig { time_cap: Duration::from_secs(2), ..VisionConfig::default() }
}

/// The texts the pipeline reads in `frame`, patiently (see [`patient`]).
pub(super) fn reads(frame: &LumaFrame) -> Vec<String> {
    analyse_frame(frame, &patient()).unwrap().reads.into_iter().map(|r| r.text).collect()
}
