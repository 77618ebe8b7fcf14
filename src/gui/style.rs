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

/// The window icon: the packaged 64 px PNG, rendered from
/// resources/org.countersign.Countersign.svg by packaging/linux/make-icons.
pub(super) const ICON_PNG: &[u8] = include_bytes!("../../packaging/linux/icons/hicolor/64x64/apps/org.countersign.Countersign.png");

pub fn window_icon() -> Option<iced::window::Icon> {
    let pixels = image::load_from_memory_with_format(ICON_PNG, image::ImageFormat::Png).ok()?.into_rgba8();
    let (width, height) = pixels.dimensions();
    iced::window::icon::from_rgba(pixels.into_raw(), width, height).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_window_icon_is_the_packaged_one() {
        let icon = super::window_icon().expect("the embedded PNG decodes");
        let (pixels, size) = icon.into_raw();
        assert_eq!((size.width, size.height), (64, 64));
        // The middle of the ring is the app's blue, a corner is transparent.
        let at = |x: usize, y: usize| &pixels[(y * 64 + x) * 4..][..4];
        assert_eq!(at(0, 0)[3], 0);
        assert_eq!(at(32, 20), [0x26, 0x63, 0xeb, 255]);
    }
}
