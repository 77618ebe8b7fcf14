//! Candidate regions: the parts of an image busy enough to hold a QR code.
//!
//! A code is a square patch where every 8x8 block has strong contrast; text
//! is thin lines of such blocks, a photo's paper is flat. Thin lines are
//! removed first (a morphological opening of the block map), so text that
//! runs up to a code does not make it look like a paragraph. Cropping each
//! square-ish patch and searching it alone is cheaper than searching a whole
//! 4K screenshot, and keeps rqrr from pairing finder patterns of different
//! codes (or text) into a false grid that hides a real one.

use image::GrayImage;

use super::binarize;

/// A region of the image: left, top, right, bottom (exclusive), in pixels.
pub(super) type Area = [u32; 4];

/// Most regions returned, the largest first.
const MOST: usize = 8;
/// Smallest region side, in blocks (21 modules at about 1.5 pixels).
const MIN_SIDE: usize = 4;
/// Longest side over shortest side, at most (perspective stretches a code).
const MAX_ASPECT: usize = 3;
/// Least margin added around a region, in blocks: the detector needs the
/// quiet zone, which the block map's edges may have lost.
const MARGIN: usize = 4;

/// The busy, square-ish patches of `image`, largest first.
pub(super) fn find(image: &GrayImage) -> Vec<Area> {
    let (columns, rows, busy) = binarize::busy_blocks(image);
    let busy = spread(&spread(&busy, columns, rows, false), columns, rows, true);
    let mut seen = vec![false; busy.len()];
    let mut found: Vec<(usize, Area)> = Vec::new();
    let mut stack = Vec::new();
    for start in 0..busy.len() {
        if !busy[start] || seen[start] {
            continue;
        }
        // Flood the 8-connected patch of busy blocks around `start`.
        let (mut left, mut top, mut right, mut bottom, mut count) = (usize::MAX, usize::MAX, 0, 0, 0);
        seen[start] = true;
        stack.push(start);
        while let Some(at) = stack.pop() {
            let (x, y) = (at % columns, at / columns);
            (left, top, right, bottom, count) = (left.min(x), top.min(y), right.max(x), bottom.max(y), count + 1);
            for ny in y.saturating_sub(1)..(y + 2).min(rows) {
                for nx in x.saturating_sub(1)..(x + 2).min(columns) {
                    let next = ny * columns + nx;
                    if busy[next] && !seen[next] {
                        seen[next] = true;
                        stack.push(next);
                    }
                }
            }
        }
        let (w, h) = (right - left + 1, bottom - top + 1);
        let square_enough = w.max(h) <= MAX_ASPECT * w.min(h);
        // A code fills most of its box; a ring of text around a blank does not.
        let filled = count * 3 >= w * h;
        if w.min(h) >= MIN_SIDE && square_enough && filled {
            let margin = MARGIN.max(w.max(h) / 6);
            let area = [
                (left.saturating_sub(margin) * binarize::BLOCK) as u32,
                (top.saturating_sub(margin) * binarize::BLOCK) as u32,
                (((right + 1 + margin) * binarize::BLOCK) as u32).min(image.width()),
                (((bottom + 1 + margin) * binarize::BLOCK) as u32).min(image.height()),
            ];
            found.push((w * h, area));
        }
    }
    found.sort_by_key(|&(size, _)| std::cmp::Reverse(size));
    found.into_iter().take(MOST).map(|(_, area)| area).collect()
}

/// One step of a 3x3 morphology on the block map: with `grow`, a block is set
/// when any neighbour is (dilation); without, only when all are (erosion).
fn spread(map: &[bool], columns: usize, rows: usize, grow: bool) -> Vec<bool> {
    let mut out = vec![false; map.len()];
    for y in 0..rows {
        for x in 0..columns {
            let mut neighbours =
                (y.saturating_sub(1)..(y + 2).min(rows)).flat_map(|ny| (x.saturating_sub(1)..(x + 2).min(columns)).map(move |nx| (nx, ny)));
            out[y * columns + x] =
                if grow { neighbours.any(|(nx, ny)| map[ny * columns + nx]) } else { neighbours.all(|(nx, ny)| map[ny * columns + nx]) };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_code_and_not_the_text_beside_it() {
        let mut page = GrayImage::from_pixel(800, 400, image::Luma([255]));
        // Three "lines of text": long, thin dark bars; the last runs up to
        // the code's quiet zone.
        for line in 0..3 {
            for y in 40 + line * 30..46 + line * 30 {
                for x in 20..700 {
                    page.put_pixel(x, y, image::Luma([40]));
                }
            }
        }
        for y in 200..206 {
            for x in 20..500 {
                page.put_pixel(x, y, image::Luma([40]));
            }
        }
        let code = crate::scan::render_for_test("a region", 4);
        image::imageops::overlay(&mut page, &code, 500, 160);
        let areas = find(&page);
        assert_eq!(areas.len(), 1, "{areas:?}");
        let [left, top, right, bottom] = areas[0];
        let side = code.width();
        assert!(left <= 500 + 16 && top <= 160 + 16 && right >= 500 + side - 16 && bottom >= 160 + side - 16, "{areas:?}");
        assert!(right - left < side + 128 && top > 100, "{areas:?}");
    }

    #[test]
    fn blank_and_tiny_images_have_no_regions() {
        assert!(find(&GrayImage::from_pixel(300, 200, image::Luma([128]))).is_empty());
        assert!(find(&GrayImage::new(3, 3)).is_empty());
    }
}
