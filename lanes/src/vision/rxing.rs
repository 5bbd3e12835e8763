//! rxing behind `catch_unwind`: the reads and writes the vision code asks of rxing, and how its formats map to
//! our symbologies. A panic in rxing on odd input is a failed read (or render), never a crash of the lane.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use checkout_storage::Symbology;
use rxing::common::{BitMatrix, GlobalHistogramBinarizer, HybridBinarizer};
use rxing::{
    BarcodeFormat, BinaryBitmap, DecodeHints, EncodeHints, Exceptions, Luma8Source, MultiFormatReader,
    MultiFormatWriter, Reader, Writer,
};

/// One code read from a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRead {
    /// The decoded text (UPC-A: 12 digits, EAN-13: 13, EAN-8: 8, UPC-E: 8).
    pub text: String,
    /// The symbology the code was printed in.
    pub symbology: Symbology,
}

/// Every format a frame is searched for.
pub(super) const READ_FORMATS: [BarcodeFormat; 6] = [
    BarcodeFormat::QR_CODE,
    BarcodeFormat::CODE_128,
    BarcodeFormat::EAN_13,
    BarcodeFormat::EAN_8,
    BarcodeFormat::UPC_A,
    BarcodeFormat::UPC_E,
];

/// The 1D formats, read from strips.
pub(super) const LINEAR_FORMATS: [BarcodeFormat; 5] =
    [BarcodeFormat::CODE_128, BarcodeFormat::EAN_13, BarcodeFormat::EAN_8, BarcodeFormat::UPC_A, BarcodeFormat::UPC_E];

/// rxing's hints for `formats`, trying harder or not, looking for light-on-dark codes too or not.
pub(super) fn hints(formats: &[BarcodeFormat], try_harder: bool, inverted: bool) -> DecodeHints {
    DecodeHints {
        PossibleFormats: Some(formats.iter().cloned().collect::<HashSet<_>>()),
        TryHarder: Some(try_harder),
        AlsoInverted: Some(inverted),
        ..DecodeHints::default()
    }
}

/// rxing panicked (the call's input is skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Panicked;

/// Runs `f`, which calls into rxing, behind `catch_unwind`.
pub(super) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, Panicked> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| Panicked)
}

/// How rxing turns a grey buffer black and white before it looks for codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Binarizer {
    /// rxing's hybrid binarizer: a threshold per block.
    Hybrid,
    /// rxing's global-histogram binarizer: one threshold per row (better on some small QR codes).
    GlobalHistogram,
}

/// Where rxing found a 1D code on a row: the centres of its start and end guards, in the order read (an
/// upside-down code's start guard is on the right), and the row.
#[derive(Debug, Clone, Copy)]
pub(super) struct Guards {
    pub(super) start_x: f32,
    pub(super) end_x: f32,
    pub(super) row: usize,
}

/// rxing's readers for `hints` on a grey `width` x `height` buffer: the code read, if any, with where its guards
/// are when rxing says (1D codes).
pub(super) fn read(
    pixels: &[u8],
    width: usize,
    height: usize,
    hints: &DecodeHints,
    binarizer: Binarizer,
) -> Result<Option<(CodeRead, Option<Guards>)>, Panicked> {
    if width == 0 || height == 0 {
        return Ok(None);
    }
    guarded(|| {
        let Ok(source) = Luma8Source::new_with_slice(pixels, width as u32, height as u32) else {
            return None;
        };
        let result = match binarizer {
            Binarizer::GlobalHistogram => {
                let mut bitmap = BinaryBitmap::new(GlobalHistogramBinarizer::new(source));
                MultiFormatReader::default().decode_with_hints(&mut bitmap, hints).ok()?
            }
            Binarizer::Hybrid => {
                let mut bitmap = BinaryBitmap::new(HybridBinarizer::new(source));
                MultiFormatReader::default().decode_with_hints(&mut bitmap, hints).ok()?
            }
        };
        let symbology = symbology_of(result.getBarcodeFormat())?;
        let guards = match result.getPoints() {
            [start, end, ..] if start.x.is_finite() && end.x.is_finite() && start.y >= 0.0 => {
                Some(Guards { start_x: start.x, end_x: end.x, row: (start.y as usize).min(height - 1) })
            }
            _ => None,
        };
        Some((CodeRead { text: result.getText().to_owned(), symbology }, guards))
    })
}

/// Why rxing gave nothing back where something was asked of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// rxing panicked.
    Panicked,
    /// rxing refused, with its message.
    Error(String),
}

/// rxing alone on a whole grey `width` x `height` frame, with TryHarder and AlsoInverted: the approach before
/// the pipeline. Not finding a code, or finding a damaged one, is `Ok(None)`.
pub(super) fn read_whole_frame(pixels: &[u8], width: u32, height: u32) -> Result<Option<CodeRead>, Failure> {
    let read = || {
        let source = Luma8Source::new_with_slice(pixels, width, height).map_err(|e| Failure::Error(e.to_string()))?;
        let mut bitmap = BinaryBitmap::new(HybridBinarizer::new(source));
        match MultiFormatReader::default().decode_with_hints(&mut bitmap, &hints(&READ_FORMATS, true, true)) {
            Ok(result) => Ok(symbology_of(result.getBarcodeFormat())
                .map(|symbology| CodeRead { text: result.getText().to_owned(), symbology })),
            Err(
                Exceptions::NotFoundException(_) | Exceptions::ChecksumException(_) | Exceptions::FormatException(_),
            ) => Ok(None),
            Err(e) => Err(Failure::Error(e.to_string())),
        }
    };
    guarded(read).map_err(|Panicked| Failure::Panicked)?
}

/// `text` encoded by rxing as a `symbology` code without margins: one bit a module (a 1D code's one row).
pub(super) fn encode(text: &str, symbology: Symbology) -> Result<BitMatrix, Failure> {
    let format = barcode_format(symbology);
    let hints = EncodeHints { Margin: Some("0".to_owned()), ..EncodeHints::default() };
    guarded(|| MultiFormatWriter.encode_with_hints(text, &format, 0, 0, &hints))
        .map_err(|Panicked| Failure::Panicked)?
        .map_err(|e| Failure::Error(e.to_string()))
}

fn symbology_of(format: &BarcodeFormat) -> Option<Symbology> {
    match format {
        BarcodeFormat::QR_CODE => Some(Symbology::QrCode),
        BarcodeFormat::CODE_128 => Some(Symbology::Code128),
        BarcodeFormat::EAN_13 => Some(Symbology::Ean13),
        BarcodeFormat::EAN_8 => Some(Symbology::Ean8),
        BarcodeFormat::UPC_A => Some(Symbology::UpcA),
        BarcodeFormat::UPC_E => Some(Symbology::UpcE),
        _ => None,
    }
}

fn barcode_format(symbology: Symbology) -> BarcodeFormat {
    match symbology {
        Symbology::QrCode => BarcodeFormat::QR_CODE,
        Symbology::Code128 => BarcodeFormat::CODE_128,
        Symbology::Ean13 => BarcodeFormat::EAN_13,
        Symbology::Ean8 => BarcodeFormat::EAN_8,
        Symbology::UpcA => BarcodeFormat::UPC_A,
        Symbology::UpcE => BarcodeFormat::UPC_E,
    }
}
