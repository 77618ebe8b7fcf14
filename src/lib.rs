//! Countersign's domain library: codes, enrollment URIs, the encrypted vault,
//! scanning, and moving accounts in and out.
//! It imports no GUI or server framework; the front ends sit on top of it.

// Nothing input can reach may panic: unwrap and expect are for tests.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod account;
mod atomic;
pub mod autostart;
pub mod backup;
pub mod base64;
pub mod clock;
#[cfg(unix)]
pub mod instance;
pub mod journal;
pub mod listeners;
pub mod migration;
pub mod otp;
#[cfg(all(feature = "server", unix))]
pub mod pam;
pub mod privacyidea;
pub mod process;
pub mod push;
#[cfg(feature = "client")]
pub mod reach;
#[cfg(feature = "client")]
pub mod reconnect;
pub mod scan;
#[cfg(feature = "gui")]
pub mod screen;
pub mod secret;
pub mod settings;
pub mod transfer;
pub mod uri;
pub mod vault;

#[cfg(feature = "gui")]
pub mod gui;
#[cfg(feature = "server")]
pub mod server;
