//! Several instances on one PostgreSQL database behaving as one server.
//!
//! The database is the truth: every decision is a conditional `UPDATE`
//! (answered exactly once, whichever instance took the answer), blocks and
//! TOTP steps are rows, rate limits are shared ([`super::store::Store::allow_event`]).
//! What is only in one process's memory is who is connected to it
//! ([`super::hub`]). Events say what changed, so that each instance can act
//! for the devices and long-polls it holds:
//!
//! - Each event is applied at once to the instance it happened on, then
//!   published with `pg_notify('countersign_events', JSON)`; the other
//!   instances `LISTEN` and apply it (their own come back and are skipped).
//!   The JSON is a [`Note`]: `{"origin": INSTANCE, "event": {"type": …}}`.
//! - A notification missed while an instance's `LISTEN` connection was down
//!   is caught up from the tables when it is back: every session there looks
//!   for pending sign-ins it has not sent, and every long-poll looks again.
//! - Each instance renews its row in `instances` every [`HEARTBEAT`]; push
//!   sessions are rows too, so `delivered` counts devices connected to any
//!   live instance. An instance unseen for [`STALE`] (killed) is forgotten.
//!
//! On SQLite (one process) the same events are applied locally only.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgListener, PgPool};

use super::log;
use super::store::Signin;
use super::{AppState, api, now};
use crate::push::{ServerMessage, Status};

/// The PostgreSQL notification channel.
pub const CHANNEL: &str = "countersign_events";
/// How often an instance says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// An instance not seen for this long (seconds) is dead: its sessions no
/// longer count.
pub const STALE: i64 = 20;

/// What changed, for the instances that hold the devices or waiters concerned.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A new sign-in: pushed to the user's devices connected here.
    /// `created_ms`: when, in Unix milliseconds (for the delivery latency).
    Created { signin: Signin, organization: String, created_ms: i64 },
    /// A sign-in was decided: long-polls on it answer.
    Decided { id: String },
    /// The user's devices (but `except`) close their prompt for `id`.
    Told { user: String, except: String, id: String, status: Status, reason: String },
    /// A device was revoked: its sessions end.
    Revoked { device: String },
    /// A text or call for a virtual phone: sent to the device's sessions.
    Phone { device: String, message: ServerMessage },
}

/// An event as sent between instances.
#[derive(Debug, Serialize, Deserialize)]
pub struct Note {
    pub origin: String,
    pub event: Event,
}

/// The result message that closes a device's prompt.
pub fn result(challenge_id: &str, accepted: bool, status: Status, reason: &str) -> ServerMessage {
    ServerMessage::Result { challenge_id: challenge_id.into(), accepted, status, reason: reason.into() }
}

impl AppState {
    /// Applies `event` here, then tells the other instances. A failed
    /// notification is logged: the others catch up when their sessions
    /// reconnect or their long-polls look again (at the latest at expiry).
    pub async fn publish(&self, event: Event) {
        self.apply(&event);
        let Some(pool) = self.store.postgres() else { return };
        let note = Note { origin: self.instance.clone(), event };
        let Ok(payload) = serde_json::to_string(&note) else { return };
        if let Err(error) = sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(&payload).execute(pool).await {
            self.metrics.database_error();
            log::error(&format!("cannot tell the other instances ({}): {error}", kind(&note.event)));
        }
    }

    /// Acts on `event` for what this instance holds.
    pub fn apply(&self, event: &Event) {
        match event {
            Event::Created { signin, organization, created_ms } => {
                for device in self.hub.devices_of(&signin.user) {
                    self.hub.challenge(&device, &signin.id, &api::challenge_message(self, signin, organization, &device), *created_ms);
                }
            }
            Event::Decided { id } => self.hub.decided(id),
            Event::Told { user, except, id, status, reason } => {
                for device in self.hub.devices_of(user).iter().filter(|device| *device != except) {
                    self.hub.send(device, &result(id, true, status.clone(), reason));
                }
            }
            Event::Revoked { device } => {
                self.hub.disconnect(device);
            }
            Event::Phone { device, message } => {
                self.hub.send(device, message);
            }
        }
    }
}

fn kind(event: &Event) -> &'static str {
    match event {
        Event::Created { .. } => "created",
        Event::Decided { .. } => "decided",
        Event::Told { .. } => "told",
        Event::Revoked { .. } => "revoked",
        Event::Phone { .. } => "phone",
    }
}

/// Keeps this instance's row fresh, forgets dead instances, and prunes
/// what is past `retention_days` at start and hourly.
pub async fn heartbeat(state: AppState) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_prune = 0;
    loop {
        tick.tick().await;
        let now = now();
        if let Err(error) = state.store.heartbeat(&state.instance, now, now - STALE).await {
            state.metrics.database_error();
            log::error(&format!("heartbeat: {error}"));
        }
        if state.config.retention_days > 0 && now >= next_prune {
            next_prune = now + 3600;
            match state.store.prune(now - i64::from(state.config.retention_days) * 86_400).await {
                Ok(0) => {}
                Ok(rows) => log::info(&format!(
                    "retention: removed {rows} sign-ins and activations older than {} days",
                    state.config.retention_days
                )),
                Err(error) => {
                    state.metrics.database_error();
                    log::error(&format!("retention: {error}"));
                }
            }
        }
    }
}

/// Listens for the other instances' events, for as long as the server
/// runs; reconnects (and catches up) when the link drops.
pub async fn listen(state: AppState, pool: PgPool) {
    let mut first = true;
    loop {
        match subscribe(&pool).await {
            Ok(mut listener) => {
                if !first {
                    log::info("listening to the other instances again; catching up");
                }
                first = false;
                // Whatever was missed while not listening is in the tables.
                state.hub.resync();
                state.hub.decided(super::hub::EVERY_SIGNIN);
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notification)) => match serde_json::from_str::<Note>(notification.payload()) {
                            Ok(note) if note.origin == state.instance => {}
                            Ok(note) => state.apply(&note.event),
                            Err(error) => log::warn(&format!("an event this version does not know: {error}")),
                        },
                        Ok(None) => {
                            log::warn("lost the link to the other instances; reconnecting");
                            break;
                        }
                        Err(error) => {
                            log::error(&format!("the link to the other instances failed: {error}"));
                            break;
                        }
                    }
                }
            }
            Err(error) => {
                state.metrics.database_error();
                log::error(&format!("cannot listen to the other instances: {error}"));
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_names_its_origin_and_its_event_by_type() {
        let note = Note { origin: "i1".into(), event: Event::Decided { id: "si_1".into() } };
        let json = serde_json::to_string(&note).unwrap();
        assert_eq!(json, r#"{"origin":"i1","event":{"type":"decided","id":"si_1"}}"#);
        let told =
            Event::Told { user: "carol".into(), except: "dev_a".into(), id: "si_2".into(), status: Status::Denied, reason: "r".into() };
        let back: Note = serde_json::from_str(&serde_json::to_string(&Note { origin: "i2".into(), event: told }).unwrap()).unwrap();
        assert!(matches!(back.event, Event::Told { status: Status::Denied, .. }));
    }
}
