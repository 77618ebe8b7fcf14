//! The staged search for QR codes in grey pixels.
//!
//! Each stage gives a detector a differently prepared picture of the same
//! image; rqrr is the detector in every stage but the last. The cheap stages
//! come first, and the search stops at the first stage after which something
//! was decoded and nothing located was left unread, or when the time budget
//! runs out. Before stopping, the codes found are painted over and the rest
//! of the image is searched again by regions, so that a second code the
//! successful stage missed is still found without redoing the costly grid
//! fitting of the first.
//!
//! rqrr cannot be interrupted, so the budget is checked between stages, and
//! each stage works on a picture of bounded size, which bounds its cost.
//! The last stage is rxing (a Rust port of ZXing): on the corpus it reads 3
//! blurred images and 1 with 2-pixel modules that no rqrr stage reads, and
//! it is tried only when everything else found nothing.

use std::time::{Duration, Instant};

use image::GrayImage;

use super::binarize::{self, Bitmap};
use super::regions;

/// How a picture was prepared for the detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Each busy, square-ish patch cropped and searched alone (see
    /// [`regions`]); only on images of a megapixel or more, where it is the
    /// cheap way in.
    Regions,
    /// Local (block) threshold at full size.
    Threshold,
    /// The grey image inverted, then thresholded: light codes on dark pages.
    /// (Inverting the black and white result instead is not the same: the
    /// threshold treats flat dark and flat light areas differently.)
    Inverted,
    /// rqrr's own threshold, at full size.
    RqrrThreshold,
    /// Halved by averaging 2x2 pixels: large modules, noise, JPEG blocks.
    Halved,
    /// Halved and inverted.
    HalvedInverted,
    /// Doubled (bilinear) then thresholded: modules of about 2 pixels.
    Doubled,
    /// Doubled, then rqrr's own threshold.
    DoubledRqrr,
    /// Doubled and inverted.
    DoubledInverted,
    /// A light blur (Gaussian, sigma 1) before the threshold: speckle noise.
    Smoothed,
    /// Quartered, for photos whose modules are tens of pixels wide.
    Quartered,
    /// rxing (a port of ZXing) with its own binarizer: blurred codes and
    /// tiny modules that rqrr's grid fitting gives up on.
    Rxing,
}

/// Every stage, in the order the search tries them.
pub const STAGES: [Stage; 12] = [
    Stage::Regions,
    Stage::Threshold,
    Stage::Inverted,
    Stage::Halved,
    Stage::RqrrThreshold,
    Stage::Doubled,
    Stage::DoubledRqrr,
    Stage::Smoothed,
    Stage::HalvedInverted,
    Stage::DoubledInverted,
    Stage::Quartered,
    Stage::Rxing,
];

/// Time the whole search may take, unless the caller gives another budget.
pub const BUDGET: Duration = Duration::from_millis(350);

/// The pictures a stage may start from; each is made at most once.
struct Pictures<'a> {
    original: &'a GrayImage,
    halved: Option<GrayImage>,
    doubled: Option<GrayImage>,
}

/// Largest picture (in pixels) the doubled stage makes: a 1,200 pixel square
/// doubled. Beyond this, modules are not 2 pixels wide anyway.
const DOUBLE_LIMIT: u64 = 2_400 * 2_400;
/// Smallest image (in pixels) the regions stage starts with.
const REGIONS_MIN: u64 = 1_000_000;
/// Smallest side worth halving or quartering.
const SHRINK_MIN: u32 = 160;

/// What the search found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// Every distinct payload, in the order found.
    pub payloads: Vec<String>,
    /// The stages that ran, in order.
    pub stages: Vec<Stage>,
    /// The budget ran out before every stage could run.
    pub timed_out: bool,
}

/// Largest image searched as it is (36 megapixels: four 4K screens). A larger
/// one is halved until it fits: its codes are big, and the copies each stage
/// makes would otherwise take gigabytes.
pub const SEARCH_LIMIT: u64 = 36_000_000;

