//! The Add page's fields: "account name + secret key" (with the advanced
//! type, algorithm, digits, period and counter), an otpauth link, and a work
//! or school Code and URL; and turning the typed account into an `Account`.

use zeroize::Zeroizing;

use super::super::Sensitive;
use crate::account::{Account, Algorithm, DEFAULT_PERIOD, Method, STEAM_DIGITS};
use crate::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OtpType {
    #[default]
    Totp,
    Hotp,
    Steam,
}

impl std::fmt::Display for OtpType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OtpType::Totp => "Time-based (TOTP)",
            OtpType::Hotp => "Counter-based (HOTP)",
            OtpType::Steam => "Steam Guard",
        })
    }
}

/// What is typed on the Add page. The secret key and the link may hold a
/// secret: they are wiped when replaced or dropped, and `Debug` hides them.
#[derive(Debug, Default)]
pub struct Form {
    pub name: String,
    pub secret: Sensitive<Zeroizing<String>>,
    pub issuer: String,
    pub otp_type: OtpType,
    pub algorithm: Option<Algorithm>,
    pub digits: Option<u8>,
    pub period: String,
    pub counter: String,
    pub advanced: bool,
    pub uri: Sensitive<Zeroizing<String>>,
    /// Work or school: the Code and URL typed in.
    pub code: String,
    pub url: String,
}

#[derive(Debug, Clone)]
pub enum Message {
    NameChanged(String),
    SecretChanged(Sensitive<String>),
    IssuerChanged(String),
    TypeSelected(OtpType),
    AlgorithmSelected(Algorithm),
    DigitsSelected(u8),
    PeriodChanged(String),
    CounterChanged(String),
    ToggleAdvanced,
    UriChanged(Sensitive<String>),
    CodeChanged(String),
    UrlChanged(String),
}

/// Whether a message changed what would be saved (an inline error about
/// the old text is then stale) or only what is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Edited,
    Shown,
}

/// Why the manual form is not an account yet, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("Enter the account name.")]
    NoName,
    #[error("Enter the secret key.")]
    NoSecret,
    #[error("The secret key is not valid: {0}.")]
    Secret(crate::secret::Error),
    #[error("The period must be a whole number of seconds.")]
    Period,
    #[error("The counter must be a whole number.")]
    Counter,
    /// The account's own check, as a sentence.
    #[error("{}", sentence(.0))]
    Account(crate::account::Error),
}

/// "digits must be 6 to 8" as "Digits must be 6 to 8.".
fn sentence(error: &crate::account::Error) -> String {
    let text = error.to_string();
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str() + ".").unwrap_or_default()
}

impl Form {
    pub fn update(&mut self, message: Message) -> Event {
        match message {
            Message::NameChanged(name) => self.name = name,
            Message::SecretChanged(Sensitive(secret)) => self.secret = Sensitive(Zeroizing::new(secret)),
            Message::IssuerChanged(issuer) => self.issuer = issuer,
            Message::TypeSelected(otp_type) => self.otp_type = otp_type,
            Message::AlgorithmSelected(algorithm) => self.algorithm = Some(algorithm),
            Message::DigitsSelected(digits) => self.digits = Some(digits),
            Message::PeriodChanged(period) => self.period = period,
            Message::CounterChanged(counter) => self.counter = counter,
            Message::UriChanged(Sensitive(uri)) => self.uri = Sensitive(Zeroizing::new(uri)),
            Message::CodeChanged(code) => self.code = code,
            Message::UrlChanged(url) => self.url = url,
            Message::ToggleAdvanced => {
                self.advanced = !self.advanced;
                return Event::Shown;
            }
        }
        Event::Edited
    }

