//! "Scan screen": a capture of the whole X11 screen, the desktop's stand-in
//! for pointing a phone camera at the enrollment page.

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt, ImageFormat};

/// The screen as RGBA pixels: (width, height, pixels).
pub fn screen() -> Result<(u32, u32, Vec<u8>), String> {
    if std::env::var("XDG_SESSION_TYPE").is_ok_and(|t| t == "wayland") {
        return Err("Scan screen needs an X11 session; on Wayland the desktop does not let apps read the screen this way. Take a screenshot (Print Screen), then paste it here with Ctrl+V.".into());
    }
    let (connection, number) = x11rb::connect(None).map_err(|e| format!("Scan screen needs an X11 display: {e}"))?;
    let screen = connection.setup().roots.get(number).ok_or("the X server reported no screen")?;
    let (width, height) = (screen.width_in_pixels, screen.height_in_pixels);
    let image = connection
        .get_image(ImageFormat::Z_PIXMAP, screen.root, 0, 0, width, height, !0)
        .map_err(|e| format!("could not capture the screen: {e}"))?
        .reply()
        .map_err(|e| format!("could not capture the screen: {e}"))?;
    let pixels = usize::from(width) * usize::from(height);
    if !matches!(image.depth, 24 | 32) || image.data.len() < pixels * 4 {
        return Err(format!("this screen's pixel format ({}-bit) is not supported; take a screenshot and paste it instead", image.depth));
    }
    // 24- and 32-bit Z-pixmaps are B, G, R, X in memory on little-endian servers,
    // which is every X server Countersign runs against.
    let mut rgba = Vec::with_capacity(pixels * 4);
    for bgrx in image.data.chunks_exact(4).take(pixels) {
        rgba.extend_from_slice(&[bgrx[2], bgrx[1], bgrx[0], 255]);
    }
    Ok((u32::from(width), u32::from(height), rgba))
}
