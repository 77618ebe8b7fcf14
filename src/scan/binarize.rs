//! Turning grey pixels into black and white for the QR detector.
//!
//! rqrr's own threshold (a running row average) is its weak spot: grey
//! anti-aliased edges, small modules, noise and uneven light all defeat it.
//! This is the block-local threshold that ZXing's `HybridBinarizer` made the
//! standard for 2D codes, written from its description:
//!
//! 1. Cut the image into 8x8 blocks; for each, take the minimum, maximum and
//!    mean. A block with real contrast uses its mean as its "black point". A
//!    flat block is either background (its black point is half its minimum,
//!    so it turns white) or the inside of a large dark area, in which case it
//!    inherits its already-computed neighbours' black point.
//! 2. A pixel is black when it is at or below the mean black point of the
//!    5x5 blocks around its own block.

use image::GrayImage;

/// Side of a block, in pixels.
pub(super) const BLOCK: usize = 8;
/// Blocks on each side of the centre block averaged for the threshold.
const REACH: usize = 2;
/// A block whose max - min is at most this is flat.
const FLAT: u8 = 24;
/// Pixels are white unless some block of their 5x5 neighbourhood has at least
/// this range. Without it, the black point of one textured block spreads to
/// the flat, slightly noisy paper or wall around it (step 1's inheritance),
/// whose pixels then scatter evenly into black and white: one huge speckled
/// region that costs rqrr's flood fill seconds and hides nothing.
const CONTRAST: u8 = 2 * FLAT;

/// Black (true) and white pixels, row by row.
pub(super) struct Bitmap {
    pub width: usize,
    pub height: usize,
    pub black: Vec<bool>,
}

/// Binarizes with local thresholds; small images (fewer than five blocks a
/// side) use one threshold halfway between their darkest and lightest pixel.
pub(super) fn hybrid(image: &GrayImage) -> Bitmap {
    let (width, height) = (image.width() as usize, image.height() as usize);
    let pixels = image.as_raw();
    if width < BLOCK * (2 * REACH + 1) || height < BLOCK * (2 * REACH + 1) {
        let (min, max) = pixels.iter().fold((u8::MAX, u8::MIN), |(lo, hi), &p| (lo.min(p), hi.max(p)));
        let threshold = ((u16::from(min) + u16::from(max)) / 2) as u8;
        return Bitmap { width, height, black: pixels.iter().map(|&p| p < threshold).collect() };
    }
    let (points, ranges) = black_points(pixels, width, height);
    let contrast = neighbourhood_max(&ranges, width.div_ceil(BLOCK), height.div_ceil(BLOCK));
    let (columns, rows) = (width.div_ceil(BLOCK), height.div_ceil(BLOCK));
    // Sums of black points over 5x5 neighbourhoods, via a summed-area table.
    let mut table = vec![0u32; (columns + 1) * (rows + 1)];
    for by in 0..rows {
        let mut row = 0u32;
        for bx in 0..columns {
            row += u32::from(points[by * columns + bx]);
            table[(by + 1) * (columns + 1) + bx + 1] = table[by * (columns + 1) + bx + 1] + row;
        }
    }
    let mut black = vec![false; width * height];
    for by in 0..rows {
        // Keep the 5x5 window inside the grid, as a full window.
        let top = by.clamp(REACH, rows - 1 - REACH) - REACH;
        for bx in 0..columns {
            let left = bx.clamp(REACH, columns - 1 - REACH) - REACH;
            let (bottom, right) = (top + 2 * REACH + 1, left + 2 * REACH + 1);
            let sum = table[bottom * (columns + 1) + right] + table[top * (columns + 1) + left]
                - table[top * (columns + 1) + right]
                - table[bottom * (columns + 1) + left];
            let threshold =
                if contrast[by * columns + bx] < CONTRAST { 0 } else { (sum / ((2 * REACH + 1) * (2 * REACH + 1)) as u32) as u8 };
            for y in by * BLOCK..((by + 1) * BLOCK).min(height) {
                let start = y * width;
                for x in bx * BLOCK..((bx + 1) * BLOCK).min(width) {
                    black[start + x] = pixels[start + x] < threshold;
                }
            }
        }
    }
    Bitmap { width, height, black }
}

