//! zxing-cpp as the peer: a Python script fed raw grey frames on its stdin, answering what it read and how long it took.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
};

use checkout_lanes::vision::LumaFrame;
use checkout_storage::Symbology;
use serde_json::Value;

use super::cases::key_of;

/// The peer: reads `u32 width, u32 height` (little-endian) and the grey bytes from stdin, answers one JSON line.
pub(super) const PEER_SCRIPT: &str = r#"
import sys, json, time, struct
try:
    import numpy as np
    import zxingcpp
except Exception as e:
    sys.stdout.write(json.dumps({"error": "cannot import zxingcpp/numpy: %s" % e}) + "\n")
    sys.stdout.flush()
    sys.exit(0)
try:
    from importlib.metadata import version
    v = version("zxing-cpp")
except Exception:
    v = "?"
F = zxingcpp.BarcodeFormat
formats = (F.QRCode, F.Code128, F.EAN13, F.EAN8, F.UPCA, F.UPCE)
out = sys.stdout
out.write(json.dumps({"ready": True, "version": v}) + "\n")
out.flush()
inp = sys.stdin.buffer
while True:
    header = inp.read(8)
    if len(header) < 8:
        break
    w, h = struct.unpack("<II", header)
    buf = bytearray()
    while len(buf) < w * h:
        chunk = inp.read(w * h - len(buf))
        if not chunk:
            sys.exit(0)
        buf.extend(chunk)
    img = np.frombuffer(bytes(buf), dtype=np.uint8).reshape(h, w)
    t = time.perf_counter()
    results = zxingcpp.read_barcodes(img, formats=formats)
    micros = (time.perf_counter() - t) * 1e6
    reads = [{"text": r.text, "format": getattr(r.format, "name", str(r.format))} for r in results]
    out.write(json.dumps({"micros": micros, "reads": reads}) + "\n")
    out.flush()
"#;

pub(super) struct Peer {
    pub(super) child: Child,
    pub(super) stdin: ChildStdin,
    pub(super) stdout: BufReader<ChildStdout>,
    pub(super) version: String,
}

impl Peer {
    pub(super) fn start(python: &str) -> Result<Peer, String> {
        let mut child = Command::new(python)
            .args(["-u", "-c", PEER_SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run {python}: {e}"))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("no pipes to the Python peer".to_owned());
        };
        let mut peer = Peer { child, stdin, stdout: BufReader::new(stdout), version: String::new() };
        let hello = peer.line()?;
        if let Some(error) = hello.get("error").and_then(Value::as_str) {
            return Err(error.to_owned());
        }
        peer.version = hello.get("version").and_then(Value::as_str).unwrap_or("?").to_owned();
        Ok(peer)
    }

    pub(super) fn line(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        self.stdout.read_line(&mut line).map_err(|e| format!("reading from the peer: {e}"))?;
        if line.is_empty() {
            return Err("the peer exited".to_owned());
        }
        serde_json::from_str(&line).map_err(|e| format!("the peer answered {line:?}: {e}"))
    }

    pub(super) fn decode(&mut self, frame: &LumaFrame) -> Result<(Vec<String>, f64), String> {
        let mut message = Vec::with_capacity(8 + frame.pixels.len());
        message.extend_from_slice(&frame.width.to_le_bytes());
        message.extend_from_slice(&frame.height.to_le_bytes());
        message.extend_from_slice(&frame.pixels);
        self.stdin
            .write_all(&message)
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("writing to the peer: {e}"))?;
        let answer = self.line()?;
        let micros = answer.get("micros").and_then(Value::as_f64).unwrap_or(f64::NAN);
        let keys = answer
            .get("reads")
            .and_then(Value::as_array)
            .map(|reads| {
                reads
                    .iter()
                    .filter_map(|r| {
                        let text = r.get("text")?.as_str()?;
                        let format = r.get("format")?.as_str()?;
                        // zxing-cpp gives UPC-E as its 12- or 13-digit GTIN.
                        let symbology = match (peer_symbology(format)?, text.len()) {
                            (Symbology::UpcE, 13) => Symbology::Ean13,
                            (Symbology::UpcE, 12) => Symbology::UpcA,
                            (symbology, _) => symbology,
                        };
                        Some(key_of(text, symbology))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok((keys, micros))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn peer_symbology(format: &str) -> Option<Symbology> {
    let f = format.rsplit('.').next().unwrap_or(format);
    Some(match f {
        f if f.starts_with("QRCode") || f == "QR Code" => Symbology::QrCode,
        "Code128" | "Code 128" => Symbology::Code128,
        "EAN13" | "EAN-13" => Symbology::Ean13,
        "EAN8" | "EAN-8" => Symbology::Ean8,
        "UPCA" | "UPC-A" => Symbology::UpcA,
        "UPCE" | "UPC-E" => Symbology::UpcE,
        _ => return None,
    })
}
