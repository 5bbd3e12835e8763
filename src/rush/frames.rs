//! The frames the rush's hand-held scanners take: each product's label in a few hand-held poses, rendered once
//! and shared, and each payment code on a phone screen, rendered when the customer opens the wallet app.

use std::sync::Arc;

use checkout_lanes::{
    messages::FrameInput,
    synthetic::{Distortion, FrameSpec, SeededRng, render_frame},
    vision::{LumaFrame, RenderError},
};
use checkout_storage::{Product, Symbology};

/// Poses of each product's label.
const POSES: usize = 3;
/// A hand-held scanner's imager.
const WIDTH: u32 = 640;
const HEIGHT: u32 = 480;

/// Each product's label as the hand-held scanner sees it, in a few poses.
pub struct ProductFrames {
    /// By catalog position, then pose.
    frames: Vec<Vec<Arc<LumaFrame>>>,
    /// Without vision: the codes as a scanner that decodes in its own hardware sends them.
    codes: Vec<(String, Symbology)>,
    vision: bool,
}

fn product_symbology(gtin: &str) -> Symbology {
    if gtin.len() == 8 { Symbology::Ean8 } else { Symbology::Ean13 }
}

/// A label held to the scanner: tilted a little, slightly out of focus, some noise and clutter.
fn hand_held(rng: &mut SeededRng) -> Distortion {
    Distortion {
        rotation_deg: rng.range(0, 30) as f32 - 15.0,
        perspective_x: (rng.range(0, 8) as f32 - 4.0) / 100.0,
        blur_sigma: rng.range(0, 5) as f32 / 10.0,
        noise_sigma: rng.range(0, 3) as f32,
        contrast: rng.range(70, 100) as f32 / 100.0,
        clutter: 2,
        ..Distortion::default()
    }
}

impl ProductFrames {
    /// Renders every product's poses (or, without vision, keeps their codes).
    pub fn render(catalog: &[Product], seed: u64, vision: bool) -> Result<ProductFrames, RenderError> {
        let mut rng = SeededRng::new(seed ^ 0x1abe1);
        let codes: Vec<(String, Symbology)> =
            catalog.iter().map(|p| (p.gtin.as_str().to_owned(), product_symbology(p.gtin.as_str()))).collect();
        let mut frames = Vec::new();
        if vision {
            for (text, symbology) in &codes {
                let mut poses = Vec::with_capacity(POSES);
                for _ in 0..POSES {
                    let spec = FrameSpec {
                        width: WIDTH,
                        height: HEIGHT,
                        code: Some((text.clone(), *symbology)),
                        module_px: 2,
                        centre_x_permille: rng.range(420, 580) as u32,
                        centre_y_permille: rng.range(420, 580) as u32,
                        background: rng.range(150, 220) as u8,
                        distortion: hand_held(&mut rng),
                        seed: rng.next_u64(),
                    };
                    poses.push(Arc::new(render_frame(&spec)?));
                }
                frames.push(poses);
            }
        }
        Ok(ProductFrames { frames, codes, vision })
    }

    /// The frame of product `index` in a pose drawn from `pick`.
    pub fn frame(&self, index: usize, pick: u64) -> Option<FrameInput> {
        if !self.vision {
            return self.codes.get(index).map(|code| FrameInput::Decoded(vec![code.clone()]));
        }
        let poses = self.frames.get(index)?;
        poses.get(pick as usize % poses.len().max(1)).cloned().map(FrameInput::Pixels)
    }
}

/// A wallet's payment code on a phone screen held to the scanner: the QR code on a bright screen, a little
/// tilted, with the screen's reflection and the phone's edges around it.
pub fn phone_screen(code: &str, seed: u64, vision: bool) -> Result<FrameInput, RenderError> {
    if !vision {
        return Ok(FrameInput::Decoded(vec![(code.to_owned(), Symbology::QrCode)]));
    }
    let mut rng = SeededRng::new(seed);
    let spec = FrameSpec {
        width: WIDTH,
        height: HEIGHT,
        code: Some((code.to_owned(), Symbology::QrCode)),
        module_px: 4,
        centre_x_permille: rng.range(430, 570) as u32,
        centre_y_permille: rng.range(430, 570) as u32,
        // A lit screen is brighter than a label.
        background: rng.range(200, 240) as u8,
        distortion: Distortion {
            rotation_deg: rng.range(0, 24) as f32 - 12.0,
            perspective_y: (rng.range(0, 8) as f32 - 4.0) / 100.0,
            blur_sigma: rng.range(0, 4) as f32 / 10.0,
            noise_sigma: rng.range(1, 4) as f32,
            contrast: rng.range(75, 95) as f32 / 100.0,
            glare: rng.range(0, 20) as f32 / 100.0,
            clutter: 1,
            ..Distortion::default()
        },
        seed: rng.next_u64(),
    };
    Ok(FrameInput::Pixels(Arc::new(render_frame(&spec)?)))
}

#[cfg(test)]
mod tests {
    use checkout_lanes::vision::{VisionConfig, analyse_frame};
    use checkout_storage::sample_catalog;

    use super::*;

    fn read(input: &FrameInput) -> Vec<String> {
        let FrameInput::Pixels(frame) = input else { panic!("a frame with pixels") };
        analyse_frame(frame, &VisionConfig::default()).unwrap().reads.into_iter().map(|r| r.text).collect()
    }

    #[test]
    fn the_decoder_reads_the_product_labels_and_the_phone_screens_the_scanner_sees() {
        let catalog = sample_catalog();
        let frames = ProductFrames::render(&catalog, 3, true).unwrap();
        let mut read_labels = 0;
        for (index, product) in catalog.iter().enumerate() {
            for pose in 0..POSES as u64 {
                read_labels += usize::from(read(&frames.frame(index, pose).unwrap()) == [product.gtin.as_str()]);
            }
        }
        let all = catalog.len() * POSES;
        assert!(read_labels * 10 >= all * 9, "{read_labels} of {all} labels read");
        let code = "134567890123456789";
        let screens = (0..20).filter(|seed| read(&phone_screen(code, *seed, true).unwrap()).contains(&code.into()));
        assert!(screens.count() >= 18, "phone screens read");
    }

    #[test]
    fn without_vision_the_scanner_sends_the_codes_as_text() {
        let catalog = sample_catalog();
        let frames = ProductFrames::render(&catalog, 3, false).unwrap();
        let Some(FrameInput::Decoded(codes)) = frames.frame(0, 0) else { panic!("decoded codes") };
        assert_eq!(codes[0].0, catalog[0].gtin.as_str());
        assert!(frames.frame(catalog.len(), 0).is_none());
    }
}
