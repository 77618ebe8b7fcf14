//! A virtual phone's texts and calls (see [`crate::push`]): a text as a
//! message with its code, *Copy* and *Reply with the code*; a call as an
//! incoming-call prompt with *Answer* and *Hang up*, then what it says, a
//! keypad and *Hang up*. They arrive whatever the window's state; what a
//! text says is sealed to the device key, so it is read (and anything
//! answered) only while the vault is unlocked.

use iced::widget::{button, column, container, row, text};
use iced::{Center, Element, Fill};

use super::style;
use crate::push::{PhoneAction, PhoneCall, PhoneText, TextBody};
use crate::vault::Id;

/// A text or a call waiting on screen.
#[derive(Debug)]
pub struct Ring {
    /// The work or school account whose device answers for the number.
    pub account: Id,
    /// What the account is called.
    pub title: String,
    pub kind: Kind,
    /// When it ends by this computer's clock.
    pub deadline: i64,
    pub busy: bool,
    pub error: Option<String>,
}

#[derive(Debug)]
pub enum Kind {
    /// `body`: what it says, once opened with the unlocked vault's device
    /// key (forgotten when the vault locks).
    Text { text: PhoneText, body: Option<TextBody> },
    /// `dialed`: keys pressed since the last one sent (`#` sends them).
    Call { call: PhoneCall, answered: bool, dialed: String },
}

#[derive(Debug, Clone)]
pub enum Message {
    Copy,
    Reply,
    Dismiss,
    Answer,
    Key(char),
    HangUp,
}

pub enum Action {
    None,
    /// Copy this text's code.
    Copy,
    /// Sign and send this request about the text or call.
    Send(PhoneAction),
    /// Take it off the screen (the sign-in stays open on the server).
    Dismiss,
}

/// The keypad, row by row.
const KEYPAD: [[char; 3]; 4] = [['1', '2', '3'], ['4', '5', '6'], ['7', '8', '9'], ['*', '0', '#']];

impl Ring {
    pub fn text(account: Id, title: String, text: PhoneText, deadline: i64) -> Self {
        Ring { account, title, kind: Kind::Text { text, body: None }, deadline, busy: false, error: None }
    }

    pub fn call(account: Id, title: String, call: PhoneCall, deadline: i64) -> Self {
        Ring { account, title, kind: Kind::Call { call, answered: false, dialed: String::new() }, deadline, busy: false, error: None }
    }

    /// The sign-in it is about: a reply or keys name it.
    pub fn id(&self) -> &str {
        match &self.kind {
            Kind::Text { text, .. } => &text.id,
            Kind::Call { call, .. } => &call.id,
        }
    }

    pub fn seconds_left(&self, now: i64) -> i64 {
        (self.deadline - now).max(0)
    }

    /// A text's code, once read.
    pub fn code(&self) -> Option<&str> {
        match &self.kind {
            Kind::Text { body: Some(body), .. } => Some(&body.code),
            _ => None,
        }
    }

    /// The vault locked: a text's words go; a call stays answered.
    pub fn forget(&mut self) {
        if let Kind::Text { body, .. } = &mut self.kind {
            *body = None;
        }
        self.busy = false;
    }

    pub fn update(&mut self, message: Message) -> Action {
        if self.busy {
            return Action::None;
        }
        let id = self.id().to_owned();
        match (message, &mut self.kind) {
            (Message::Copy, Kind::Text { body: Some(_), .. }) => Action::Copy,
            (Message::Reply, Kind::Text { body: Some(body), .. }) => {
                self.busy = true;
                self.error = None;
                Action::Send(PhoneAction::Reply { id, text: body.code.clone() })
            }
            (Message::Dismiss, Kind::Text { .. }) => Action::Dismiss,
            (Message::Answer, Kind::Call { answered, .. }) => {
                *answered = true;
                Action::None
            }
            (Message::Key(key), Kind::Call { answered: true, dialed, .. }) if KEYPAD.as_flattened().contains(&key) => {
                dialed.push(key);
                // An automated call reads the keys once # ends them.
                if key != '#' {
                    return Action::None;
                }
                self.busy = true;
                self.error = None;
                Action::Send(PhoneAction::Keys { id, keys: std::mem::take(dialed), hang_up: false })
            }
            (Message::HangUp, Kind::Call { .. }) => {
                self.busy = true;
                self.error = None;
                Action::Send(PhoneAction::Keys { id, keys: String::new(), hang_up: true })
            }
            _ => Action::None,
        }
    }

