//! The scanner actor: takes frames from the camera, has the decoder read them, and passes scan events to the till.

use std::{
    collections::VecDeque,
    path::PathBuf,
    time::{Duration, Instant},
};

use actix::prelude::*;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::{
    debounce::Debouncer,
    messages::{
        DecodeFrame, FrameDone, FrameInput, FrameReads, FrameSkipped, FramesEnded, PaymentCodeCharged, StopScanning,
        Trigger, TriggerRead,
    },
    synthetic::SyntheticCamera,
    vision::Unreadable,
};

/// Where frames come from.
pub enum Camera {
    /// Image files, in order (a folder is listed by file name).
    Files(VecDeque<PathBuf>),
    /// Rendered customers.
    Synthetic(Box<SyntheticCamera>),
    /// A hand-held scanner: a frame when its trigger is pulled (taken by the scanner when it starts).
    HandHeld(Option<UnboundedReceiver<Trigger>>),
}

impl Camera {
    fn next_input(&mut self) -> Option<FrameInput> {
        match self {
            Camera::Files(paths) => paths.pop_front().map(FrameInput::File),
            Camera::Synthetic(camera) => camera.next_frame().map(FrameInput::Synthetic),
            Camera::HandHeld(_) => None,
        }
    }
}

/// Where the scanner's frames go: the decoder, then the till.
pub struct ScannerPeers {
    /// Reads a frame's codes.
    pub decoder: Recipient<DecodeFrame>,
    /// Takes each frame's scan events, in order.
    pub frames_to: Recipient<FrameDone>,
    /// Told when the frames end.
    pub ended_to: Recipient<FramesEnded>,
}

/// The lane's scanner actor: one frame at a time, from the camera through the decoder and the debouncer to the
/// till.
pub struct Scanner {
    camera: Camera,
    peers: ScannerPeers,
    debouncer: Debouncer,
    /// Time between frames for a paced camera; `None` reads as fast as decoding allows.
    frame_interval: Option<Duration>,
    next_due: Instant,
    stopping: bool,
    /// Camera frames that passed while the decoder was busy (the newest frame is always the one decoded).
    frames_dropped: u64,
    /// The last "why unreadable" hint logged, so a code held in view is not hinted at every frame.
    last_hint: Option<Unreadable>,
    /// A hand-held scanner's frame is being read and handled.
    pulled: bool,
}

impl Scanner {
    /// A scanner of `camera`'s frames, one every `frame_interval` (or as fast as they decode).
    pub fn new(camera: Camera, peers: ScannerPeers, debouncer: Debouncer, frame_interval: Option<Duration>) -> Scanner {
        Scanner {
            camera,
            peers,
            debouncer,
            frame_interval,
            next_due: Instant::now(),
            stopping: false,
            frames_dropped: 0,
            last_hint: None,
            pulled: false,
        }
    }

    /// The frames have ended (or the lane is stopping): the till closes the lane, and so does the scanner.
    fn end(&mut self, ctx: &mut Context<Self>) {
        if self.frames_dropped > 0 {
            tracing::info!(frames_dropped = self.frames_dropped, "camera frames dropped while decoding");
        }
        self.peers.ended_to.do_send(FramesEnded);
        ctx.stop();
    }

    /// What the decoder made of a frame, de-duplicated: a pull of a hand-held scanner's trigger is a scan
    /// of its own, a camera's frame one of a stream.
    fn frame_done(
        &mut self,
        decoded: Result<Result<FrameReads, FrameSkipped>, MailboxError>,
        captured_at: Instant,
    ) -> FrameDone {
        match decoded {
            Ok(Ok(reads)) => {
                let mut unreadable = None;
                if reads.unreadable != self.last_hint {
                    if let Some(newly) = reads.unreadable {
                        tracing::info!(hint = %newly, "a code is in view but cannot be read");
                        unreadable = Some(newly);
                    }
                    self.last_hint = reads.unreadable;
                }
                let codes_read = reads.reads.len() as u64;
                let scans = match self.camera {
                    Camera::HandHeld(_) => self.debouncer.trigger(reads.reads, Instant::now()),
                    _ => self.debouncer.frame(reads.reads, Instant::now()),
                };
                // From the camera's frame to the scan event, not counting the time the frame's
                // pixels took to arrive (a file loaded, a synthetic shot rendered).
                let latency = (!scans.is_empty()).then(|| captured_at.elapsed().saturating_sub(reads.acquiring));
                FrameDone { scans, codes_read, skipped: None, unreadable, latency }
            }
            Ok(Err(skipped)) => {
                tracing::warn!(reason = %skipped, "frame skipped");
                FrameDone::skipped(skipped)
            }
            Err(mailbox) => {
                tracing::error!(error = %mailbox, "decoder unavailable");
                FrameDone::skipped(FrameSkipped(mailbox.to_string()))
            }
        }
    }

