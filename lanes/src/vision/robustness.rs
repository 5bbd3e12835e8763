//! Bad input, property style: thousands of mutated PNG and JPEG byte strings go through load, decode and classify
//! without a panic, within bounded memory (a small pixel limit) and time.

use std::time::{Duration, Instant};

use checkout_storage::{Symbology, classify};
use image::{ExtendedColorType, ImageEncoder};

use super::{DEFAULT_PIXEL_LIMIT, LumaFrame, analyse_frame, encode_png, load_frame, paste, render_code};
use crate::synthetic::SeededRng;
use crate::vision::VisionConfig;

/// The pixel limit of these tests: a mutated header cannot make the loader allocate much.
const LIMIT: u64 = 1_000_000;

fn seeds() -> Vec<Vec<u8>> {
    let mut frame = LumaFrame::new(160, 120, 190);
    let qr = render_code("134567890123456789", Symbology::QrCode, 3, 0).unwrap();
    paste(&mut frame, &qr, 20, 10);
    let png = encode_png(&frame).unwrap();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
        .write_image(&frame.pixels, frame.width, frame.height, ExtendedColorType::L8)
        .unwrap();
    let mut bars = LumaFrame::new(200, 60, 230);
    let ean = render_code("6901234567892", Symbology::Ean13, 1, 40).unwrap();
    paste(&mut bars, &ean, 40, 10);
    vec![png, jpeg, encode_png(&bars).unwrap()]
}

fn mutate(bytes: &[u8], rng: &mut SeededRng) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for _ in 0..rng.range(1, 4) {
        if out.is_empty() {
            out.push(rng.next_u64() as u8);
        }
        let len = out.len() as u64;
        let at = rng.range(0, len - 1) as usize;
        match rng.range(0, 6) {
            0 => out[at] = rng.next_u64() as u8,
            1 => out[at] ^= 1 << rng.range(0, 7),
            2 => out.truncate(at),
            3 => {
                let n = rng.range(1, 64) as usize;
                let junk: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                out.splice(at..at, junk);
            }
            4 => {
                let end = (at + rng.range(1, 32) as usize).min(out.len());
                out.drain(at..end);
            }
            5 => {
                // Interesting values where a header keeps dimensions and lengths.
                let v = [0u8, 0xFF, 0x7F, 0x80, 0x01][rng.range(0, 4) as usize];
                let end = (at + 4).min(out.len());
                out[at..end].fill(v);
            }
            _ => {
                let end = (at + rng.range(1, 200) as usize).min(out.len());
                let chunk = out[at..end].to_vec();
                out.splice(at..at, chunk);
            }
        }
    }
    out
}

#[test]
fn mutated_images_never_panic_and_stay_bounded() {
    let mut rng = SeededRng::new(0xF0_22);
    let seeds = seeds();
    let started = Instant::now();
    let (mut loaded, mut refused, mut decoded) = (0, 0, 0);
    for i in 0..4000 {
        let seed = &seeds[i % seeds.len()];
        let bytes = mutate(seed, &mut rng);
        let t = Instant::now();
        match load_frame(&bytes, LIMIT) {
            Err(e) => {
                refused += 1;
                assert!(!e.to_string().is_empty());
            }
            Ok(frame) => {
                loaded += 1;
                assert!(u64::from(frame.width) * u64::from(frame.height) <= LIMIT);
                let reads = analyse_frame(&frame, &VisionConfig::default()).map(|a| a.reads).unwrap_or_default();
                for read in reads {
                    decoded += 1;
                    let _ = classify(&read.text, read.symbology);
                }
            }
        }
        assert!(t.elapsed() < Duration::from_secs(2), "case {i} took {:?}", t.elapsed());
    }
    eprintln!("4000 mutated images: {loaded} loaded, {refused} refused, {decoded} codes read, {:?}", started.elapsed());
    assert!(refused > 1000 && loaded > 100, "the mutations exercise both paths: {loaded} loaded, {refused} refused");
}

#[test]
fn random_bytes_and_odd_frames_never_panic() {
    let mut rng = SeededRng::new(7);
    for n in [0usize, 1, 7, 8, 33, 100, 5000] {
        for _ in 0..50 {
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            let _ = load_frame(&bytes, DEFAULT_PIXEL_LIMIT);
        }
    }
    // Frames of odd shapes straight into the pipeline.
    for (w, h) in [(1, 1), (1, 500), (500, 1), (15, 15), (17, 33), (2000, 3)] {
        let mut frame = LumaFrame::new(w, h, 0);
        for p in &mut frame.pixels {
            *p = rng.next_u64() as u8;
        }
        let _ = analyse_frame(&frame, &VisionConfig::default()).unwrap();
    }
}

#[test]
fn fuzz_finding_corrupt_jpeg_is_an_error_not_a_panic() {
    // Found by `cargo fuzz run decode_image`: zune-jpeg's debug assertion `bits_left >= n` fires on it.
    let bytes = include_bytes!("testdata/fuzz-zune-jpeg-drop-bits.jpg");
    if let Ok(frame) = load_frame(bytes, LIMIT) {
        let _ = analyse_frame(&frame, &VisionConfig::default());
    }
}

/// Work (see `VisionConfig::work_budget`) is counted, not timed: these bounds hold however loaded the machine is.
#[test]
fn fuzz_finding_stripes_wider_than_a_lane_frame_stay_within_the_work_budget() {
    // Found by `cargo fuzz run analyse_pixels`: a diagonal stripe whose box was the whole frame was tried as a
    // QR code blurred by motion, and rxing's QR search on the 1531 x 766 crop took seconds.
    let unit: [u8; 51] = [
        255, 255, 255, 0, 47, 255, 255, 37, 255, 255, 251, 127, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 189, 255, 255, 255, 255, 255, 255, 255,
        255, 253, 124, 255, 197, 203,
    ];
    let mut frame = LumaFrame::new(1531, 766, 0);
    for (pixel, value) in frame.pixels.iter_mut().zip(unit.iter().cycle()) {
        *pixel = *value;
    }
    let analysis = analyse_frame(&frame, &VisionConfig::default()).unwrap();
    assert!(analysis.reads.is_empty());
    assert!(analysis.work <= VisionConfig::default().work_budget, "work {}", analysis.work);
}

#[test]
fn a_large_photo_of_texture_costs_a_few_budgets_not_seconds_of_qr_search() {
    // A 24 Mpx photo whose top 40% is fine texture (gravel, a patterned cloth): one 2D region of millions of
    // pixels. Each level of the search keeps to about its budget.
    let mut rng = SeededRng::new(11);
    let mut photo = LumaFrame::new(6000, 4000, 128);
    let textured = photo.pixels.len() * 2 / 5;
    for p in &mut photo.pixels[..textured] {
        *p = rng.next_u64() as u8;
    }
    let analysis = analyse_frame(&photo, &VisionConfig::default()).unwrap();
    assert!(analysis.reads.is_empty());
    assert!(analysis.work <= 3 * VisionConfig::default().work_budget, "work {}", analysis.work);
}
