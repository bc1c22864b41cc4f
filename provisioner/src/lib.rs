//! `provisioner`: the library behind `msipprov`, which provisions
//! MicroSIP-style softphones. Every file format rule comes from
//! [`softphone::config`]; this crate never formats MicroSIP files itself.

pub mod apply;
pub mod backup;
pub mod bulk;
pub mod bundle;
pub mod busy;
pub mod check;
pub mod exit;
pub mod fetch;
pub mod fsutil;
pub mod handlers;
pub mod keys;
pub mod lint;
pub mod merge;
pub mod new_folder;
pub mod policy;
pub mod remote;
pub mod render;
pub mod state;
pub mod template;
pub mod vars;
