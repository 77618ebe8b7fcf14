//! Finding QR codes in images: files, clipboard pixels, screen captures.
//!
//! Loading is bounded (file size, image side, decoder allocations), so a
//! hostile file gives an error, not an out-of-memory kill. Finding runs the
//! staged search in [`cascade`] under a time budget.

mod binarize;
pub mod cascade;
mod regions;

use std::io::Cursor;
use std::path::Path;
use std::time::Duration;

use image::{DynamicImage, GrayImage, ImageReader, Limits};

pub use cascade::{Found, STAGES, Stage};

/// Largest image side accepted (a 4K-by-4 wall of monitors fits).
const MAX_SIDE: u32 = 16_384;
/// Most memory a decoder may allocate.
const MAX_ALLOC: u64 = 512 * 1024 * 1024;
/// Largest file read.
const MAX_FILE: u64 = 64 * 1024 * 1024;

/// Why an image could not be scanned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("not an image Countersign can read (PNG, JPEG, WebP, BMP or GIF): {0}")]
    Decode(String),
    #[error("the image is too large ({width}x{height}); the limit is {MAX_SIDE} pixels a side")]
    TooLarge { width: u32, height: u32 },
}

/// Every QR payload in an image file.
pub fn file(path: &Path) -> Result<Vec<String>, Error> {
    Ok(find(&load_file(path)?, cascade::BUDGET).payloads)
}

/// Every QR payload in an encoded image (PNG, JPEG, ...).
pub fn encoded(bytes: &[u8]) -> Result<Vec<String>, Error> {
    Ok(find(&load(bytes)?, cascade::BUDGET).payloads)
}

/// Every QR payload in raw RGBA pixels (clipboard images, screen captures).
pub fn rgba(width: u32, height: u32, pixels: Vec<u8>) -> Result<Vec<String>, Error> {
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(Error::TooLarge { width, height });
    }
    let image =
        image::RgbaImage::from_raw(width, height, pixels).ok_or_else(|| Error::Decode("pixel data does not match the size".into()))?;
    Ok(find(&DynamicImage::ImageRgba8(image).to_luma8(), cascade::BUDGET).payloads)
}

/// Searches grey pixels with every stage, within `budget`.
pub fn find(image: &GrayImage, budget: Duration) -> Found {
    cascade::run(image, &STAGES, budget)
}

/// Reads an image file into grey pixels.
pub fn load_file(path: &Path) -> Result<GrayImage, Error> {
    let read_error = |reason: String| Error::Read { path: path.display().to_string(), reason };
    let size = std::fs::metadata(path).map_err(|e| read_error(e.to_string()))?.len();
    if size > MAX_FILE {
        return Err(read_error(format!("the file is larger than {} MiB", MAX_FILE / (1024 * 1024))));
    }
    let bytes = std::fs::read(path).map_err(|e| read_error(e.to_string()))?;
    load(&bytes)
}

/// Decodes an encoded image into grey pixels.
pub fn load(bytes: &[u8]) -> Result<GrayImage, Error> {
    // Read the header first: a decompression bomb is refused before any
    // pixel buffer is allocated.
    let header = reader(bytes)?;
    let format = header.format();
    let (width, height) = header.into_dimensions().map_err(|e| Error::Decode(e.to_string()))?;
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(Error::TooLarge { width, height });
    }
    if format == Some(image::ImageFormat::Jpeg)
        && let Some(gray) = jpeg_luma(bytes, width, height)
    {
        return Ok(gray);
    }
    let image = reader(bytes)?.decode().map_err(|e| Error::Decode(e.to_string()))?;
    Ok(match image {
        DynamicImage::ImageLuma8(gray) => gray,
        other => other.to_luma8(),
    })
}

/// A JPEG's luma channel, decoded without colour conversion or chroma
/// upsampling: a 12-megapixel photo loads in a third of the time. None when
/// this decoder cannot give it (any error): the general path then decodes
/// the file, and reports its errors.
fn jpeg_luma(bytes: &[u8], width: u32, height: u32) -> Option<GrayImage> {
    use zune_core::{bytestream::ZCursor, colorspace::ColorSpace, options::DecoderOptions};
    // The general path's allocation limit holds here too (the decoder keeps
    // up to three planes while it works).
    if u64::from(width) * u64::from(height) * 3 > MAX_ALLOC {
        return None;
    }
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::Luma)
        .set_max_width(MAX_SIDE as usize)
        .set_max_height(MAX_SIDE as usize);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    let pixels = decoder.decode().ok()?;
    let info = decoder.info()?;
    if decoder.output_colorspace()? != ColorSpace::Luma || (u32::from(info.width), u32::from(info.height)) != (width, height) {
        return None;
    }
    GrayImage::from_raw(width, height, pixels)
}

fn reader(bytes: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, Error> {
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| Error::Decode(e.to_string()))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    Ok(reader)
}

