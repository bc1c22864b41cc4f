//! What a part of the window asks the window to do.

use crate::control::Command;

/// A request from a panel (contacts, history, chat, settings) or the main
/// view to the window: commands go to the phone's core, exactly as `ctl`
/// sends them; the rest changes what the window shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UiAction {
    /// Carry out a command on the phone (the reply shows in the status line).
    Run(Command),
    /// Open the chat with this number or URI.
    OpenChat(String),
}
