//! The Add page's review and report steps: what was read, shown before
//! saving (accounts, a work or school activation, a privacyIDEA token, a
//! Google export being collected), and what saving did to each account.

use iced::widget::{Space, button, checkbox, column, container, row, scrollable, text};
use iced::{Center, Element, Fill};

use super::{Add, Candidate, Message, Outcome, Report, Scan};
use crate::account::Method;
use crate::gui::style;
use crate::uri::{self, Payload};

impl Add {
    pub(super) fn review_view<'a>(&'a self, review: &'a [Candidate]) -> Element<'a, Message> {
        let count = self.to_save().len();
        let activation = review.iter().any(|c| matches!(c, Candidate::Activation { .. }));
        let token = review.iter().any(|c| matches!(c, Candidate::PrivacyIdea { .. }));
        let mut list = column![
            text(match count {
                0 if activation => "Check the activation before using it:".to_owned(),
                0 if token => "Check the token before enrolling it:".to_owned(),
                0 => "Nothing here can be added.".to_owned(),
                1 => "Check the account before adding it:".to_owned(),
                n => format!("{n} accounts found. Check them before adding:"),
            })
            .size(15)
        ]
        .spacing(10);
        for candidate in review {
            list = list.push(container(candidate_view(candidate)).padding(14).width(Fill).style(style::card));
        }
        let complete = self.batches.is_complete();
        if !self.batches.is_empty() {
            list = list.push(self.export_view());
        }
        if let Some(error) = &self.error {
            list = list.push(container(text(error.clone()).size(14)).padding(10).width(Fill).style(style::notice(true)));
        }
        if let Some(busy) = self.busy {
            list = list.push(text(busy).size(14));
        }
        let mut save = button(text(if count > 1 { format!("Save {count} accounts") } else { "Save account".to_owned() })).padding([9, 18]);
        if count > 0 && (complete || self.partial_ok) && self.saving.is_none() {
            save = save.on_press(Message::Save);
        }
        list = list.push(
            row![
                button(text("Start over")).on_press(Message::BackToForm).padding([9, 14]).style(button::secondary),
                Space::new().width(Fill),
                save
            ]
            .align_y(Center),
        );
        scrollable(list).into()
    }

    /// The Google Authenticator export part of the review: progress, the
    /// accounts, and while codes are missing, a way to scan them and a
    /// confirmation to go without.
    fn export_view(&self) -> Element<'_, Message> {
        let mut export = column![].spacing(6);
        for progress in self.batches.all_progress() {
            let title = if progress.size == 1 {
                "Google Authenticator export".to_owned()
            } else {
                format!("Google Authenticator export: {progress}")
            };
            export = export.push(text(title).size(17));
        }
        for entry in self.batches.entries() {
            export = export.push(match &entry.account {
                Ok(account) => row![
                    text(entry.title.clone()).size(14).width(Fill),
                    text(format!("{}, {} digits, {}", account.method.kind().to_uppercase(), account.digits, account.algorithm))
                        .size(13)
                        .style(text::secondary)
                ]
                .spacing(8),
                Err(why) => row![
                    text(entry.title.clone()).size(14).width(Fill),
                    text(format!("cannot be added: {why}")).size(13).style(text::danger)
                ]
                .spacing(8),
            });
        }
        for missing in self.batches.missing() {
            export = export
                .push(
                    text(format!("Still to scan: {missing}. Google Authenticator shows them one after another; scan each."))
                        .size(14)
                        .style(text::warning),
                )
                .push(
                    row![
                        button(text("Open image…")).on_press(Message::Scan(Scan::OpenImage)).padding([8, 14]),
                        button(text("Paste image")).on_press(Message::Scan(Scan::PasteImage)).padding([8, 14]).style(button::secondary),
                        button(text("Scan screen")).on_press(Message::Scan(Scan::Screen)).padding([8, 14]).style(button::secondary),
                    ]
                    .spacing(8),
                );
        }
        if !self.batches.is_complete() {
            export = export.push(
                checkbox(self.partial_ok)
                    .label("Add the accounts scanned so far without the missing codes")
                    .on_toggle(Message::PartialConfirmed)
                    .size(16),
            );
        }
        container(export).padding(14).width(Fill).style(style::card).into()
    }
}

