//! The work a frame's search spends: samples resampled and pixels handed to rxing, counted rather than timed, so
//! that a frame gets the same attempts however busy the machine is (see `VisionConfig::work_budget`).

use std::cell::Cell;

/// Work spent so far on one frame. The readers of a frame share it by reference, each charging what it
/// resamples and hands to rxing.
#[derive(Debug, Default)]
pub(super) struct Work {
    spent: Cell<u64>,
}

impl Work {
    /// Counts `samples` more: samples resampled into a strip or grid, or pixels handed to rxing.
    pub(super) fn charge(&self, samples: usize) {
        self.spent.set(self.spent.get() + samples as u64);
    }

    /// The work spent so far.
    pub(super) fn spent(&self) -> u64 {
        self.spent.get()
    }
}
