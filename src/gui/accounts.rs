//! The accounts list: live codes on cards, search, copy, edit, delete, reorder.

use iced::widget::{Space, button, column, container, progress_bar, row, scrollable, text, text_input};
use iced::{Center, Color, Element, Fill, Font, Task, font};

use super::style;
use crate::account::Method;
use crate::otp;
use crate::vault::{Entry, Id};

pub const SEARCH_ID: &str = "accounts-search";
pub const LIST_ID: &str = "accounts-list";

/// Every card has this height, and the selected one `TOOLS` more, so the
/// list can build only the cards inside the viewport (1,000 accounts stay cheap).
const CARD: f32 = 84.0;
const TOOLS: f32 = 44.0;
const GAP: f32 = 10.0;
/// Cards built beyond each edge of the viewport, so a wheel step never shows a gap.
const OVERSCAN: f32 = 2.0 * (CARD + GAP);

/// One account as displayed, recomputed on every tick (never in `view`).
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    pub id: Id,
    pub issuer: String,
    pub name: String,
    letter: String,
    color: Color,
    /// Grouped for reading: "123 456".
    pub code: String,
    /// The following code, once fewer than 5 s remain.
    pub next: Option<String>,
    pub seconds_left: Option<u64>,
    period: u64,
    pub hotp: bool,
    /// A work or school account that receives sign-in requests.
    pub push: bool,
}

#[derive(Debug, Default)]
pub struct Accounts {
    pub query: String,
    pub cards: Vec<Card>,
    pub hide_codes: bool,
    revealed: Option<Id>,
    pub selected: Option<Id>,
    pub confirm_delete: Option<Id>,
    editing: Option<Edit>,
    /// The list's scroll offset and height, from its last scroll event.
    viewport: (f32, f32),
    /// Each work or school account's connection, as the root last heard it.
    pub push_status: std::collections::HashMap<Id, String>,
    /// How many privacyIDEA tokens the vault holds (listed on the activity page).
    pub push_tokens: usize,
}

#[derive(Debug, Clone)]
struct Edit {
    id: Id,
    issuer: String,
    name: String,
}

#[derive(Debug, Clone)]
pub enum Message {
    QueryChanged(String),
    CardPressed(Id),
    NextCode(Id),
    /// Rename this account in place.
    Edit(Id),
    Editing(EditMessage),
    /// Ask whether to delete this account.
    Delete(Id),
    ShowQr(Id),
    /// The answer to "Delete?": true deletes.
    DeleteConfirmed(bool),
    MoveUp(Id),
    MoveDown(Id),
    Scrolled(iced::widget::scrollable::Viewport),
    AddAccount,
    OpenPreferences,
    OpenActivity,
    Lock,
}

/// The in-place rename of one card.
#[derive(Debug, Clone)]
pub enum EditMessage {
    IssuerChanged(String),
    NameChanged(String),
    Save,
    Cancel,
}

/// A change to the vault the root must make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Rename { id: Id, issuer: String, name: String },
    Remove(Id),
    Move { id: Id, up: bool },
    NextHotp(Id),
}

#[derive(Debug)]
pub enum Action {
    None,
    Run(Task<Message>),
    Copy(Id),
    Change(Change),
    AddAccount,
    OpenPreferences,
    /// Show the account as a QR code (after a confirmation).
    ShowQr(Id),
    OpenActivity,
    Lock,
}

