//! A sign-in request: who, what, where, a live countdown, the number to
//! type and the PIN when asked, and Authenticate / Deny / It wasn't me (or,
//! for a privacyIDEA presence check, one button per option). Also the
//! activity list of recent requests and their outcomes, and the privacyIDEA
//! tokens they can come from.

use iced::widget::{Space, button, column, container, row, scrollable, text, text_input};
use iced::{Center, Element, Fill};
use zeroize::Zeroizing;

use super::{Sensitive, style};
use crate::journal::{self, Event, Record};
use crate::push::{Challenge, Decision};
use crate::secret::Password;
use crate::vault::Id;

pub const NUMBER_ID: &str = "prompt-number";
pub const PIN_ID: &str = "prompt-pin";
/// The activity page's field for a virtual phone's number.
pub const PHONE_NUMBER_ID: &str = "phone-number";

#[derive(Debug)]
pub struct Prompt {
    /// The work or school account it came through.
    pub account: Id,
    pub challenge: Challenge,
    /// When it expires by this computer's clock (see [`Challenge::deadline`]).
    pub deadline: i64,
    /// The push-fatigue shield's warning, when this request is one too many.
    pub flagged: Option<String>,
    number: String,
    password: Sensitive<Zeroizing<String>>,
    pub busy: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Message {
    NumberChanged(String),
    PasswordChanged(Sensitive<String>),
    Answer(Decision),
    /// privacyIDEA presence mode: the option the user picked.
    Pick(String),
}

pub enum Action {
    None,
    /// Send this answer; `password` is checked first when the organisation asks for the PIN.
    Answer {
        decision: Decision,
        number: Option<u32>,
        password: Option<Password>,
        presence: Option<String>,
    },
}

impl Prompt {
    pub fn new(account: Id, challenge: Challenge, deadline: i64, flagged: Option<String>) -> Self {
        Prompt { account, challenge, deadline, flagged, number: String::new(), password: Sensitive::default(), busy: false, error: None }
    }

    /// Forgets a PIN typed but not sent (the vault locked).
    pub fn forget_password(&mut self) {
        self.password = Sensitive::default();
    }

    /// Seconds left at `now` (this computer's clock), 0 once expired.
    pub fn seconds_left(&self, now: i64) -> i64 {
        (self.deadline - now).max(0)
    }

    pub fn update(&mut self, message: Message) -> Action {
        match message {
            Message::NumberChanged(number) => {
                self.number = number.chars().filter(char::is_ascii_digit).take(3).collect();
                self.error = None;
                Action::None
            }
            Message::PasswordChanged(Sensitive(password)) => {
                self.password = Sensitive(Zeroizing::new(password));
                self.error = None;
                Action::None
            }
            Message::Pick(option) => self.answer(Decision::Approve, Some(option)),
            Message::Answer(Decision::Approve) if !self.challenge.presence_options.is_empty() => {
                self.error = Some("Pick the option the sign-in page shows.".into());
                Action::None
            }
            Message::Answer(decision) => self.answer(decision, None),
        }
    }

    fn answer(&mut self, decision: Decision, presence: Option<String>) -> Action {
        if self.busy {
            return Action::None;
        }
        let approving = decision == Decision::Approve;
        let number = if approving && self.challenge.number_matching {
            match self.number.parse() {
                Ok(number) => Some(number),
                Err(_) => {
                    self.error = Some("Type the number the sign-in page shows.".into());
                    return Action::None;
                }
            }
        } else {
            None
        };
        let password = if approving && self.challenge.pin_required {
            if self.password.0.is_empty() {
                self.error = Some("Your organisation asks for your PIN: enter your vault password.".into());
                return Action::None;
            }
            Some(Password::new(std::mem::take(&mut *self.password.0)))
        } else {
            None
        };
        self.busy = true;
        self.error = None;
        Action::Answer { decision, number, password, presence }
    }

