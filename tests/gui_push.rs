//! Work or school accounts in the window, against the real server binary:
//! activation by Code + URL, then sign-in requests arriving over the real
//! connection (the same stream the window's subscription runs) and answered
//! through the prompt.

#![cfg(all(feature = "gui", feature = "server", feature = "cli"))]

mod common;
mod harness;

use std::time::Duration;

use common::server::Server;
use countersign::gui::{Message, Page, Screen, accounts, add, prompt};
use countersign::push::client::{self, Update};
use countersign::vault::{Id, Locked};
use harness::{Harness, PASSWORD};
use iced::futures::{Stream, StreamExt};

/// Activates through the Add page with the Code and URL, as a user types them.
fn activate(harness: &mut Harness, server: &Server, user: &str) -> Id {
    let (code, url) = harness.runtime.block_on(server.activation(user));
    harness.click("Add account");
    harness.click("Work or school account");
    harness.type_into(add::CODE_ID, &code);
    harness.type_into(add::URL_ID, &url);
    harness.click("Activate");
    assert!(matches!(&harness.app.screen, Screen::Unlocked(u) if matches!(u.page, Page::Accounts)), "back on the list after activating");
    let toast = harness.app.toast.clone().map(|(text, _)| text).unwrap_or_default();
    assert_eq!(toast, format!("Activated Contoso ({user}): it shows codes and receives sign-in requests"));
    harness.send(Message::Tick(harness::T + 1));
    let card = harness.accounts().cards.iter().find(|c| c.push).expect("a push card").clone();
    assert_eq!((card.issuer.as_str(), card.name.as_str()), ("Contoso", user));
    card.id
}

/// The window's own connection stream for the account, as its subscription runs it.
fn connection(harness: &Harness, id: &Id) -> std::pin::Pin<Box<dyn Stream<Item = Update> + Send>> {
    let vault =
        Locked::read(&harness.vault_path).unwrap().unlock_with_password(&countersign::secret::Password::new(PASSWORD.into())).unwrap();
    let link = vault.entries().iter().find(|e| &e.id == id).and_then(|e| e.push.clone()).expect("the push link is in the vault");
    let _guard = harness.runtime.enter();
    Box::pin(client::watch(client::Credential::Device(link), jiff::Timestamp::now))
}

/// Feeds the stream's next update to the window.
fn pump(harness: &mut Harness, stream: &mut (impl Stream<Item = Update> + Unpin), id: &Id) -> Update {
    let update = harness.runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("an update within 5 s").expect("the stream goes on")
    });
    harness.push(id, update.clone());
    update
}

fn connect(harness: &mut Harness, stream: &mut (impl Stream<Item = Update> + Unpin), id: &Id) {
    assert!(matches!(pump(harness, stream, id), Update::Connecting));
    assert!(matches!(pump(harness, stream, id), Update::Connected(_)));
    assert!(matches!(pump(harness, stream, id), Update::ClockOffset(_)));
    if matches!(harness.app.screen, Screen::Unlocked(_)) {
        assert_eq!(harness.accounts().push_status.get(id).map(String::as_str), Some("Push: connected"));
    }
}

#[test]
fn activate_then_approve_with_the_number_deny_a_wrong_number_and_see_the_activity() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut harness = Harness::unlocked(vec![]);
    let id = activate(&mut harness, &server, "alice");
    let mut stream = connection(&harness, &id);
    connect(&mut harness, &mut stream, &id);

    let (signin, number) = harness.runtime.block_on(server.signin("alice"));
    assert!(matches!(pump(&mut harness, &mut stream, &id), Update::Event(client::Event::Challenge(_))));
    assert!(harness.shows("Approve sign-in?"));
    assert!(harness.shows("Contoso VPN"));
    assert!(harness.shows("Zurich"));
    assert!(harness.shows("203.0.113.7"));
    assert!(harness.shows("Enter the number shown on the sign-in page"));
    // Authenticate without the number: an inline error, nothing sent.
    harness.click("Authenticate");
    assert!(harness.shows("Type the number the sign-in page shows."));
    // Enter in the number box answers; it never reaches the list underneath.
    harness.submit(prompt::NUMBER_ID, &number.unwrap().to_string());
    harness.send(Message::Key {
        key: iced::keyboard::Key::Named(iced::keyboard::key::Named::Enter),
        modifiers: iced::keyboard::Modifiers::empty(),
        captured: true,
    });
    assert_eq!(harness.clipboard, None, "no code was copied");
    assert!(matches!(pump(&mut harness, &mut stream, &id), Update::Event(client::Event::Result { .. })));
    assert_eq!(harness.app.toast.clone().unwrap().0, "Approved");
    assert!(harness.app.inbox.prompts.is_empty());
    assert_eq!(harness.runtime.block_on(server.status(&signin, 0)), "approved");

    let (signin, number) = harness.runtime.block_on(server.signin("alice"));
    pump(&mut harness, &mut stream, &id);
    let wrong = number.map(|n| if n == 99 { 10 } else { n + 1 }).unwrap();
    harness.type_into(prompt::NUMBER_ID, &wrong.to_string());
    harness.click("Authenticate");
    pump(&mut harness, &mut stream, &id);
    assert_eq!(harness.app.toast.clone().unwrap().0, "Denied: the number did not match: denied");
    assert_eq!(harness.runtime.block_on(server.status(&signin, 0)), "denied");

    harness.send(Message::Accounts(accounts::Message::OpenActivity));
    assert!(harness.shows("Sign-in activity"));
    assert!(harness.shows("Approved"));
    assert!(harness.shows("Denied: the number did not match: denied"));
    assert_eq!(harness.app.inbox.activity.len(), 2);
}

