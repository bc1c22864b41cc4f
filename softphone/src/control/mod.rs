//! `softphone::control`: MicroSIP's automation surface for the running
//! phone, reachable by the same user only.
//!
//! - [`command`]: the command language (plain, DDE and `action:` forms);
//! - [`reply`]: JSON replies and their codes;
//! - [`notice`]: what the server tells watchers (a window, `Subscribe`)
//!   after each command, and the requests to the window;
//! - [`args`]: MicroSIP's command line (`msipphone 5551234`, `/answer`, ...);
//! - [`ipc`]: the Unix socket / Windows named pipe and single-instance rule;
//! - [`server`]: carries commands out on a [`crate::app::PhoneHandle`];
//! - [`client`]: `msipphone ctl` and the hand-over of a second invocation.
//!
//! Protocol: a client sends one UTF-8 request line (at most
//! [`command::MAX_LINE`] bytes) and reads one JSON reply line; the request
//! `Subscribe` instead turns the connection into a stream of JSON event
//! lines (the user agent's events as they happen, and a
//! [`notice::Notice`] after each command carried out; nothing is polled).

pub mod args;
pub mod client;
pub mod command;
pub mod ipc;
pub mod notice;
pub mod reply;
pub mod server;

pub use command::{CallId, Command, ParseError};
pub use notice::{Notice, WindowRequest, WindowRequests};
pub use reply::{Reply, ReplyCode};