    pub fn view(&self, now: i64, waiting: usize) -> Element<'_, Message> {
        let challenge = &self.challenge;
        // Relying-party words, never able to reorder or break what is shown.
        let shown = crate::push::printable;
        let left = self.seconds_left(now);
        let detail = |label: &'static str, value: String| {
            row![text(label).size(13).width(110).style(text::secondary), text(value).size(15)].spacing(8)
        };
        let mut card = column![
            text("Approve sign-in?").size(24),
            text(format!("{} · {}", shown(&challenge.organization), shown(&challenge.user))).size(15).style(text::secondary),
            Space::new().height(4),
            detail("Application", shown(&challenge.app)),
            detail("Location", if challenge.location.is_empty() { "Unknown".into() } else { shown(&challenge.location) }),
            detail("IP address", if challenge.ip.is_empty() { "Unknown".into() } else { shown(&challenge.ip) }),
            detail(
                "Time",
                jiff::Timestamp::from_second(challenge.created_at)
                    .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default()
            ),
            text(format!("Expires in {left} s")).size(15).style(if left <= 10 { text::danger } else { text::default }),
        ]
        .spacing(8)
        .max_width(460);
        if let Some(warning) = &self.flagged {
            card = card.push(container(text(warning.clone()).size(14)).padding(10).width(Fill).style(style::notice(true)));
        }
        if !challenge.question.is_empty() {
            card = card.push(text(shown(&challenge.question)).size(15));
        }
        if challenge.number_matching {
            card = card.push(text("Enter the number shown on the sign-in page").size(15));
            card = card.push(
                text_input("Number", &self.number)
                    .id(NUMBER_ID)
                    .on_input(Message::NumberChanged)
                    .on_submit(Message::Answer(Decision::Approve))
                    .padding(10)
                    .size(22)
                    .width(140),
            );
        }
        if challenge.pin_required {
            card = card.push(text("Your organisation asks for your PIN: your vault password").size(15));
            card = card.push(
                text_input("Vault password", &self.password.0)
                    .id(PIN_ID)
                    .secure(true)
                    .on_input(|p| Message::PasswordChanged(Sensitive(p)))
                    .on_submit(Message::Answer(Decision::Approve))
                    .padding(10),
            );
        }
        if let Some(error) = &self.error {
            card = card.push(text(error.clone()).size(14).style(text::danger));
        }
        if self.busy {
            card = card.push(text("Sending…").size(14));
        } else if !challenge.presence_options.is_empty() {
            card = card.push(text("Tap the option the sign-in page shows").size(15));
            card = card.push(
                row(challenge
                    .presence_options
                    .iter()
                    .map(|option| button(text(option.clone()).size(20)).on_press(Message::Pick(option.clone())).padding([10, 22]).into()))
                .spacing(10),
            );
            card = card.push(
                row![
                    button(text("Deny")).on_press(Message::Answer(Decision::Deny)).padding([10, 18]).style(button::secondary),
                    button(text("It wasn't me")).on_press(Message::Answer(Decision::Report)).padding([10, 18]).style(button::danger),
                ]
                .spacing(10),
            );
        } else {
            card = card.push(
                row![
                    button(text("Authenticate")).on_press(Message::Answer(Decision::Approve)).padding([10, 18]),
                    button(text("Deny")).on_press(Message::Answer(Decision::Deny)).padding([10, 18]).style(button::secondary),
                    button(text("It wasn't me")).on_press(Message::Answer(Decision::Report)).padding([10, 18]).style(button::danger),
                ]
                .spacing(10),
            );
        }
        if waiting > 0 {
            card = card.push(
                text(format!("{waiting} more request{} waiting", if waiting == 1 { "" } else { "s" })).size(13).style(text::secondary),
            );
        }
        container(container(card).padding(24).style(style::card)).center(Fill).padding(16).into()
    }
}

/// One request in the activity list: its first record (when it arrived)
/// with its newest outcome.
pub type Activity = Record;

/// The activity list from journal records, newest request first.
pub fn fold(records: &[Record]) -> Vec<Activity> {
    let mut items: Vec<Activity> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for record in records {
        match index.get(record.request.as_str()) {
            // A request delivered again after a restart stays where it was.
            Some(_) if record.event == Event::Received => {}
            Some(&at) => {
                items[at].event = record.event;
                items[at].detail = record.detail.clone();
            }
            None => {
                index.insert(&record.request, items.len());
                items.push(record.clone());
            }
        }
    }
    items.reverse();
    items
}

#[derive(Debug, Clone)]
pub enum ActivityMessage {
    Back,
    /// Remove this privacyIDEA token (asks first).
    RemoveToken(Id),
    ConfirmRemove,
    CancelRemove,
    /// The number typed to answer for, on this account's virtual phone.
    PhoneNumberChanged(Id, String),
    /// This account's device answers for the number typed from now on.
    AttachPhone(Id),
    /// This account's device no longer answers for this number.
    DetachPhone(Id, String),
}

/// A work or school account or privacyIDEA token as the activity page lists it.
#[derive(Debug, Clone)]
pub struct SourceRow {
    pub id: Id,
    pub title: String,
    /// "Connected", "Connecting…", why it is offline, or why it waits.
    pub state: String,
    /// How it receives: while locked, only while unlocked, polling…
    pub reach: String,
    /// A privacyIDEA token: it can be removed here.
    pub token: bool,
    /// A work or school account on a server with virtual phones: the
    /// numbers its device answers for, which can be changed here.
    pub phone: Option<super::phone::Numbers>,
}

