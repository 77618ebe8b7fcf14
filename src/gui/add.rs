//! Adding accounts, as Microsoft Authenticator does it: "Work or school" or
//! "Other account"; scan a QR code (image file, dropped file, pasted image,
//! the screen) or type the fields; then check what was read before saving,
//! and see what happened to each account afterwards.
//!
//! A Google Authenticator export may span several QR codes: the review page
//! keeps scanning until all are in ("2 of 3 scanned"), and adds a partial
//! export only when the user confirms it.

use std::path::PathBuf;

use iced::widget::{Space, button, column, container, pick_list, row, rule, scrollable, text, text_input};
use iced::{Center, Element, Fill, Task};

mod form;
mod review;

pub use form::{Form, FormError, OtpType};
pub use review::candidate;
use review::report_view;

use super::jobs::{self, Added};
use super::{Sensitive, blocking, style};
use crate::account::{Account, Algorithm};
use crate::migration::{self, Batches};
use crate::scan;
use crate::uri::{self, Payload};
use crate::vault::Imported;

pub const NAME_ID: &str = "add-name";
pub const SECRET_ID: &str = "add-secret";
pub const ISSUER_ID: &str = "add-issuer";
pub const URI_ID: &str = "add-uri";
pub const CODE_ID: &str = "add-code";
pub const URL_ID: &str = "add-url";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    WorkOrSchool,
    #[default]
    Other,
}

/// Something read from a QR code or a form, shown for review before saving.
#[derive(Debug, Clone)]
pub enum Candidate {
    Account {
        account: Account,
        warnings: Vec<String>,
    },
    /// A work or school activation: a Code and a URL, activated on "Activate".
    Activation {
        code: String,
        url: String,
    },
    /// A privacyIDEA PUSH token, enrolled on "Enroll"; `read_at` starts its TTL.
    PrivacyIdea {
        enrollment: crate::privacyidea::Enrollment,
        read_at: i64,
    },
    /// A payload that is not a plain account; said plainly, never silently dropped.
    Unsupported {
        what: String,
        why: String,
    },
    /// A QR code whose text is no enrollment payload.
    Invalid {
        error: String,
    },
}

#[derive(Debug, Default)]
pub struct Add {
    pub kind: Kind,
    /// What is typed in the fields.
    pub form: Form,
    pub busy: Option<&'static str>,
    pub error: Option<String>,
    /// `Some` once something was read: the review step.
    pub review: Option<Vec<Candidate>>,
    /// Google Authenticator export codes scanned so far.
    pub batches: Batches,
    /// The user agreed to add an export with codes missing.
    pub partial_ok: bool,
    /// Titles of the accounts being saved, in order.
    pub saving: Option<Vec<String>>,
    /// What happened to each account: the last step.
    pub report: Option<Report>,
}

/// What saving did, account by account.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub lines: Vec<(String, Outcome)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Added,
    AlreadyThere,
    NotAdded(String),
}

impl Report {
    pub fn added(&self) -> usize {
        self.lines.iter().filter(|(_, o)| *o == Outcome::Added).count()
    }
}

#[derive(Debug, Clone)]
pub enum Message {
    KindSelected(Kind),
    /// Reading a QR code from an image, the clipboard or the screen.
    Scan(Scan),
    Form(form::Message),
    ReviewManual,
    ReviewUri,
    PartialConfirmed(bool),
    Save,
    /// The vault's answer to a save: per account, added or already there.
    Imported(Result<Vec<Imported>, jobs::Error>),
    BackToForm,
    Cancel,
    /// Activate with this Code and URL.
    Activate(String, String),
    /// The activation's outcome: the account added, or why it failed.
    Activated(Result<Added, jobs::Error>),
    /// Enroll the privacyIDEA token with this serial from the review.
    Enroll(String),
    /// The enrollment's outcome: the token added, or why it failed.
    Enrolled(Result<Added, jobs::Error>),
}

/// Where a QR code is read from, and what was read.
#[derive(Debug, Clone)]
pub enum Scan {
    OpenImage,
    ImagePicked(Option<PathBuf>),
    PasteImage,
    Screen,
    /// The payloads found, or why none could be.
    Read(Result<Sensitive<Vec<String>>, jobs::Error>),
}

