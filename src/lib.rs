//! Countersign's domain library: codes, enrollment URIs, the encrypted vault,
//! scanning, and moving accounts in and out.
//! It imports no GUI or server framework; the front ends sit on top of it.

pub mod account;
pub mod backup;
#[cfg(unix)]
pub mod instance;
pub mod manual;
pub mod migration;
pub mod otp;
pub mod privacyidea;
pub mod push;
pub mod scan;
pub mod secret;
pub mod settings;
pub mod transfer;
pub mod uri;
pub mod vault;

#[cfg(feature = "gui")]
pub mod gui;
#[cfg(feature = "server")]
pub mod server;
