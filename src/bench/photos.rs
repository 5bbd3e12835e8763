//! `checkout bench photos DIR...`: real photos from folders with manifests, read by our decoder and by zxing-cpp, per category.
//!
//! A folder holds a `manifest.csv` of one of two kinds, or none:
//! - QR photos (`file, category, codes, corners, zxing_cpp_text`): a photo is read when one of its QR codes
//!   is; a read is wrong when it is a product code, or, on a photo of one code whose text is known, another
//!   text (a QR code checks itself, so a photo's other codes are not known wrong);
//! - retail photos (`file, format, text, set`): read when the main code's digits are (an add-on is
//!   optional); any other product read is wrong; a set without texts (`multi`) is reported apart;
//! - no manifest: photos without a code, where any read is wrong.
//!
//! Each photo is loaded once; decode times exclude loading on both sides, as in `bench decode`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::Context;
use checkout_lanes::vision::{VisionConfig, analyse_frame, load_frame_file};
use checkout_storage::Symbology;
use serde_json::{Value, json};

use super::{
    cases::key_of,
    peer::Peer,
    stats::{percentile, truncate},
};
use crate::cli::BenchPhotosArgs;

/// What a photo shows, as its folder's manifest says.
#[derive(Debug, Clone)]
enum Truth {
    /// QR codes; the texts zxing-cpp read of them, when it read any (not every code's).
    Qr { codes: usize, texts: Vec<String> },
    /// A retail code of `format` with its key (`gtin:…`), or `None` when the manifest gives no text.
    Retail { format: Symbology, key: Option<String> },
    /// Several codes, texts unknown: reported apart, never judged wrong.
    Several,
    /// No code at all.
    Nothing,
}

#[derive(Debug, Clone)]
struct Photo {
    path: PathBuf,
    /// "qr/blurred", "retail/upca-2", "no-code".
    category: String,
    truth: Truth,
}

/// How a reader did on one photo.
#[derive(Debug, Clone, Copy, Default)]
struct Judged {
    read: bool,
    wrong: bool,
    millis: f64,
    /// Our decoder's work units (see `VisionConfig::work_budget`); none for the peer.
    work: Option<u64>,
}

/// The manifest symbology names.
fn symbology_of(format: &str) -> Option<Symbology> {
    match format {
        "UPCA" => Some(Symbology::UpcA),
        "UPCE" => Some(Symbology::UpcE),
        "EAN13" => Some(Symbology::Ean13),
        "EAN8" => Some(Symbology::Ean8),
        "QRCode" => Some(Symbology::QrCode),
        _ => None,
    }
}

/// The key a retail text's main code is judged by: the GTIN (13 digits, or 8 for EAN-8) without its add-on.
fn retail_key(format: Symbology, text: &str) -> Option<String> {
    if text.is_empty() {
        return None;
    }
    let (digits, as_read) = match format {
        Symbology::Ean8 => (text.get(..8)?, Symbology::Ean8),
        Symbology::QrCode => return Some(key_of(text, Symbology::QrCode)),
        // UPC-A and UPC-E texts are given as the 13-digit GTIN, as EAN-13's.
        _ => (text.get(..13)?, Symbology::Ean13),
    };
    Some(key_of(digits, as_read))
}

fn is_image(path: &Path) -> bool {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    matches!(extension.as_str(), "png" | "jpg" | "jpeg")
}