pub enum Action {
    None,
    Run(Task<Message>),
    /// Import these accounts (duplicates are skipped) and answer with
    /// `Imported`; the root reloads the list either way.
    Save(Vec<Account>),
    /// Saved one account and nothing else to report: back to the list with this toast.
    Finished(String),
    /// Activate a work or school account, then answer with `Activated`.
    Activate {
        code: String,
        url: String,
    },
    /// Enroll a privacyIDEA token, then answer with `Enrolled`.
    Enroll {
        enrollment: crate::privacyidea::Enrollment,
        read_at: i64,
    },
    Cancel,
}

impl Add {
    pub fn new() -> (Self, Task<Message>) {
        (Add::default(), iced::widget::operation::focus(NAME_ID))
    }

    /// Scans an image file dropped on the window.
    pub fn scan_file(&mut self, path: PathBuf) -> Task<Message> {
        self.kind = Kind::Other;
        self.busy = Some("Reading the image…");
        self.error = None;
        Task::perform(blocking(move || scan::file(&path).map(Sensitive).map_err(jobs::Error::from)), |read| Message::Scan(Scan::Read(read)))
    }

    /// Reads the clipboard: an image is scanned, text is read as a link.
    pub fn paste(&mut self) -> Task<Message> {
        self.kind = Kind::Other;
        self.busy = Some("Reading the clipboard…");
        self.error = None;
        Task::perform(blocking(|| read_clipboard().map(Sensitive)), |read| Message::Scan(Scan::Read(read)))
    }

    /// Handles `message` at Unix time `now` (a privacyIDEA link's time to live starts when it is read).
    pub fn update(&mut self, message: Message, now: u64) -> Action {
        match message {
            Message::KindSelected(kind) => {
                self.kind = kind;
                Action::None
            }
            Message::Scan(scan) => self.scan(scan, now),
            Message::Form(message) => {
                if self.form.update(message) == form::Event::Edited {
                    self.error = None;
                }
                Action::None
            }
            Message::ReviewManual => {
                match self.form.account() {
                    Ok(account) => self.review = Some(vec![Candidate::Account { account, warnings: Vec::new() }]),
                    Err(error) => self.error = Some(error.to_string()),
                }
                Action::None
            }
            Message::ReviewUri => {
                if self.form.uri.0.trim().is_empty() {
                    self.error = Some("Paste an otpauth:// link first.".into());
                } else {
                    let uri = self.form.uri.0.trim().to_owned();
                    self.take(&[uri], now);
                }
                Action::None
            }
            Message::PartialConfirmed(ok) => {
                self.partial_ok = ok;
                Action::None
            }
            Message::Save => {
                if !self.batches.is_complete() && !self.partial_ok {
                    return Action::None;
                }
                let accounts = self.to_save();
                if accounts.is_empty() {
                    return Action::None;
                }
                self.saving = Some(accounts.iter().map(Account::title).collect());
                self.busy = Some("Saving…");
                Action::Save(accounts)
            }
            Message::Imported(result) => {
                self.busy = None;
                let titles = self.saving.take().unwrap_or_default();
                let outcomes = match result {
                    Ok(outcomes) => outcomes,
                    Err(error) => {
                        self.error = Some(format!("Nothing was saved: {error}"));
                        return Action::None;
                    }
                };
                let mut report = Report::default();
                for (title, outcome) in titles.into_iter().zip(outcomes) {
                    report.lines.push((title, if matches!(outcome, Imported::Added(_)) { Outcome::Added } else { Outcome::AlreadyThere }));
                }
                for entry in self.batches.entries() {
                    if let Err(why) = &entry.account {
                        report.lines.push((entry.title.clone(), Outcome::NotAdded(why.to_string())));
                    }
                }
                if report.lines.len() == 1 && report.added() == 1 {
                    return Action::Finished("Account added".into());
                }
                self.report = Some(report);
                Action::None
            }
            Message::BackToForm => {
                self.review = None;
                self.batches = Batches::default();
                self.partial_ok = false;
                self.error = None;
                Action::None
            }
            Message::Cancel => Action::Cancel,
            Message::Activate(code, url) => {
                let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
                let url = url.trim().to_owned();
                if code.is_empty() || url.is_empty() {
                    self.error = Some("Enter both the Code and the URL shown under the QR code.".into());
                    return Action::None;
                }
                if self.busy.is_some() {
                    return Action::None;
                }
                self.busy = Some("Activating…");
                self.error = None;
                Action::Activate { code, url }
            }
            Message::Activated(Ok(added)) => {
                self.busy = None;
                Action::Finished(format!("Activated {added}: it shows codes and receives sign-in requests"))
            }
            Message::Activated(Err(error)) => {
                self.busy = None;
                self.review = None;
                self.kind = Kind::WorkOrSchool;
                self.error = Some(format!("Not activated: {error}"));
                Action::None
            }
            Message::Enroll(serial) => {
                let found = self.review.iter().flatten().find_map(|candidate| match candidate {
                    Candidate::PrivacyIdea { enrollment, read_at } if enrollment.serial == serial => Some((enrollment.clone(), *read_at)),
                    _ => None,
                });
                match found {
                    Some((enrollment, read_at)) if self.busy.is_none() => {
                        self.busy = Some("Making a key and enrolling… (a few seconds)");
                        self.error = None;
                        Action::Enroll { enrollment, read_at }
                    }
                    _ => Action::None,
                }
            }
            Message::Enrolled(Ok(added)) => {
                self.busy = None;
                Action::Finished(format!("Enrolled {added}: it receives sign-in requests"))
            }
            Message::Enrolled(Err(error)) => {
                self.busy = None;
                self.error = Some(format!("Not enrolled: {error}"));
                Action::None
            }
        }
    }