#[test]
fn requests_queue_up_the_fourth_is_flagged_and_it_wasnt_me_blocks_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut harness = Harness::unlocked(vec![]);
    let id = activate(&mut harness, &server, "bob");
    let mut stream = connection(&harness, &id);
    connect(&mut harness, &mut stream, &id);
    // In the background: the requests also go to the desktop's notification
    // service (absent here, which must not disturb the prompt).
    harness.send(Message::Focused(false));
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(harness.runtime.block_on(server.signin("bob")).0);
        pump(&mut harness, &mut stream, &id);
    }
    assert_eq!(harness.app.inbox.prompts.len(), 4);
    assert!(harness.shows("3 more requests waiting"));
    assert!(
        harness.app.inbox.prompts[3].flagged.as_deref().is_some_and(|w| w.starts_with("4 sign-in requests in the last 5 minutes")),
        "the fourth is flagged"
    );
    assert!(harness.app.inbox.prompts[0].flagged.is_none());
    harness.click("Deny");
    pump(&mut harness, &mut stream, &id);
    assert_eq!(harness.app.toast.clone().unwrap().0, "Denied");
    assert_eq!(harness.app.inbox.prompts.len(), 3);
    harness.click("It wasn't me");
    pump(&mut harness, &mut stream, &id);
    assert_eq!(harness.app.toast.clone().unwrap().0, "Reported: it wasn't me");
    assert_eq!(harness.runtime.block_on(server.status(&ids[1], 0)), "reported");
    // The report also denies the requests still waiting, and their prompts close.
    pump(&mut harness, &mut stream, &id);
    pump(&mut harness, &mut stream, &id);
    assert!(harness.app.inbox.prompts.is_empty(), "{:?}", harness.app.inbox.prompts.iter().map(|p| &p.challenge.id).collect::<Vec<_>>());
    for other in &ids[2..] {
        assert_eq!(harness.runtime.block_on(server.status(other, 0)), "denied");
    }
    let (status, body) = harness.runtime.block_on(server.post("/api/signins", common::server::RP, serde_json::json!({ "user": "bob" })));
    assert_eq!((status, body["error"].as_str()), (403, Some("blocked")));
}

#[test]
fn a_wrong_activation_code_is_an_inline_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut harness = Harness::unlocked(vec![]);
    let (code, url) = harness.runtime.block_on(server.activation("carol"));
    let wrong = match code.strip_prefix('1') {
        Some(rest) => format!("2{rest}"),
        None => format!("1{}", &code[1..]),
    };
    harness.click("Add account");
    harness.click("Work or school account");
    harness.type_into(add::CODE_ID, &wrong);
    harness.type_into(add::URL_ID, &url);
    harness.click("Activate");
    let Screen::Unlocked(unlocked) = &harness.app.screen else { panic!() };
    let Page::Add(add) = &unlocked.page else { panic!("still on the Add page") };
    assert_eq!(
        add.error.as_deref(),
        Some("Not activated: the server refused: wrong activation code; 4 more tries before it is invalidated (invalid_code)")
    );
    assert_eq!(harness.vault_names(), Vec::<String>::new());
}

