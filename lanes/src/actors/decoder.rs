//! The decoder actor: loads or renders a frame and reads its codes with rxing, on its own threads.

use actix::prelude::*;
use checkout_storage::classify;

use crate::{
    messages::{DecodeFrame, FrameInput, FrameReads, FrameSkipped},
    synthetic::render_frame,
    vision::{CodeRead, DEFAULT_PIXEL_LIMIT, FrameError, VisionConfig, analyse_frame, load_frame_file},
};

/// The lane's decoder actor. Runs on a `SyncArbiter`: CPU-bound work never stalls the lane's other actors.
pub struct Decoder {
    pixel_limit: u64,
    vision: VisionConfig,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder { pixel_limit: DEFAULT_PIXEL_LIMIT, vision: VisionConfig::default() }
    }
}

impl Actor for Decoder {
    type Context = SyncContext<Self>;
}

/// Loads or renders and decodes one frame.
pub fn read_frame(input: &FrameInput, pixel_limit: u64) -> Result<FrameReads, FrameSkipped> {
    read_frame_with(input, pixel_limit, &VisionConfig::default())
}

/// Loads or renders and decodes one frame with the given pipeline settings.
pub fn read_frame_with(
    input: &FrameInput,
    pixel_limit: u64,
    vision: &VisionConfig,
) -> Result<FrameReads, FrameSkipped> {
    let started = std::time::Instant::now();
    let made;
    let frame = match input {
        FrameInput::File(path) => {
            made = load_frame_file(path, pixel_limit).map_err(|e| match e {
                FrameError::Io { .. } => FrameSkipped(e.to_string()),
                e => FrameSkipped(format!("{}: {e}", path.display())),
            })?;
            &made
        }
        FrameInput::Synthetic(spec) => {
            made = render_frame(spec).map_err(|e| FrameSkipped(format!("cannot render {spec:?}: {e}")))?;
            &made
        }
        FrameInput::Pixels(frame) => frame.as_ref(),
        FrameInput::Decoded(codes) => {
            let reads = codes.iter().map(|(text, symbology)| (text.clone(), *symbology, classify(text, *symbology)));
            return Ok(FrameReads { acquiring: started.elapsed(), unreadable: None, reads: reads.collect() });
        }
    };
    let acquiring = started.elapsed();
    // rxing runs behind its own `catch_unwind`; this one keeps a bug of ours on an odd frame from
    // taking a decoder thread down with it: the frame is skipped and the lane goes on.
    let analysed =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| analyse_frame(frame, vision))).map_err(|_| {
            FrameSkipped("the decoder failed on this frame (a bug: please report it with the frame)".into())
        })?;
    let analysis = analysed.map_err(|e| FrameSkipped(e.to_string()))?;
    Ok(FrameReads {
        acquiring,
        unreadable: analysis.unreadable,
        reads: analysis
            .reads
            .into_iter()
            .map(|CodeRead { text, symbology, .. }| {
                let scanned = classify(&text, symbology);
                (text, symbology, scanned)
            })
            .collect(),
    })
}

impl Handler<DecodeFrame> for Decoder {
    type Result = Result<FrameReads, FrameSkipped>;

    fn handle(&mut self, DecodeFrame(input): DecodeFrame, _: &mut SyncContext<Self>) -> Self::Result {
        read_frame_with(&input, self.pixel_limit, &self.vision)
    }
}
