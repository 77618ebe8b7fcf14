//! The staged search for QR codes in grey pixels.
//!
//! The first stage is zxing-cpp (the C++ library, compiled from the
//! `zxing-cpp` crate) with its try-harder options: it reads more than
//! anything else measured on images nobody tuned for (README, "Benchmarks").
//! What it misses goes to the older cascade: each later stage gives a
//! detector a differently prepared picture of the same image; rqrr is the
//! detector in every one but the last, rxing (a Rust port of ZXing).
//!
//! The search stops at the first stage after which something was decoded
//! and nothing located was left unread, or when the time budget runs out.
//! After an rqrr stage, the codes found are painted over and the rest of the
//! image is searched again by regions, so that a second code the successful
//! stage missed is still found without redoing the costly grid fitting of
//! the first. Every payload, whichever decoder read it, passes the same
//! check ([`accept`]).
//!
//! No decoder can be interrupted, so the budget is checked between stages,
//! and each stage works on a picture of bounded size, which bounds its cost.

use std::time::{Duration, Instant};

use image::GrayImage;

use super::binarize::{self, Bitmap};
use super::regions;

/// How a picture was prepared for the detector.
///
/// After zxing-cpp, only the stages that read something zxing-cpp missed on
/// the regression corpus or the development seed of the wide corpus are
/// kept (README, "Benchmarks"). Those dropped with zxing-cpp's arrival
/// (inverted, doubled, quartered pictures) read nothing it did not, and the
/// doubled ones could take seconds on a noisy image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// zxing-cpp with try-harder, rotation, inversion and downscaling: every
    /// code it finds in one pass, and the ones it located but could not
    /// read (those send the search on to the other stages).
    Zxing,
    /// Each busy, square-ish patch cropped and searched alone (see
    /// [`regions`]); only on images of a megapixel or more, where it is the
    /// cheap way in.
    Regions,
    /// Local (block) threshold at full size.
    Threshold,
    /// Halved by averaging 2x2 pixels: large modules, noise, JPEG blocks.
    Halved,
    /// rqrr's own threshold, at full size.
    RqrrThreshold,
    /// A light blur (Gaussian, sigma 1) before the threshold: speckle noise.
    Smoothed,
    /// rxing (a port of ZXing) with its own binarizer: it reads some codes
    /// with a damaged quiet zone that zxing-cpp does not.
    Rxing,
}

/// Every stage, in the order the search tries them.
pub const STAGES: [Stage; 7] =
    [Stage::Zxing, Stage::Regions, Stage::Threshold, Stage::Halved, Stage::RqrrThreshold, Stage::Smoothed, Stage::Rxing];

impl Stage {
    /// The share of the image's pixels this stage's picture has.
    fn share(self) -> f64 {
        match self {
            Stage::Halved => 0.25,
            _ => 1.0,
        }
    }
}

/// Time the whole search may take, unless the caller gives another budget.
pub const BUDGET: Duration = Duration::from_millis(350);

/// The pictures a stage may start from; each is made at most once.
struct Pictures<'a> {
    original: &'a GrayImage,
    halved: Option<GrayImage>,
}

/// Largest region (in pixels) the regions search doubles: a 1,200 pixel
/// square doubled. Beyond this, modules are not 2 pixels wide anyway.
const DOUBLE_LIMIT: u64 = 2_400 * 2_400;
/// Smallest image (in pixels) the regions stage starts with.
const REGIONS_MIN: u64 = 1_000_000;
/// Smallest side worth halving.
const SHRINK_MIN: u32 = 160;

/// What the search found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// Every distinct payload, in the order found.
    pub payloads: Vec<String>,
    /// The stages that ran, in order.
    pub stages: Vec<Stage>,
    /// The budget ran out (or the next stage would have overrun it) before
    /// every stage could run.
    pub timed_out: bool,
}

/// Largest image searched as it is (36 megapixels: four 4K screens). A larger
/// one is halved until it fits: its codes are big, and the copies each stage
/// makes would otherwise take gigabytes.
pub const SEARCH_LIMIT: u64 = 36_000_000;