/// The connection the inbox keeps for `id` now, as its subscription runs it.
fn kept_connection(harness: &Harness, id: &Id) -> (client::Credential, std::pin::Pin<Box<dyn Stream<Item = Update> + Send>>) {
    let targets = harness.app.inbox.targets();
    let target = targets.iter().find(|t| &t.id == id).expect("the inbox keeps a connection for the account");
    let countersign::gui::inbox::Channel::Countersign(credential) = &target.channel else { panic!("a Countersign connection") };
    let _guard = harness.runtime.enter();
    (credential.clone(), Box::pin(client::watch(credential.clone(), jiff::Timestamp::now)))
}

fn journal(harness: &Harness) -> countersign::journal::History {
    let vault =
        Locked::read(&harness.vault_path).unwrap().unlock_with_password(&countersign::secret::Password::new(PASSWORD.into())).unwrap();
    countersign::journal::read(&harness.vault_path, vault.journal_key().expect("a journal key")).unwrap()
}

#[test]
fn locked_the_request_still_arrives_and_unlocking_puts_it_first() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut harness = Harness::unlocked(vec![]);
    let id = activate(&mut harness, &server, "alice");
    // Activation kept a listener key outside the vault (a password vault: the private file).
    let stored = countersign::listeners::load(&harness.vault_path, None).unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].listener.is_ok());
    harness.send(Message::Accounts(accounts::Message::Lock));
    assert!(matches!(harness.app.screen, Screen::Unlock(_)));
    // Locked, the account is still connected, with its listener key.
    let (credential, mut stream) = kept_connection(&harness, &id);
    assert!(matches!(credential, client::Credential::Listener(_)), "receive-only while locked");
    connect(&mut harness, &mut stream, &id);

    let (signin, number) = harness.runtime.block_on(server.signin("alice"));
    assert!(matches!(pump(&mut harness, &mut stream, &id), Update::Event(client::Event::Challenge(_))));
    assert_eq!(harness.app.inbox.waiting(), 1);
    assert!(harness.shows("1 sign-in request is waiting: unlock to answer"));
    assert!(!harness.shows("Approve sign-in?"), "no prompt over the unlock screen");
    // Unlocking shows the request before anything else, and it answers.
    harness.submit(countersign::gui::unlock::PASSWORD_ID, PASSWORD);
    assert!(harness.shows("Approve sign-in?"));
    assert!(harness.shows("Contoso VPN"));
    harness.submit(prompt::NUMBER_ID, &number.unwrap().to_string());
    assert!(matches!(pump(&mut harness, &mut stream, &id), Update::Event(client::Event::Result { .. })));
    assert_eq!(harness.app.toast.clone().unwrap().0, "Approved");
    assert_eq!(harness.runtime.block_on(server.status(&signin, 0)), "approved");
    // The journal kept both.
    let history = journal(&harness);
    assert_eq!(history.broken, None);
    let events: Vec<_> = history.records.iter().filter(|r| r.request == signin).map(|r| r.event).collect();
    assert_eq!(events, [countersign::journal::Event::Received, countersign::journal::Event::Approved]);
    assert_eq!(history.records[0].account, "Contoso (alice)");
}

#[test]
fn a_request_expires_by_its_lifetime_from_arrival_and_the_history_lasts() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut harness = Harness::unlocked(vec![]);
    let id = activate(&mut harness, &server, "bob");
    let (_, mut stream) = kept_connection(&harness, &id);
    connect(&mut harness, &mut stream, &id);
    let (signin, _) = harness.runtime.block_on(server.signin("bob"));
    pump(&mut harness, &mut stream, &id);
    // The harness's clock is days before the server's: the request still
    // gets its 60 s, counted from its arrival on this computer's clock.
    let deadline = harness.app.inbox.prompts[0].deadline;
    assert_eq!(deadline, harness::T as i64 + 1 + 60);
    harness.send(Message::Tick(deadline as u64 - 1));
    assert_eq!(harness.app.inbox.waiting(), 1);
    harness.send(Message::Tick(deadline as u64));
    assert_eq!(harness.app.inbox.waiting(), 0, "expired");
    let history = journal(&harness);
    assert_eq!(
        history.records.iter().filter(|r| r.request == signin).map(|r| r.event).next_back(),
        Some(countersign::journal::Event::Expired)
    );

    // A new app (a restart) reads the history back; an edited byte is reported.
    let mut again = Harness::start(tempfile::tempdir().unwrap(), harness.vault_path.clone());
    again.submit(countersign::gui::unlock::PASSWORD_ID, PASSWORD);
    again.send(Message::Accounts(accounts::Message::OpenActivity));
    assert!(again.shows("Expired"));
    assert!(again.shows("Contoso VPN"));
    let path = countersign::journal::path(&harness.vault_path);
    let mut bytes = std::fs::read(&path).unwrap();
    let last_line = bytes[..bytes.len() - 1].iter().rposition(|b| *b == b'\n').unwrap();
    bytes[last_line + 30] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let mut third = Harness::start(tempfile::tempdir().unwrap(), harness.vault_path.clone());
    third.submit(countersign::gui::unlock::PASSWORD_ID, PASSWORD);
    third.send(Message::Accounts(accounts::Message::OpenActivity));
    assert!(third.app.inbox.broken.is_some());
    assert!(third.shows(&format!("Warning: {}. The history below may be incomplete or altered.", third.app.inbox.broken.clone().unwrap())));
}