pub(super) fn report_view(report: &Report) -> Element<'_, Message> {
    let added = report.added();
    let summary = match (added, report.lines.len()) {
        (0, _) => "Nothing was added.".to_owned(),
        (n, total) if n == total => format!("Added {n} account{}.", if n == 1 { "" } else { "s" }),
        (n, total) => format!("Added {n} of {total} accounts."),
    };
    let mut list = column![text(summary).size(18)].spacing(8);
    for (title, outcome) in &report.lines {
        let (label, style): (String, fn(&iced::Theme) -> text::Style) = match outcome {
            Outcome::Added => ("Added".into(), text::success),
            Outcome::AlreadyThere => ("Already in the vault".into(), text::secondary),
            Outcome::NotAdded(why) => (format!("Not added: {why}"), text::danger),
        };
        list = list.push(row![text(title.clone()).size(14).width(Fill), text(label).size(13).style(style)].spacing(8));
    }
    list = list.push(row![Space::new().width(Fill), button(text("Done")).on_press(Message::Cancel).padding([9, 18])]);
    scrollable(container(list).padding(14).width(Fill).style(style::card)).into()
}

fn field<'a>(label: &'static str, value: String) -> iced::widget::Row<'a, Message> {
    row![text(label).size(13).width(90).style(text::secondary), text(value).size(14)].spacing(8)
}

fn candidate_view(candidate: &Candidate) -> Element<'_, Message> {
    match candidate {
        Candidate::Account { account, warnings } => {
            let (kind, timing) = match account.method {
                Method::Totp { period } => ("TOTP", format!("new code every {period} s")),
                Method::Hotp { counter } => ("HOTP", format!("counter {counter}")),
                Method::Steam => ("Steam Guard", "new code every 30 s".to_owned()),
            };
            let mut fields = column![
                field("Issuer", if account.issuer.is_empty() { "(none)".into() } else { account.issuer.clone() }),
                field("Account", account.name.clone()),
                field("Type", format!("{kind}, {timing}")),
                field("Code", format!("{} digits, {}", account.digits, account.algorithm)),
            ]
            .spacing(4);
            for warning in warnings {
                fields = fields.push(text(format!("Note: {warning}")).size(13).style(text::warning));
            }
            fields.into()
        }
        Candidate::Activation { code, url } => column![
            text("A work or school account activation").size(15),
            field("Code", code.clone()),
            field("URL", url.clone()),
            text("Activating lets this computer show the account's codes and approve your organisation's sign-ins.").size(13).style(text::secondary),
            button(text("Activate")).on_press(Message::Activate(code.clone(), url.clone())).padding([8, 16]),
        ]
        .spacing(4)
        .into(),
        Candidate::PrivacyIdea { enrollment, .. } => column![
            text("A privacyIDEA push token").size(15),
            field("Issuer", enrollment.issuer.clone()),
            field("Serial", enrollment.serial.clone()),
            field("Server", enrollment.url.clone()),
            text(format!(
                "Enrolling makes a key on this computer, which then approves this token's sign-ins{}. The link works for {} minutes.",
                if enrollment.pin { " after your vault password" } else { "" },
                enrollment.ttl_minutes
            ))
            .size(13)
            .style(text::secondary),
            text(if enrollment.url.starts_with("http://") {
                "Warning: this server is reached without encryption (http://). Someone on the network could take over this token. Enroll only on a network you trust."
            } else if !enrollment.sslverify {
                "Warning: the link turns off certificate checks (sslverify=0). Someone on the network could take over this token. Enroll only on a network you trust."
            } else {
                ""
            })
            .size(13)
            .style(text::warning),
            button(text("Enroll")).on_press(Message::Enroll(enrollment.serial.clone())).padding([8, 16]),
        ]
        .spacing(4)
        .into(),
        Candidate::Unsupported { what, why } => column![text(what.clone()).size(15), text(why.clone()).size(13).style(text::secondary)].spacing(4).into(),
        Candidate::Invalid { error } => column![text("A QR code that is not an account").size(15), text(error.clone()).size(13).style(text::danger)].spacing(4).into(),
    }
}

/// What a scanned or pasted text read at `now` (Unix seconds) is, for review.
pub fn candidate(text: &str, now: u64) -> Candidate {
    match uri::parse(text) {
        Ok(Payload::Account { account, warnings }) => {
            Candidate::Account { account, warnings: warnings.iter().map(ToString::to_string).collect() }
        }
        Ok(Payload::WorkActivation { code, url }) => Candidate::Activation { code, url },
        Ok(Payload::PrivacyIdeaPush { label, parameters }) => match crate::privacyidea::Enrollment::from_link(&label, &parameters) {
            Ok(enrollment) => Candidate::PrivacyIdea { enrollment, read_at: now as i64 },
            Err(error) => Candidate::Unsupported { what: "This is a privacyIDEA push token enrollment.".into(), why: error.to_string() },
        },
        Ok(other) => Candidate::Unsupported { what: format!("This is {}.", other.describe()), why: String::new() },
        Err(error) => Candidate::Invalid { error: error.to_string() },
    }
}