/// A virtual phone's numbers (texts and calls to them come here), with a
/// Stop for each and a field to add one.
fn phone_numbers<'a>(id: &Id, phone: &super::phone::Numbers) -> Element<'a, ActivityMessage> {
    let mut numbers = column![text("Virtual phone: texts and calls to these numbers come here").size(13)].spacing(6).padding([8, 0]);
    if phone.numbers.is_empty() {
        numbers = numbers.push(text("No number yet.").size(13).style(text::secondary));
    }
    for number in &phone.numbers {
        numbers = numbers.push(
            row![
                text(number.clone()).size(15).width(Fill),
                button(text("Stop").size(13))
                    .on_press(ActivityMessage::DetachPhone(id.clone(), number.clone()))
                    .padding([4, 10])
                    .style(button::secondary)
            ]
            .spacing(8)
            .align_y(Center),
        );
    }
    let attach = ActivityMessage::AttachPhone(id.clone());
    let id_ = id.clone();
    numbers = numbers.push(
        row![
            text_input("Your phone number, e.g. +41 44 668 18 00", &phone.typed)
                .id(PHONE_NUMBER_ID)
                .on_input(move |typed| ActivityMessage::PhoneNumberChanged(id_.clone(), typed))
                .on_submit(attach.clone())
                .padding(8)
                .size(14),
            button(text("Answer for this number").size(13)).on_press(attach).padding([8, 12]),
        ]
        .spacing(8)
        .align_y(Center),
    );
    if let Some(error) = &phone.error {
        numbers = numbers.push(text(error.clone()).size(13).style(text::danger));
    }
    numbers.into()
}

/// Where requests come from (each with its connection; tokens with a
/// Remove button), then the recent sign-in requests, newest first, with the
/// journal's break when it has one.
pub fn activity_view<'a>(
    items: &'a [Activity],
    sources: &[SourceRow],
    confirm_remove: Option<&Id>,
    broken: Option<&journal::Break>,
) -> Element<'a, ActivityMessage> {
    let header = row![
        button(text("← Back")).on_press(ActivityMessage::Back).padding([8, 12]).style(button::secondary),
        text("Sign-in activity").size(22)
    ]
    .spacing(14)
    .align_y(Center);
    let mut list = column![header].spacing(10).padding(16).max_width(720);
    if let Some(broken) = broken {
        list = list.push(
            container(text(format!("Warning: {broken}. The history below may be incomplete or altered.")).size(14))
                .padding(10)
                .width(Fill)
                .style(style::notice(true)),
        );
    }
    if !sources.is_empty() {
        list = list.push(text("Receiving from").size(16));
    }
    for source in sources {
        let action: Element<'_, ActivityMessage> = if !source.token {
            Space::new().into()
        } else if confirm_remove == Some(&source.id) {
            row![
                text("Its key is deleted; privacyIDEA must enroll a new token.").size(13),
                button(text("Remove")).on_press(ActivityMessage::ConfirmRemove).padding([6, 12]).style(button::danger),
                button(text("Keep")).on_press(ActivityMessage::CancelRemove).padding([6, 12]).style(button::secondary),
            ]
            .spacing(8)
            .align_y(Center)
            .into()
        } else {
            button(text("Remove…"))
                .on_press(ActivityMessage::RemoveToken(source.id.clone()))
                .padding([6, 12])
                .style(button::secondary)
                .into()
        };
        let mut about = column![
            text(source.title.clone()).size(15),
            text(source.state.clone()).size(13),
            text(source.reach.clone()).size(13).style(text::secondary)
        ]
        .spacing(2)
        .width(Fill);
        if let Some(phone) = &source.phone {
            about = about.push(phone_numbers(&source.id, phone));
        }
        list = list.push(container(row![about, action].spacing(10).align_y(Center)).padding(12).style(style::card));
    }
    if !sources.is_empty() {
        list = list.push(text("Requests").size(16));
    }
    if items.is_empty() {
        list = list.push(text("No sign-in requests yet.").size(15).style(text::secondary));
    }
    for item in items {
        let when = jiff::Timestamp::from_second(item.at).map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default();
        let place = if item.location.is_empty() { "unknown place" } else { &item.location };
        list = list.push(
            container(
                row![
                    column![
                        text(crate::push::printable(&item.app)).size(15),
                        text(crate::push::printable(&format!("{} · {} · {place} · {when}", item.account, item.user)))
                            .size(13)
                            .style(text::secondary)
                    ]
                    .spacing(2)
                    .width(Fill),
                    text(item.outcome()).size(14),
                ]
                .align_y(Center),
            )
            .padding(12)
            .style(style::card),
        );
    }
    scrollable(container(list).center_x(Fill)).into()
}
