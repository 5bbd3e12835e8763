//! `checkout decode FILE...` as a user runs it: one JSON line per file, a bad file reported and skipped.

use std::path::Path;
use std::process::Command;

use checkout_lanes::vision::{LumaFrame, encode_png, paste, render_code};
use checkout_storage::Symbology;
use serde_json::Value;

const WECHAT_LIKE: &str = "134567890123456789";
const EAN13: &str = "4006381333931";

fn write_png(path: &Path, frame: &LumaFrame) {
    std::fs::write(path, encode_png(frame).unwrap()).unwrap();
}

/// A grey frame with one code pasted on it.
fn frame_with(text: &str, symbology: Symbology, module_px: u32, size: (u32, u32)) -> LumaFrame {
    let code = render_code(text, symbology, module_px, 60 * module_px).unwrap();
    let mut frame = LumaFrame::new(size.0, size.1, 150);
    paste(&mut frame, &code, 40, 30);
    frame
}

fn decode(files: &[&Path]) -> Vec<Value> {
    decode_with(&[], files)
}

fn decode_with(options: &[&str], files: &[&Path]) -> Vec<Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_checkout")).arg("decode").args(options).args(files).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[test]
fn every_file_gets_a_line_and_a_bad_one_does_not_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let product = dir.path().join("product.png");
    write_png(&product, &frame_with(EAN13, Symbology::Ean13, 3, (640, 480)));
    let payment = dir.path().join("payment.png");
    write_png(&payment, &frame_with(WECHAT_LIKE, Symbology::QrCode, 6, (640, 480)));
    let truncated = dir.path().join("truncated.png");
    let bytes = std::fs::read(&payment).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let not_an_image = dir.path().join("notes.png");
    std::fs::write(&not_an_image, b"shopping list: milk, eggs").unwrap();
    let empty = dir.path().join("empty.png");
    write_png(&empty, &LumaFrame::new(320, 240, 200));
    let missing = dir.path().join("missing.png");

    let lines = decode(&[&product, &truncated, &payment, &not_an_image, &missing, &empty]);
    assert_eq!(lines.len(), 6, "{lines:?}");
    for line in &lines {
        for key in ["file", "ok", "format", "text", "kind", "provider", "micros", "error"] {
            assert!(line.get(key).is_some(), "{key} missing in {line}");
        }
    }
    assert_eq!(
        (&lines[0]["ok"], &lines[0]["format"], &lines[0]["kind"]),
        (&Value::Bool(true), &"EAN_13".into(), &"product".into())
    );
    assert_eq!(lines[0]["text"], EAN13);
    // A payment code is never printed in full.
    assert_eq!((&lines[2]["kind"], &lines[2]["provider"]), (&"payment".into(), &"WeChat Pay".into()));
    let masked = lines[2]["text"].as_str().unwrap();
    assert!(masked.contains('*') && masked != WECHAT_LIKE && !masked.contains(&WECHAT_LIKE[4..14]), "{masked}");
    for bad in [&lines[1], &lines[3], &lines[4]] {
        assert_eq!(bad["ok"], false, "{bad}");
        assert!(!bad["error"].as_str().unwrap().is_empty(), "{bad}");
        assert!(bad["micros"].is_null(), "nothing was decoded: {bad}");
    }
    assert_eq!((&lines[5]["ok"], &lines[5]["error"]), (&Value::Bool(false), &"no code found".into()));
}

#[test]
fn photos_read_whatever_their_code_size_and_light_codes_on_dark_too() {
    let dir = tempfile::tempdir().unwrap();
    // A phone photo with a code filling it: modules far wider than a lane camera shows them.
    let big = dir.path().join("big.png");
    write_png(&big, &frame_with(EAN13, Symbology::Ean13, 22, (3000, 2000)));
    // White bars on black (some packaging, a screen in dark mode).
    let mut negative = frame_with(WECHAT_LIKE, Symbology::QrCode, 6, (640, 480));
    negative.pixels.iter_mut().for_each(|p| *p = 255 - *p);
    let light_on_dark = dir.path().join("light-on-dark.png");
    write_png(&light_on_dark, &negative);

    let lines = decode(&[&big, &light_on_dark]);
    assert_eq!((&lines[0]["ok"], &lines[0]["text"]), (&Value::Bool(true), &EAN13.into()), "{}", lines[0]);
    assert_eq!((&lines[1]["ok"], &lines[1]["format"]), (&Value::Bool(true), &"QR_CODE".into()), "{}", lines[1]);
}

/// The first 33 bytes of a PNG (signature and header chunk) declaring `width` x `height` grey pixels, and no
/// pixel data: what a phone photo's header says, cut short.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    bytes.extend_from_slice(&width.to_be_bytes());
    bytes.extend_from_slice(&height.to_be_bytes());
    // 8-bit grey, deflate, no filter, no interlace; the CRC is not checked before the size.
    bytes.extend_from_slice(&[8, 0, 0, 0, 0, 0, 0, 0, 0]);
    bytes
}

#[test]
fn a_phone_photo_of_48_megapixels_is_within_the_limit_and_max_pixels_lowers_it() {
    let dir = tempfile::tempdir().unwrap();
    let phone = dir.path().join("phone-48mp.png");
    std::fs::write(&phone, png_header_only(8000, 6000)).unwrap();
    let poster = dir.path().join("poster-100mp.png");
    std::fs::write(&poster, png_header_only(12_500, 8000)).unwrap();
    let product = dir.path().join("product.png");
    write_png(&product, &frame_with(EAN13, Symbology::Ean13, 3, (640, 480)));

    let lines = decode(&[&phone, &poster]);
    let too_large = |line: &Value| line["error"].as_str().unwrap_or("").contains("more than the limit");
    // The 48 Mpx header passes the size check (then its missing pixels are the error); 100 Mpx does not.
    assert!(!too_large(&lines[0]) && lines[0]["ok"] == false, "{}", lines[0]);
    assert!(too_large(&lines[1]), "{}", lines[1]);

    let lines = decode_with(&["--max-pixels", "300000"], &[&phone, &product]);
    assert!(too_large(&lines[0]), "{}", lines[0]);
    // 640 x 480 is 307,200 pixels: over this limit too, and refused before it is decoded.
    assert!(too_large(&lines[1]) && lines[1]["micros"].is_null(), "{}", lines[1]);
    let lines = decode_with(&["--max-pixels", "307200"], &[&product]);
    assert_eq!(lines[0]["text"], EAN13, "{}", lines[0]);
}