impl Accounts {
    /// Recomputes every card's code for `now` (Unix seconds).
    pub fn refresh(&mut self, entries: &[Entry], now: u64) {
        self.cards = entries
            .iter()
            .map(|entry| {
                let account = &entry.account;
                let current = otp::code(account, now);
                let seconds_left = current.seconds_left(now);
                let next = match (seconds_left, current.valid_until) {
                    (Some(left), Some(until)) if left < 5 => Some(otp::code(account, until).grouped()),
                    _ => None,
                };
                let title = if account.issuer.is_empty() { &account.name } else { &account.issuer };
                Card {
                    id: entry.id.clone(),
                    issuer: account.issuer.clone(),
                    name: account.name.clone(),
                    letter: title.chars().next().map(|c| c.to_uppercase().to_string()).unwrap_or_else(|| "?".into()),
                    color: style::avatar_color(title),
                    code: current.grouped(),
                    next,
                    seconds_left,
                    period: match account.method {
                        Method::Totp { period } => period,
                        Method::Steam => 30,
                        Method::Hotp { .. } => 0,
                    },
                    hotp: matches!(account.method, Method::Hotp { .. }),
                    push: entry.push.is_some(),
                }
            })
            .collect();
        // Forget selections whose account is gone.
        let exists = |id: &Option<Id>| id.as_ref().is_some_and(|id| self.cards.iter().any(|c| &c.id == id));
        if !exists(&self.selected) {
            self.selected = None;
        }
        if !exists(&self.confirm_delete) {
            self.confirm_delete = None;
        }
    }

    /// The cards that match the search box.
    pub fn visible(&self) -> impl Iterator<Item = &Card> {
        let query = self.query.trim().to_lowercase();
        self.cards
            .iter()
            .filter(move |c| query.is_empty() || c.issuer.to_lowercase().contains(&query) || c.name.to_lowercase().contains(&query))
    }

    /// Moves the keyboard selection by `delta` among the visible cards and
    /// scrolls it into view.
    pub fn select_by(&mut self, delta: isize) -> Task<Message> {
        let visible: Vec<Id> = self.visible().map(|c| c.id.clone()).collect();
        if visible.is_empty() {
            return Task::none();
        }
        let current = self.selected.as_ref().and_then(|id| visible.iter().position(|v| v == id));
        let index = match current {
            None if delta < 0 => visible.len() - 1,
            None => 0,
            Some(i) => (i as isize + delta).clamp(0, visible.len() as isize - 1) as usize,
        };
        self.selected = Some(visible[index].clone());
        // Cards above the selected one have the plain height.
        let top = index as f32 * (CARD + GAP);
        let (offset, height) = self.viewport;
        let target = if top < offset {
            Some(top)
        } else if top + CARD + TOOLS > offset + height && height > 0.0 {
            Some(top + CARD + TOOLS - height)
        } else {
            None
        };
        match target {
            Some(y) => {
                iced::widget::operation::scroll_to(LIST_ID, iced::widget::operation::AbsoluteOffset { x: None, y: Some(y.max(0.0)) })
            }
            None => Task::none(),
        }
    }

    /// The card Enter copies: the selected one, else the only or first match.
    pub fn target(&self) -> Option<Id> {
        self.selected.clone().filter(|id| self.visible().any(|c| &c.id == id)).or_else(|| self.visible().next().map(|c| c.id.clone()))
    }

    /// Esc: close an inline dialog, else clear the search. Returns whether it did anything.
    pub fn escape(&mut self) -> bool {
        if self.editing.take().is_some() || self.confirm_delete.take().is_some() {
            return true;
        }
        if !self.query.is_empty() {
            self.query.clear();
            return true;
        }
        false
    }

