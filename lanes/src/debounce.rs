//! Turns per-frame reads into scan events: a code held in view is one scan, a weak-checksum read needs a second
//! agreeing read, a payment code shown again within the hold-off is ignored, and a payment code the lane has
//! charged (it says so with [`Debouncer::charged`]) is never handed over again. A payment code that was handed
//! over but not charged (shown before any item, declined) is taken again once it has left view and the
//! hold-off has passed.

use std::{
    collections::{HashMap, HashSet, VecDeque, hash_map::RandomState},
    hash::BuildHasher,
    time::{Duration, Instant},
};

use checkout_storage::{PaymentCode, ScannedCode, Symbology};

/// Default time within which the same payment code is not taken again.
pub const PAYMENT_HOLD_OFF: Duration = Duration::from_secs(2);
/// A code must be out of view for this many frames before it scans again.
pub const REARM_FRAMES: u32 = 2;
/// Reads of a weak-checksum symbology (EAN-8, UPC-E) that must agree before they count: a slightly tilted
/// EAN-13 can read as a valid UPC-E.
pub const WEAK_CONSENSUS: u32 = 2;
/// How many charged payment codes are remembered (as keyed hashes, never the digits) to refuse them if shown
/// again.
pub const CHARGED_MEMORY: usize = 4096;

/// A code currently in view.
struct InView {
    /// Frames since it was last read (0: read in this frame).
    absent: u32,
    /// Frames it was read in while in view.
    reads: u32,
    /// Whether it has produced its scan event.
    emitted: bool,
}

/// Per-lane scan de-duplication.
pub struct Debouncer {
    payment_hold_off: Duration,
    in_view: HashMap<String, InView>,
    /// Payment codes (keyed hashes) with when they were last seen.
    payments_seen: HashMap<u64, Instant>,
    /// Payment codes (keyed hashes) the lane has charged, oldest first.
    charged: HashSet<u64>,
    charged_order: VecDeque<u64>,
    /// A per-process random key: the hashes say nothing about the codes outside this process.
    keys: RandomState,
}

fn is_weak(symbology: Symbology) -> bool {
    matches!(symbology, Symbology::Ean8 | Symbology::UpcE)
}

impl Debouncer {
    /// A debouncer that ignores a payment code shown again within `payment_hold_off`.
    pub fn new(payment_hold_off: Duration) -> Debouncer {
        Debouncer {
            payment_hold_off,
            in_view: HashMap::new(),
            payments_seen: HashMap::new(),
            charged: HashSet::new(),
            charged_order: VecDeque::new(),
            keys: RandomState::new(),
        }
    }

    /// Feeds the codes read in one frame; returns the ones that are new scans.
    pub fn frame(&mut self, reads: Vec<(String, Symbology, ScannedCode)>, now: Instant) -> Vec<ScannedCode> {
        let seen_now: HashSet<&str> = reads.iter().map(|(text, _, _)| text.as_str()).collect();
        // Age what is not in this frame; forget what has been gone long enough.
        self.in_view.retain(|text, code| {
            if !seen_now.contains(text.as_str()) {
                code.absent += 1;
            }
            code.absent < REARM_FRAMES
        });
        let hold_off = self.payment_hold_off;
        self.payments_seen.retain(|_, at| now.duration_since(*at) < hold_off);

        let mut events = Vec::new();
        let mut counted: HashSet<String> = HashSet::new();
        for (text, symbology, scanned) in reads {
            if !counted.insert(text.clone()) {
                continue; // The same code twice in one frame is one read.
            }
            let code = self.in_view.entry(text.clone()).or_insert(InView { absent: 0, reads: 0, emitted: false });
            code.absent = 0;
            code.reads += 1;
            if code.emitted {
                if let ScannedCode::Payment(payment) = &scanned {
                    let key = self.keys.hash_one(payment.expose_digits());
                    self.payments_seen.insert(key, now);
                }
                continue;
            }
            if is_weak(symbology) && code.reads < WEAK_CONSENSUS {
                continue;
            }
            code.emitted = true;
            if self.payment_held_back(&scanned, now) {
                continue;
            }
            events.push(scanned);
        }
        events
    }

    /// Feeds the codes read on one pull of a hand-held scanner's trigger. Each pull is a scan of its own (the
    /// same product pulled twice is two items, and a weak symbology is taken on one read, as a hand-held
    /// scanner takes it), while a payment code keeps its hold-off and is never handed over once charged.
    pub fn trigger(&mut self, reads: Vec<(String, Symbology, ScannedCode)>, now: Instant) -> Vec<ScannedCode> {
        self.in_view.clear();
        let hold_off = self.payment_hold_off;
        self.payments_seen.retain(|_, at| now.duration_since(*at) < hold_off);
        let mut events = Vec::new();
        let mut counted: HashSet<String> = HashSet::new();
        for (text, _, scanned) in reads {
            if !counted.insert(text) {
                continue; // The QR code and the Code 128 of one payment code, or one code read twice.
            }
            if self.payment_held_back(&scanned, now) {
                continue;
            }
            events.push(scanned);
        }
        events
    }

