//! Sign-in requests, whatever the window's state: the connections of every
//! work or school account and privacyIDEA token, the queue of prompts, their
//! notifications, the activity list and its journal, and the clock check.
//!
//! It lives as long as the process, not the unlocked vault. Work or school
//! accounts connect with their listener keys (`crate::listeners`), so
//! requests arrive while the vault is locked or before it was ever
//! unlocked; an account without one connects with its device key while the
//! vault is unlocked and registers a listener key then. privacyIDEA tokens
//! sign every poll with their own key, which lives in the vault: they poll
//! from the first time the vault is open in this session (unlocked, or
//! opened through the keyring slot at start) until Quit, their keys kept in
//! memory for that. Answering always needs the vault unlocked.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use iced::widget::operation;
use iced::{Element, Subscription, Task};

use super::desktop::{self, Notice};
use super::phone::{self, Ring};
use super::prompt::{self, Activity, Prompt, SourceRow};
use super::{Sensitive, SharedVault, blocking, jobs};
use crate::clock::Clock;
use crate::journal::{self, Event as Outcome};
use crate::listeners::{self, Placement};
use crate::push::client::{self as push_client, Answer, Credential, Event, Update};
use crate::push::{Link, PhoneAction, Shield, Status};
use crate::vault::{self, Id, Keyring, PushToken};

/// How often listeners whose key the keyring would not give are tried again.
const LISTENER_RETRY: Duration = Duration::from_secs(30);

/// The work or school accounts (with their devices) and tokens of a vault.
fn push_fingerprint(vault: &vault::Vault) -> Vec<String> {
    let accounts = vault.entries().iter().filter_map(|e| e.push.as_ref().map(|link| format!("{} {}", e.id, link.device_id)));
    accounts.chain(vault.push_tokens().iter().map(|t| t.id.to_string())).collect()
}

/// What the root tells the inbox about the app's state.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub now: u64,
    /// The vault, while it is unlocked.
    pub vault: Option<&'a SharedVault>,
    /// Whether a window is open.
    pub window: bool,
}

/// A connection, as the inbox knows it.
#[derive(Debug, Clone)]
pub enum Connection {
    Connecting,
    Connected(tokio::sync::mpsc::Sender<Answer>),
    Offline { reason: String, retry_at: i64 },
}

/// When the next try is, in the whole seconds of the inbox's clock: rounded
/// up, so the countdown never says 0 s while the try is still ahead.
fn retry_at(now: u64, retry_in: Duration) -> i64 {
    let seconds = retry_in.as_secs().saturating_add(u64::from(retry_in.subsec_nanos() > 0));
    i64::try_from(now.saturating_add(seconds)).unwrap_or(i64::MAX)
}

/// Setting up reception while locked, for an account without a listener key.
#[derive(Debug, Clone)]
enum Registration {
    Running,
    Failed(String),
}

/// One connection to keep: what the subscription is keyed by.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: Id,
    pub channel: Channel,
}

/// Where a connection gets its requests.
// A few per app, each built once per subscription: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Channel {
    /// A work or school account: a WebSocket to Countersign's server.
    Countersign(Credential),
    /// A privacyIDEA PUSH token, polled every interval.
    PrivacyIdea(crate::privacyidea::Token, Duration),
}

impl std::hash::Hash for Target {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
        match &self.channel {
            Channel::Countersign(credential) => {
                credential.device_id().hash(state);
                credential.endpoint().hash(state);
                // A new listener key, or the switch from the device key to
                // it, is a new connection: the old one (and the device key
                // it holds) goes.
                match credential {
                    Credential::Device(_) => "device".hash(state),
                    Credential::Listener(listener) => listener.key.public().to_base64().hash(state),
                }
            }
            Channel::PrivacyIdea(token, interval) => {
                token.serial.hash(state);
                token.url.hash(state);
                interval.hash(state);
            }
        }
    }
}

/// Why an answer was not sent; shown on its prompt.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// The password that confirms the answer (a locked vault's) was wrong.
    #[error("Wrong password.")]
    WrongPassword,
    #[error(transparent)]
    Job(#[from] jobs::Error),
}

// A challenge travels by value from the connection to the prompt once.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Message {
    /// An update from one account's or token's connection.
    Push(Id, Update),
    /// A prompt's message, with the request it was shown for: an answer
    /// that arrives after the queue changed never lands on another request.
    Prompt(String, prompt::Message),
    /// An answer to this request went out (the verdict follows), or why not.
    Sent(String, Result<(), SendError>),
    Notice(Notice),
    Activity(prompt::ActivityMessage),
    ListenersRead(Sensitive<Result<Vec<listeners::Stored>, listeners::Error>>),
    RetryListeners,
    /// A listener key was registered and kept for this account, or why not.
    Registered(Id, Result<Placement, jobs::Error>),
    /// The refused listener key of this account is out of the file.
    ListenerDropped(Result<Id, jobs::Error>),
    /// The journal, read with the vault's key.
    HistoryRead(Sensitive<Result<journal::History, jobs::Error>>),
    Recorded(Result<(), jobs::Error>),
    ClockSynchronized(Option<bool>),
    /// A privacyIDEA token removed: its title, or why not.
    TokenRemoved(Result<String, jobs::Error>),
    /// A message of the text or call on screen, with its sign-in.
    Ring(String, phone::Message),
    /// A virtual phone's request about this account's text or call `id`
    /// (empty: a number attached or detached) went out, or why not.
    PhoneSent(Id, String, Result<(), SendError>),
}

/// What the root does next.
pub enum Action {
    None,
    Run(Task<Message>),
    /// Bring the window forward (opening it), at this request's prompt when given.
    Show(Option<String>),
    /// Say this, and run that.
    Toast(String, Task<Message>),
    /// Leave the activity page.
    Back,
    /// Copy this text's code (from this account) and clear it as codes are.
    Copy(Sensitive<zeroize::Zeroizing<String>>, String),
}