    pub fn update(&mut self, message: Message) -> Action {
        match message {
            Message::QueryChanged(query) => {
                self.query = query;
                self.viewport.0 = 0.0;
                Action::Run(iced::widget::operation::snap_to(LIST_ID, iced::widget::operation::RelativeOffset::START))
            }
            Message::Scrolled(viewport) => {
                self.viewport = (viewport.absolute_offset().y, viewport.bounds().height);
                Action::None
            }
            Message::CardPressed(id) => {
                self.selected = Some(id.clone());
                self.revealed = Some(id.clone());
                Action::Copy(id)
            }
            Message::NextCode(id) => {
                self.selected = Some(id.clone());
                Action::Change(Change::NextHotp(id))
            }
            Message::Edit(id) => {
                if let Some(card) = self.cards.iter().find(|c| c.id == id) {
                    self.editing = Some(Edit { id, issuer: card.issuer.clone(), name: card.name.clone() });
                }
                Action::None
            }
            Message::Editing(message) => {
                let Some(edit) = &mut self.editing else { return Action::None };
                match message {
                    EditMessage::IssuerChanged(issuer) => edit.issuer = issuer,
                    EditMessage::NameChanged(name) => edit.name = name,
                    EditMessage::Cancel => self.editing = None,
                    EditMessage::Save => {
                        if let Some(Edit { id, issuer, name }) = self.editing.take() {
                            return Action::Change(Change::Rename { id, issuer, name });
                        }
                    }
                }
                Action::None
            }
            Message::Delete(id) => {
                self.confirm_delete = Some(id);
                Action::None
            }
            Message::ShowQr(id) => Action::ShowQr(id),
            Message::OpenActivity => Action::OpenActivity,
            Message::DeleteConfirmed(confirmed) => match self.confirm_delete.take() {
                Some(id) if confirmed => Action::Change(Change::Remove(id)),
                _ => Action::None,
            },
            Message::MoveUp(id) => Action::Change(Change::Move { id, up: true }),
            Message::MoveDown(id) => Action::Change(Change::Move { id, up: false }),
            Message::AddAccount => Action::AddAccount,
            Message::OpenPreferences => Action::OpenPreferences,
            Message::Lock => Action::Lock,
        }
    }