    /// The ring on screen, with the number of others waiting.
    pub fn view(&self, now: i64, waiting: usize) -> Element<'_, Message> {
        let shown = crate::push::printable;
        let left = self.seconds_left(now);
        let mut card = match &self.kind {
            Kind::Text { text: message, body } => {
                let mut card = column![
                    text("Text message").size(24),
                    text(format!("To {} · {}", shown(&message.to), shown(&self.title))).size(15).style(text::secondary),
                ]
                .spacing(8);
                match body {
                    Some(body) => {
                        card = card.push(container(text(shown(&body.text)).size(15)).padding(12).width(Fill).style(style::notice(false)));
                        card = card.push(
                            row![text("Code").size(13).style(text::secondary), text(spaced(&body.code)).size(28)]
                                .spacing(12)
                                .align_y(Center),
                        );
                    }
                    None => card = card.push(text("This text could not be read with this device's key.").size(14).style(text::danger)),
                }
                card
            }
            Kind::Call { call, answered, dialed } => {
                let to = if call.extension.is_empty() {
                    shown(&call.to)
                } else {
                    format!("{} ext. {}", shown(&call.to), shown(&call.extension))
                };
                let mut card = column![
                    text(if *answered { "Call in progress" } else { "Incoming call" }).size(24),
                    text(format!("To {to} · {}", shown(&self.title))).size(15).style(text::secondary),
                ]
                .spacing(8);
                if *answered {
                    card = card.push(
                        container(text(format!("“{}”", shown(&call.say))).size(15)).padding(12).width(Fill).style(style::notice(false)),
                    );
                    card =
                        card.push(text(if dialed.is_empty() { "Keys: none yet".to_owned() } else { format!("Keys: {dialed}") }).size(15));
                }
                card
            }
        };
        card = card.push(text(format!("Ends in {left} s")).size(15).style(if left <= 10 { text::danger } else { text::default }));
        if let Some(error) = &self.error {
            card = card.push(text(error.clone()).size(14).style(text::danger));
        }
        let action = |label: &'static str, message: Message| button(text(label)).on_press(message).padding([10, 18]);
        let actions: Element<'_, Message> = match &self.kind {
            _ if self.busy => text("Sending…").size(14).into(),
            Kind::Text { body: Some(_), .. } => row![
                action("Copy", Message::Copy),
                action("Reply with the code", Message::Reply).style(button::secondary),
                action("Dismiss", Message::Dismiss).style(button::secondary),
            ]
            .spacing(10)
            .into(),
            Kind::Text { body: None, .. } => action("Dismiss", Message::Dismiss).style(button::secondary).into(),
            Kind::Call { answered: false, .. } => {
                row![action("Answer", Message::Answer).style(button::success), action("Hang up", Message::HangUp).style(button::danger)]
                    .spacing(10)
                    .into()
            }
            Kind::Call { answered: true, .. } => {
                let keys = KEYPAD.iter().map(|keys| {
                    row(keys.iter().map(|&key| {
                        button(text(key.to_string()).size(20).width(Fill).align_x(Center))
                            .on_press(Message::Key(key))
                            .width(64)
                            .padding([8, 0])
                            .style(button::secondary)
                            .into()
                    }))
                    .spacing(8)
                    .into()
                });
                column![column(keys).spacing(8), action("Hang up", Message::HangUp).style(button::danger)].spacing(14).into()
            }
        };
        card = card.push(actions);
        if waiting > 0 {
            card = card.push(
                text(format!("{waiting} more request{} waiting", if waiting == 1 { "" } else { "s" })).size(13).style(text::secondary),
            );
        }
        container(container(card.width(Fill).max_width(460)).padding(24).style(style::card)).center(Fill).padding(16).into()
    }
}

/// A code in groups of three, as the accounts list shows codes.
fn spaced(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    chars.chunks(3).map(|group| group.iter().collect::<String>()).collect::<Vec<_>>().join(" ")
}

/// A virtual phone's numbers on the activity page: what the device answers
/// for, the number being typed, and why the last request was refused.
#[derive(Debug, Clone, Default)]
pub struct Numbers {
    pub numbers: Vec<String>,
    pub typed: String,
    pub error: Option<String>,
    /// An attach or detach from here is on its way: its answer is said.
    pub asked: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> Ring {
        let call = PhoneCall {
            v: 1,
            id: "si_1".into(),
            device_id: "dev_1".into(),
            to: "+41446681800".into(),
            extension: String::new(),
            say: "Press the pound key to approve.".into(),
            created_at: 0,
            expires_at: 60,
        };
        Ring::call(Id::for_tests(1), "Contoso (ada)".into(), call, 60)
    }

    #[test]
    fn keys_go_out_when_pound_ends_them_and_only_once_answered() {
        let mut ring = call();
        assert!(matches!(ring.update(Message::Key('#')), Action::None), "not answered yet");
        ring.update(Message::Answer);
        assert!(matches!(ring.update(Message::Key('0')), Action::None));
        assert!(matches!(ring.update(Message::Key('x')), Action::None), "not a key of the pad");
        let Action::Send(PhoneAction::Keys { keys, hang_up: false, .. }) = ring.update(Message::Key('#')) else { panic!("0# goes out") };
        assert_eq!(keys, "0#");
        assert!(ring.busy);
        assert!(matches!(ring.update(Message::HangUp), Action::None), "nothing while one is sent");
        ring.busy = false;
        let Action::Send(PhoneAction::Keys { keys, hang_up: true, .. }) = ring.update(Message::HangUp) else { panic!("hang-up") };
        assert_eq!(keys, "");
    }

    #[test]
    fn a_code_shows_in_groups_of_three() {
        assert_eq!(spaced("123456"), "123 456");
        assert_eq!(spaced("12345678"), "123 456 78");
    }
}