    fn schedule_next(&mut self, ctx: &mut Context<Self>) {
        match self.frame_interval {
            None => ctx.notify(NextFrame),
            Some(interval) => {
                self.next_due += interval;
                let now = Instant::now();
                if self.next_due < now {
                    // Behind the camera: the frames we could not take are gone, as with a real camera,
                    // and the next one taken is the newest.
                    let behind = (now - self.next_due).as_secs_f64() / interval.as_secs_f64();
                    self.frames_dropped += behind as u64;
                    self.next_due = now;
                }
                ctx.notify_later(NextFrame, self.next_due - now);
            }
        }
    }
}

/// Take the next frame (the scanner to itself).
#[derive(Message)]
#[rtype(result = "()")]
struct NextFrame;

impl Actor for Scanner {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Camera::HandHeld(triggers) = &mut self.camera {
            // Each pull goes through the scanner's mailbox in turn: the next waits until the last is handled.
            let Some(mut triggers) = triggers.take() else { return self.end(ctx) };
            let scanner = ctx.address();
            ctx.spawn(
                async move {
                    while let Some(trigger) = triggers.recv().await {
                        if scanner.send(trigger).await.is_err() {
                            return;
                        }
                    }
                    scanner.do_send(StopScanning);
                }
                .into_actor(self),
            );
            return;
        }
        self.next_due = Instant::now();
        ctx.notify(NextFrame);
    }
}

impl Handler<Trigger> for Scanner {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, Trigger { frame, reply }: Trigger, _: &mut Context<Self>) -> Self::Result {
        if self.stopping {
            let _ = reply.send(TriggerRead { skipped: Some("the lane is closing".into()), ..TriggerRead::default() });
            return Box::pin(actix::fut::ready(()));
        }
        self.pulled = true;
        let decoder = self.peers.decoder.clone();
        let captured_at = Instant::now();
        Box::pin(
            async move { decoder.send(DecodeFrame(frame)).await }
                .into_actor(self)
                .then(move |decoded, scanner, _| {
                    let done = scanner.frame_done(decoded, captured_at);
                    let read = TriggerRead {
                        codes_read: done.codes_read,
                        scans: done.scans.len(),
                        skipped: done.skipped.as_ref().map(|s| s.0.clone()),
                    };
                    let till = scanner.peers.frames_to.clone();
                    async move {
                        let _ = till.send(done).await;
                        read
                    }
                    .into_actor(scanner)
                })
                .map(|read, scanner, ctx| {
                    let _ = reply.send(read);
                    scanner.pulled = false;
                    if scanner.stopping {
                        scanner.end(ctx);
                    }
                }),
        )
    }
}

impl Handler<PaymentCodeCharged> for Scanner {
    type Result = ();

    fn handle(&mut self, PaymentCodeCharged(code): PaymentCodeCharged, _: &mut Context<Self>) {
        self.debouncer.charged(&code);
    }
}

impl Handler<StopScanning> for Scanner {
    type Result = ();

    fn handle(&mut self, _: StopScanning, ctx: &mut Context<Self>) {
        self.stopping = true;
        // A hand-held scanner has no next frame to notice it: it stops now, or when the pull in hand is done.
        if matches!(self.camera, Camera::HandHeld(_)) && !self.pulled {
            self.end(ctx);
        }
    }
}

impl Handler<NextFrame> for Scanner {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: NextFrame, ctx: &mut Context<Self>) -> Self::Result {
        let input = if self.stopping { None } else { self.camera.next_input() };
        let Some(input) = input else {
            self.end(ctx);
            return Box::pin(actix::fut::ready(()));
        };
        let decoder = self.peers.decoder.clone();
        let captured_at = Instant::now();
        Box::pin(
            async move { decoder.send(DecodeFrame(input)).await }
                .into_actor(self)
                .then(move |decoded, scanner, _| {
                    let done = scanner.frame_done(decoded, captured_at);
                    let till = scanner.peers.frames_to.clone();
                    // Wait for the till: scans are handled in order, one frame at a time.
                    async move {
                        let _ = till.send(done).await;
                    }
                    .into_actor(scanner)
                })
                .map(|(), scanner, ctx| scanner.schedule_next(ctx)),
        )
    }
}