/// Runs `stages` in order within `budget`.
pub fn run(image: &GrayImage, stages: &[Stage], budget: Duration) -> Found {
    let deadline = Instant::now() + budget;
    let mut image = std::borrow::Cow::Borrowed(image);
    while image.width() as u64 * image.height() as u64 > SEARCH_LIMIT {
        image = std::borrow::Cow::Owned(halve(&image));
    }
    let image = image.as_ref();
    let mut pictures = Pictures { original: image, halved: None, doubled: None };
    let mut found = Found::default();
    for &stage in stages {
        if Instant::now() >= deadline {
            found.timed_out = true;
            break;
        }
        let Some(outcome) = pictures.detect(stage) else { continue };
        found.stages.push(stage);
        for payload in outcome.payloads {
            if !found.payloads.contains(&payload) {
                found.payloads.push(payload);
            }
        }
        if !found.payloads.is_empty() && outcome.unread == 0 {
            look_again(image, outcome.boxes, &mut found, deadline);
            break;
        }
    }
    found
}

/// Paints over the codes found and searches the rest of the image again, by
/// regions, until nothing new turns up (or at most [`AGAIN`] times).
fn look_again(image: &GrayImage, mut boxes: Vec<Box>, found: &mut Found, deadline: Instant) {
    const AGAIN: usize = 4;
    let mut masked = image.clone();
    for _ in 0..AGAIN {
        if boxes.is_empty() || Instant::now() >= deadline {
            return;
        }
        for area in &boxes {
            for y in area[1]..area[3].min(image.height()) {
                for x in area[0]..area[2].min(image.width()) {
                    masked.put_pixel(x, y, image::Luma([255]));
                }
            }
        }
        let outcome = search_regions(&masked);
        found.stages.push(Stage::Regions);
        let before = found.payloads.len();
        for payload in outcome.payloads {
            if !found.payloads.contains(&payload) {
                found.payloads.push(payload);
            }
        }
        if found.payloads.len() == before {
            return;
        }
        boxes = outcome.boxes;
    }
}

/// Searches each candidate region alone: local threshold, the same on the
/// region doubled (rqrr's grid fitting reads small modules better at twice
/// the size), inverted, then rqrr's own threshold; the first that reads a
/// code ends the region's search.
fn search_regions(image: &GrayImage) -> Outcome {
    let mut all = Outcome::default();
    for [left, top, right, bottom] in regions::find(image) {
        let crop = image::imageops::crop_imm(image, left, top, right - left, bottom - top).to_image();
        let small = crop.width() as u64 * crop.height() as u64 * 4 <= DOUBLE_LIMIT;
        let attempts: [&dyn Fn() -> Outcome; 4] = [
            &|| detect_bitmap(&binarize::hybrid(&crop)),
            &|| if small { detect_bitmap(&binarize::hybrid(&double(&crop))).scaled(0.5, crop.width(), crop.height()) } else { Outcome::default() },
            &|| detect_bitmap(&binarize::hybrid(&inverted(&crop))),
            &|| detect_rqrr(crop.clone()),
        ];
        for attempt in attempts {
            let outcome = attempt();
            if outcome.payloads.is_empty() {
                continue;
            }
            all.payloads.extend(outcome.payloads);
            all.boxes.extend(outcome.boxes.into_iter().map(|b| [b[0] + left, b[1] + top, b[2] + left, b[3] + top]));
            break;
        }
    }
    all
}

/// A code's bounding box in the original image: left, top, right, bottom
/// (exclusive).
type Box = [u32; 4];

/// What one detector pass saw.
#[derive(Default)]
struct Outcome {
    payloads: Vec<String>,
    /// Codes located but not decoded.
    unread: usize,
    /// Where the decoded codes are, in the original image.
    boxes: Vec<Box>,
}