    /// The account described by the manual form, or an error naming the field.
    pub fn account(&self) -> Result<Account, FormError> {
        if self.name.trim().is_empty() {
            return Err(FormError::NoName);
        }
        if self.secret.0.trim().is_empty() {
            return Err(FormError::NoSecret);
        }
        let (secret, _) = Secret::from_base32(&self.secret.0).map_err(FormError::Secret)?;
        let method = match self.otp_type {
            OtpType::Totp => {
                let period = if self.period.trim().is_empty() {
                    DEFAULT_PERIOD
                } else {
                    self.period.trim().parse().map_err(|_| FormError::Period)?
                };
                Method::Totp { period }
            }
            OtpType::Hotp => Method::Hotp {
                counter: if self.counter.trim().is_empty() { 0 } else { self.counter.trim().parse().map_err(|_| FormError::Counter)? },
            },
            OtpType::Steam => Method::Steam,
        };
        let mut account = Account::totp(&self.issuer, &self.name, secret);
        account.method = method;
        if method == Method::Steam {
            account.digits = STEAM_DIGITS;
        } else {
            account.algorithm = self.algorithm.unwrap_or(Algorithm::Sha1);
            account.digits = self.digits.unwrap_or(6);
        }
        account.validate().map_err(FormError::Account)?;
        Ok(account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(name: &str, secret: &str) -> Form {
        let mut form = Form::default();
        assert_eq!(form.update(Message::NameChanged(name.into())), Event::Edited);
        assert_eq!(form.update(Message::SecretChanged(Sensitive(secret.into()))), Event::Edited);
        form
    }

    #[test]
    fn each_missing_or_bad_field_is_named() {
        assert_eq!(form("", "JBSWY3DPEHPK3PXP").account().unwrap_err(), FormError::NoName);
        assert_eq!(form("alice", " ").account().unwrap_err(), FormError::NoSecret);
        assert!(matches!(form("alice", "not base32!").account().unwrap_err(), FormError::Secret(_)));
        let mut bad_period = form("alice", "JBSWY3DPEHPK3PXP");
        bad_period.update(Message::PeriodChanged("half a minute".into()));
        assert_eq!(bad_period.account().unwrap_err().to_string(), "The period must be a whole number of seconds.");
        let mut bad_counter = form("alice", "JBSWY3DPEHPK3PXP");
        bad_counter.update(Message::TypeSelected(OtpType::Hotp));
        bad_counter.update(Message::CounterChanged("-1".into()));
        assert_eq!(bad_counter.account().unwrap_err(), FormError::Counter);
    }

    #[test]
    fn a_complete_form_is_the_account_it_describes() {
        let mut typed = form("alice", "jbsw y3dp ehpk 3pxp");
        typed.update(Message::IssuerChanged("GitHub".into()));
        assert_eq!(typed.update(Message::ToggleAdvanced), Event::Shown, "showing the advanced fields changes nothing typed");
        typed.update(Message::AlgorithmSelected(Algorithm::Sha256));
        typed.update(Message::DigitsSelected(8));
        typed.update(Message::PeriodChanged("60".into()));
        let account = typed.account().unwrap();
        assert_eq!((account.issuer.as_str(), account.name.as_str()), ("GitHub", "alice"));
        assert_eq!((account.algorithm, account.digits, account.method), (Algorithm::Sha256, 8, Method::Totp { period: 60 }));
        let mut steam = form("alice", "JBSWY3DPEHPK3PXP");
        steam.update(Message::TypeSelected(OtpType::Steam));
        assert_eq!(steam.account().unwrap().digits, STEAM_DIGITS);
    }

    #[test]
    fn debug_shows_no_secret() {
        let mut typed = form("alice", "JBSWY3DPEHPK3PXP");
        typed.update(Message::UriChanged(Sensitive("otpauth://totp/x?secret=GEZDGNBVGY3TQOJQ".into())));
        let shown = format!("{typed:?} {:?}", Message::SecretChanged(Sensitive("JBSWY3DPEHPK3PXP".into())));
        assert!(!shown.contains("JBSW") && !shown.contains("GEZD"), "{shown}");
        assert!(shown.contains("alice"));
    }
}