pub struct Inbox {
    vault: PathBuf,
    poll: Duration,
    /// The receive-only credentials, or why each cannot be used now.
    listeners: Vec<listeners::Stored>,
    /// While unlocked: accounts with no usable listener, connected with the device key.
    devices: Vec<(Id, Link)>,
    /// privacyIDEA tokens, from the first time the vault was open.
    tokens: Vec<PushToken>,
    /// What each account and token is called.
    titles: HashMap<Id, String>,
    connections: HashMap<Id, Connection>,
    registrations: HashMap<Id, Registration>,
    /// Requests waiting for an answer, the one to answer first in front.
    pub prompts: VecDeque<Prompt>,
    /// Texts and calls to the virtual phones, after the requests.
    pub rings: VecDeque<Ring>,
    /// On servers with virtual phones: each account's numbers.
    phones: HashMap<Id, phone::Numbers>,
    /// The notification shown for each request still in the queue.
    notifications: HashMap<String, u32>,
    shields: HashMap<Id, Shield>,
    /// Each server's clock minus ours.
    offsets: HashMap<Id, i64>,
    pub clock: Clock,
    /// Requests and their outcomes, newest first.
    pub activity: Vec<Activity>,
    /// Where the journal's chain broke, when it did.
    pub broken: Option<journal::Break>,
    confirm_remove: Option<Id>,
    /// The push accounts and tokens the vault held when last seen.
    seen: Vec<String>,
    /// Whether the vault was open at least once (its tokens are known).
    known: bool,
}

impl Inbox {
    /// Reads the listeners file and asks whether the clock is synchronised.
    pub fn new(vault: PathBuf, poll: Duration) -> (Self, Task<Message>) {
        let inbox = Inbox {
            vault,
            poll,
            listeners: Vec::new(),
            devices: Vec::new(),
            tokens: Vec::new(),
            titles: HashMap::new(),
            connections: HashMap::new(),
            registrations: HashMap::new(),
            prompts: VecDeque::new(),
            rings: VecDeque::new(),
            phones: HashMap::new(),
            notifications: HashMap::new(),
            shields: HashMap::new(),
            offsets: HashMap::new(),
            clock: Clock::default(),
            activity: Vec::new(),
            broken: None,
            confirm_remove: None,
            seen: Vec::new(),
            known: false,
        };
        let task = Task::batch([inbox.read_listeners(), Task::perform(desktop::clock_synchronized(), Message::ClockSynchronized)]);
        (inbox, task)
    }

    fn read_listeners(&self) -> Task<Message> {
        let path = self.vault.clone();
        Task::perform(
            blocking(move || {
                // Listener keys of a keyring vault are in the keyring; a
                // password-only vault's never touch it.
                let keyring = if listeners::in_keyring(&path) { Keyring::system().ok() } else { None };
                Sensitive(listeners::load(&path, keyring.as_ref()))
            }),
            Message::ListenersRead,
        )
    }

    /// The vault is open: unlocked (`unlocked`), or opened through the
    /// keyring slot at start only to learn the tokens and set up listeners.
    /// Tokens start polling, accounts without a listener key get one, and
    /// the journal is read.
    pub fn opened(&mut self, vault: &SharedVault, unlocked: bool) -> Task<Message> {
        let Ok(guard) = vault.lock() else { return Task::none() };
        self.seen = push_fingerprint(&guard);
        self.known = true;
        self.tokens = guard.push_tokens().to_vec();
        for entry in guard.entries().iter().filter(|e| e.push.is_some()) {
            self.titles.insert(entry.id.clone(), entry.account.title());
        }
        for token in &self.tokens {
            self.titles.insert(token.id.clone(), token.token.title());
        }
        // What is missing is decided from the file itself, not from a read
        // of it still under way, or every start would replace every key.
        // A key that is lost (its keyring entry gone, damaged) is missing
        // too; one in a keyring that does not answer now is not.
        let lost: Vec<&Id> =
            self.listeners.iter().filter(|s| matches!(s.listener, Err(listeners::Unusable::Lost(_)))).map(|s| &s.account).collect();
        let kept: Vec<(Id, String)> = listeners::kept(guard.path()).into_iter().filter(|(account, _)| !lost.contains(&account)).collect();
        let missing = crate::reach::missing_listeners(&guard, &kept);
        // Unlocked, every account whose listener is not connectable right
        // now (missing, still being read, its keyring locked) connects with
        // the device key meanwhile; a listener that is read takes over.
        let listening: Vec<&Id> = self.listeners.iter().filter(|s| s.listener.is_ok()).map(|s| &s.account).collect();
        let devices: Vec<(Id, Link)> = guard
            .entries()
            .iter()
            .filter(|e| !listening.contains(&&e.id))
            .filter_map(|e| e.push.clone().map(|link| (e.id.clone(), link)))
            .collect();
        let has_push = guard.entries().iter().any(|e| e.push.is_some()) || !guard.push_tokens().is_empty();
        let keyring = crate::reach::keyring_for(&guard);
        drop(guard);
        let mut tasks = Vec::new();
        for (id, link) in &missing {
            if matches!(self.registrations.get(id), Some(Registration::Running)) {
                continue;
            }
            self.registrations.insert(id.clone(), Registration::Running);
            let (path, id, link, keyring) =
                (self.vault.clone(), id.clone(), link.clone(), keyring.as_ref().map(|_| Keyring::with_current_store()));
            tasks.push(Task::perform(crate::reach::register(path, id.clone(), link, keyring, jiff::Timestamp::now), move |result| {
                Message::Registered(id.clone(), result.map_err(jobs::Error::from))
            }));
        }
        self.devices = if unlocked { devices } else { Vec::new() };
        if unlocked {
            self.read_texts(vault);
        }
        // The history is read only for a real unlock.
        if has_push && unlocked {
            let vault = vault.clone();
            tasks.push(Task::perform(
                blocking(move || {
                    let mut vault = jobs::lock(&vault)?;
                    let path = vault.path().to_owned();
                    vault.ensure_journal(super::now_unix())?;
                    let key = vault.journal_key().cloned().ok_or(jobs::Error::NoJournalKey)?;
                    drop(vault);
                    Ok(journal::read(&path, &key)?)
                }),
                |result| Message::HistoryRead(Sensitive(result)),
            ));
        }
        Task::batch(tasks)
    }

