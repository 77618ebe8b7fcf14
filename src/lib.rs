//! Countersign's domain library: codes, enrollment URIs and the encrypted vault.
//! It imports no GUI or server framework; the front ends sit on top of it.

pub mod account;
pub mod migration;
pub mod otp;
pub mod scan;
pub mod secret;
pub mod settings;
pub mod uri;
pub mod vault;

#[cfg(feature = "gui")]
pub mod gui;