/// Every photo of `dir`, with what its manifest says it shows.
fn photos_of(dir: &Path) -> anyhow::Result<Vec<Photo>> {
    let manifest = dir.join("manifest.csv");
    let folder = dir.file_name().and_then(|n| n.to_str()).unwrap_or("photos").to_owned();
    if !manifest.exists() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("listing {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_image(p))
            .collect();
        files.sort();
        return Ok(files
            .into_iter()
            .map(|path| Photo { path, category: folder.clone(), truth: Truth::Nothing })
            .collect());
    }
    let mut reader = csv::Reader::from_path(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let headers = reader.headers()?.clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let mut photos = Vec::new();
    for row in reader.records() {
        let row = row.with_context(|| format!("reading {}", manifest.display()))?;
        let field = |name: &str| column(name).and_then(|i| row.get(i)).unwrap_or("").to_owned();
        let path = dir.join(field("file"));
        let photo = if column("zxing_cpp_text").is_some() {
            let texts = field("zxing_cpp_text").lines().filter(|t| !t.is_empty()).map(str::to_owned).collect();
            let codes = field("codes").parse().unwrap_or(1);
            Photo { path, category: format!("qr/{}", field("category")), truth: Truth::Qr { codes, texts } }
        } else {
            let set = field("set");
            let truth = match symbology_of(&field("format")) {
                Some(format) => Truth::Retail { format, key: retail_key(format, &field("text")) },
                None => Truth::Several,
            };
            Photo { path, category: format!("retail/{set}"), truth }
        };
        photos.push(photo);
    }
    Ok(photos)
}

/// Judges the keys a reader gave for `photo`.
fn judge(photo: &Photo, keys: &[String], millis: f64) -> Judged {
    let (read, wrong) = match &photo.truth {
        Truth::Nothing => (false, !keys.is_empty()),
        Truth::Several => (!keys.is_empty(), false),
        Truth::Qr { codes, texts } => {
            let truths: Vec<String> = texts.iter().map(|t| key_of(t, Symbology::QrCode)).collect();
            let product = keys.iter().any(|k| k.starts_with("gtin:"));
            let other_text = *codes == 1 && !truths.is_empty() && keys.iter().any(|k| !truths.contains(k));
            (keys.iter().any(|k| !k.starts_with("gtin:")), product || other_text)
        }
        Truth::Retail { format: Symbology::QrCode, .. } => {
            let product = keys.iter().any(|k| k.starts_with("gtin:"));
            (keys.iter().any(|k| !k.starts_with("gtin:")), product)
        }
        Truth::Retail { key: Some(truth), .. } => {
            (keys.contains(truth), keys.iter().any(|k| k.starts_with("gtin:") && k != truth))
        }
        Truth::Retail { key: None, .. } => (!keys.is_empty(), false),
    };
    Judged { read, wrong, millis, work: None }
}

/// A reader's results, photo by photo.
struct Column {
    name: String,
    judged: Vec<Judged>,
}

/// Read, total, wrong, median and p99 milliseconds of the photos at `indices`.
fn sums(column: &Column, indices: &[usize]) -> (usize, usize, usize, f64, f64) {
    let judged: Vec<&Judged> = indices.iter().filter_map(|&i| column.judged.get(i)).collect();
    let mut millis: Vec<f64> = judged.iter().map(|j| j.millis).collect();
    millis.sort_by(f64::total_cmp);
    let read = judged.iter().filter(|j| j.read).count();
    let wrong = judged.iter().filter(|j| j.wrong).count();
    (read, judged.len(), wrong, percentile(&millis, 50.0), percentile(&millis, 99.0))
}

/// The rows of the table: every category, then the totals.
fn rows(photos: &[Photo]) -> Vec<(String, Vec<usize>)> {
    let mut by_category: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, photo) in photos.iter().enumerate() {
        by_category.entry(photo.category.clone()).or_default().push(i);
    }
    let mut rows: Vec<(String, Vec<usize>)> = by_category.into_iter().collect();
    let of = |keep: &dyn Fn(&Photo) -> bool| -> Vec<usize> {
        photos.iter().enumerate().filter(|(_, p)| keep(p)).map(|(i, _)| i).collect()
    };
    rows.push(("QR photos".to_owned(), of(&|p| matches!(p.truth, Truth::Qr { .. }))));
    rows.push(("retail, one code".to_owned(), of(&|p| matches!(p.truth, Truth::Retail { .. }))));
    rows.push(("all with a code".to_owned(), of(&|p| matches!(p.truth, Truth::Qr { .. } | Truth::Retail { .. }))));
    rows.push(("no code".to_owned(), of(&|p| matches!(p.truth, Truth::Nothing))));
    rows.retain(|(_, indices)| !indices.is_empty());
    rows
}