impl Pictures<'_> {
    /// Runs the detector on the picture `stage` asks for; None when that
    /// picture makes no sense for this image (too small to halve, say).
    fn detect(&mut self, stage: Stage) -> Option<Outcome> {
        let (width, height) = self.original.dimensions();
        let shrinkable = width.min(height) >= SHRINK_MIN;
        let doublable = width as u64 * height as u64 * 4 <= DOUBLE_LIMIT;
        Some(match stage {
            Stage::Regions if width as u64 * height as u64 >= REGIONS_MIN => search_regions(self.original),
            Stage::Threshold => detect_bitmap(&binarize::hybrid(self.original)),
            Stage::Inverted => detect_bitmap(&binarize::hybrid(&inverted(self.original))),
            Stage::RqrrThreshold => detect_rqrr(self.original.clone()),
            Stage::Halved if shrinkable => detect_bitmap(&binarize::hybrid(self.halved())).scaled(2.0, width, height),
            Stage::HalvedInverted if shrinkable => detect_bitmap(&binarize::hybrid(&inverted(self.halved()))).scaled(2.0, width, height),
            Stage::Quartered if width.min(height) >= SHRINK_MIN * 4 => {
                detect_bitmap(&binarize::hybrid(&halve(self.halved()))).scaled(4.0, width, height)
            }
            Stage::Doubled if doublable => detect_bitmap(&binarize::hybrid(self.doubled())).scaled(0.5, width, height),
            Stage::DoubledRqrr if doublable => detect_rqrr(self.doubled().clone()).scaled(0.5, width, height),
            Stage::DoubledInverted if doublable => detect_bitmap(&binarize::hybrid(&inverted(self.doubled()))).scaled(0.5, width, height),
            Stage::Smoothed => detect_bitmap(&binarize::hybrid(&smooth(self.original))),
            Stage::Rxing => guarded(|| rxing_pass(self.original)),
            Stage::Regions | Stage::Halved | Stage::HalvedInverted | Stage::Quartered | Stage::Doubled | Stage::DoubledRqrr | Stage::DoubledInverted => return None,
        })
    }

    fn halved(&mut self) -> &GrayImage {
        self.halved.get_or_insert_with(|| halve(self.original))
    }

    fn doubled(&mut self) -> &GrayImage {
        self.doubled.get_or_insert_with(|| double(self.original))
    }
}

fn detect_bitmap(bitmap: &Bitmap) -> Outcome {
    guarded(|| {
        let mut prepared = rqrr::PreparedImage::prepare_from_bitmap(bitmap.width, bitmap.height, |x, y| bitmap.black[y * bitmap.width + x]);
        read(prepared.detect_grids())
    })
}

fn detect_rqrr(image: GrayImage) -> Outcome {
    guarded(|| read(rqrr::PreparedImage::prepare(image).detect_grids()))
}

fn read<G: rqrr::BitGrid>(grids: Vec<rqrr::Grid<G>>) -> Outcome {
    let mut outcome = Outcome::default();
    for grid in grids {
        match grid.decode() {
            Ok((_, content)) => {
                outcome.payloads.push(content);
                outcome.boxes.push(bounding_box(&grid.bounds));
            }
            Err(_) => outcome.unread += 1,
        }
    }
    outcome
}

/// The axis-aligned box around a code's corners, grown by a tenth of its
/// size on each side so the quiet zone goes too. Unclipped until scaled.
fn bounding_box(corners: &[rqrr::Point; 4]) -> Box {
    let xs = corners.iter().map(|p| p.x);
    let ys = corners.iter().map(|p| p.y);
    let (left, right) = (xs.clone().min().unwrap_or(0), xs.max().unwrap_or(0));
    let (top, bottom) = (ys.clone().min().unwrap_or(0), ys.max().unwrap_or(0));
    let margin = (right - left).max(bottom - top) / 10;
    let clip = |v: i32| v.max(0) as u32;
    [clip(left - margin), clip(top - margin), clip(right + margin), clip(bottom + margin)]
}

