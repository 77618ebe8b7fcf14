//! A new password typed twice: the pair of fields that onboarding, the
//! vault protection in preferences and an encrypted export share. What is
//! typed lives in `Zeroizing` strings, wiped when replaced or cleared.

use iced::Element;
use iced::widget::text_input;
use zeroize::Zeroizing;

use super::Sensitive;
use crate::secret::Password;

/// The two fields' text.
#[derive(Debug, Default)]
pub struct NewPassword {
    password: Sensitive<Zeroizing<String>>,
    confirm: Sensitive<Zeroizing<String>>,
}

#[derive(Debug, Clone)]
pub enum Message {
    PasswordChanged(Sensitive<String>),
    ConfirmChanged(Sensitive<String>),
    /// Enter in either field.
    Submitted,
}

/// Why the typed pair is not a password yet; shown inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("Choose a password.")]
    Empty,
    #[error("The two passwords differ.")]
    Differ,
}

/// What a field change means to the screen holding the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The text changed: an inline error about it is stale.
    Edited,
    /// Enter was pressed: the screen goes on as its button would.
    Submitted,
}

impl NewPassword {
    pub fn update(&mut self, message: Message) -> Event {
        match message {
            Message::PasswordChanged(Sensitive(password)) => {
                self.password = Sensitive(Zeroizing::new(password));
                Event::Edited
            }
            Message::ConfirmChanged(Sensitive(confirm)) => {
                self.confirm = Sensitive(Zeroizing::new(confirm));
                Event::Edited
            }
            Message::Submitted => Event::Submitted,
        }
    }

    /// The chosen password, or why there is none. The fields stay as typed.
    pub fn chosen(&self) -> Result<Password, Problem> {
        let (password, confirm) = (self.password.0.as_str(), self.confirm.0.as_str());
        if password.is_empty() {
            return Err(Problem::Empty);
        }
        if password != confirm {
            return Err(Problem::Differ);
        }
        Ok(Password::new(password.to_owned()))
    }

    /// Wipes both fields.
    pub fn clear(&mut self) {
        *self = NewPassword::default();
    }

    /// The two secure fields, for the screen to lay out; Enter in either
    /// submits. `editable` is false while the screen is busy.
    pub fn fields(&self, labels: [&'static str; 2], padding: u16, editable: bool) -> [Element<'_, Message>; 2] {
        let field = |label: &'static str, value: &str, on_input: fn(String) -> Message| {
            let input = text_input(label, value).secure(true).padding(padding);
            if editable { input.on_input(on_input).on_submit(Message::Submitted) } else { input }.into()
        };
        [
            field(labels[0], &self.password.0, |p| Message::PasswordChanged(Sensitive(p))),
            field(labels[1], &self.confirm.0, |p| Message::ConfirmChanged(Sensitive(p))),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(password: &str, confirm: &str) -> NewPassword {
        let mut pair = NewPassword::default();
        assert_eq!(pair.update(Message::PasswordChanged(Sensitive(password.into()))), Event::Edited);
        assert_eq!(pair.update(Message::ConfirmChanged(Sensitive(confirm.into()))), Event::Edited);
        pair
    }

    #[test]
    fn empty_and_differing_pairs_say_why() {
        assert_eq!(typed("", "").chosen().unwrap_err(), Problem::Empty);
        assert_eq!(typed("one", "two").chosen().unwrap_err(), Problem::Differ);
        assert_eq!(typed("one", "two").chosen().unwrap_err().to_string(), "The two passwords differ.");
    }

    #[test]
    fn a_matching_pair_is_the_password_until_cleared() {
        let mut pair = typed("correct horse", "correct horse");
        assert_eq!(pair.chosen().unwrap().as_bytes(), b"correct horse");
        assert_eq!(pair.update(Message::Submitted), Event::Submitted);
        pair.clear();
        assert_eq!(pair.chosen().unwrap_err(), Problem::Empty);
    }

    #[test]
    fn debug_shows_no_typed_text() {
        let pair = typed("hunter2", "hunter2");
        assert!(!format!("{pair:?}").contains("hunter2"));
        assert!(!format!("{:?}", Message::PasswordChanged(Sensitive("hunter2".into()))).contains("hunter2"));
    }
}