#[test]
fn a_clock_off_by_more_than_ten_seconds_is_said_on_every_screen() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut harness = Harness::unlocked(vec![]);
    let id = activate(&mut harness, &server, "carl");
    let warning = "This computer's clock is 42 s ahead of Contoso (carl)'s. Codes may be refused and requests may seem to expire early or late. Turn on automatic time (your desktop's Date & Time settings, or `timedatectl set-ntp true`).";
    harness.push(&id, Update::ClockOffset(9));
    assert!(!harness.shows(warning) && harness.app.inbox.clock.warning().is_none(), "9 s is within tolerance");
    harness.push(&id, Update::ClockOffset(-42));
    assert!(harness.shows(warning));
    harness.send(Message::Accounts(accounts::Message::Lock));
    assert!(harness.shows(warning), "the unlock screen says it too");
    harness.push(&id, Update::ClockOffset(0));
    assert!(!harness.shows(warning), "a clock put right clears it");
}

/// A user with an authentication phone, on a server with virtual phones.
async fn user_with_a_phone(server: &Server, user: &str) {
    assert_eq!(
        server.post("/api/admin/users", common::server::ADMIN, serde_json::json!({ "name": user, "organization": "Contoso" })).await.0,
        201
    );
    let response = reqwest::Client::new()
        .put(format!("{}/api/admin/users/{user}/phones/authentication", server.base))
        .bearer_auth(common::server::ADMIN)
        .json(&serde_json::json!({ "number": "+41 44 668 18 00" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// The window as a virtual phone: the number attached on the activity
/// page; a text that arrives while locked, read after unlocking, copied and
/// replied to; a call answered with # and one hung up. All through the
/// listener key's connection, which carries what the unlocked vault signs.
#[test]
fn the_window_answers_for_a_number_reads_texts_after_unlocking_and_takes_calls() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::with_virtual_phones(dir.path(), &[]);
    harness_runtime_user(&server);
    let mut harness = Harness::unlocked(vec![]);
    let id = activate(&mut harness, &server, "vera");
    let (credential, mut stream) = kept_connection(&harness, &id);
    assert!(matches!(credential, client::Credential::Listener(_)), "the listener key's connection");
    connect(&mut harness, &mut stream, &id);
    // The server has virtual phones: the device answers for no number yet.
    assert!(matches!(pump(&mut harness, &mut stream, &id), Update::Event(client::Event::Phones { .. })));

    harness.send(Message::Accounts(accounts::Message::OpenActivity));
    assert!(harness.shows("Virtual phone: texts and calls to these numbers come here"));
    assert!(harness.shows("No number yet."));
    // Not the user's number: refused, said under the field.
    harness.submit(prompt::PHONE_NUMBER_ID, "+1 201 555 0123");
    pump(&mut harness, &mut stream, &id);
    assert!(harness.shows("Refused: +12015550123 is not one of your phones: set it on the enrollment page first"));
    harness.send(Message::Inbox(countersign::gui::inbox::Message::Activity(prompt::ActivityMessage::PhoneNumberChanged(
        id.clone(),
        String::new(),
    ))));
    harness.type_into(prompt::PHONE_NUMBER_ID, "+41 44 668 18 00");
    harness.click("Answer for this number");
    pump(&mut harness, &mut stream, &id);
    assert_eq!(harness.app.toast.clone().unwrap().0, "Contoso (vera) answers texts and calls for +41446681800");
    assert!(harness.shows("+41446681800"));
    assert!(harness.shows("Stop"));
    harness.click("← Back");

    // A text while locked: it arrives, and says nothing until unlocked.
    harness.send(Message::Accounts(accounts::Message::Lock));
    let (status, created) = harness.runtime.block_on(server.post(
        "/api/signins",
        common::server::RP,
        serde_json::json!({ "user": "vera", "method": "sms", "app": "Contoso VPN" }),
    ));
    assert_eq!(status, 201, "{created}");
    let text_id = created["id"].as_str().unwrap().to_owned();
    assert!(matches!(pump(&mut harness, &mut stream, &id), Update::Event(client::Event::Text(_))));
    assert!(harness.shows("1 sign-in request is waiting: unlock to answer"));
    assert!(harness.app.inbox.rings[0].code().is_none(), "locked: not read");
    harness.submit(countersign::gui::unlock::PASSWORD_ID, PASSWORD);
    assert!(harness.shows("Text message"));
    assert!(harness.shows("To +41446681800 · Contoso (vera)"));
    let code = harness.app.inbox.rings[0].code().expect("read once unlocked").to_owned();
    assert_eq!(code.len(), 6);
    assert!(harness.shows(&format!("{} {}", &code[..3], &code[3..])));
    let countersign::gui::phone::Kind::Text { body: Some(body), .. } = &harness.app.inbox.rings[0].kind else { panic!("a text, read") };
    let message = body.text.clone();
    assert!(message.contains(&code), "{message}");
    assert!(harness.shows(&message), "the message itself");
    harness.click("Copy");
    assert_eq!(harness.clipboard.as_deref(), Some(code.as_str()));
    harness.click("Reply with the code");
    assert!(matches!(pump(&mut harness, &mut stream, &id), Update::Event(client::Event::Result { .. })));
    assert_eq!(harness.app.toast.clone().unwrap().0, "Approved");
    assert!(harness.app.inbox.rings.is_empty());
    assert_eq!(harness.runtime.block_on(server.status(&text_id, 0)), "approved");
    told(&mut harness, &mut stream, &id, &text_id);

    // A call: Answer shows what it says and the keypad; # approves.
    let call_id = call(&harness, &server);
    assert!(matches!(pump(&mut harness, &mut stream, &id), Update::Event(client::Event::Call(_))));
    assert!(harness.shows("Incoming call"));
    assert!(!harness.shows("#"), "no keypad before answering");
    harness.click("Answer");
    assert!(harness.shows("Call in progress"));
    assert!(harness.shows("Keys: none yet"));
    harness.click("#");
    assert!(matches!(pump(&mut harness, &mut stream, &id), Update::Event(client::Event::Result { .. })));
    assert!(harness.app.toast.clone().unwrap().0.starts_with("Approved"), "{:?}", harness.app.toast);
    assert_eq!(harness.runtime.block_on(server.status(&call_id, 0)), "approved");
    told(&mut harness, &mut stream, &id, &call_id);

    // Hanging up denies.
    let call_id = call(&harness, &server);
    pump(&mut harness, &mut stream, &id);
    harness.click("Hang up");
    pump(&mut harness, &mut stream, &id);
    assert!(harness.app.toast.clone().unwrap().0.starts_with("Denied"), "{:?}", harness.app.toast);
    assert_eq!(harness.runtime.block_on(server.status(&call_id, 0)), "denied");
    told(&mut harness, &mut stream, &id, &call_id);
}

/// The server telling the device about a text or call just answered: the
/// window has already taken it off the screen, and shows nothing new.
fn told(harness: &mut Harness, stream: &mut (impl Stream<Item = Update> + Unpin), id: &Id, signin: &str) {
    let toast = harness.app.toast.clone();
    let Update::Event(client::Event::Result { challenge_id, accepted: true, .. }) = pump(harness, stream, id) else { panic!("told") };
    assert_eq!(challenge_id, signin);
    assert_eq!(harness.app.toast, toast);
}

fn harness_runtime_user(server: &Server) {
    tokio::runtime::Runtime::new().unwrap().block_on(user_with_a_phone(server, "vera"));
}

/// A voice sign-in for vera: its id.
fn call(harness: &Harness, server: &Server) -> String {
    let (status, created) = harness.runtime.block_on(server.post(
        "/api/signins",
        common::server::RP,
        serde_json::json!({ "user": "vera", "method": "voice", "app": "Contoso VPN" }),
    ));
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_owned()
}