    /// The scanning job: a source chosen, then what it read.
    fn scan(&mut self, scan: Scan, now: u64) -> Action {
        match scan {
            Scan::OpenImage => {
                self.busy = Some("Choose an image…");
                let dialog = rfd::AsyncFileDialog::new()
                    .set_title("Open a QR code image")
                    .add_filter("Images", &["png", "jpg", "jpeg", "webp", "bmp", "gif"]);
                Action::Run(Task::perform(async move { dialog.pick_file().await.map(|f| f.path().to_owned()) }, |picked| {
                    Message::Scan(Scan::ImagePicked(picked))
                }))
            }
            Scan::ImagePicked(None) => {
                self.busy = None;
                // rfd reports a cancelled dialog and a missing one the same way.
                self.error = Some("No image was chosen. If no file dialog appeared, this desktop has no file chooser portal (xdg-desktop-portal) or zenity: drop the image file onto this window instead.".into());
                Action::None
            }
            Scan::ImagePicked(Some(path)) => Action::Run(self.scan_file(path)),
            Scan::PasteImage => Action::Run(self.paste()),
            Scan::Screen => {
                self.busy = Some("Looking for QR codes on the screen…");
                self.error = None;
                Action::Run(Task::perform(async { crate::screen::scan().await.map(Sensitive).map_err(jobs::Error::from) }, |read| {
                    Message::Scan(Scan::Read(read))
                }))
            }
            Scan::Read(result) => {
                self.busy = None;
                match result {
                    Ok(Sensitive(payloads)) if payloads.is_empty() => {
                        self.error = Some("No QR code was found. Make sure the whole code is visible (or try a sharper, larger picture), or enter the key by hand.".into());
                    }
                    Ok(Sensitive(payloads)) => self.take(&payloads, now),
                    Err(error) => self.error = Some(error.to_string()),
                }
                Action::None
            }
        }
    }

    /// Adds scanned or pasted payloads to the review: export codes join
    /// their batch, anything else becomes a candidate (once).
    fn take(&mut self, payloads: &[String], now: u64) {
        self.error = None;
        if self.report.take().is_some() {
            // A scan after a finished save starts a new review.
            self.review = None;
            self.batches = Batches::default();
            self.partial_ok = false;
        }
        let review = self.review.get_or_insert_with(Vec::new);
        for payload in payloads {
            let found = match uri::parse(payload) {
                Ok(Payload::GoogleExport { data }) => match migration::decode(&data).and_then(|export| self.batches.add(export)) {
                    Ok(_) => continue,
                    Err(error) => Candidate::Invalid { error: format!("Google Authenticator export: {error}") },
                },
                _ => candidate(payload, now),
            };
            let seen = review.iter().any(|c| match (c, &found) {
                (Candidate::Account { account: a, .. }, Candidate::Account { account: b, .. }) => a == b,
                _ => false,
            });
            if !seen {
                review.push(found);
            }
        }
    }

