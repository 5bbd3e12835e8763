//! The messages the lane's actors send each other: scanner to decoder, scanner to till, till to scanner,
//! and `run_lane` to the scanner.

use std::{path::PathBuf, sync::Arc, time::Duration};

use actix::prelude::*;
use checkout_storage::{PaymentCode, ScannedCode, Symbology};
use tokio::sync::oneshot;

use crate::{
    synthetic::FrameSpec,
    vision::{LumaFrame, Unreadable},
};

/// A frame as the scanner hands it over: a file to load or a synthetic shot to render.
#[derive(Debug, Clone)]
pub enum FrameInput {
    /// An image file.
    File(PathBuf),
    /// A synthetic shot, rendered on the decoder's thread.
    Synthetic(FrameSpec),
    /// Pixels already in memory (a hand-held scanner's imager hands its frame over whole).
    Pixels(Arc<LumaFrame>),
    /// Codes a scanner decoded in its own hardware (a hand-held scanner that sends text), with no pixels.
    Decoded(Vec<(String, Symbology)>),
}

/// The codes read in one frame, each with its meaning to the lane.
#[derive(Debug, Clone, Default)]
pub struct FrameReads {
    /// Each code's text and symbology, and what it means to the lane.
    pub reads: Vec<(String, Symbology, ScannedCode)>,
    /// Why a code in view could not be read, when the frame tells (a hint for the cashier).
    pub unreadable: Option<Unreadable>,
    /// Time spent getting the frame's pixels (loading the file, rendering the synthetic shot): a
    /// camera delivers them ready, so this is not part of the lane's frame-to-scan latency.
    pub acquiring: Duration,
}

/// Why a frame yielded nothing: the lane logs it, skips the frame and goes on.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct FrameSkipped(pub String);

/// Decode one frame (scanner to decoder).
#[derive(Message)]
#[rtype(result = "Result<FrameReads, FrameSkipped>")]
pub struct DecodeFrame(pub FrameInput);

/// The outcome of one decoded frame, after de-duplication (scanner to till).
#[derive(Message)]
#[rtype(result = "()")]
pub struct FrameDone {
    /// The frame's scan events.
    pub scans: Vec<ScannedCode>,
    /// Codes read in the frame, before de-duplication.
    pub codes_read: u64,
    /// Why the frame was skipped, if it was.
    pub skipped: Option<FrameSkipped>,
    /// Why a code in view cannot be read, when that just became the case (the cashier gets a hint).
    pub unreadable: Option<Unreadable>,
    /// From the camera's frame to its scan events, when it had any.
    pub latency: Option<Duration>,
}

impl FrameDone {
    /// A frame that gave nothing, and why.
    pub fn skipped(why: FrameSkipped) -> FrameDone {
        FrameDone { scans: Vec::new(), codes_read: 0, skipped: Some(why), unreadable: None, latency: None }
    }
}

/// The camera has no more frames, or the lane is stopping (scanner to till).
#[derive(Message)]
#[rtype(result = "()")]
pub struct FramesEnded;

/// The till charged this code: the scanner never hands it over again (till to scanner).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PaymentCodeCharged(pub PaymentCode);

/// Stop taking frames; the lane finishes the sale in progress (`run_lane` to scanner).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopScanning;

/// One pull of a hand-held scanner's trigger: the one frame it takes, and where to say what came of it
/// (the trigger's handle to the scanner). The answer comes once the till has handled the frame's scans, so
/// for a payment code once the charge has an outcome.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Trigger {
    /// The frame the scanner took.
    pub frame: FrameInput,
    /// What came of it.
    pub reply: oneshot::Sender<TriggerRead>,
}

/// What one pull of the trigger gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriggerRead {
    /// Codes read in the frame.
    pub codes_read: u64,
    /// Scan events the till got from it (a product into the basket, a payment code charged).
    pub scans: usize,
    /// Why the frame gave nothing, when it was skipped (or the lane is stopping).
    pub skipped: Option<String>,
}

/// What a cashier can do at the till besides scanning (from the lane's screen: buttons and keys).
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum CashierAction {
    /// Take line `line` (0 is the first) out of the open basket. `gtin` and `unit_price` name the line the
    /// cashier saw there: a line that has moved since (a double tap) is not taken out by mistake.
    RemoveLine { line: usize, gtin: String, unit_price: i64 },
    /// Set line `line`'s quantity (0 takes it out); `gtin` and `unit_price` as for [`CashierAction::RemoveLine`].
    SetQuantity { line: usize, gtin: String, unit_price: i64, quantity: u32 },
    /// Cancel the open sale: the basket is emptied, nothing is charged, a held coupon goes back.
    CancelSale,
    /// A product keyed in by its barcode digits (a label that will not scan).
    KeyIn { digits: String },
    /// The price typed for an open-price item (`gtin`, or the one scanned, or the store's only one), in minor
    /// units: shown back, and added only by [`CashierAction::ConfirmOpenPrice`].
    OpenPrice {
        #[serde(default)]
        gtin: Option<String>,
        minor_units: i64,
    },
    /// The second key press: the open-price item shown back goes into the basket.
    ConfirmOpenPrice,
    /// The open-price item shown back is dropped.
    DiscardOpenPrice,
    /// The cashier checked the amount, `minor_units`: the payment code held for it is charged (once), if that
    /// is still what the customer pays.
    ConfirmCharge { minor_units: i64 },
    /// The cashier does not confirm the amount: the code held for it is dropped (the customer shows it again).
    RejectCharge,
    /// A cashier signs on: their shift opens.
    SignOn { cashier: String },
    /// The cashier signs off: their shift closes; the lane takes no scans until someone signs on.
    SignOff,
    /// The lane stops taking scans until resumed (the cashier steps away).
    Pause,
    /// The lane takes scans again.
    Resume,
}

impl std::fmt::Debug for CashierAction {
    /// What was typed is not logged (a scanner in keyboard mode may have typed a payment code): only its length.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CashierAction::KeyIn { digits } => write!(f, "KeyIn({} characters)", digits.len()),
            CashierAction::SignOn { cashier } => write!(f, "SignOn({} characters)", cashier.len()),
            CashierAction::RemoveLine { line, .. } => write!(f, "RemoveLine({line})"),
            CashierAction::SetQuantity { line, quantity, .. } => write!(f, "SetQuantity({line}, {quantity})"),
            CashierAction::OpenPrice { minor_units, .. } => write!(f, "OpenPrice({minor_units})"),
            CashierAction::ConfirmCharge { minor_units } => write!(f, "ConfirmCharge({minor_units})"),
            CashierAction::CancelSale => f.write_str("CancelSale"),
            CashierAction::ConfirmOpenPrice => f.write_str("ConfirmOpenPrice"),
            CashierAction::DiscardOpenPrice => f.write_str("DiscardOpenPrice"),
            CashierAction::RejectCharge => f.write_str("RejectCharge"),
            CashierAction::SignOff => f.write_str("SignOff"),
            CashierAction::Pause => f.write_str("Pause"),
            CashierAction::Resume => f.write_str("Resume"),
        }
    }
}

/// Why the till did not apply a cashier's action, in words for the cashier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ActionRefused(pub String);

/// A cashier's action, sent to the till; answered once the till has applied it (or refused it).
#[derive(Message, Debug)]
#[rtype(result = "Result<(), ActionRefused>")]
pub struct CashierCommand(pub CashierAction);