    /// The vault locked: connections that hold the device key close; the
    /// requests stay, to be answered after unlocking.
    pub fn locked(&mut self) {
        let gone: Vec<Id> = self.devices.drain(..).map(|(id, _)| id).collect();
        self.connections.retain(|id, _| !gone.contains(id) || self.listeners.iter().any(|s| &s.account == id && s.listener.is_ok()));
        for prompt in &mut self.prompts {
            prompt.busy = false;
            prompt.forget_password();
        }
        for ring in &mut self.rings {
            ring.forget();
        }
        // The history is the vault's to read: it goes with the lock and is
        // read again at the next unlock. What arrives meanwhile is listed.
        self.activity.retain(|item| self.prompts.iter().any(|p| p.challenge.id == item.request));
        self.broken = None;
    }

    /// The vault was saved: when a work or school account or a token came or
    /// went, connections, listeners and prompts follow.
    pub fn vault_changed(&mut self, vault: &SharedVault, unlocked: bool) -> Task<Message> {
        let Ok(guard) = vault.try_lock() else { return Task::none() };
        if push_fingerprint(&guard) == self.seen {
            return Task::none();
        }
        let accounts: Vec<Id> = guard
            .entries()
            .iter()
            .filter(|e| e.push.is_some())
            .map(|e| e.id.clone())
            .chain(guard.push_tokens().iter().map(|t| t.id.clone()))
            .collect();
        let keyring = crate::reach::keyring_for(&guard);
        let pruned = crate::reach::prune(&guard, keyring.as_ref());
        drop(guard);
        if let Err(error) = pruned {
            eprintln!("countersign: {error}");
        }
        // An account or token that was removed takes its requests, its
        // connection and its notifications with it.
        self.listeners.retain(|s| accounts.contains(&s.account));
        self.prompts.retain(|p| accounts.contains(&p.account));
        self.rings.retain(|r| accounts.contains(&r.account));
        self.phones.retain(|id, _| accounts.contains(id));
        self.connections.retain(|id, _| accounts.contains(id));
        for removed in self.titles.keys().filter(|id| !accounts.contains(id)).cloned().collect::<Vec<_>>() {
            if let Some(title) = self.titles.remove(&removed) {
                self.clock.forget(&title);
            }
        }
        Task::batch([self.opened(vault, unlocked), self.read_listeners()])
    }

    /// What to keep connected now.
    pub fn targets(&self) -> Vec<Target> {
        let listening =
            self.listeners.iter().filter_map(|s| s.listener.as_ref().ok().map(|listener| (s.account.clone(), listener.clone())));
        let mut targets: Vec<Target> =
            listening.map(|(id, listener)| Target { id, channel: Channel::Countersign(Credential::Listener(listener)) }).collect();
        for (id, link) in &self.devices {
            if !targets.iter().any(|t| &t.id == id) {
                targets.push(Target { id: id.clone(), channel: Channel::Countersign(Credential::Device(link.clone())) });
            }
        }
        targets.extend(self.tokens.iter().map(|t| Target { id: t.id.clone(), channel: Channel::PrivacyIdea(t.token.clone(), self.poll) }));
        targets
    }

    pub fn subscription(&self) -> Subscription<Message> {
        let mut subscriptions: Vec<Subscription<Message>> = self
            .targets()
            .into_iter()
            .map(|target| {
                Subscription::run_with(target, |target: &Target| {
                    let id = target.id.clone();
                    let updates: std::pin::Pin<Box<dyn iced::futures::Stream<Item = Update> + Send>> = match &target.channel {
                        Channel::Countersign(credential) => Box::pin(push_client::watch(credential.clone(), jiff::Timestamp::now)),
                        Channel::PrivacyIdea(token, interval) => {
                            Box::pin(crate::privacyidea::client::watch(token.clone(), *interval, jiff::Timestamp::now))
                        }
                    };
                    iced::futures::StreamExt::map(updates, move |update| Message::Push(id.clone(), update))
                })
            })
            .collect();
        subscriptions.push(Subscription::run(desktop::clicks).map(Message::Notice));
        if self.listeners.iter().any(|s| s.listener.is_err()) {
            subscriptions.push(iced::time::every(LISTENER_RETRY).map(|_| Message::RetryListeners));
        }
        Subscription::batch(subscriptions)
    }

    /// The work or school accounts the vault held when last seen.
    fn seen_accounts(&self) -> Vec<Id> {
        let known: Vec<&str> = self.seen.iter().filter_map(|seen| seen.split_once(' ').map(|(id, _)| id)).collect();
        self.titles.keys().filter(|id| known.contains(&id.as_str())).cloned().collect()
    }

    /// Whether any work or school account or token exists (known so far).
    pub fn has_accounts(&self) -> bool {
        !self.listeners.is_empty() || !self.titles.is_empty()
    }

    /// Whether there is no work or school account or token for sure: the
    /// vault was open (a token, say, shows only then) and none is there.
    pub fn has_none(&self) -> bool {
        self.known && !self.has_accounts()
    }

    /// Requests waiting for an answer: pushes, texts and calls.
    pub fn waiting(&self) -> usize {
        self.prompts.len() + self.rings.len()
    }

    /// Puts request `id` first in the queue (its notification was clicked).
    pub fn bring_forward(&mut self, id: &str) {
        if let Some(index) = self.prompts.iter().position(|p| p.challenge.id == id)
            && let Some(prompt) = self.prompts.remove(index)
        {
            self.prompts.push_front(prompt);
        }
        if let Some(index) = self.rings.iter().position(|r| r.id() == id)
            && let Some(ring) = self.rings.remove(index)
        {
            self.rings.push_front(ring);
        }
    }

    /// The keyboard goes to the first prompt's number box, else its PIN field.
    pub fn focus(&self) -> Task<Message> {
        match self.prompts.front().map(|p| &p.challenge) {
            Some(challenge) if challenge.number_matching => operation::focus(prompt::NUMBER_ID),
            Some(challenge) if challenge.pin_required => operation::focus(prompt::PIN_ID),
            _ => Task::none(),
        }
    }

