//! Countersign's look: palettes, card and avatar styles, and the window icon.

use iced::widget::{button, container};
use iced::{Background, Border, Color, Theme, border, theme::Palette};

use crate::settings::ThemeChoice;

const BLUE: Color = Color::from_rgb(0.15, 0.39, 0.92);

/// The theme for a preference; `None` follows the desktop's light/dark mode.
pub fn theme(choice: ThemeChoice) -> Option<Theme> {
    match choice {
        ThemeChoice::System => None,
        ThemeChoice::Light => Some(light()),
        ThemeChoice::Dark => Some(dark()),
    }
}

pub fn light() -> Theme {
    Theme::custom(
        "Countersign Light",
        Palette {
            background: Color::from_rgb(0.96, 0.97, 0.98),
            text: Color::from_rgb(0.11, 0.13, 0.17),
            primary: BLUE,
            success: Color::from_rgb(0.10, 0.55, 0.32),
            warning: Color::from_rgb(0.85, 0.55, 0.05),
            danger: Color::from_rgb(0.80, 0.18, 0.18),
        },
    )
}

pub fn dark() -> Theme {
    Theme::custom(
        "Countersign Dark",
        Palette {
            background: Color::from_rgb(0.09, 0.10, 0.12),
            text: Color::from_rgb(0.92, 0.93, 0.95),
            primary: Color::from_rgb(0.38, 0.58, 1.0),
            success: Color::from_rgb(0.30, 0.78, 0.50),
            warning: Color::from_rgb(0.98, 0.72, 0.25),
            danger: Color::from_rgb(0.95, 0.40, 0.40),
        },
    )
}

/// A raised card on the window background.
pub fn card(theme: &Theme) -> container::Style {
    let palette = theme.extended_palette();
    let surface = if palette.is_dark { palette.background.weak.color } else { Color::WHITE };
    container::Style {
        background: Some(Background::Color(surface)),
        border: Border { radius: 10.0.into(), width: 1.0, color: palette.background.strong.color.scale_alpha(0.5) },
        // No shadow: tiny-skia's damage tracking leaves shadow trails behind
        // when a card redraws (seen under Xvfb), so depth comes from the border.
        text_color: Some(palette.background.base.text),
        ..container::Style::default()
    }
}

/// A card made of a button: flat, highlighted on hover and focus.
pub fn card_button(theme: &Theme, status: button::Status) -> button::Style {
    let base = card(theme);
    let palette = theme.extended_palette();
    let border = match status {
        button::Status::Hovered | button::Status::Pressed => Border { color: palette.primary.base.color, ..base.border },
        button::Status::Active | button::Status::Disabled => base.border,
    };
    button::Style { background: base.background, text_color: palette.background.base.text, border, shadow: base.shadow, snap: true }
}

/// A round letter avatar in `color`.
pub fn avatar(color: Color) -> impl Fn(&Theme) -> container::Style {
    move |_| container::Style {
        background: Some(Background::Color(color)),
        border: border::rounded(20),
        text_color: Some(Color::WHITE),
        ..container::Style::default()
    }
}

/// A notice strip: informational, or an error.
pub fn notice(error: bool) -> impl Fn(&Theme) -> container::Style {
    move |theme| {
        let palette = theme.extended_palette();
        let pair = if error { palette.danger.weak } else { palette.primary.weak };
        container::Style {
            background: Some(Background::Color(pair.color.scale_alpha(0.25))),
            border: Border { radius: 8.0.into(), width: 1.0, color: pair.color },
            text_color: Some(palette.background.base.text),
            ..container::Style::default()
        }
    }
}

/// The toast shown after copying.
pub fn toast(theme: &Theme) -> container::Style {
    let palette = theme.extended_palette();
    container::Style {
        background: Some(Background::Color(palette.background.strong.color)),
        border: border::rounded(8),
        text_color: Some(palette.background.strong.text),
        ..container::Style::default()
    }
}

/// A stable colour for an issuer, so an account keeps its colour across runs.
pub fn avatar_color(seed: &str) -> Color {
    const COLORS: [Color; 8] = [
        Color::from_rgb(0.16, 0.45, 0.87),
        Color::from_rgb(0.80, 0.26, 0.30),
        Color::from_rgb(0.13, 0.59, 0.45),
        Color::from_rgb(0.56, 0.33, 0.80),
        Color::from_rgb(0.88, 0.49, 0.13),
        Color::from_rgb(0.09, 0.60, 0.70),
        Color::from_rgb(0.75, 0.30, 0.58),
        Color::from_rgb(0.40, 0.47, 0.55),
    ];
    // FNV-1a: tiny, stable across versions and platforms (unlike std's hasher).
    let hash = seed.to_lowercase().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    COLORS[(hash % COLORS.len() as u64) as usize]
}

/// The app icon, drawn in code: a blue rounded square with a white check ring.
pub fn icon_rgba(size: u32) -> Vec<u8> {
    let mut pixels = Vec::with_capacity((size * size * 4) as usize);
    let s = size as f32;
    for y in 0..size {
        for x in 0..size {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            let radius = s * 0.22;
            // Rounded-square mask.
            let dx = (fx - s / 2.0).abs() - (s / 2.0 - radius);
            let dy = (fy - s / 2.0).abs() - (s / 2.0 - radius);
            let outside = (dx.max(0.0).powi(2) + dy.max(0.0).powi(2)).sqrt() - radius;
            let alpha = (0.5 - outside).clamp(0.0, 1.0);
            // A white ring with a check mark inside.
            let (cx, cy) = (fx - s / 2.0, fy - s / 2.0);
            let distance = (cx * cx + cy * cy).sqrt();
            let ring = (distance - s * 0.30).abs() < s * 0.045;
            let on_segment = |(ax, ay): (f32, f32), (bx, by): (f32, f32)| {
                let (vx, vy) = (bx - ax, by - ay);
                let t = (((cx - ax) * vx + (cy - ay) * vy) / (vx * vx + vy * vy)).clamp(0.0, 1.0);
                let (px, py) = (ax + t * vx - cx, ay + t * vy - cy);
                (px * px + py * py).sqrt() < s * 0.045
            };
            let check = on_segment((-0.14 * s, 0.0), (-0.04 * s, 0.11 * s)) || on_segment((-0.04 * s, 0.11 * s), (0.15 * s, -0.10 * s));
            let (r, g, b) = if ring || check { (255, 255, 255) } else { (38, 99, 235) };
            pixels.extend_from_slice(&[r, g, b, (alpha * 255.0) as u8]);
        }
    }
    pixels
}
