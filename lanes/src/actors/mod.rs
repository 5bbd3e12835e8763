//! The lane's three actors and how they are wired: the scanner takes frames, the decoder (on its own
//! threads) reads their codes, and the till turns scans into a basket and a payment code into a charge.

pub mod decoder;
pub mod scanner;
pub mod till;

use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use self::{
    decoder::Decoder,
    scanner::{Camera, Scanner, ScannerPeers},
    till::{Till, TillSetup},
};
use crate::{config::LaneConfig, debounce::Debouncer, events::LaneSummary};

/// Starts the lane's actors on the current arbiter (the decoder on its own threads) and returns the scanner,
/// which stops the lane when told to, and the till, which takes the cashier's actions. The till and the scanner each get the other's recipients when they are
/// built; `done` gets the lane's summary when the till has closed.
pub(crate) fn start(
    config: &LaneConfig,
    camera: Camera,
    setup: TillSetup,
    done: oneshot::Sender<LaneSummary>,
) -> (Addr<Scanner>, Addr<Till>) {
    // The scanner's mailbox exists before the till, so the till is built knowing where to report charges.
    let scanner_context = Context::<Scanner>::new();
    let charges_to = scanner_context.address().recipient();
    let till = Till::new(config.lane_id.clone(), setup, charges_to, done).start();
    let decoder = SyncArbiter::start(config.decoder_threads.max(1), Decoder::default);
    let frame_interval =
        config.frames_per_second.filter(|fps| *fps > 0.0).map(|fps| Duration::from_secs_f64(1.0 / fps));
    let peers = ScannerPeers {
        decoder: decoder.recipient(),
        frames_to: till.clone().recipient(),
        ended_to: till.clone().recipient(),
    };
    let scanner =
        scanner_context.run(Scanner::new(camera, peers, Debouncer::new(config.payment_hold_off), frame_interval));
    (scanner, till)
}