/// Renders `text` as a QR code image: `scale` pixels a module, a 4-module
/// quiet zone. For tests and fixtures.
#[cfg(test)]
pub(crate) fn render_for_test(text: &str, scale: u32) -> GrayImage {
    crate::transfer::qr_image(text, scale).expect("fits in a QR code")
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "otpauth://totp/Acme:alice?secret=JBSWY3DPEHPK3PXP&issuer=Acme";

    fn png(image: GrayImage) -> Vec<u8> {
        let mut bytes = Vec::new();
        image.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
        bytes
    }

    #[test]
    fn finds_a_code_and_an_inverted_one() {
        let mut image = render_for_test(URI, 4);
        assert_eq!(encoded(&png(image.clone())), Ok(vec![URI.to_owned()]));
        image::imageops::invert(&mut image);
        assert_eq!(encoded(&png(image)), Ok(vec![URI.to_owned()]));
    }

    #[test]
    fn finds_two_codes_side_by_side_in_rgba() {
        let (a, b) = (render_for_test("first", 4), render_for_test("second", 4));
        let mut canvas = image::RgbaImage::from_pixel(a.width() + b.width(), a.height().max(b.height()), image::Rgba([255; 4]));
        image::imageops::overlay(&mut canvas, &DynamicImage::ImageLuma8(a.clone()).to_rgba8(), 0, 0);
        image::imageops::overlay(&mut canvas, &DynamicImage::ImageLuma8(b).to_rgba8(), i64::from(a.width()), 0);
        let (width, height) = canvas.dimensions();
        let mut found = rgba(width, height, canvas.into_raw()).unwrap();
        found.sort();
        assert_eq!(found, ["first", "second"]);
    }

    #[test]
    fn garbage_and_tiny_images_are_errors_or_empty_never_panics() {
        assert!(matches!(encoded(b""), Err(Error::Decode(_))));
        assert!(matches!(encoded(b"\x89PNG\r\n\x1a\nbroken"), Err(Error::Decode(_))));
        let mut png = Vec::new();
        image::RgbaImage::new(1, 1).write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        assert_eq!(encoded(&png), Ok(vec![]));
        assert!(matches!(rgba(2, 2, vec![0; 3]), Err(Error::Decode(_))));
    }

    fn encode(image: &GrayImage, format: image::ImageFormat) -> Vec<u8> {
        let mut bytes = Vec::new();
        // JPEG and GIF encoders want RGB(A); all of them take it.
        DynamicImage::ImageLuma8(image.clone())
            .to_rgba8()
            .write_to(&mut Cursor::new(&mut bytes), format)
            .or_else(|_| {
                bytes.clear();
                DynamicImage::ImageLuma8(image.clone()).to_rgb8().write_to(&mut Cursor::new(&mut bytes), format)
            })
            .unwrap();
        bytes
    }

    const FORMATS: [image::ImageFormat; 5] =
        [image::ImageFormat::Png, image::ImageFormat::Jpeg, image::ImageFormat::WebP, image::ImageFormat::Bmp, image::ImageFormat::Gif];

    #[test]
    fn every_supported_format_decodes() {
        let image = render_for_test(URI, 4);
        for format in FORMATS {
            assert_eq!(encoded(&encode(&image, format)), Ok(vec![URI.to_owned()]), "{format:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Damaged files of every format: an error or a result, never a panic.
        #[test]
        fn damaged_files_never_panic(format in 0..FORMATS.len(), flips in proptest::collection::vec((0usize..4096, 0u8..=255), 1..8), cut in 0usize..5000) {
            static IMAGES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
            let images = IMAGES.get_or_init(|| FORMATS.iter().map(|f| encode(&render_for_test(URI, 2), *f)).collect());
            let mut bytes = images[format].clone();
            for (at, value) in flips {
                let len = bytes.len();
                bytes[at % len] ^= value;
            }
            bytes.truncate(cut.max(1));
            let _ = encoded(&bytes);
        }

        /// Arbitrary pixels of any small size: the search always finishes.
        #[test]
        fn arbitrary_pixels_never_panic(width in 1u32..90, height in 1u32..90, seed in proptest::prelude::any::<u64>()) {
            let mut state = seed | 1;
            let image = GrayImage::from_fn(width, height, |_, _| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                image::Luma([(state >> 56) as u8])
            });
            let found = find(&image, std::time::Duration::from_secs(60));
            proptest::prop_assert!(found.payloads.is_empty());
        }
    }

    #[test]
    fn a_jpeg_loads_as_its_luma_channel_like_any_other_image() {
        // A colour JPEG: grey from its luma channel (JPEG's, BT.601), the
        // same size, within a few levels of the luma of its decoded colours.
        let rgb = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, 200]));
        let mut bytes = Vec::new();
        rgb.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Jpeg).unwrap();
        let fast = load(&bytes).unwrap();
        assert_eq!(fast.dimensions(), (64, 48));
        let colours = image::load_from_memory(&bytes).unwrap().to_rgb8();
        let luma = |p: &image::Rgb<u8>| (0.299 * f64::from(p.0[0]) + 0.587 * f64::from(p.0[1]) + 0.114 * f64::from(p.0[2])).round() as u8;
        let worst = fast.pixels().zip(colours.pixels()).map(|(a, b)| a.0[0].abs_diff(luma(b))).max().unwrap();
        assert!(worst <= 4, "luma differs by {worst}");
        // A code in a JPEG reads through it.
        assert_eq!(encoded(&encode(&render_for_test(URI, 4), image::ImageFormat::Jpeg)), Ok(vec![URI.to_owned()]));
    }

    #[test]
    fn decompression_bomb_is_refused_by_its_header() {
        // A PNG header claiming 20000x20000 pixels, without the pixels.
        let mut png = Vec::new();
        let encoder = image::codecs::png::PngEncoder::new(&mut png);
        use image::ImageEncoder;
        encoder.write_image(&[0u8; 4], 1, 1, image::ExtendedColorType::Rgba8).unwrap();
        // IHDR width and height live at bytes 16..24; the CRC then mismatches,
        // which a decoder must also survive.
        png[16..20].copy_from_slice(&20_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&20_000u32.to_be_bytes());
        assert!(encoded(&png).is_err());
    }
}