    pub fn view(&self) -> Element<'_, Message> {
        let header = row![
            text_input("Search accounts (Ctrl+F)", &self.query).id(SEARCH_ID).on_input(Message::QueryChanged).padding(9).width(Fill),
            button(text("Add account")).on_press(Message::AddAccount).padding([9, 14]),
            button(text("Settings")).on_press(Message::OpenPreferences).padding([9, 14]).style(button::secondary),
            button(text("Lock")).on_press(Message::Lock).padding([9, 14]).style(button::secondary),
        ]
        .spacing(8)
        .align_y(Center);
        // Sign-in activity, once there is a work or school account or a privacyIDEA token.
        let header: Element<'_, Message> = if self.cards.iter().any(|c| c.push) || self.push_tokens > 0 {
            let label = match self.push_tokens {
                0 => "Sign-in activity".to_owned(),
                1 => "Sign-in activity · 1 privacyIDEA token".to_owned(),
                n => format!("Sign-in activity · {n} privacyIDEA tokens"),
            };
            column![
                header,
                row![
                    Space::new().width(Fill),
                    button(text(label).size(13)).on_press(Message::OpenActivity).padding([5, 10]).style(button::text)
                ]
            ]
            .spacing(4)
            .into()
        } else {
            header.into()
        };

        let body: Element<'_, Message> = if self.cards.is_empty() {
            empty_state()
        } else {
            let visible: Vec<&Card> = self.visible().collect();
            if visible.is_empty() {
                container(text(format!("No account matches “{}”.", self.query.trim())).size(15)).padding(30).center_x(Fill).into()
            } else {
                scrollable(self.window(&visible)).id(LIST_ID).on_scroll(Message::Scrolled).height(Fill).into()
            }
        };
        column![header, body].spacing(14).padding(16).into()
    }

    /// The cards inside the viewport (plus a margin), between two spacers that
    /// stand for the rest, so layout and drawing cost do not grow with the vault.
    fn window<'a>(&'a self, cards: &[&'a Card]) -> Element<'a, Message> {
        let (offset, height) = self.viewport;
        // Before the first scroll event the height is unknown: assume a tall window.
        let height = if height > 0.0 { height } else { 2000.0 };
        let (from, to) = (offset - OVERSCAN, offset + height + OVERSCAN);
        let (mut y, mut before, mut shown_end) = (0.0, 0.0, None);
        let mut shown = Vec::new();
        for card in cards {
            let extent = if self.selected.as_ref() == Some(&card.id) { CARD + TOOLS } else { CARD };
            if y + extent < from {
                before = y + extent + GAP;
            } else if y <= to {
                shown.push(self.card(card, extent));
                shown_end = Some(y + extent + GAP);
            }
            y += extent + GAP;
        }
        let mut list = column![Space::new().height(before)];
        for card in shown {
            list = list.push(card).push(Space::new().height(GAP));
        }
        list = list.push(Space::new().height(y - shown_end.unwrap_or(before)));
        list.padding(iced::Padding { right: 12.0, ..iced::Padding::ZERO }).into()
    }

    fn card<'a>(&'a self, card: &'a Card, extent: f32) -> Element<'a, Message> {
        let selected = self.selected.as_ref() == Some(&card.id);
        let avatar =
            container(text(card.letter.clone()).size(20).font(Font { weight: font::Weight::Bold, ..Font::with_name("Fira Sans") }))
                .width(40)
                .height(40)
                .center_x(40)
                .center_y(40)
                .style(style::avatar(card.color));
        let (title, subtitle) =
            if card.issuer.is_empty() { (card.name.clone(), String::new()) } else { (card.issuer.clone(), card.name.clone()) };
        let mut names = column![
            text(title).size(16).font(Font { weight: font::Weight::Semibold, ..Font::with_name("Fira Sans") }),
            text(subtitle).size(13).style(text::secondary)
        ]
        .spacing(2);
        if card.push {
            let status = self.push_status.get(&card.id).map_or("Push: starting", String::as_str);
            names = names.push(text(status.to_owned()).size(12).style(if status.starts_with("Push: connected") {
                text::success
            } else {
                text::secondary
            }));
        }

        let hidden = self.hide_codes && self.revealed.as_ref() != Some(&card.id);
        let shown_code = if hidden { card.code.chars().map(|c| if c == ' ' { ' ' } else { '•' }).collect() } else { card.code.clone() };
        let urgent = card.seconds_left.is_some_and(|left| left < 5);
        let mut code_column = column![text(shown_code).size(28).font(Font { weight: font::Weight::Bold, ..Font::with_name("Fira Sans") })]
            .align_x(iced::Right);
        if let (Some(next), false) = (&card.next, hidden) {
            code_column = code_column.push(text(format!("next {next}")).size(12).style(text::secondary));
        }
        let countdown: Element<'_, Message> = match card.seconds_left {
            Some(left) => {
                let label = text(format!("{left} s")).size(13).width(34).align_x(iced::Right);
                if urgent { label.style(text::danger).into() } else { label.style(text::secondary).into() }
            }
            None => button(text("Next code").size(13))
                .on_press(Message::NextCode(card.id.clone()))
                .padding([6, 10])
                .style(button::secondary)
                .into(),
        };
        let top = row![avatar, names, Space::new().width(Fill), code_column, countdown].spacing(12).align_y(Center);

        let mut content = column![top].spacing(8);
        if card.period > 0
            && let Some(left) = card.seconds_left
        {
            let bar = progress_bar(0.0..=card.period as f32, left as f32).girth(3);
            content = content.push(if urgent { bar.style(progress_bar::danger) } else { bar.style(progress_bar::primary) });
        }
        if selected {
            content = content.push(self.card_tools(card));
        }
        button(content)
            .on_press(Message::CardPressed(card.id.clone()))
            .padding(14)
            .width(Fill)
            .height(extent)
            .style(style::card_button)
            .into()
    }

    /// Edit, delete and reorder, or the inline edit and delete-confirmation forms.
    fn card_tools<'a>(&'a self, card: &'a Card) -> Element<'a, Message> {
        if let Some(edit) = self.editing.as_ref().filter(|e| e.id == card.id) {
            return row![
                text_input("Issuer", &edit.issuer)
                    .on_input(|i| Message::Editing(EditMessage::IssuerChanged(i)))
                    .on_submit(Message::Editing(EditMessage::Save))
                    .padding(7),
                text_input("Account name", &edit.name)
                    .on_input(|n| Message::Editing(EditMessage::NameChanged(n)))
                    .on_submit(Message::Editing(EditMessage::Save))
                    .padding(7),
                button(text("Save")).on_press(Message::Editing(EditMessage::Save)).padding([7, 12]),
                button(text("Cancel")).on_press(Message::Editing(EditMessage::Cancel)).padding([7, 12]).style(button::secondary),
            ]
            .spacing(8)
            .align_y(Center)
            .into();
        }
        if self.confirm_delete.as_ref() == Some(&card.id) {
            return row![
                text(format!("Delete {}? Its codes cannot be recovered.", if card.issuer.is_empty() { &card.name } else { &card.issuer }))
                    .size(14)
                    .width(Fill),
                button(text("Delete")).on_press(Message::DeleteConfirmed(true)).padding([7, 12]).style(button::danger),
                button(text("Cancel")).on_press(Message::DeleteConfirmed(false)).padding([7, 12]).style(button::secondary),
            ]
            .spacing(8)
            .align_y(Center)
            .into();
        }
        let tool =
            |label: &'static str, message: Message| button(text(label).size(13)).on_press(message).padding([5, 10]).style(button::text);
        row![
            text("Copied when clicked").size(12).style(text::secondary),
            Space::new().width(Fill),
            tool("Move up", Message::MoveUp(card.id.clone())),
            tool("Move down", Message::MoveDown(card.id.clone())),
            tool("Edit", Message::Edit(card.id.clone())),
            tool("QR code", Message::ShowQr(card.id.clone())),
            button(text("Delete").size(13)).on_press(Message::Delete(card.id.clone())).padding([5, 10]).style(button::danger),
        ]
        .spacing(4)
        .align_y(Center)
        .into()
    }
}

