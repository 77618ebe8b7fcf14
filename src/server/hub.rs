//! Who is connected: a queue per connected device for challenges, and a
//! broadcast of decided sign-ins for long-polling status requests.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::{broadcast, mpsc};

use crate::push::ServerMessage;

/// A message for a device's session; a challenge names its sign-in, so a
/// session that already sent that sign-in from the database skips it.
pub struct Queued {
    pub signin: Option<String>,
    pub message: ServerMessage,
}

pub struct Hub {
    devices: Mutex<HashMap<String, Vec<mpsc::UnboundedSender<Queued>>>>,
    decided: broadcast::Sender<String>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub { devices: Mutex::new(HashMap::new()), decided: broadcast::channel(1024).0 }
    }
}

impl Hub {
    /// Registers a connection of `device`; messages sent to the device
    /// arrive on the receiver, which ends when the device is disconnected.
    pub fn connect(&self, device: &str) -> mpsc::UnboundedReceiver<Queued> {
        let (sender, receiver) = mpsc::unbounded_channel();
        if let Ok(mut devices) = self.devices.lock() {
            devices.entry(device.to_owned()).or_default().push(sender);
        }
        receiver
    }

    /// Sends to every live connection of `device`; false when none is connected.
    pub fn send(&self, device: &str, signin: Option<&str>, message: &ServerMessage) -> bool {
        let Ok(mut devices) = self.devices.lock() else { return false };
        let Some(senders) = devices.get_mut(device) else { return false };
        senders.retain(|sender| sender.send(Queued { signin: signin.map(str::to_owned), message: message.clone() }).is_ok());
        !senders.is_empty()
    }

    /// Forgets the closed connections of `device` (called when one ends).
    pub fn prune(&self, device: &str) {
        if let Ok(mut devices) = self.devices.lock()
            && let Some(senders) = devices.get_mut(device)
        {
            senders.retain(|sender| !sender.is_closed());
            if senders.is_empty() {
                devices.remove(device);
            }
        }
    }

    /// Ends every open session of `device` (a revoked device); how many.
    pub fn disconnect(&self, device: &str) -> usize {
        self.devices.lock().ok().and_then(|mut devices| devices.remove(device)).map_or(0, |senders| senders.len())
    }

    /// Ends every session (the server is stopping).
    pub fn close_all(&self) {
        if let Ok(mut devices) = self.devices.lock() {
            devices.clear();
        }
    }

    /// Says that sign-in `id` was decided.
    pub fn decided(&self, id: &str) {
        let _ = self.decided.send(id.to_owned());
    }

    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.decided.subscribe()
    }
}