/// Which 8x8 blocks have at least [`CONTRAST`] between their darkest and
/// lightest pixel: columns, rows and the flags, row by row. Empty for an
/// image smaller than a block.
pub(super) fn busy_blocks(image: &GrayImage) -> (usize, usize, Vec<bool>) {
    let (width, height) = (image.width() as usize, image.height() as usize);
    if width < BLOCK || height < BLOCK {
        return (0, 0, Vec::new());
    }
    let (_, ranges) = black_points(image.as_raw(), width, height);
    (width.div_ceil(BLOCK), height.div_ceil(BLOCK), ranges.iter().map(|&r| r >= CONTRAST).collect())
}

/// One black point and one range (max - min) per block (see the module comment).
fn black_points(pixels: &[u8], width: usize, height: usize) -> (Vec<u8>, Vec<u8>) {
    let (columns, rows) = (width.div_ceil(BLOCK), height.div_ceil(BLOCK));
    let mut points = vec![0u8; columns * rows];
    let mut ranges = vec![0u8; columns * rows];
    for by in 0..rows {
        // The last row and column of blocks are moved inwards to stay whole.
        let y0 = (by * BLOCK).min(height - BLOCK);
        for bx in 0..columns {
            let x0 = (bx * BLOCK).min(width - BLOCK);
            let (mut min, mut max, mut sum) = (u8::MAX, u8::MIN, 0u32);
            for y in y0..y0 + BLOCK {
                for &p in &pixels[y * width + x0..y * width + x0 + BLOCK] {
                    min = min.min(p);
                    max = max.max(p);
                    sum += u32::from(p);
                }
            }
            let mut point = (sum / (BLOCK * BLOCK) as u32) as u8;
            ranges[by * columns + bx] = max - min;
            if max - min <= FLAT {
                // Flat: background unless the neighbours say this is the
                // inside of something dark.
                point = min / 2;
                if by > 0 && bx > 0 {
                    let above = u32::from(points[(by - 1) * columns + bx]);
                    let left = u32::from(points[by * columns + bx - 1]);
                    let diagonal = u32::from(points[(by - 1) * columns + bx - 1]);
                    let neighbours = ((above + 2 * left + diagonal) / 4) as u8;
                    if min < neighbours {
                        point = neighbours;
                    }
                }
            }
            points[by * columns + bx] = point;
        }
    }
    (points, ranges)
}

/// The largest value in each cell's 5x5 neighbourhood (clipped at the edges).
fn neighbourhood_max(values: &[u8], columns: usize, rows: usize) -> Vec<u8> {
    let mut across = vec![0u8; values.len()];
    for y in 0..rows {
        for x in 0..columns {
            let row = &values[y * columns..(y + 1) * columns];
            across[y * columns + x] = row[x.saturating_sub(REACH)..(x + REACH + 1).min(columns)].iter().max().copied().unwrap_or(0); // never empty: it holds x
        }
    }
    let mut out = vec![0u8; values.len()];
    for y in 0..rows {
        for x in 0..columns {
            out[y * columns + x] = (y.saturating_sub(REACH)..(y + REACH + 1).min(rows)).map(|r| across[r * columns + x]).max().unwrap_or(0); // never empty: it holds y
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dark_square_on_a_gradient_comes_out_black_on_white() {
        // Light from the left: the background runs from 250 down to 120, the
        // square is 60 darker than what surrounds it. One global threshold
        // could not separate the two (the square's left edge, 151, is
        // lighter than the background's right end).
        let image = GrayImage::from_fn(200, 100, |x, y| {
            let background = 250 - (x * 130 / 199) as u8;
            let inside = (60..140).contains(&x) && (30..70).contains(&y);
            image::Luma([if inside { background - 60 } else { background }])
        });
        let bitmap = hybrid(&image);
        let at = |x: usize, y: usize| bitmap.black[y * 200 + x];
        assert!(at(100, 50) && at(65, 35) && at(135, 65));
        assert!(!at(10, 10) && !at(190, 90) && !at(100, 10) && !at(50, 50));
    }

    #[test]
    fn faint_texture_stays_white() {
        // Paper with a 20-level pattern: below CONTRAST, so no speckle.
        let image = GrayImage::from_fn(120, 120, |x, y| image::Luma([if (x / 3 + y / 5) % 2 == 0 { 230 } else { 210 }]));
        assert!(hybrid(&image).black.iter().all(|b| !b));
    }

    #[test]
    fn tiny_and_odd_sized_images_do_not_panic() {
        for (w, h) in [(1, 1), (7, 3), (39, 200), (41, 41), (8, 8), (81, 17)] {
            let image = GrayImage::from_fn(w, h, |x, y| image::Luma([((x * 31 + y * 17) % 256) as u8]));
            let bitmap = hybrid(&image);
            assert_eq!(bitmap.black.len(), (w * h) as usize);
        }
    }
}