fn empty_state<'a>() -> Element<'a, Message> {
    let content = column![
        text("No accounts yet").size(22),
        text("Add your first account by scanning its QR code from an image, the clipboard or a dropped file, or by typing its secret key.")
            .size(15)
            .align_x(Center),
        button(text("Add account")).on_press(Message::AddAccount).padding([10, 18]),
    ]
    .spacing(12)
    .align_x(Center)
    .max_width(420);
    container(content).center(Fill).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> (Accounts, Id) {
        let id = Id::for_tests(1);
        let card = Card {
            id: id.clone(),
            issuer: "GitHub".into(),
            name: "alice".into(),
            letter: "G".into(),
            color: style::avatar_color("GitHub"),
            code: "013 254".into(),
            next: None,
            seconds_left: Some(20),
            period: 30,
            hotp: false,
            push: false,
        };
        (Accounts { cards: vec![card], ..Accounts::default() }, id)
    }

    #[test]
    fn a_rename_is_typed_in_place_then_handed_to_the_root() {
        let (mut accounts, id) = list();
        assert!(matches!(accounts.update(Message::Edit(id.clone())), Action::None));
        accounts.update(Message::Editing(EditMessage::IssuerChanged("Gmail ".into())));
        accounts.update(Message::Editing(EditMessage::NameChanged("work".into())));
        let action = accounts.update(Message::Editing(EditMessage::Save));
        assert!(
            matches!(action, Action::Change(Change::Rename { id: ref renamed, ref issuer, ref name }) if *renamed == id && issuer == "Gmail " && name == "work")
        );
        assert!(matches!(accounts.update(Message::Editing(EditMessage::Save)), Action::None), "saved once");
        accounts.update(Message::Edit(id));
        accounts.update(Message::Editing(EditMessage::Cancel));
        assert!(matches!(accounts.update(Message::Editing(EditMessage::Save)), Action::None), "cancelled");
    }

    #[test]
    fn delete_waits_for_its_answer() {
        let (mut accounts, id) = list();
        accounts.update(Message::Delete(id.clone()));
        assert!(matches!(accounts.update(Message::DeleteConfirmed(false)), Action::None));
        assert!(matches!(accounts.update(Message::DeleteConfirmed(true)), Action::None), "nothing left to confirm");
        accounts.update(Message::Delete(id.clone()));
        assert!(matches!(accounts.update(Message::DeleteConfirmed(true)), Action::Change(Change::Remove(ref removed)) if *removed == id));
        assert!(matches!(accounts.update(Message::CardPressed(id.clone())), Action::Copy(ref copied) if *copied == id));
    }
}
