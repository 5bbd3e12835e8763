//! A 1D strip's variants: the ways a strip is prepared for rxing when it does not read as it is, and which of
//! them each kind of strip tries, in which order.

use crate::vision::filters::{composite_rows, normalise_envelope, sharpen, smooth_across_rows};

use super::strip::Strip;

/// Which strip of a 1D candidate is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StripReach {
    /// Over the cells the finder found.
    Found,
    /// On past both ends and over the bars' whole height, under glare (see `GLARE_REACH`).
    PastTheEnds,
    /// Between the bars' ends, along them (see `BarEnds`); on past both ends under glare.
    BetweenEnds,
    /// Rows in line, motion blur undone (see `read_motion_deblurred`).
    Deblurred,
}

/// A way of preparing a strip for rxing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StripVariant {
    /// As sampled (stretched to the full grey range when `Steps::stretch`). The only variant read with the
    /// hints as asked: inverted bars are looked for in it alone.
    AsSampled,
    /// Sharpened along the rows (blur).
    Sharpened,
    /// Normalised against a moving average (glare).
    Normalised,
    /// Stretched between local extremes (glare ramps, faint bars).
    Envelope,
    /// Sharpened, then stretched between local extremes.
    SharpenedEnvelope,
    /// Sharpened twice, then stretched between local extremes (small blurred modules).
    TwiceSharpenedEnvelope,
    /// Under glare, a composite of the rows' best-kept parts.
    Composite,
}

/// The variants a strip tries, in order (measured order on `bench decode`), each made only when the ones
/// before it failed: all but the composite for the strip the finder found, and the composite too under glare.
///
/// The strip past the ends skips the locally normalised and the twice-sharpened variants (on `bench decode`
/// they read no frame there, and made each fruitless try slower). A strip under glare is also tried as a
/// composite of its best-kept rows (it reads more frames and one wrong read fewer, within the noise of p99).
/// The strip between the bars' ends is a retry itself, tried only stretched between local extremes, plain
/// and sharpened (the other variants read few of its frames, and slowed the slowest frames). So is the
/// deblurred strip: as it is, then stretched (stretched and sharpened too read a few moving frames more, but
/// slow every frame that tries it; stretched alone reads fewer).
/// Without retries a strip is read as sampled only.
pub(super) fn plan(reach: StripReach, retries: bool, glared: bool) -> Vec<StripVariant> {
    use StripVariant::*;
    let composite = glared.then_some(Composite);
    match (retries, reach) {
        (false, _) => vec![AsSampled],
        (true, StripReach::Found) => {
            [AsSampled, Sharpened, Normalised, Envelope, SharpenedEnvelope, TwiceSharpenedEnvelope]
                .into_iter()
                .chain(composite)
                .collect()
        }
        (true, StripReach::PastTheEnds) => {
            [AsSampled, Sharpened, Envelope, SharpenedEnvelope].into_iter().chain(composite).collect()
        }
        (true, StripReach::BetweenEnds) => vec![Envelope, SharpenedEnvelope],
        (true, StripReach::Deblurred) => vec![AsSampled, Envelope],
    }
}

/// What a strip's variants are made from.
pub(super) struct Variants<'a> {
    /// The strip as it is read (stretched when asked).
    pub(super) strip: &'a Strip,
    /// The strip as sampled.
    pub(super) raw: &'a Strip,
    /// The strip normalised against a moving average (made anyway, to count its edges).
    pub(super) normalised: &'a [u8],
    /// The strip's bar edges (the envelope's window spans a few of them).
    pub(super) edge_count: usize,
}

impl Variants<'_> {
    /// The strip's `variant`.
    pub(super) fn make(&self, variant: StripVariant) -> Vec<u8> {
        let raw = &self.raw.pixels;
        match variant {
            StripVariant::AsSampled => self.strip.pixels.clone(),
            StripVariant::Sharpened => sharpen(&self.strip.pixels, self.strip.width),
            StripVariant::Normalised => self.normalised.to_vec(),
            StripVariant::Envelope => self.envelope(raw),
            StripVariant::SharpenedEnvelope => self.envelope(&self.sharpened(raw)),
            StripVariant::TwiceSharpenedEnvelope => self.envelope(&self.sharpened(&self.sharpened(raw))),
            StripVariant::Composite => composite_rows(raw, self.raw.width, self.raw.height, self.edge_count),
        }
    }

    /// The strip's rows `aligned` (shifted so that slanted bars stand upright), averaged in threes (less noise),
    /// sharpened and stretched between local extremes.
    pub(super) fn straightened(&self, aligned: &[u8]) -> Vec<u8> {
        self.envelope(&self.sharpened(&smooth_across_rows(aligned, self.raw.width, self.raw.height, 1)))
    }

    fn sharpened(&self, pixels: &[u8]) -> Vec<u8> {
        sharpen(pixels, self.raw.width)
    }

    fn envelope(&self, pixels: &[u8]) -> Vec<u8> {
        normalise_envelope(pixels, self.raw.width, self.edge_count)
    }
}

#[cfg(test)]
mod tests {
    use checkout_storage::Symbology;

    use crate::vision::filters::composite_rows;
    use crate::vision::linear::strip::{STRIP_ROWS, Strip};
    use crate::vision::linear::verify::{edges, rxing_text};
    use crate::vision::scenes::ean13;
    use crate::vision::work::Work;

    #[test]
    fn a_composite_of_rows_reads_a_code_that_glare_washes_out_along_every_row() {
        let text = ean13();
        let code = crate::vision::render::render_code(&text, Symbology::Ean13, 3, 1).unwrap();
        let width = code.width as usize;
        let row: Vec<u8> = code.pixels.iter().map(|&p| 60 + p / 2).collect();
        // Glare clips the left half of the upper rows and the right half of the lower ones to white.
        let mut pixels = Vec::with_capacity(width * STRIP_ROWS);
        for r in 0..STRIP_ROWS {
            let washed = if r < STRIP_ROWS / 2 { 0..width / 2 } else { width / 2..width };
            pixels.extend(row.iter().enumerate().map(|(i, &p)| if washed.contains(&i) { 255 } else { p }));
        }
        let work = Work::default();
        assert_eq!(rxing_text(&pixels, width, STRIP_ROWS, &work), None, "every row has lost half the code");
        let strip = Strip { width, height: STRIP_ROWS, pixels };
        let composite = composite_rows(&strip.pixels, width, STRIP_ROWS, edges(&strip));
        assert_eq!(rxing_text(&composite, width, STRIP_ROWS, &work), Some(text));
    }
}
