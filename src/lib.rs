//! Countersign: a desktop authenticator. This library is the domain (codes,
//! enrollment URIs, the encrypted vault) plus the command-line front end; it
//! imports no GUI or server framework.

pub mod account;
pub mod cli;
pub mod otp;
pub mod secret;
pub mod uri;
pub mod vault;
