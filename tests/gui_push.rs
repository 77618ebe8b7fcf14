//! Work or school accounts in the window, against the real server binary:
//! activation by Code + URL, then sign-in requests arriving over the real
//! connection (the same stream the window's subscription runs) and answered
//! through the prompt.

#![cfg(all(feature = "gui", feature = "server"))]

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
    let vault = Locked::read(&harness.vault_path).unwrap().unlock_with_password(&countersign::secret::Password::new(PASSWORD.into())).unwrap();
    let link = vault.entries().iter().find(|e| &e.id == id).and_then(|e| e.push.clone()).expect("the push link is in the vault");
    let _guard = harness.runtime.enter();
    Box::pin(client::watch(link))
}

/// Feeds the stream's next update to the window.
fn pump(harness: &mut Harness, stream: &mut (impl Stream<Item = Update> + Unpin), id: &Id) -> Update {
    let update = harness.runtime.block_on(async { tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("an update within 5 s").expect("the stream goes on") });
    harness.send(Message::Push(id.clone(), update.clone()));
    update
}

fn connect(harness: &mut Harness, stream: &mut (impl Stream<Item = Update> + Unpin), id: &Id) {
    assert!(matches!(pump(harness, stream, id), Update::Connecting));
    assert!(matches!(pump(harness, stream, id), Update::Connected(_)));
    assert_eq!(harness.accounts().push_status.get(id).map(String::as_str), Some("Push: connected"));
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
    harness.send(Message::Key { key: iced::keyboard::Key::Named(iced::keyboard::key::Named::Enter), modifiers: iced::keyboard::Modifiers::empty(), captured: true });
    assert_eq!(harness.clipboard, None, "no code was copied");
    assert!(matches!(pump(&mut harness, &mut stream, &id), Update::Event(client::Event::Result { .. })));
    assert_eq!(harness.app.toast.clone().unwrap().0, "Approved");
    assert!(harness.app.prompts.is_empty());
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
    assert_eq!(harness.app.activity.len(), 2);
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
    assert_eq!(harness.app.prompts.len(), 4);
    assert!(harness.shows("3 more requests waiting"));
    assert!(harness.app.prompts[3].flagged.as_deref().is_some_and(|w| w.starts_with("4 sign-in requests in the last 5 minutes")), "the fourth is flagged");
    assert!(harness.app.prompts[0].flagged.is_none());
    harness.click("Deny");
    pump(&mut harness, &mut stream, &id);
    assert_eq!(harness.app.toast.clone().unwrap().0, "Denied");
    assert_eq!(harness.app.prompts.len(), 3);
    harness.click("It wasn't me");
    pump(&mut harness, &mut stream, &id);
    assert_eq!(harness.app.toast.clone().unwrap().0, "Reported: it wasn't me");
    assert_eq!(harness.runtime.block_on(server.status(&ids[1], 0)), "reported");
    // The report also denies the requests still waiting, and their prompts close.
    pump(&mut harness, &mut stream, &id);
    pump(&mut harness, &mut stream, &id);
    assert!(harness.app.prompts.is_empty(), "{:?}", harness.app.prompts.iter().map(|p| &p.challenge.id).collect::<Vec<_>>());
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
    let wrong = if code.starts_with('1') { format!("2{}", &code[1..]) } else { format!("1{}", &code[1..]) };
    harness.click("Add account");
    harness.click("Work or school account");
    harness.type_into(add::CODE_ID, &wrong);
    harness.type_into(add::URL_ID, &url);
    harness.click("Activate");
    let Screen::Unlocked(unlocked) = &harness.app.screen else { panic!() };
    let Page::Add(add) = &unlocked.page else { panic!("still on the Add page") };
    assert_eq!(add.error.as_deref(), Some("Not activated: the server refused: wrong activation code; 4 more tries before it is invalidated (invalid_code)"));
    assert_eq!(harness.vault_names(), Vec::<String>::new());
}