/// Runs `stages` in order within `budget`.
///
/// No stage can be interrupted, so a stage is started only if it is
/// expected to end in time: expected to take as long, per pixel of its
/// picture, as the slowest stage so far on this image. On a 12-megapixel
/// photo with no code that keeps the last full-size stage from running
/// 200 ms past the budget.
pub fn run(image: &GrayImage, stages: &[Stage], budget: Duration) -> Found {
    let deadline = Instant::now() + budget;
    let mut image = std::borrow::Cow::Borrowed(image);
    while u64::from(image.width()) * u64::from(image.height()) > SEARCH_LIMIT {
        image = std::borrow::Cow::Owned(halve(&image));
    }
    let image = image.as_ref();
    let mut pictures = Pictures { original: image, halved: None };
    let mut found = Found::default();
    // The slowest stage so far, in seconds per (whole-image) picture.
    let mut slowest = 0.0_f64;
    for &stage in stages {
        let started = Instant::now();
        let left = deadline.saturating_duration_since(started).as_secs_f64();
        if left <= 0.0 || slowest * stage.share() > left {
            found.timed_out = true;
            break;
        }
        let Some(outcome) = pictures.detect(stage) else { continue };
        slowest = slowest.max(started.elapsed().as_secs_f64() / stage.share());
        found.stages.push(stage);
        for payload in outcome.payloads {
            if !found.payloads.contains(&payload) {
                found.payloads.push(payload);
            }
        }
        if !found.payloads.is_empty() && outcome.unread == 0 {
            // zxing-cpp looks for every code in its one pass; searching the
            // rest again would only double its time.
            if stage != Stage::Zxing {
                look_again(image, outcome.boxes, &mut found, deadline);
            }
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
        let small = u64::from(crop.width()) * u64::from(crop.height()) * 4 <= DOUBLE_LIMIT;
        let attempts: [&dyn Fn() -> Outcome; 4] = [
            &|| detect_bitmap(&binarize::hybrid(&crop)),
            &|| {
                if small {
                    detect_bitmap(&binarize::hybrid(&double(&crop))).scaled(0.5, crop.width(), crop.height())
                } else {
                    Outcome::default()
                }
            },
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
        Some(match stage {
            Stage::Zxing => guarded(|| zxing_pass(self.original)),
            Stage::Regions if u64::from(width) * u64::from(height) >= REGIONS_MIN => search_regions(self.original),
            Stage::Threshold => detect_bitmap(&binarize::hybrid(self.original)),
            Stage::Halved if width.min(height) >= SHRINK_MIN => detect_bitmap(&binarize::hybrid(self.halved())).scaled(2.0, width, height),
            Stage::RqrrThreshold => detect_rqrr(self.original.clone()),
            Stage::Smoothed => detect_bitmap(&binarize::hybrid(&smooth(self.original))),
            Stage::Rxing => guarded(|| rxing_pass(self.original)),
            Stage::Regions | Stage::Halved => return None,
        })
    }

    fn halved(&mut self) -> &GrayImage {
        self.halved.get_or_insert_with(|| halve(self.original))
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
        let mut bytes = Vec::new();
        match grid.decode_to(&mut bytes).ok().and_then(|_| accept(bytes)) {
            Some(content) => {
                outcome.payloads.push(content);
                outcome.boxes.push(bounding_box(grid.bounds.map(|p| (p.x, p.y))));
            }
            None => outcome.unread += 1,
        }
    }
    outcome
}

/// The payload a decoder read, if it is one Countersign takes: UTF-8 text,
/// not empty, without control characters other than tab and line breaks.
/// Every decoder's payloads pass through here, so none can let through what
/// another would refuse (rqrr already insisted on UTF-8; zxing-cpp would
/// guess a legacy character set, and its C interface cuts text at a NUL).
pub fn accept(bytes: Vec<u8>) -> Option<String> {
    let text = String::from_utf8(bytes).ok()?;
    let control = |c: char| c.is_control() && !matches!(c, '\t' | '\r' | '\n');
    (!text.is_empty() && !text.chars().any(control)).then_some(text)
}

/// The axis-aligned box around a code's corners (x, y), grown by a tenth of
/// its size on each side so the quiet zone goes too. Unclipped until scaled.
fn bounding_box(corners: [(i32, i32); 4]) -> Box {
    let xs = corners.iter().map(|p| p.0);
    let ys = corners.iter().map(|p| p.1);
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
            let scale = |v: u32, limit: u32| ((f64::from(v) * factor) as u32).min(limit);
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
        for result in results {
            match accept(result.getText().as_bytes().to_vec()) {
                Some(text) => outcome.payloads.push(text),
                None => outcome.unread += 1,
            }
        }
    }
    outcome
}

/// zxing-cpp on the grey pixels, QR Code models 1 and 2 only (Micro QR and
/// rMQR hold too little for an account, and would be one more source of
/// false reads). Codes located but not decoded count as unread.
fn zxing_pass(image: &GrayImage) -> Outcome {
    use zxingcpp::{BarcodeFormat, ImageFormat, ImageView};
    let mut outcome = Outcome::default();
    let Ok(view) = ImageView::from_slice(image.as_raw(), image.width(), image.height(), ImageFormat::Lum) else { return outcome };
    let reader = zxingcpp::read()
        .formats([BarcodeFormat::QRCodeModel2, BarcodeFormat::QRCodeModel1])
        .try_harder(true)
        .try_rotate(true)
        .try_invert(true)
        .try_downscale(true)
        .return_errors(true);
    let Ok(barcodes) = reader.from(view) else { return outcome };
    for barcode in barcodes {
        match barcode.is_valid().then(|| accept(barcode.bytes())).flatten() {
            Some(text) => {
                let p = barcode.position();
                outcome.payloads.push(text);
                outcome.boxes.push(bounding_box([p.top_left, p.top_right, p.bottom_right, p.bottom_left].map(|p| (p.x, p.y))));
            }
            None => outcome.unread += 1,
        }
    }
    outcome
}

/// Half the size, each pixel the mean of a 2x2 square.
#[expect(clippy::expect_used, reason = "the buffer is width × height pixels by construction")]
fn halve(image: &GrayImage) -> GrayImage {
    let (width, height) = (image.width() / 2, image.height() / 2);
    let source = image.as_raw();
    let stride = image.width() as usize;
    let mut out = Vec::with_capacity(width as usize * height as usize);
    for y in 0..height as usize {
        let (top, bottom) = (&source[2 * y * stride..], &source[(2 * y + 1) * stride..]);
        for x in 0..width as usize {
            let sum = u16::from(top[2 * x]) + u16::from(top[2 * x + 1]) + u16::from(bottom[2 * x]) + u16::from(bottom[2 * x + 1]);
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
    fn every_decoder_payload_passes_the_same_check() {
        assert_eq!(accept(b"otpauth://totp/A?secret=JBSWY3DP".to_vec()).as_deref(), Some("otpauth://totp/A?secret=JBSWY3DP"));
        assert_eq!(accept("Zürich\r\n\tline".as_bytes().to_vec()).as_deref(), Some("Zürich\r\n\tline"));
        assert_eq!(accept(Vec::new()), None);
        assert_eq!(accept(b"otpauth://totp/A\0?secret=JBSWY3DP".to_vec()), None, "a NUL would cut the text");
        assert_eq!(accept(b"\x1b[31mred".to_vec()), None, "terminal escapes");
        assert_eq!(accept(vec![b'Z', 0xfc, b'r']), None, "Latin-1, not UTF-8");
    }

    #[test]
    fn zxing_alone_reads_codes_and_locates_them() {
        let (a, b) = (crate::scan::render_for_test("first", 3), crate::scan::render_for_test("second", 5));
        let mut image = GrayImage::from_pixel(600, 400, image::Luma([255]));
        image::imageops::overlay(&mut image, &a, 20, 30);
        image::imageops::overlay(&mut image, &b, 300, 100);
        image::imageops::invert(&mut image);
        let outcome = zxing_pass(&image);
        let mut read: Vec<_> = outcome.payloads.iter().map(String::as_str).zip(&outcome.boxes).collect();
        read.sort();
        assert_eq!(read.len(), 2, "{:?}", outcome.payloads);
        assert_eq!(outcome.unread, 0);
        // Each box holds its code's modules (the quiet zone is 4 modules).
        let inside = |area: &Box, left: u32, top: u32, side: u32, module: u32| {
            area[0] <= left + 4 * module
                && area[1] <= top + 4 * module
                && area[2] >= left + side - 4 * module
                && area[3] >= top + side - 4 * module
        };
        assert_eq!(read[0].0, "first");
        assert!(inside(read[0].1, 20, 30, a.width(), 3), "{:?}", read[0].1);
        assert_eq!(read[1].0, "second");
        assert!(inside(read[1].1, 300, 100, b.width(), 5), "{:?}", read[1].1);
        // And the whole search stops after it: nothing else ran.
        let found = run(&image, &STAGES, Duration::from_secs(3600));
        assert_eq!(found.stages, [Stage::Zxing]);
    }

    #[test]
    fn halving_averages_and_drops_an_odd_edge() {
        let image = GrayImage::from_raw(3, 2, vec![0, 100, 7, 200, 100, 9]).unwrap();
        let half = halve(&image);
        assert_eq!(half.dimensions(), (1, 1));
        assert_eq!(half.as_raw(), &[100]);
    }
}
