//! `softphone`: the msipphone softphone and, in [`config`], the one authority
//! on MicroSIP's file formats (`microsip.ini` and `Contacts.xml`).
//!
//! The provisioner validates and writes every file through [`config`], so a
//! format rule lives in exactly one place. [`sip`] is the sans-IO SIP user
//! agent; [`control`] is MicroSIP's command line and
//! command set on a socket only the same user can reach.

pub mod app;
pub mod config;
pub mod control;
pub mod media;
pub mod sip;
#[cfg(feature = "window")]
pub mod ui;
