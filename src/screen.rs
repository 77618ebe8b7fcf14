//! "Scan screen" (feature `gui`): every QR code on the screen, the
//! desktop's stand-in for pointing a phone camera at an enrollment page.
//!
//! On X11 the root window is read directly (every monitor at once). On
//! Wayland, where an app cannot read the screen, the xdg-desktop-portal
//! Screenshot API takes it: the compositor's portal backend captures the
//! screen (without a dialog where it allows that, else after asking the
//! user) and hands over a file, which is read and then deleted, since it may
//! show a secret. An X11 capture that fails falls back to the portal too.

use std::path::{Path, PathBuf};

use crate::scan;

/// Why the screen could not be scanned.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("the screen could not be captured: {0}")]
    Capture(String),
    #[error(transparent)]
    Scan(#[from] scan::Error),
}

/// Every QR payload on the screen now.
pub async fn scan() -> Result<Vec<String>, Error> {
    let wayland = std::env::var("XDG_SESSION_TYPE").is_ok_and(|t| t == "wayland")
        || (std::env::var_os("WAYLAND_DISPLAY").is_some() && std::env::var_os("DISPLAY").is_none());
    if !wayland {
        match tokio::task::spawn_blocking(x11).await {
            Ok(Ok((width, height, pixels))) => {
                return tokio::task::spawn_blocking(move || scan::rgba(width, height, pixels))
                    .await
                    .map_err(|e| Error::Capture(e.to_string()))?
                    .map_err(Error::from);
            }
            Ok(Err(x11_error)) => {
                return portal().await.map_err(|portal_error| Error::Capture(format!("{x11_error}; the desktop portal: {portal_error}")));
            }
            Err(error) => return Err(Error::Capture(error.to_string())),
        }
    }
    portal().await.map_err(Error::Capture)
}

/// The X11 screen as RGBA pixels: (width, height, pixels).
fn x11() -> Result<(u32, u32, Vec<u8>), String> {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{ConnectionExt, ImageFormat};
    let (connection, number) = x11rb::connect(None).map_err(|e| format!("no X11 display: {e}"))?;
    let screen = connection.setup().roots.get(number).ok_or("the X server reported no screen")?;
    let (width, height) = (screen.width_in_pixels, screen.height_in_pixels);
    let image = connection
        .get_image(ImageFormat::Z_PIXMAP, screen.root, 0, 0, width, height, !0)
        .map_err(|e| format!("X11 refused the capture: {e}"))?
        .reply()
        .map_err(|e| format!("X11 refused the capture: {e}"))?;
    let pixels = usize::from(width) * usize::from(height);
    if !matches!(image.depth, 24 | 32) || image.data.len() < pixels * 4 {
        return Err(format!("this screen's pixel format ({}-bit) is not supported", image.depth));
    }
    // 24- and 32-bit Z-pixmaps are B, G, R, X in memory on little-endian servers,
    // which is every X server Countersign runs against.
    let mut rgba = Vec::with_capacity(pixels * 4);
    for bgrx in image.data.chunks_exact(4).take(pixels) {
        rgba.extend_from_slice(&[bgrx[2], bgrx[1], bgrx[0], 255]);
    }
    Ok((u32::from(width), u32::from(height), rgba))
}

/// The screen through the portal: its QR payloads, the file it wrote deleted.
#[cfg(all(unix, not(target_os = "macos")))]
async fn portal() -> Result<Vec<String>, String> {
    use ashpd::desktop::screenshot::Screenshot;
    let unavailable =
        |e: ashpd::Error| format!("no screenshot portal answered ({e}); take a screenshot (Print Screen) and paste it here with Ctrl+V");
    let request = Screenshot::request().interactive(false).modal(true).send().await.map_err(unavailable)?;
    let shot = request.response().map_err(|e| match e {
        ashpd::Error::Response(ashpd::desktop::ResponseError::Cancelled) => "the screenshot was cancelled".to_owned(),
        other => unavailable(other),
    })?;
    let path = file_path(shot.uri().as_str()).ok_or_else(|| format!("the portal gave {}, not a local file", shot.uri()))?;
    let payloads = tokio::task::spawn_blocking({
        let path = path.clone();
        move || scan::file(&path)
    })
    .await
    .map_err(|e| e.to_string())?;
    // The capture may show a secret (the QR code itself): it is not kept.
    let _ = std::fs::remove_file(&path);
    payloads.map_err(|e| e.to_string())
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
async fn portal() -> Result<Vec<String>, String> {
    Err("capturing the screen is not supported on this platform yet; paste a screenshot instead".into())
}

/// `file:///home/a%20b/x.png` → `/home/a b/x.png`.
fn file_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(rest).collect();
    #[cfg(unix)]
    let path = PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&bytes));
    #[cfg(not(unix))]
    let path = PathBuf::from(String::from_utf8(bytes).ok()?);
    Path::new(&path).is_absolute().then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portal_uris_become_paths() {
        assert_eq!(file_path("file:///home/a%20b/Screenshot%20from%202026.png"), Some(PathBuf::from("/home/a b/Screenshot from 2026.png")));
        assert_eq!(file_path("https://example.org/x.png"), None);
        assert_eq!(file_path("file://relative"), None);
    }
}
