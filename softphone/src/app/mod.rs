//! `softphone::app`: the tokio driver. It owns the sockets and the clock
//! and feeds the sans-IO user agent of [`crate::sip`]; nothing in here
//! knows SIP beyond framing streams.

pub mod accounts;
pub mod behavior;
pub mod calllog;
pub mod dialplan;
pub mod handle;
pub mod hooks;
pub mod media_engine;
pub mod net;
pub mod phone;
pub mod ports;
pub mod residency;
pub mod tls;
pub mod webhook;

pub use handle::PhoneHandle;
pub use phone::{start, BehaviorConfig, PhoneConfig, PhoneError};