pub fn run(args: BenchPhotosArgs) -> anyhow::Result<()> {
    let mut photos = Vec::new();
    for dir in &args.dirs {
        // `bench photos corpus/*` names the corpus README too: a file is passed over, said once.
        if !dir.is_dir() {
            eprintln!("bench photos: {} is not a folder; passed over", dir.display());
            continue;
        }
        photos.extend(photos_of(dir)?);
    }
    anyhow::ensure!(!photos.is_empty(), "no photos in {:?}", args.dirs);
    // As `checkout decode` reads a photo.
    let base = if args.lane { VisionConfig::default() } else { VisionConfig::photos() };
    let mut variants: Vec<(String, VisionConfig)> = vec![("ours".to_owned(), base.clone())];
    if args.ablate {
        variants.push(("ours, no deskew".to_owned(), VisionConfig { deskew: false, ..base.clone() }));
        variants.push(("ours, no retries".to_owned(), VisionConfig { retries: false, ..base.clone() }));
        variants.push(("ours, no deblur".to_owned(), VisionConfig { deblur: false, ..base.clone() }));
        variants.push(("ours, no negative".to_owned(), VisionConfig { negative_fallback: false, ..base.clone() }));
        variants.push(("ours, not framed".to_owned(), VisionConfig { framed_fallback: false, ..base.clone() }));
        variants
            .push(("ours, no whole frame".to_owned(), VisionConfig { whole_frame_fallback: false, ..base.clone() }));
        variants.push(("ours, no unsquash".to_owned(), VisionConfig { unsquash: false, ..base.clone() }));
        variants.push(("the lane's".to_owned(), VisionConfig::default()));
    }
    let mut columns: Vec<Column> =
        variants.iter().map(|(name, _)| Column { name: name.clone(), judged: Vec::new() }).collect();
    let mut peer = if args.no_peer { Err("not run (--no-peer)".to_owned()) } else { Peer::start(&args.python) };
    let mut peer_column = Column { name: String::new(), judged: Vec::new() };
    let started = Instant::now();
    for photo in &photos {
        let frame = load_frame_file(&photo.path, checkout_lanes::vision::PHOTO_PIXEL_LIMIT)
            .map_err(|e| anyhow::anyhow!("{}: {e}", photo.path.display()))?;
        for ((_, config), column) in variants.iter().zip(columns.iter_mut()) {
            let t = Instant::now();
            let analysis = analyse_frame(&frame, config);
            let millis = t.elapsed().as_secs_f64() * 1e3;
            let work = analysis.as_ref().map_or(0, |a| a.work);
            let keys: Vec<String> =
                analysis.map(|a| a.reads.iter().map(|r| key_of(&r.text, r.symbology)).collect()).unwrap_or_default();
            let judged = Judged { work: Some(work), ..judge(photo, &keys, millis) };
            if args.verbose && column.name == "ours" && (judged.wrong || !judged.read) {
                // Product keys only: a payment code is never printed.
                let shown: Vec<&str> =
                    keys.iter().map(|k| if k.starts_with("pay:") { "(payment code)" } else { k.as_str() }).collect();
                let what = if judged.wrong { "WRONG" } else { "missed" };
                eprintln!("{what} {} ({}): read {shown:?}", photo.path.display(), photo.category);
            }
            column.judged.push(judged);
        }
        if let Ok(p) = peer.as_mut() {
            match p.decode(&frame) {
                Ok((keys, micros)) => peer_column.judged.push(judge(photo, &keys, micros / 1e3)),
                Err(e) => peer = Err(e),
            }
        }
    }
    let elapsed = started.elapsed();
    let peer_missing = match &peer {
        Ok(p) if peer_column.judged.len() == photos.len() => {
            peer_column.name = format!("zxing-cpp {}", p.version);
            None
        }
        Ok(_) => Some("the peer stopped answering".to_owned()),
        Err(e) => Some(e.clone()),
    };
    let mut shown: Vec<&Column> = columns.iter().collect();
    if peer_missing.is_none() {
        shown.push(&peer_column);
    }
    let rows = rows(&photos);
    if args.per_photo {
        for (i, photo) in photos.iter().enumerate() {
            let readers: serde_json::Map<String, Value> = shown
                .iter()
                .map(|c| {
                    let j = c.judged[i];
                    (c.name.clone(), json!({"read": j.read, "wrong": j.wrong, "ms": j.millis, "work": j.work}))
                })
                .collect();
            println!(
                "{}",
                json!({"photo": photo.path.display().to_string(), "category": photo.category, "readers": readers})
            );
        }
        return Ok(());
    }
    if args.json {
        let summary = |column: &Column| {
            let categories: serde_json::Map<String, Value> = rows
                .iter()
                .map(|(name, indices)| {
                    let (read, total, wrong, median, p99) = sums(column, indices);
                    let row = json!({"read": read, "total": total, "wrong": wrong, "median_ms": median, "p99_ms": p99});
                    (name.clone(), row)
                })
                .collect();
            let every: Vec<usize> = (0..photos.len()).collect();
            let (read, total, wrong, median, p99) = sums(column, &every);
            json!({"name": column.name, "categories": categories,
                   "total": {"read": read, "total": total, "wrong": wrong, "median_ms": median, "p99_ms": p99}})
        };
        let mut out = summary(&columns[0]);
        out["peer"] = if peer_missing.is_none() { summary(&peer_column) } else { Value::Null };
        if let Some(missing) = &peer_missing {
            out["peer_missing"] = json!(missing);
        }
        if columns.len() > 1 {
            out["variants"] = columns[1..].iter().map(summary).collect();
        }
        println!("{out}");
        return Ok(());
    }
    println!(
        "checkout bench photos: {} photos from {} folders in {:.1} s; decode times exclude loading on both sides",
        photos.len(),
        args.dirs.len(),
        elapsed.as_secs_f64()
    );
    match &peer_missing {
        None => println!("peer: {} (Python, read_barcodes on the same grey frames, same run)", peer_column.name),
        Some(why) => println!("peer: zxing-cpp not measured: {why}. Our results alone."),
    }
    print!("{:<26} {:>4}", "category", "n");
    for column in &shown {
        print!(" | {:^32}", truncate(&column.name, 32));
    }
    println!();
    print!("{:<26} {:>4}", "", "");
    for _ in &shown {
        print!(" | {:>6} {:>5} {:>5} {:>6} {:>6}", "read %", "read", "wrong", "med ms", "p99 ms");
    }
    println!();
    for (name, indices) in &rows {
        print!("{:<26} {:>4}", truncate(name, 26), indices.len());
        for column in &shown {
            let (read, total, wrong, median, p99) = sums(column, indices);
            let rate = if matches!(name.as_str(), "no code") || name.starts_with("no-code") {
                "-".to_owned()
            } else {
                format!("{:.1}", 100.0 * read as f64 / total.max(1) as f64)
            };
            print!(" | {rate:>6} {read:>5} {wrong:>5} {median:>6.1} {p99:>6.1}");
        }
        println!();
    }
    println!();
    println!("read: a QR photo when one of its codes is read; a retail photo when its main code's digits are.");
    println!("wrong: a read that is not the photo's code (on a no-code photo, any read).");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retail_texts_are_judged_by_their_main_code() {
        let photo = |format: Symbology, text: &str| Photo {
            path: PathBuf::from("x.png"),
            category: "retail/x".into(),
            truth: Truth::Retail { format, key: retail_key(format, text) },
        };
        // A UPC-A with a five-digit add-on: its 13-digit GTIN is the main code.
        let upca = photo(Symbology::UpcA, "007183100799519868");
        let read = key_of("071831007995", Symbology::UpcA);
        assert!(judge(&upca, std::slice::from_ref(&read), 1.0).read);
        assert!(!judge(&upca, &[read], 1.0).wrong);
        let other = key_of("036602301467", Symbology::UpcA);
        let judged = judge(&upca, &[other], 1.0);
        assert!(!judged.read && judged.wrong, "another product is a wrong read");
        // A UPC-E is given as its 13-digit GTIN.
        let upce = photo(Symbology::UpcE, "0012345000065");
        assert!(judge(&upce, &[key_of("01234565", Symbology::UpcE)], 1.0).read);
        let nothing = Photo { path: PathBuf::from("y.png"), category: "no-code".into(), truth: Truth::Nothing };
        assert!(judge(&nothing, &["raw:HELLO".to_owned()], 1.0).wrong);
    }
}