    /// Whether `scanned`, a payment code handed over now, is held back: shown within the hold-off of its last
    /// sighting (which this one renews), or charged already.
    fn payment_held_back(&mut self, scanned: &ScannedCode, now: Instant) -> bool {
        let ScannedCode::Payment(payment) = scanned else { return false };
        let key = self.keys.hash_one(payment.expose_digits());
        let recent = self.payments_seen.insert(key, now).is_some();
        recent || self.charged.contains(&key)
    }

    /// The lane charged this payment code: it is never handed over again (the last [`CHARGED_MEMORY`] codes).
    pub fn charged(&mut self, code: &PaymentCode) {
        let key = self.keys.hash_one(code.expose_digits());
        if self.charged.insert(key) {
            self.charged_order.push_back(key);
        }
        while self.charged_order.len() > CHARGED_MEMORY {
            if let Some(old) = self.charged_order.pop_front() {
                self.charged.remove(&old);
            }
        }
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

    fn charge(d: &mut Debouncer, events: &[ScannedCode]) {
        for event in events {
            if let ScannedCode::Payment(code) = event {
                d.charged(code);
            }
        }
    }

    #[test]
    fn each_pull_of_the_trigger_is_a_scan_and_a_charged_code_still_never_comes_back() {
        let mut d = Debouncer::new(Duration::from_secs(2));
        let t = Instant::now();
        let upce = "01234565";
        assert_eq!(d.trigger(vec![read(upce, Symbology::UpcE)], t).len(), 1, "one read of a UPC-E is a scan");
        assert_eq!(d.trigger(vec![read(upce, Symbology::UpcE)], t).len(), 1, "the second item of the product");
        let code = "134567890123456789";
        let both = vec![read(code, Symbology::QrCode), read(code, Symbology::Code128)];
        let events = d.trigger(both, t);
        assert_eq!(events.len(), 1, "the QR code and the barcode of one payment code are one scan");
        charge(&mut d, &events);
        assert!(d.trigger(vec![read(code, Symbology::QrCode)], t + Duration::from_secs(30)).is_empty());
        let declined = "284567890123456789";
        assert_eq!(d.trigger(vec![read(declined, Symbology::QrCode)], t).len(), 1);
        assert!(d.trigger(vec![read(declined, Symbology::QrCode)], t + Duration::from_secs(1)).is_empty(), "hold-off");
        assert_eq!(d.trigger(vec![read(declined, Symbology::QrCode)], t + Duration::from_secs(4)).len(), 1);
    }

    #[test]
    fn a_charged_payment_code_shown_again_is_never_taken_again() {
        let mut d = Debouncer::new(Duration::from_secs(2));
        let t = Instant::now();
        let code = "134567890123456789";
        let events = d.frame(vec![read(code, Symbology::QrCode)], t);
        assert_eq!(events.len(), 1);
        charge(&mut d, &events);
        for _ in 0..3 {
            d.frame(vec![], t);
        }
        // Within the hold-off, and as the Code 128 under the QR code: ignored.
        assert_eq!(d.frame(vec![read(code, Symbology::Code128)], t + Duration::from_millis(1500)).len(), 0);
        for _ in 0..3 {
            d.frame(vec![], t + Duration::from_millis(1600));
        }
        // Long after: still never charged again.
        assert_eq!(d.frame(vec![read(code, Symbology::QrCode)], t + Duration::from_secs(40)).len(), 0);
        // Another customer's code is taken.
        assert_eq!(d.frame(vec![read("284567890123456789", Symbology::QrCode)], t + Duration::from_secs(41)).len(), 1);
    }

    #[test]
    fn a_payment_code_not_charged_is_taken_again_after_the_hold_off_once_out_of_view() {
        let mut d = Debouncer::new(Duration::from_secs(2));
        let t = Instant::now();
        let at = |ms: u64| t + Duration::from_millis(ms);
        let code = "134567890123456789";
        // Shown before any item: handed over, but the lane does not charge it.
        assert_eq!(d.frame(vec![read(code, Symbology::QrCode)], at(0)).len(), 1);
        // Held in view for 3 s: still one scan.
        for f in 1..90 {
            assert_eq!(d.frame(vec![read(code, Symbology::QrCode)], at(f * 33)).len(), 0, "frame {f}");
        }
        // Taken away and shown again within the hold-off of its last sighting: ignored.
        for f in 90..95 {
            d.frame(vec![], at(f * 33));
        }
        assert_eq!(d.frame(vec![read(code, Symbology::QrCode)], at(95 * 33)).len(), 0, "within the hold-off");
        // Out of view past the hold-off, then shown again: taken again.
        for f in 96..100 {
            d.frame(vec![], at(f * 33));
        }
        let again = d.frame(vec![read(code, Symbology::Code128)], at(95 * 33 + 2100));
        assert_eq!(again.len(), 1, "a code never charged can be taken again");
        // Now it is charged: never again, however long after.
        charge(&mut d, &again);
        for f in 0..3 {
            d.frame(vec![], at(95 * 33 + 2200 + f));
        }
        assert_eq!(d.frame(vec![read(code, Symbology::QrCode)], at(60_000)).len(), 0);
    }

    #[test]
    fn a_payment_code_never_leaving_view_is_not_taken_twice_even_past_the_hold_off() {
        let mut d = Debouncer::new(Duration::from_secs(2));
        let t = Instant::now();
        let code = "284567890123456789";
        let mut events = 0;
        for f in 0..300u64 {
            events += d.frame(vec![read(code, Symbology::QrCode)], t + Duration::from_millis(f * 33)).len();
        }
        assert_eq!(events, 1);
    }

    #[test]
    fn the_charged_memory_is_bounded() {
        let mut d = Debouncer::new(Duration::from_secs(2));
        for i in 0..(CHARGED_MEMORY as u64 + 10) {
            let text = format!("13{:016}", i);
            if let ScannedCode::Payment(code) = classify(&text, Symbology::QrCode) {
                d.charged(&code);
            } else {
                panic!("{text} is a payment code");
            }
        }
        assert_eq!(d.charged.len(), CHARGED_MEMORY);
        assert_eq!(d.charged_order.len(), CHARGED_MEMORY);
    }

    #[test]
    fn a_code_held_three_seconds_at_30_fps_is_one_scan() {
        let mut d = Debouncer::new(PAYMENT_HOLD_OFF);
        let t = Instant::now();
        let mut events = 0;
        for f in 0..90u64 {
            let now = t + Duration::from_millis(f * 33);
            // Decoding misses the code now and then.
            let reads = if f % 7 == 3 { vec![] } else { vec![read("6901234000010", Symbology::Ean13)] };
            events += d.frame(reads, now).len();
        }
        assert_eq!(events, 1);
        let mut events = 0;
        for f in 0..90u64 {
            let reads = if f % 5 == 2 { vec![] } else { vec![read("134567890123456789", Symbology::QrCode)] };
            events += d.frame(reads, t + Duration::from_millis(f * 33)).len();
        }
        assert_eq!(events, 1, "a payment code held 3 s is charged once");
    }

    #[test]
    fn weak_checksum_reads_need_two_agreeing_reads() {
        let mut d = Debouncer::new(PAYMENT_HOLD_OFF);
        let t = Instant::now();
        let ean8 = "96385074";
        assert_eq!(d.frame(vec![read(ean8, Symbology::Ean8)], t).len(), 0, "one EAN-8 read is not enough");
        assert_eq!(d.frame(vec![read(ean8, Symbology::Ean8)], t).len(), 1, "the second agreeing read counts");
        assert_eq!(d.frame(vec![read(ean8, Symbology::Ean8)], t).len(), 0);
        // The same code twice in one frame is still one read.
        let upc_e = "01234565";
        assert_eq!(d.frame(vec![read(upc_e, Symbology::UpcE), read(upc_e, Symbology::UpcE)], t).len(), 0);
        // A missed frame between two agreeing reads is fine.
        assert_eq!(d.frame(vec![], t).len(), 0);
        assert_eq!(d.frame(vec![read(upc_e, Symbology::UpcE)], t).len(), 1);
    }

    #[test]
    fn a_lone_upc_e_misread_of_a_tilted_ean13_never_scans() {
        let mut d = Debouncer::new(PAYMENT_HOLD_OFF);
        let t = Instant::now();
        let ean13 = "6901234000010";
        assert_eq!(d.frame(vec![read("01234565", Symbology::UpcE)], t).len(), 0);
        assert_eq!(d.frame(vec![read(ean13, Symbology::Ean13)], t), vec![classify(ean13, Symbology::Ean13)]);
        for _ in 0..5 {
            assert_eq!(d.frame(vec![read(ean13, Symbology::Ean13)], t).len(), 0);
        }
        // EAN-13 and UPC-A have a strong enough checksum: one read counts.
        assert_eq!(d.frame(vec![read("036000291452", Symbology::UpcA)], t).len(), 1);
    }
}
