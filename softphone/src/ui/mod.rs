//! The desktop window end users see (eframe/egui): a client of the same
//! core as the control channel. Every action the window takes is a
//! [`crate::control::Command`] carried out by [`crate::control::server::Server`],
//! so `msipphone ctl` can do whatever the window does, and the events the
//! control channel streams show in the window at once.

pub mod action;
pub mod app;
pub mod calls;
pub mod chat;
pub mod contacts;
pub mod core;
pub mod dialpad;
pub mod display;
pub mod history;
pub mod incoming;
pub mod settings;
pub mod tray;
pub mod window;
pub mod window_prefs;

pub use action::UiAction;
pub use app::PhoneApp;
pub use chat::ChatPanel;
pub use contacts::ContactsPanel;
/// The egui the window is drawn with, for the tests that drive it.
pub use eframe::egui;
pub use history::HistoryPanel;
pub use settings::SettingsDialog;
