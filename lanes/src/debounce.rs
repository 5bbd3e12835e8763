//! Turns per-frame reads into scan events: a code held in view is one scan, a payment code shown again soon is ignored.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use checkout_storage::{ScannedCode, Symbology};

/// Default time within which the same payment code is not taken again.
pub const PAYMENT_HOLD_OFF: Duration = Duration::from_secs(2);
/// A code must be out of view for this many frames before it scans again.
pub const REARM_FRAMES: u32 = 2;

/// Per-lane scan de-duplication.
pub struct Debouncer {
    payment_hold_off: Duration,
    /// Codes in view, with how many frames each has been absent (0 = in this frame).
    in_view: HashMap<String, u32>,
    /// Payment codes already taken, with when they were last seen.
    payments_seen: HashMap<String, Instant>,
}

impl Debouncer {
    pub fn new(payment_hold_off: Duration) -> Debouncer {
        Debouncer { payment_hold_off, in_view: HashMap::new(), payments_seen: HashMap::new() }
    }

    /// Feeds the codes read in one frame; returns the ones that are new scans.
    pub fn frame(&mut self, reads: Vec<(String, Symbology, ScannedCode)>, now: Instant) -> Vec<ScannedCode> {
        let seen_now: HashSet<&str> = reads.iter().map(|(text, _, _)| text.as_str()).collect();
        // Age what is not in this frame; forget what has been gone long enough.
        self.in_view.retain(|text, absent| {
            if !seen_now.contains(text.as_str()) {
                *absent += 1;
            }
            *absent < REARM_FRAMES
        });
        let hold_off = self.payment_hold_off;
        self.payments_seen.retain(|_, at| now.duration_since(*at) < hold_off);

        let mut events = Vec::new();
        for (text, _, scanned) in reads {
            let already_in_view = self.in_view.insert(text.clone(), 0).is_some();
            if let ScannedCode::Payment(_) = &scanned {
                let recent = self.payments_seen.insert(text, now).is_some();
                if recent || already_in_view {
                    continue;
                }
            } else if already_in_view {
                continue;
            }
            events.push(scanned);
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkout_storage::classify;

    fn read(text: &str, symbology: Symbology) -> (String, Symbology, ScannedCode) {
        (text.to_owned(), symbology, classify(text, symbology))
    }

    #[test]
    fn a_code_held_in_view_scans_once_and_again_after_leaving() {
        let mut d = Debouncer::new(PAYMENT_HOLD_OFF);
        let t = Instant::now();
        let ean = "6901234000010";
        assert_eq!(d.frame(vec![read(ean, Symbology::Ean13)], t).len(), 1);
        assert_eq!(d.frame(vec![read(ean, Symbology::Ean13)], t).len(), 0);
        // One frame without it is a missed read, not the item leaving.
        assert_eq!(d.frame(vec![], t).len(), 0);
        assert_eq!(d.frame(vec![read(ean, Symbology::Ean13)], t).len(), 0);
        assert_eq!(d.frame(vec![], t).len(), 0);
        assert_eq!(d.frame(vec![], t).len(), 0);
        assert_eq!(d.frame(vec![read(ean, Symbology::Ean13)], t).len(), 1, "the second item of the same product");
    }

    #[test]
    fn a_payment_code_shown_again_within_the_hold_off_is_ignored() {
        let mut d = Debouncer::new(Duration::from_secs(2));
        let t = Instant::now();
        let code = "134567890123456789";
        assert_eq!(d.frame(vec![read(code, Symbology::QrCode)], t).len(), 1);
        for _ in 0..3 {
            d.frame(vec![], t);
        }
        assert_eq!(d.frame(vec![read(code, Symbology::Code128)], t + Duration::from_millis(1500)).len(), 0);
        for _ in 0..3 {
            d.frame(vec![], t + Duration::from_millis(1600));
        }
        assert_eq!(d.frame(vec![read(code, Symbology::QrCode)], t + Duration::from_secs(4)).len(), 1);
    }
}
