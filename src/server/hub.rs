//! Who is connected to this instance: a queue per connected device for
//! challenges, and a broadcast of decided sign-ins for long-polling status
//! requests. What another instance decides or creates reaches this one
//! through [`super::cluster`], which calls in here.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use tokio::sync::{broadcast, mpsc};

use crate::push::ServerMessage;

/// What a device's session is told to do. Small (a pointer): each idle
/// session's queue holds a block of 32 of them.
pub enum Queued {
    Message(Box<Outgoing>),
    /// Look in the database for pending sign-ins not sent yet: notifications
    /// may have been missed while the link between instances was down.
    Resync,
}

/// A message for a device. A challenge names its sign-in, so a session
/// that already sent that sign-in (from the database) skips it, and the
/// time it was created, for the delivery latency.
pub struct Outgoing {
    pub signin: Option<String>,
    pub message: ServerMessage,
    pub created_ms: Option<i64>,
}

/// Said on the decided broadcast when every waiter should look again.
pub const EVERY_SIGNIN: &str = "*";

#[derive(Default)]
struct Connections {
    /// Per device: its user and its open sessions.
    devices: HashMap<String, (String, Vec<mpsc::UnboundedSender<Queued>>)>,
    /// Per user: their devices connected here.
    users: HashMap<String, HashSet<String>>,
}

impl Connections {
    fn forget(&mut self, device: &str) -> usize {
        let Some((user, senders)) = self.devices.remove(device) else { return 0 };
        if let Some(devices) = self.users.get_mut(&user) {
            devices.remove(device);
            if devices.is_empty() {
                self.users.remove(&user);
            }
        }
        senders.len()
    }
}

pub struct Hub {
    connections: Mutex<Connections>,
    decided: broadcast::Sender<String>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub { connections: Mutex::new(Connections::default()), decided: broadcast::channel(1024).0 }
    }
}

impl Hub {
    /// Registers a connection of `device` (of `user`); messages sent to the
    /// device arrive on the receiver, which ends when the device is
    /// disconnected.
    pub fn connect(&self, device: &str, user: &str) -> mpsc::UnboundedReceiver<Queued> {
        let (sender, receiver) = mpsc::unbounded_channel();
        if let Ok(mut connections) = self.connections.lock() {
            connections.devices.entry(device.to_owned()).or_insert_with(|| (user.to_owned(), Vec::new())).1.push(sender);
            connections.users.entry(user.to_owned()).or_default().insert(device.to_owned());
        }
        receiver
    }

    /// The devices of `user` connected to this instance.
    pub fn devices_of(&self, user: &str) -> Vec<String> {
        self.connections.lock().ok().and_then(|c| c.users.get(user).map(|d| d.iter().cloned().collect())).unwrap_or_default()
    }

    /// Sends `message` to every live connection of `device`; false when none is connected.
    pub fn send(&self, device: &str, message: &ServerMessage) -> bool {
        self.queue(device, || Queued::Message(Box::new(Outgoing { signin: None, message: message.clone(), created_ms: None })))
    }

    /// Sends the challenge of sign-in `signin`, created at `created_ms`
    /// (Unix milliseconds), to every live connection of `device`.
    pub fn challenge(&self, device: &str, signin: &str, message: &ServerMessage, created_ms: i64) -> bool {
        self.queue(device, || {
            Queued::Message(Box::new(Outgoing { signin: Some(signin.to_owned()), message: message.clone(), created_ms: Some(created_ms) }))
        })
    }

    fn queue(&self, device: &str, queued: impl Fn() -> Queued) -> bool {
        let Ok(mut connections) = self.connections.lock() else { return false };
        let Some((_, senders)) = connections.devices.get_mut(device) else { return false };
        senders.retain(|sender| sender.send(queued()).is_ok());
        !senders.is_empty()
    }

    /// Asks every session to look for pending sign-ins it has not sent.
    pub fn resync(&self) {
        if let Ok(connections) = self.connections.lock() {
            for (_, senders) in connections.devices.values() {
                for sender in senders {
                    let _ = sender.send(Queued::Resync);
                }
            }
        }
    }

    /// Forgets the closed connections of `device` (called when one ends).
    pub fn prune(&self, device: &str) {
        if let Ok(mut connections) = self.connections.lock()
            && let Some((_, senders)) = connections.devices.get_mut(device)
        {
            senders.retain(|sender| !sender.is_closed());
            if senders.is_empty() {
                connections.forget(device);
            }
        }
    }

    /// Ends every open session of `device` (a revoked device); how many.
    pub fn disconnect(&self, device: &str) -> usize {
        self.connections.lock().map_or(0, |mut connections| connections.forget(device))
    }

    /// Ends every session (the server is stopping).
    pub fn close_all(&self) {
        if let Ok(mut connections) = self.connections.lock() {
            *connections = Connections::default();
        }
    }

    /// How many devices have a session open here.
    pub fn connected(&self) -> usize {
        self.connections.lock().map_or(0, |connections| connections.devices.len())
    }

    /// Says that sign-in `id` was decided ([`EVERY_SIGNIN`]: look again, all).
    pub fn decided(&self, id: &str) {
        let _ = self.decided.send(id.to_owned());
    }

    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.decided.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_found_by_user_until_they_disconnect() {
        let hub = Hub::default();
        let _first = hub.connect("dev_a", "carol");
        let mut second = hub.connect("dev_b", "carol");
        let _other = hub.connect("dev_c", "dave");
        let mut carols = hub.devices_of("carol");
        carols.sort();
        assert_eq!(carols, ["dev_a", "dev_b"]);
        assert_eq!(hub.connected(), 3);
        hub.resync();
        assert!(matches!(second.try_recv(), Ok(Queued::Resync)));
        assert_eq!(hub.disconnect("dev_b"), 1);
        assert_eq!(hub.devices_of("carol"), ["dev_a"]);
        assert!(second.try_recv().is_err(), "its queue ended");
        assert_eq!(hub.disconnect("dev_a"), 1);
        assert!(hub.devices_of("carol").is_empty());
        assert_eq!(hub.connected(), 1);
    }
}
