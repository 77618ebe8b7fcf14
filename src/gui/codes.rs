//! Showing secrets as QR codes: one account's otpauth code, or the pages of
//! a Google Authenticator export. Nothing is drawn until the user confirms
//! that anyone who sees the screen could copy the accounts.

use iced::widget::{Space, button, column, container, image, row, scrollable, text};
use iced::{Center, Element, Fill};

use crate::transfer;

/// One code: what it is, and its pixels.
pub struct Code {
    pub caption: String,
    /// RGBA pixels of the QR image, and its side in pixels.
    pub rgba: Vec<u8>,
    pub side: u32,
    handle: image::Handle,
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Code").field("caption", &self.caption).finish_non_exhaustive()
    }
}

impl Drop for Code {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.rgba);
    }
}

#[derive(Debug)]
pub struct Codes {
    pub title: String,
    pub warning: String,
    pub codes: Vec<Code>,
    /// Notes under the codes (accounts left out of an export).
    pub notes: Vec<String>,
    pub index: usize,
    pub revealed: bool,
    /// Opened from the Export page, so Back returns there.
    pub from_export: bool,
}

#[derive(Debug, Clone)]
pub enum Message {
    Reveal,
    Previous,
    Next,
    Back,
}

pub enum Action {
    None,
    Back,
}

impl Codes {
    /// Renders `texts` (the QR payloads) with their captions; a text too
    /// long for one QR code becomes an error.
    pub fn new(
        title: String,
        warning: String,
        texts: Vec<(String, zeroize::Zeroizing<String>)>,
        notes: Vec<String>,
    ) -> Result<Self, transfer::ExportError> {
        let codes = texts
            .into_iter()
            .map(|(caption, payload)| {
                let grey = transfer::qr_image(&payload, 6)?;
                let side = grey.width();
                let rgba: Vec<u8> = grey.pixels().flat_map(|p| [p.0[0], p.0[0], p.0[0], 255]).collect();
                let handle = image::Handle::from_rgba(side, side, rgba.clone());
                Ok(Code { caption, rgba, side, handle })
            })
            .collect::<Result<_, transfer::ExportError>>()?;
        Ok(Codes { title, warning, codes, notes, index: 0, revealed: false, from_export: false })
    }

    pub fn update(&mut self, message: Message) -> Action {
        match message {
            Message::Reveal => self.revealed = true,
            Message::Previous => self.index = self.index.saturating_sub(1),
            Message::Next => self.index = (self.index + 1).min(self.codes.len().saturating_sub(1)),
            Message::Back => return Action::Back,
        }
        Action::None
    }

    pub fn view(&self) -> Element<'_, Message> {
        let header = row![
            button(text("← Back")).on_press(Message::Back).padding([8, 12]).style(button::secondary),
            text(self.title.clone()).size(22)
        ]
        .spacing(14)
        .align_y(Center)
        .width(Fill);
        let mut page = column![header].spacing(16).padding(16).max_width(720).align_x(Center);
        if !self.revealed {
            page = page.push(container(text(self.warning.clone()).size(15)).padding(12).width(Fill).style(super::style::notice(true)));
            page = page.push(button(text("Show the QR code")).on_press(Message::Reveal).padding([10, 18]));
            return scrollable(container(page).center_x(Fill)).into();
        }
        if let Some(code) = self.codes.get(self.index) {
            page = page.push(text(code.caption.clone()).size(16));
            page = page.push(image(code.handle.clone()).width(code.side.min(420) as f32));
        }
        if self.codes.len() > 1 {
            let mut previous = button(text("Previous")).padding([8, 14]).style(button::secondary);
            if self.index > 0 {
                previous = previous.on_press(Message::Previous);
            }
            let mut next = button(text("Next")).padding([8, 14]);
            if self.index + 1 < self.codes.len() {
                next = next.on_press(Message::Next);
            }
            page = page.push(
                row![previous, text(format!("Code {} of {}", self.index + 1, self.codes.len())).size(14), next].spacing(14).align_y(Center),
            );
        }
        for note in &self.notes {
            page = page.push(text(note.clone()).size(13).style(text::secondary));
        }
        page = page.push(Space::new().height(10));
        scrollable(container(page).center_x(Fill)).into()
    }
}