    /// Every account the review would save: candidates, then export entries.
    fn to_save(&self) -> Vec<Account> {
        let candidates = self.review.iter().flatten().filter_map(|c| match c {
            Candidate::Account { account, .. } => Some(account.clone()),
            Candidate::Activation { .. } | Candidate::PrivacyIdea { .. } | Candidate::Unsupported { .. } | Candidate::Invalid { .. } => {
                None
            }
        });
        candidates.chain(self.batches.entries().filter_map(|e| e.account.as_ref().ok().cloned())).collect()
    }

    pub fn view(&self) -> Element<'_, Message> {
        let header =
            row![button(text("← Back")).on_press(Message::Cancel).padding([8, 12]).style(button::secondary), text("Add account").size(22),]
                .spacing(14)
                .align_y(Center);
        if let Some(report) = &self.report {
            return column![header, report_view(report)].spacing(16).padding(16).into();
        }
        if let Some(review) = &self.review {
            return column![header, self.review_view(review)].spacing(16).padding(16).into();
        }
        let choice = |label: &'static str, kind: Kind| {
            let style = if self.kind == kind { button::primary } else { button::secondary };
            button(text(label).width(Fill).align_x(Center)).on_press(Message::KindSelected(kind)).padding(10).width(Fill).style(style)
        };
        let tabs =
            row![choice("Work or school account", Kind::WorkOrSchool), choice("Other account (Google, GitHub, …)", Kind::Other)].spacing(8);
        let body: Element<'_, Message> = match self.kind {
            Kind::WorkOrSchool => self.work_view(),
            Kind::Other => self.other_view(),
        };
        let mut page = column![header, tabs, body].spacing(16).padding(16);
        if let Some(busy) = self.busy {
            page = page.push(text(busy).size(14));
        }
        scrollable(page).into()
    }

    /// Work or school: scan the activation QR code, or type its Code and URL.
    fn work_view(&self) -> Element<'_, Message> {
        let mut manual = column![
            text("Or enter the Code and URL shown under the QR code").size(18),
            text_input("Code (e.g. 123 456 789)", &self.form.code)
                .id(CODE_ID)
                .on_input(|c| Message::Form(form::Message::CodeChanged(c)))
                .padding(9),
            text_input("URL (e.g. https://mfa.example.com/…)", &self.form.url)
                .id(URL_ID)
                .on_input(|u| Message::Form(form::Message::UrlChanged(u)))
                .on_submit(Message::Activate(self.form.code.clone(), self.form.url.clone()))
                .padding(9),
        ]
        .spacing(8);
        if self.busy.is_none() {
            manual = manual.push(row![
                Space::new().width(Fill),
                button(text("Activate")).on_press(Message::Activate(self.form.code.clone(), self.form.url.clone())).padding([8, 16])
            ]);
        }
        let mut content = column![
            text("Your organisation's \"Configure mobile app\" page shows a QR code with a Code and a URL under it. Activating lets this computer show the account's codes and approve sign-ins.").size(14),
            self.scan_row(),
            rule::horizontal(1),
            manual,
        ]
        .spacing(16);
        if let Some(error) = &self.error {
            content = content.push(container(text(error.clone()).size(14)).padding(10).width(Fill).style(style::notice(true)));
        }
        content.into()
    }

    fn scan_row(&self) -> Element<'_, Message> {
        column![
            text("Scan a QR code").size(18),
            row![
                button(text("Open image…")).on_press(Message::Scan(Scan::OpenImage)).padding([8, 14]),
                button(text("Paste image (Ctrl+V)")).on_press(Message::Scan(Scan::PasteImage)).padding([8, 14]).style(button::secondary),
                button(text("Scan screen")).on_press(Message::Scan(Scan::Screen)).padding([8, 14]).style(button::secondary),
            ]
            .spacing(8),
            text("Scan screen finds a QR code shown anywhere on your screen, such as the enrollment page in your browser. You can also drop an image file onto this window.").size(13).style(text::secondary),
        ]
        .spacing(8)
        .into()
    }

    fn other_view(&self) -> Element<'_, Message> {
        let scan = self.scan_row();

        let mut manual = column![
            text("Enter a setup key").size(18),
            text_input("Account name (e.g. alice@example.com)", &self.form.name)
                .id(NAME_ID)
                .on_input(|n| Message::Form(form::Message::NameChanged(n)))
                .on_submit(Message::ReviewManual)
                .padding(9),
            text_input("Secret key (e.g. JBSW Y3DP EHPK 3PXP)", &self.form.secret.0)
                .id(SECRET_ID)
                .on_input(|s| Message::Form(form::Message::SecretChanged(Sensitive(s))))
                .on_submit(Message::ReviewManual)
                .padding(9),
            text_input("Issuer (optional, e.g. GitHub)", &self.form.issuer)
                .id(ISSUER_ID)
                .on_input(|i| Message::Form(form::Message::IssuerChanged(i)))
                .on_submit(Message::ReviewManual)
                .padding(9),
        ]
        .spacing(8);
        if self.form.advanced {
            let numeric = self.form.otp_type != OtpType::Steam;
            let mut advanced = row![
                pick_list([OtpType::Totp, OtpType::Hotp, OtpType::Steam], Some(self.form.otp_type), |t| Message::Form(
                    form::Message::TypeSelected(t)
                ))
                .padding(8)
            ]
            .spacing(8)
            .align_y(Center);
            if numeric {
                advanced = advanced
                    .push(
                        pick_list(
                            [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512],
                            Some(self.form.algorithm.unwrap_or(Algorithm::Sha1)),
                            |a| Message::Form(form::Message::AlgorithmSelected(a)),
                        )
                        .padding(8),
                    )
                    .push(
                        pick_list([6u8, 7, 8], Some(self.form.digits.unwrap_or(6)), |d| Message::Form(form::Message::DigitsSelected(d)))
                            .padding(8),
                    )
                    .push(text("digits").size(14));
            }
            advanced = match self.form.otp_type {
                OtpType::Totp => advanced
                    .push(
                        text_input("30", &self.form.period)
                            .on_input(|p| Message::Form(form::Message::PeriodChanged(p)))
                            .width(70)
                            .padding(8),
                    )
                    .push(text("seconds").size(14)),
                OtpType::Hotp => advanced
                    .push(
                        text_input("0", &self.form.counter)
                            .on_input(|c| Message::Form(form::Message::CounterChanged(c)))
                            .width(90)
                            .padding(8),
                    )
                    .push(text("counter").size(14)),
                OtpType::Steam => advanced,
            };
            manual = manual.push(advanced);
        }
        manual = manual.push(
            row![
                button(text(if self.form.advanced { "Hide advanced" } else { "Advanced…" }))
                    .on_press(Message::Form(form::Message::ToggleAdvanced))
                    .padding([8, 12])
                    .style(button::text),
                Space::new().width(Fill),
                button(text("Review")).on_press(Message::ReviewManual).padding([8, 16]),
            ]
            .align_y(Center),
        );

        let link = column![
            text("Or paste an otpauth:// link").size(18),
            row![
                text_input("otpauth://totp/…", &self.form.uri.0)
                    .id(URI_ID)
                    .on_input(|s| Message::Form(form::Message::UriChanged(Sensitive(s))))
                    .on_submit(Message::ReviewUri)
                    .padding(9),
                button(text("Review")).on_press(Message::ReviewUri).padding([8, 16]),
            ]
            .spacing(8),
        ]
        .spacing(8);

        let mut content = column![scan, rule::horizontal(1), manual, rule::horizontal(1), link].spacing(16);
        if let Some(error) = &self.error {
            content = content.push(container(text(error.clone()).size(14)).padding(10).width(Fill).style(style::notice(true)));
        }
        content.into()
    }
}

/// The clipboard's image (scanned) or text (read as a link), as payloads.
fn read_clipboard() -> Result<Vec<String>, jobs::Error> {
    let mut clipboard = arboard::Clipboard::new().map_err(|e| jobs::Error::Clipboard(e.to_string()))?;
    if let Ok(image) = clipboard.get_image() {
        return Ok(scan::rgba(image.width as u32, image.height as u32, image.bytes.into_owned())?);
    }
    match clipboard.get_text() {
        Ok(text) if !text.trim().is_empty() => Ok(vec![text.trim().to_owned()]),
        _ => Err(jobs::Error::ClipboardEmpty),
    }
}
