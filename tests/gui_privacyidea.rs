//! privacyIDEA PUSH tokens in the window: the link pasted on the Add page,
//! the token on the activity page with its connection, a presence-mode
//! request answered by tapping the option the sign-in page shows, a request
//! closed on the server, and removing the token. The protocol itself runs
//! against a real privacyIDEA in tests/privacyidea/run; here the window gets
//! the updates its subscription would deliver.

#![cfg(feature = "gui")]

mod harness;

use countersign::gui::{Message, Page, Screen, add};
use countersign::privacyidea::{DeviceKey, Token};
use countersign::push::client::{Answer, Event, Update};
use countersign::push::{Challenge, Decision};
use countersign::secret::Password;
use countersign::vault::{Id, Locked};
use harness::{Harness, PASSWORD};

const LINK: &str = "otpauth://pipush/PIPU00008DB7?url=http%3A//127.0.0.1%3A9/ttype/push&ttl=10&issuer=privacyIDEA&enrollment_credential=fbf7ce5700da75da5d6a2b54e658d8d9fa22499e&v=1&serial=PIPU00008DB7&sslverify=0&poll_only=True";

/// Puts a token in the window's vault, as its enrollment does.
fn enroll(harness: &mut Harness) -> Id {
    let Screen::Unlocked(unlocked) = &harness.app.screen else { panic!("not unlocked") };
    let key = DeviceKey::generate_bits(2048).unwrap();
    let token = Token {
        serial: "PIPU0001".into(),
        label: "alice".into(),
        issuer: "privacyIDEA".into(),
        url: "http://127.0.0.1:9/ttype/push".into(),
        sslverify: false,
        pin: false,
        key,
        server_key: vec![],
    };
    let id = unlocked.vault.lock().unwrap().add_push_token(token, harness::T).unwrap();
    // The window lists it on its next refresh.
    harness.send(Message::Tick(harness::T));
    id
}

/// The Add page's error line.
fn add_error(harness: &Harness) -> String {
    match &harness.app.screen {
        Screen::Unlocked(unlocked) => match &unlocked.page {
            Page::Add(add) => add.error.clone().unwrap_or_default(),
            _ => panic!("not on the Add page"),
        },
        _ => panic!("not unlocked"),
    }
}

fn challenge(id: &str, presence: &[&str]) -> Challenge {
    Challenge {
        v: 1,
        id: id.into(),
        device_id: "PIPU0001".into(),
        organization: "privacyIDEA".into(),
        user: "alice".into(),
        app: "privacyIDEA".into(),
        ip: String::new(),
        location: String::new(),
        created_at: harness::T as i64,
        expires_at: harness::T as i64 + 120,
        number_matching: false,
        pin_required: false,
        question: "Do you want to confirm the login?".into(),
        presence_options: presence.iter().map(std::string::ToString::to_string).collect(),
    }
}

#[test]
fn a_pasted_link_is_reviewed_and_a_server_that_cannot_be_reached_is_said_plainly() {
    let mut harness = Harness::unlocked(vec![]);
    harness.click("Add account");
    harness.submit(add::URI_ID, LINK);
    assert!(harness.shows("A privacyIDEA push token"));
    assert!(harness.shows("PIPU00008DB7"));
    assert!(harness.shows("http://127.0.0.1:9/ttype/push"));
    // Port 9 on loopback: nothing listens, the enrollment fails with a reason.
    harness.click("Enroll");
    let error = add_error(&harness);
    assert!(error.starts_with("Not enrolled: cannot reach privacyIDEA"), "{error}");
    assert!(harness.shows(&error), "the error is on the page");
    let vault = Locked::read(&harness.vault_path).unwrap().unlock_with_password(&Password::new(PASSWORD.into())).unwrap();
    assert!(vault.push_tokens().is_empty(), "nothing was kept");
    // A link that cannot work says why, with no Enroll button.
    let mut harness = Harness::unlocked(vec![]);
    harness.click("Add account");
    harness.submit(add::URI_ID, &LINK.replace("&poll_only=True", ""));
    assert!(harness.shows("This is a privacyIDEA push token enrollment."));
    assert!(harness.shows(&countersign::privacyidea::Error::NotPollOnly.to_string()));
    assert!(!harness.shows("Enroll"));
}

#[test]
fn a_presence_request_is_answered_with_the_option_tapped() {
    let mut harness = Harness::unlocked(vec![harness::github()]);
    let id = enroll(&mut harness);
    assert_eq!(harness.accounts().push_tokens, 1);
    assert!(harness.shows("Sign-in activity · 1 privacyIDEA token"));

    let (sender, mut answers) = tokio::sync::mpsc::channel::<Answer>(4);
    harness.push(&id, Update::Connected(sender));
    harness.push(&id, Update::Event(Event::Challenge(challenge("NONCE1", &["R", "Y", "U"]))));
    assert!(harness.shows("Approve sign-in?"));
    assert!(harness.shows("Do you want to confirm the login?"));
    assert!(harness.shows("Tap the option the sign-in page shows"));
    assert!(!harness.shows("Authenticate"), "no plain Authenticate: an option must be picked");
    harness.click("Y");
    let answer = answers.try_recv().expect("the answer went to the connection");
    assert_eq!(answer, Answer::Token { challenge_id: "NONCE1".into(), decision: Decision::Approve, presence: Some("Y".into()) });
    harness.push(
        &id,
        Update::Event(Event::Result { challenge_id: "NONCE1".into(), accepted: true, status: "approved".into(), reason: String::new() }),
    );
    assert!(!harness.shows("Approve sign-in?"), "the prompt left");

    // A request answered elsewhere (or expired there) leaves the queue too.
    harness.push(&id, Update::Event(Event::Challenge(challenge("NONCE2", &[]))));
    assert!(harness.shows("Authenticate"));
    harness.push(
        &id,
        Update::Event(Event::Result {
            challenge_id: "NONCE2".into(),
            accepted: true,
            status: "closed".into(),
            reason: "it is no longer open on the server".into(),
        }),
    );
    assert!(!harness.shows("Approve sign-in?"));

    // The activity page: both outcomes, the token, connected, and removing it.
    harness.click("Sign-in activity · 1 privacyIDEA token");
    assert!(matches!(&harness.app.screen, Screen::Unlocked(u) if matches!(u.page, Page::Activity)));
    assert!(harness.shows("privacyIDEA (alice, PIPU0001)"));
    assert!(harness.shows("Connected"));
    assert!(harness.shows("Approved"));
    assert!(harness.shows("Closed: no longer open on the server"));
    harness.click("Remove…");
    assert!(harness.shows("Its key is deleted; privacyIDEA must enroll a new token."));
    harness.click("Remove");
    assert!(!harness.shows("privacyIDEA (alice, PIPU0001)"));
    let vault = Locked::read(&harness.vault_path).unwrap().unlock_with_password(&Password::new(PASSWORD.into())).unwrap();
    assert!(vault.push_tokens().is_empty());
    assert_eq!(vault.entries().len(), 1, "the account stays");
}