impl Outcome {
    /// Moves the boxes from a picture `factor` times smaller than the
    /// original back to the original's coordinates, clipped to its size.
    fn scaled(mut self, factor: f64, width: u32, height: u32) -> Outcome {
        for area in &mut self.boxes {
            let scale = |v: u32, limit: u32| ((v as f64 * factor) as u32).min(limit);
            *area = [scale(area[0], width), scale(area[1], height), scale(area[2], width), scale(area[3], height)];
        }
        self
    }
}

/// Runs a detector pass, turning a panic inside the decoder library into
/// "nothing found": no image may crash the app. (Defence in depth: no panic
/// is known on the corpus or under the fuzz-style tests.)
fn guarded(pass: impl FnOnce() -> Outcome) -> Outcome {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(pass)).unwrap_or_default()
}

fn rxing_pass(image: &GrayImage) -> Outcome {
    use rxing::multi::MultipleBarcodeReader;
    let mut outcome = Outcome::default();
    let Ok(source) = rxing::Luma8LuminanceSource::new(image.as_raw().clone(), image.width(), image.height()) else { return outcome };
    let mut bitmap = rxing::BinaryBitmap::new(rxing::common::HybridBinarizer::new(source));
    let hints = rxing::DecodeHints { TryHarder: Some(true), AlsoInverted: Some(true), ..Default::default() };
    let mut reader = rxing::multi::qrcode::QRCodeMultiReader::new();
    if let Ok(results) = reader.decode_multiple_with_hints(&mut bitmap, &hints) {
        outcome.payloads = results.into_iter().map(|r| r.getText().to_owned()).collect();
    }
    outcome
}

/// Half the size, each pixel the mean of a 2x2 square.
fn halve(image: &GrayImage) -> GrayImage {
    let (width, height) = (image.width() / 2, image.height() / 2);
    let source = image.as_raw();
    let stride = image.width() as usize;
    let mut out = Vec::with_capacity(width as usize * height as usize);
    for y in 0..height as usize {
        let (top, bottom) = (&source[2 * y * stride..], &source[(2 * y + 1) * stride..]);
        for x in 0..width as usize {
            let sum = top[2 * x] as u16 + top[2 * x + 1] as u16 + bottom[2 * x] as u16 + bottom[2 * x + 1] as u16;
            out.push(((sum + 2) / 4) as u8);
        }
    }
    GrayImage::from_raw(width, height, out).expect("size matches")
}

/// Twice the size, bilinear.
fn double(image: &GrayImage) -> GrayImage {
    image::imageops::resize(image, image.width() * 2, image.height() * 2, image::imageops::FilterType::Triangle)
}

fn inverted(image: &GrayImage) -> GrayImage {
    let mut out = image.clone();
    image::imageops::invert(&mut out);
    out
}

/// A light Gaussian blur (sigma 1).
fn smooth(image: &GrayImage) -> GrayImage {
    image::imageops::blur(image, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_image_is_halved_before_the_search() {
        // 8,000 x 6,000 (48 MP): searched at 4,000 x 3,000, where the code's
        // 40-pixel modules are still 20 pixels wide.
        let code = crate::scan::render_for_test("huge", 40);
        let mut image = GrayImage::from_pixel(8_000, 6_000, image::Luma([255]));
        image::imageops::overlay(&mut image, &code, 3_000, 2_000);
        let found = run(&image, &STAGES, Duration::from_secs(3600));
        assert_eq!(found.payloads, ["huge"]);
    }

    #[test]
    fn halving_averages_and_drops_an_odd_edge() {
        let image = GrayImage::from_raw(3, 2, vec![0, 100, 7, 200, 100, 9]).unwrap();
        let half = halve(&image);
        assert_eq!(half.dimensions(), (1, 1));
        assert_eq!(half.as_raw(), &[100]);
    }
}