    /// An account's connection, for its card.
    pub fn status(&self, id: &Id) -> Option<String> {
        if let Some(Registration::Running) = self.registrations.get(id)
            && !self.connections.contains_key(id)
        {
            return Some("Push: setting up reception while locked…".into());
        }
        Some(match self.connections.get(id)? {
            Connection::Connecting => "Push: connecting…".to_owned(),
            Connection::Connected(_) => "Push: connected".to_owned(),
            Connection::Offline { reason, retry_at: _ } => format!("Push: offline ({reason})"),
        })
    }

    /// Every account and token with where its requests stand.
    fn sources(&self, now: u64) -> Vec<SourceRow> {
        let mut rows: Vec<SourceRow> = Vec::new();
        let mut ids: Vec<&Id> = self.listeners.iter().map(|s| &s.account).chain(self.titles.keys()).collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            let token = self.tokens.iter().any(|t| &t.id == id);
            let stored = self.listeners.iter().find(|s| &s.account == id);
            let title =
                self.titles.get(id).cloned().or_else(|| stored.map(|s| format!("{} ({})", s.organization, s.user))).unwrap_or_default();
            let connection = match self.connections.get(id) {
                Some(Connection::Connected(_)) => Some("Connected".to_owned()),
                Some(Connection::Offline { reason, retry_at }) => {
                    Some(format!("Offline: {reason} (retrying in {} s)", (*retry_at - now as i64).max(0)))
                }
                Some(Connection::Connecting) => Some("Connecting…".to_owned()),
                None => None,
            };
            let reach = if token {
                "polls with the token's key, kept in memory since the vault was opened"
            } else {
                match (stored.map(|s| &s.listener), self.registrations.get(id)) {
                    (Some(Ok(_)), _) => "receives requests while locked",
                    (_, Some(Registration::Running)) => "setting up reception while locked…",
                    (Some(Err(listeners::Unusable::Waiting(_))), _) => {
                        "its listener key is in the OS keyring, which does not answer: retrying"
                    }
                    (Some(Err(listeners::Unusable::Lost(_))), _) => "its listener key is lost: a new one is registered at the next unlock",
                    (None, _) => "receives requests only while unlocked",
                }
            };
            let state = connection.unwrap_or_else(|| "Not connected".to_owned());
            let reach = match self.registrations.get(id) {
                Some(Registration::Failed(why)) => format!("{reach} (no listener key: {why})"),
                _ => reach.to_owned(),
            };
            rows.push(SourceRow { id: id.clone(), title, state, reach, token, phone: self.phones.get(id).cloned() });
        }
        rows
    }

    pub fn update(&mut self, message: Message, context: Context<'_>) -> Action {
        match message {
            Message::Push(id, update) => self.push(id, update, context),
            Message::Prompt(request, message) => self.answer(&request, message, context),
            Message::Sent(id, result) => {
                if let (Err(error), Some(prompt)) = (result, self.prompts.iter_mut().find(|p| p.challenge.id == id)) {
                    prompt.busy = false;
                    prompt.error = Some(error.to_string());
                }
                Action::None
            }
            Message::Notice(Notice::Shown(request, notification)) => {
                self.notifications.insert(request, notification);
                Action::None
            }
            Message::Notice(Notice::Clicked(notification)) => {
                let Some(request) =
                    self.notifications.iter().find(|(_, shown)| **shown == notification).map(|(request, _)| request.clone())
                else {
                    return Action::None;
                };
                self.bring_forward(&request);
                Action::Show(Some(request))
            }
            Message::Activity(prompt::ActivityMessage::Back) => {
                self.confirm_remove = None;
                Action::Back
            }
            Message::Activity(prompt::ActivityMessage::RemoveToken(id)) => {
                self.confirm_remove = Some(id);
                Action::None
            }
            Message::Activity(prompt::ActivityMessage::CancelRemove) => {
                self.confirm_remove = None;
                Action::None
            }
            Message::Activity(prompt::ActivityMessage::ConfirmRemove) => {
                let (Some(id), Some(vault)) = (self.confirm_remove.take(), context.vault) else { return Action::None };
                let (vault, now) = (vault.clone(), context.now);
                Action::Run(Task::perform(
                    blocking(move || Ok(jobs::lock(&vault)?.remove_push_token(&id, now)?.token.title())),
                    Message::TokenRemoved,
                ))
            }
            Message::Activity(prompt::ActivityMessage::PhoneNumberChanged(id, typed)) => {
                if let Some(numbers) = self.phones.get_mut(&id) {
                    numbers.typed = typed;
                }
                Action::None
            }
            Message::Activity(prompt::ActivityMessage::AttachPhone(id)) => {
                let Some(numbers) = self.phones.get_mut(&id) else { return Action::None };
                let number = numbers.typed.trim().to_owned();
                if number.is_empty() {
                    numbers.error = Some("Type one of your phone numbers, with + and the country code.".into());
                    return Action::None;
                }
                numbers.error = None;
                self.send_phone(&id, String::new(), PhoneAction::Attach { number }, context)
            }
            Message::Activity(prompt::ActivityMessage::DetachPhone(id, number)) => {
                if let Some(numbers) = self.phones.get_mut(&id) {
                    numbers.error = None;
                }
                self.send_phone(&id, String::new(), PhoneAction::Detach { number }, context)
            }
            Message::Ring(request, message) => self.ring(&request, message, context),
            Message::PhoneSent(account, request, result) => {
                if let Err(error) = result {
                    self.phone_failed(&account, &request, error.to_string());
                }
                Action::None
            }
            Message::TokenRemoved(result) => {
                let text = match result {
                    Ok(title) => format!("Removed {title}"),
                    Err(error) => format!("Not removed: {error}"),
                };
                let task = match context.vault {
                    Some(vault) => self.vault_changed(vault, true),
                    None => Task::none(),
                };
                Action::Toast(text, task)
            }
            Message::ListenersRead(Sensitive(result)) => {
                match result {
                    Ok(stored) => {
                        for s in &stored {
                            self.titles.entry(s.account.clone()).or_insert_with(|| format!("{} ({})", s.organization, s.user));
                            if s.listener.is_ok() {
                                self.registrations.remove(&s.account);
                            }
                        }
                        self.listeners = stored;
                    }
                    Err(error) => eprintln!("countersign: {error}"),
                }
                // A device connection whose account now has a listener gives way to it.
                let listening: Vec<Id> = self.listeners.iter().filter(|s| s.listener.is_ok()).map(|s| s.account.clone()).collect();
                self.devices.retain(|(id, _)| !listening.contains(id));
                Action::None
            }
            Message::RetryListeners => Action::Run(self.read_listeners()),
            Message::ListenerDropped(result) => match (result, context.vault) {
                // Unlocked: a new key at once, the device key meanwhile.
                (Ok(_), Some(vault)) => Action::Run(self.opened(vault, true)),
                (Ok(_), None) => Action::None,
                (Err(error), _) => {
                    eprintln!("countersign: {error}");
                    Action::None
                }
            },
            Message::Registered(id, result) => match result {
                // Removed meanwhile: its new listener goes too.
                Ok(_) if !self.seen.iter().any(|seen| seen.starts_with(&format!("{id} "))) => {
                    let (path, keep) = (self.vault.clone(), self.seen_accounts());
                    let read = self.read_listeners();
                    Action::Run(
                        Task::perform(
                            blocking(move || {
                                listeners::retain(&path, &keep, Keyring::system().ok().as_ref()).map(|_| ()).map_err(jobs::Error::from)
                            }),
                            Message::Recorded,
                        )
                        .chain(read),
                    )
                }
                Ok(_) => Action::Run(self.read_listeners()),
                Err(error) => {
                    eprintln!("countersign: no listener key for {}: {error}", self.titles.get(&id).map_or("an account", String::as_str));
                    self.registrations.insert(id, Registration::Failed(error.to_string()));
                    Action::None
                }
            },
            // Read for an unlock that a lock has undone since: not kept.
            Message::HistoryRead(_) if context.vault.is_none() => Action::None,
            Message::HistoryRead(Sensitive(result)) => {
                match result {
                    Ok(history) => {
                        let mut activity = prompt::fold(&history.records);
                        // What arrived before the journal could be read stays.
                        for item in &self.activity {
                            if !activity.iter().any(|a| a.request == item.request) {
                                activity.insert(0, item.clone());
                            }
                        }
                        self.activity = activity;
                        self.broken = history.broken;
                        if let Some(broken) = &self.broken {
                            eprintln!("countersign: {broken}");
                            return Action::Toast(format!("Warning: {broken}. See Sign-in activity."), Task::none());
                        }
                    }
                    Err(error) => eprintln!("countersign: the sign-in history could not be read: {error}"),
                }
                Action::None
            }
            Message::Recorded(result) => {
                if let Err(error) = result {
                    eprintln!("countersign: not recorded in the sign-in history: {error}");
                }
                Action::None
            }
            Message::ClockSynchronized(synchronized) => {
                self.clock.synchronized = synchronized;
                Action::None
            }
        }
    }

    /// Appends to the journal off the UI thread.
    fn record(&self, record: journal::Record) -> Task<Message> {
        let path = self.vault.clone();
        Task::perform(
            blocking(move || match journal::append(&path, &record) {
                // No journal yet (the vault was never open since the account
                // came): the activity list still has it for this session.
                Err(journal::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other.map_err(jobs::Error::from),
            }),
            Message::Recorded,
        )
    }

    /// Sets a request's outcome in the activity list and the journal.
    fn conclude(&mut self, request: &str, outcome: Outcome, detail: &str, now: u64) -> Task<Message> {
        let Some(item) = self.activity.iter_mut().find(|a| a.request == request) else { return Task::none() };
        let record = item.then(outcome, detail, now as i64);
        item.event = outcome;
        item.detail = detail.to_owned();
        self.record(record)
    }

    /// One connection changed, or a request or verdict arrived.
    fn push(&mut self, id: Id, update: Update, context: Context<'_>) -> Action {
        match update {
            Update::Connecting => {
                self.connections.insert(id, Connection::Connecting);
            }
            Update::Connected(sender) => {
                self.connections.insert(id, Connection::Connected(sender));
            }
            Update::ClockOffset(offset) => {
                if let Some(title) = self.titles.get(&id) {
                    self.clock.observe(title, offset);
                }
                self.offsets.insert(id, offset);
            }
            Update::Refused { reason, retry_in, key }
                if self.listeners.iter().any(|s| s.account == id && s.listener.as_ref().is_ok_and(|l| l.key.public() == key)) =>
            {
                // The server no longer takes this listener key (replaced
                // elsewhere, its database restored): it is dropped, and a new
                // one is registered now if the vault is unlocked, else at the
                // next unlock.
                eprintln!(
                    "countersign: the server refused {}'s listener key: {reason}",
                    self.titles.get(&id).map_or("an account", String::as_str)
                );
                self.listeners.retain(|s| s.account != id);
                self.registrations.insert(id.clone(), Registration::Failed(format!("the server refused its listener key ({reason})")));
                self.connections.insert(id.clone(), Connection::Offline { reason, retry_at: retry_at(context.now, retry_in) });
                let path = self.vault.clone();
                return Action::Run(Task::perform(
                    blocking(move || {
                        let keyring = if listeners::in_keyring(&path) { Keyring::system().ok() } else { None };
                        listeners::remove(&path, &id, &key, keyring.as_ref()).map(|_| id).map_err(jobs::Error::from)
                    }),
                    Message::ListenerDropped,
                ));
            }
            Update::Refused { reason, retry_in, .. } | Update::Disconnected { reason, retry_in } => {
                // An answer in flight may be lost with the connection: let the user answer again.
                for prompt in self.prompts.iter_mut().filter(|p| p.account == id && p.busy) {
                    prompt.busy = false;
                    prompt.error = Some("The connection dropped before the server confirmed; answer again once it is back.".into());
                }
                for ring in self.rings.iter_mut().filter(|r| r.account == id && r.busy) {
                    ring.busy = false;
                    ring.error = Some("The connection dropped before the server confirmed; answer again once it is back.".into());
                }
                self.connections.insert(id, Connection::Offline { reason, retry_at: retry_at(context.now, retry_in) });
            }
            Update::Event(Event::Challenge(challenge)) => return self.arrived(id, challenge, context),
            Update::Event(Event::Result { challenge_id, accepted, status, reason })
                if self.rings.iter().any(|r| r.account == id && r.id() == challenge_id) =>
            {
                return self.ring_decided(&id, &challenge_id, accepted, &status, &reason);
            }
            Update::Event(Event::Result { challenge_id, accepted, status, reason }) => {
                return self.decided(&id, challenge_id, accepted, &status, &reason, context);
            }
            Update::Event(Event::Alive | Event::ListenerRegistered(_)) => {}
            Update::Event(Event::Phones { numbers, refused }) => {
                let title = self.titles.get(&id).cloned().unwrap_or_default();
                let entry = self.phones.entry(id).or_default();
                // Said only in answer to this window's own request, not at each connection.
                let asked = std::mem::take(&mut entry.asked);
                entry.numbers = numbers;
                if let Some(why) = refused {
                    entry.error = Some(format!("Refused: {why}"));
                } else if asked {
                    entry.error = None;
                    entry.typed.clear();
                    let said = if entry.numbers.is_empty() { "no number".to_owned() } else { entry.numbers.join(", ") };
                    return Action::Toast(format!("{title} answers texts and calls for {said}"), Task::none());
                }
            }
            Update::Event(Event::Text(message)) => {
                let deadline = self.deadline_of(&id, message.created_at, message.expires_at, context.now);
                return self.rang(Ring::text(id, String::new(), message, deadline), context);
            }
            Update::Event(Event::Call(call)) => {
                let deadline = self.deadline_of(&id, call.created_at, call.expires_at, context.now);
                return self.rang(Ring::call(id, String::new(), call, deadline), context);
            }
            Update::Event(Event::Dropped(reason)) => {
                // A forged or misaddressed message: never shown, only logged.
                eprintln!("countersign: {reason}");
            }
        }
        Action::None
    }

    /// When a text or call made at `created_at` that ends at `expires_at`
    /// (`account`'s server's clock) ends by ours, by a challenge's rule.
    fn deadline_of(&self, account: &Id, created_at: i64, expires_at: i64, now: u64) -> i64 {
        crate::push::protocol::deadline(created_at, expires_at, now as i64, self.offsets.get(account).copied())
    }

    /// A text or call arrived: queued after the requests, read at once when
    /// the vault is unlocked, and notified.
    fn rang(&mut self, mut ring: Ring, context: Context<'_>) -> Action {
        let now = context.now as i64;
        if ring.deadline <= now || self.rings.iter().any(|r| r.id() == ring.id()) {
            return Action::None;
        }
        ring.title = self.titles.get(&ring.account).cloned().unwrap_or_default();
        let locked = context.vault.is_none();
        let (summary, body) = match &ring.kind {
            phone::Kind::Text { text, .. } => (
                format!("Text message to {}", crate::push::printable(&text.to)),
                if locked { "Unlock Countersign to read it." } else { "Open Countersign to read its code." },
            ),
            phone::Kind::Call { call, .. } => (
                format!("Incoming call to {}", crate::push::printable(&call.to)),
                if locked { "Unlock Countersign to answer it." } else { "Open Countersign to answer it." },
            ),
        };
        let body = format!("{}\n{body}", desktop::plain(&ring.title, 120));
        let seconds = (ring.deadline - now).clamp(1, 600) as u32;
        let notify = desktop::notify_about(ring.id().to_owned(), summary, body, seconds).map(Message::Notice);
        self.rings.push_back(ring);
        if let Some(vault) = context.vault {
            self.read_texts(vault);
        }
        Action::Run(notify)
    }

    /// Opens the texts not read yet with their devices' keys (the vault is
    /// unlocked). A vault busy with a job is not waited for on the UI
    /// thread: the next second's tick tries again.
    pub fn read_texts(&mut self, vault: &SharedVault) {
        if !self.rings.iter().any(|r| matches!(r.kind, phone::Kind::Text { body: None, .. })) {
            return;
        }
        let Ok(guard) = vault.try_lock() else { return };
        for ring in &mut self.rings {
            let phone::Kind::Text { text, body: body @ None } = &mut ring.kind else { continue };
            let link = guard.entries().iter().find(|e| e.id == ring.account).and_then(|e| e.push.as_ref());
            match link.map(|link| text.open(&link.device_key)) {
                Some(Ok(opened)) => *body = Some(opened),
                Some(Err(error)) => eprintln!("countersign: text {} could not be read: {error}", crate::push::printable(&text.id)),
                None => {}
            }
        }
    }

    /// A message of the text or call on screen.
    fn ring(&mut self, request: &str, message: phone::Message, context: Context<'_>) -> Action {
        // Only the ring on screen (the first, with no request before it) takes input.
        if !self.prompts.is_empty() {
            return Action::None;
        }
        let Some(ring) = self.rings.front_mut().filter(|r| r.id() == request) else { return Action::None };
        match ring.update(message) {
            phone::Action::None => Action::None,
            phone::Action::Copy => match ring.code() {
                Some(code) => Action::Copy(Sensitive(zeroize::Zeroizing::new(code.to_owned())), ring.title.clone()),
                None => Action::None,
            },
            phone::Action::Dismiss => {
                self.rings.pop_front();
                Action::None
            }
            phone::Action::Send(action) => {
                let account = ring.account.clone();
                self.send_phone(&account, request.to_owned(), action, context)
            }
        }
    }

    /// Signs `action` with `account`'s device key and sends it through the
    /// account's connection (a receive-only one carries it too).
    fn send_phone(&mut self, account: &Id, request: String, action: PhoneAction, context: Context<'_>) -> Action {
        let Some(vault) = context.vault.cloned() else {
            self.phone_failed(account, &request, "Unlock Countersign to answer.".into());
            return Action::None;
        };
        let Some(Connection::Connected(sender)) = self.connections.get(account) else {
            let why = "Not connected to your organisation's server right now; it is retrying. Try again in a moment.";
            self.phone_failed(account, &request, why.into());
            return Action::None;
        };
        let sender = sender.clone();
        if request.is_empty()
            && let Some(numbers) = self.phones.get_mut(account)
        {
            numbers.asked = true;
        }
        // Dated by the server's clock, which takes only a request made just now.
        // (The offset was measured against the real clock, not the inbox's.)
        let at = (super::now_unix() as i64).saturating_add(self.offsets.get(account).copied().unwrap_or(0));
        let (account, sent, sent_account) = (account.clone(), request.clone(), account.clone());
        Action::Run(Task::perform(
            async move {
                let envelope = blocking(move || {
                    let vault = jobs::lock(&vault)?;
                    let link =
                        vault.entries().iter().find(|e| e.id == account).and_then(|e| e.push.as_ref()).ok_or(jobs::Error::AccountGone)?;
                    Ok::<_, jobs::Error>(link.sign_phone(action, at))
                })
                .await?;
                sender
                    .send(push_client::Answer::Phone { id: request, envelope })
                    .await
                    .map_err(|_| SendError::Job(jobs::Error::ConnectionClosed))
            },
            move |result| Message::PhoneSent(sent_account.clone(), sent.clone(), result),
        ))
    }

    /// A request about text or call `request` (empty: a number attached or
    /// detached) of `account` did not go out: said where it was made.
    fn phone_failed(&mut self, account: &Id, request: &str, why: String) {
        match self.rings.iter_mut().find(|r| &r.account == account && r.id() == request && !request.is_empty()) {
            Some(ring) => {
                ring.busy = false;
                ring.error = Some(why);
            }
            None => {
                if let Some(numbers) = self.phones.get_mut(account) {
                    numbers.error = Some(why);
                    numbers.asked = false;
                }
            }
        }
    }

    /// The server's verdict on a text's reply or a call's keys.
    fn ring_decided(&mut self, account: &Id, request: &str, accepted: bool, status: &Status, reason: &str) -> Action {
        let Some(index) = self.rings.iter().position(|r| &r.account == account && r.id() == request) else { return Action::None };
        if matches!(status, Status::Pending | Status::Unknown) {
            // A wrong code, keys that decide nothing yet, a refusal: it stays.
            if let Some(ring) = self.rings.get_mut(index) {
                ring.busy = false;
                ring.error = Some(if reason.is_empty() { "Not recorded.".to_owned() } else { crate::push::printable(reason) });
            }
            return Action::None;
        }
        self.rings.remove(index);
        let label = match status {
            Status::Approved => "Approved",
            Status::Denied => "Denied",
            Status::Reported => "Reported",
            Status::Expired => "Expired",
            _ => "Closed",
        };
        let text = match (accepted, reason.is_empty()) {
            (true, true) => label.to_owned(),
            (true, false) => format!("{label}: {}", crate::push::printable(reason)),
            (false, _) => format!("Already {}", label.to_lowercase()),
        };
        Action::Toast(text, Task::none())
    }

    fn arrived(&mut self, id: Id, challenge: crate::push::Challenge, context: Context<'_>) -> Action {
        let now = context.now as i64;
        let known = self.prompts.iter().any(|p| p.challenge.id == challenge.id)
            || self.activity.iter().any(|a| a.request == challenge.id && a.event != Outcome::Received);
        // privacyIDEA's times are already this computer's (when first seen).
        let offset = if self.tokens.iter().any(|t| t.id == id) { None } else { self.offsets.get(&id).copied() };
        let deadline = challenge.deadline(now, offset);
        if known || deadline <= now {
            return Action::None;
        }
        let shield = self.shields.entry(id.clone()).or_default();
        let flagged = shield.observe(challenge.created_at).then(|| shield.warning());
        let account = self.titles.get(&id).cloned().unwrap_or_else(|| challenge.organization.clone());
        let mut record = Task::none();
        if !self.activity.iter().any(|a| a.request == challenge.id) {
            let item = Activity {
                request: challenge.id.clone(),
                at: now,
                account,
                app: challenge.app.clone(),
                user: challenge.user.clone(),
                ip: challenge.ip.clone(),
                location: challenge.location.clone(),
                event: Outcome::Received,
                detail: String::new(),
            };
            record = self.record(item.clone());
            self.activity.insert(0, item);
        }
        let seconds = (deadline - now).clamp(1, 600) as u32;
        let notify = desktop::notify(&challenge, seconds, context.vault.is_none()).map(Message::Notice);
        self.prompts.push_back(Prompt::new(id, challenge, deadline, flagged));
        let focus = if self.prompts.len() == 1 && context.window && context.vault.is_some() { self.focus() } else { Task::none() };
        Action::Run(Task::batch([record, notify, focus]))
    }

    fn decided(
        &mut self,
        account: &Id,
        challenge_id: String,
        accepted: bool,
        status: &Status,
        reason: &str,
        context: Context<'_>,
    ) -> Action {
        // A connection speaks only for its own account's requests: waiting
        // ones, or ones the activity list has under its name.
        let title = self.titles.get(account);
        let ours = self.prompts.iter().any(|p| &p.account == account && p.challenge.id == challenge_id)
            || self.activity.iter().any(|a| a.request == challenge_id && Some(&a.account) == title);
        let theirs = self.prompts.iter().any(|p| &p.account != account && p.challenge.id == challenge_id);
        if !challenge_id.is_empty() && (theirs || !ours) {
            return Action::None;
        }
        // A refusal while the request is still open (a PIN was missing, the
        // server failed) leaves the prompt to answer again.
        if !accepted && matches!(status, Status::Pending | Status::Unknown) {
            if let Some(prompt) = self
                .prompts
                .iter_mut()
                .find(|p| &p.account == account && (p.challenge.id == challenge_id || challenge_id.is_empty() && p.busy))
            {
                prompt.busy = false;
                prompt.error = Some(format!("Not recorded: {reason}"));
            }
            return Action::None;
        }
        let (outcome, detail) = match (accepted, status) {
            (true, Status::Approved) => (Outcome::Approved, reason.to_owned()),
            (true, Status::Denied) => (Outcome::Denied, reason.to_owned()),
            (true, Status::Reported) => (Outcome::Reported, String::new()),
            (true, Status::Closed) => (Outcome::Closed, "no longer open on the server".to_owned()),
            (_, Status::Expired) => (Outcome::Expired, String::new()),
            (_, other) => (
                Outcome::Closed,
                format!("not recorded: {reason}{}", if *other == Status::Unknown { String::new() } else { format!(" ({other})") }),
            ),
        };
        let was_first = self.prompts.front().is_some_and(|p| p.challenge.id == challenge_id);
        self.prompts.retain(|p| !(&p.account == account && p.challenge.id == challenge_id));
        let record = self.conclude(&challenge_id, outcome, &detail, context.now);
        let text = if detail.is_empty() { outcome.label().to_owned() } else { format!("{}: {detail}", outcome.label()) };
        // The next request in the queue gets the keyboard.
        let focus = if was_first && context.window { self.focus() } else { Task::none() };
        Action::Toast(text, Task::batch([record, focus]))
    }

    fn answer(&mut self, request: &str, message: prompt::Message, context: Context<'_>) -> Action {
        // Only the request on screen (the first) takes input.
        let Some(prompt) = self.prompts.front_mut().filter(|p| p.challenge.id == request) else { return Action::None };
        let prompt::Action::Answer { decision, number, password, presence } = prompt.update(message) else { return Action::None };
        let Some(vault) = context.vault.cloned() else {
            prompt.busy = false;
            prompt.error = Some("Unlock Countersign to answer.".into());
            return Action::None;
        };
        let sender = match self.connections.get(&prompt.account) {
            Some(Connection::Connected(sender)) => sender.clone(),
            _ => {
                prompt.busy = false;
                prompt.error = Some("Not connected to your organisation's server right now; it is retrying. Try again in a moment.".into());
                return Action::None;
            }
        };
        let (path, account, challenge_id, now) =
            (self.vault.clone(), prompt.account.clone(), prompt.challenge.id.clone(), context.now as i64);
        let token = self.tokens.iter().any(|t| t.id == account);
        let user_verified = password.is_some();
        let sent = challenge_id.clone();
        Action::Run(Task::perform(
            async move {
                if let Some(password) = password {
                    blocking(move || vault::Locked::read(&path)?.unlock_with_password(&password).map(|_| ())).await.map_err(
                        |e| match e {
                            vault::Error::WrongPassword => SendError::WrongPassword,
                            other => SendError::Job(other.into()),
                        },
                    )?;
                }
                let answer = if token {
                    Answer::Token { challenge_id, decision, presence }
                } else {
                    // Signed with the device key, which only the unlocked vault holds.
                    blocking(move || {
                        let vault = jobs::lock(&vault)?;
                        let link = vault
                            .entries()
                            .iter()
                            .find(|e| e.id == account)
                            .and_then(|e| e.push.as_ref())
                            .ok_or(jobs::Error::AccountGone)?;
                        Ok::<_, jobs::Error>(Answer::Signed {
                            envelope: link.sign_response(&challenge_id, decision, number, user_verified, now),
                            challenge_id,
                        })
                    })
                    .await?
                };
                sender.send(answer).await.map_err(|_| SendError::Job(jobs::Error::ConnectionClosed))
            },
            move |result| Message::Sent(sent.clone(), result),
        ))
    }

    /// Requests that ran out of time leave the queue and say so.
    pub fn tick(&mut self, now: u64) -> Task<Message> {
        let mut tasks = Vec::new();
        while let Some(index) = self.prompts.iter().position(|p| p.seconds_left(now as i64) == 0) {
            if let Some(expired) = self.prompts.remove(index) {
                tasks.push(self.conclude(&expired.challenge.id, Outcome::Expired, "", now));
            }
        }
        self.rings.retain(|r| r.seconds_left(now as i64) > 0);
        Task::batch(tasks)
    }

    /// Takes away the notifications of requests that left the queue
    /// (answered here or elsewhere, expired, removed).
    pub fn sweep(&mut self) -> Task<Message> {
        let gone: Vec<String> = self
            .notifications
            .keys()
            .filter(|id| !self.prompts.iter().any(|p| &p.challenge.id == *id) && !self.rings.iter().any(|r| r.id() == id.as_str()))
            .cloned()
            .collect();
        Task::batch(
            gone.into_iter()
                .filter_map(|id| self.notifications.remove(&id))
                .map(|notification| Task::future(desktop::close(notification)).discard()),
        )
    }

    /// The first request's prompt, else the first text or call, with the
    /// number of others waiting.
    pub fn view_prompt(&self, now: u64) -> Option<Element<'_, Message>> {
        let others = self.waiting().saturating_sub(1);
        if let Some(prompt) = self.prompts.front() {
            let request = prompt.challenge.id.clone();
            return Some(prompt.view(now as i64, others).map(move |message| Message::Prompt(request.clone(), message)));
        }
        self.rings.front().map(|ring| {
            let request = ring.id().to_owned();
            ring.view(now as i64, others).map(move |message| Message::Ring(request.clone(), message))
        })
    }

    /// Denies the request on screen (Ctrl+D).
    pub fn deny_first(&self) -> Option<Message> {
        self.prompts
            .front()
            .map(|prompt| Message::Prompt(prompt.challenge.id.clone(), prompt::Message::Answer(crate::push::Decision::Deny)))
    }

    /// The activity page.
    pub fn view_activity(&self, now: u64) -> Element<'_, Message> {
        let sources = self.sources(now);
        prompt::activity_view(&self.activity, &sources, self.confirm_remove.as_ref(), self.broken.as_ref()).map(Message::Activity)
    }
}
