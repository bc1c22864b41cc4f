//! What the server tells whoever watches the phone besides the SIP events:
//! a [`Notice`] after each command it carried out (so a window refreshes
//! at once when `ctl Mute` comes over the socket), and the requests to the
//! window (`Show`, `Hide`, `Minimize`) a window receives through
//! [`WindowRequests`].
//!
//! On the `Subscribe` stream a notice is one JSON line, beside the user
//! agent's events (which carry `event` too):
//!
//! ```text
//! {"event":"command","command":"Mute","line":"Mute","code":0,"status":"ok","message":"microphone muted","data":{"audio":{...}}}
//! {"event":"window","request":"show"}
//! ```

use serde::ser::{Serialize, Serializer};
use tokio::sync::broadcast;

use super::command::Command;
use super::reply::Reply;

/// What `Show`, `Hide` and `Minimize` ask the window to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowRequest {
    /// Bring the window to the front, un-hiding and restoring it.
    Show,
    /// Hide the window to the tray.
    Hide,
    /// Minimize the window.
    Minimize,
}

impl WindowRequest {
    /// The word on the wire (`show`, `hide`, `minimize`).
    pub fn as_str(self) -> &'static str {
        match self {
            WindowRequest::Show => "show",
            WindowRequest::Hide => "hide",
            WindowRequest::Minimize => "minimize",
        }
    }
}

/// Something the server did that watchers should know about.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// A command that changes the phone's state was carried out (every
    /// command but `Status`), from the socket or from the window.
    Executed {
        /// The command, as carried out.
        command: Command,
        /// Its reply (code 0; `Reload` with some accounts failed: 4).
        reply: Reply,
    },
    /// `Show`, `Hide` or `Minimize` went to the window.
    Window(WindowRequest),
}

impl Notice {
    /// The JSON object the `Subscribe` stream carries.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Notice::Executed { command, reply } => serde_json::json!({
                "event": "command",
                "command": command.name(),
                "line": command.to_string(),
                "code": reply.code,
                "status": reply.status,
                "message": reply.message,
                "data": reply.data,
            }),
            Notice::Window(request) => serde_json::json!({
                "event": "window",
                "request": request.as_str(),
            }),
        }
    }
}

impl Serialize for Notice {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// A window's receiver of [`WindowRequest`]s, from
/// [`super::server::Server::attach_window`]. While one exists the phone
/// has a window: `Show`, `Hide` and `Minimize` are answered 0 and reach
/// it; once every one is dropped they are answered 3 (headless).
#[derive(Debug)]
pub struct WindowRequests {
    rx: broadcast::Receiver<WindowRequest>,
}

impl WindowRequests {
    pub(crate) fn new(rx: broadcast::Receiver<WindowRequest>) -> WindowRequests {
        WindowRequests { rx }
    }

    /// The next request; `None` once the server is gone. A window that
    /// fell far behind skips what it missed (only the latest matters).
    pub async fn recv(&mut self) -> Option<WindowRequest> {
        loop {
            match self.rx.recv().await {
                Ok(request) => return Some(request),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next request already sent, without waiting (for a frame loop).
    pub fn try_recv(&mut self) -> Option<WindowRequest> {
        loop {
            match self.rx.try_recv() {
                Ok(request) => return Some(request),
                Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => return None,
            }
        }
    }

    /// As [`Self::recv`], blocking the thread; never call it inside the
    /// runtime.
    pub fn blocking_recv(&mut self) -> Option<WindowRequest> {
        loop {
            match self.rx.blocking_recv() {
                Ok(request) => return Some(request),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ReplyCode;

    #[test]
    fn notices_are_json_lines_like_the_user_agents_events() {
        let notice = Notice::Executed {
            command: Command::SetVolume(40),
            reply: Reply::ok("speaker volume 40").with("audio", serde_json::json!({"v": 40})),
        };
        let line = serde_json::to_string(&notice).expect("JSON");
        let value: serde_json::Value = serde_json::from_str(&line).expect("reads back");
        assert_eq!(value["event"], "command");
        assert_eq!(value["command"], "SetVolume");
        assert_eq!(value["line"], "SetVolume 40");
        assert_eq!(value["code"], 0);
        assert_eq!(value["status"], "ok");
        assert_eq!(value["message"], "speaker volume 40");
        assert_eq!(value["data"]["audio"]["v"], 40);
        let window = serde_json::to_string(&Notice::Window(WindowRequest::Minimize)).expect("JSON");
        assert_eq!(window, r#"{"event":"window","request":"minimize"}"#);
        let failed = Notice::Executed {
            command: Command::Reload,
            reply: Reply::new(ReplyCode::Failed, "reloaded: 1 failed"),
        };
        assert_eq!(failed.to_json()["status"], "failed");
    }

    #[test]
    fn a_window_receiver_skips_what_it_missed_and_ends_with_the_server() {
        let (tx, rx) = broadcast::channel(2);
        let mut requests = WindowRequests::new(rx);
        assert_eq!(requests.try_recv(), None);
        for r in [
            WindowRequest::Hide,
            WindowRequest::Minimize,
            WindowRequest::Show,
        ] {
            tx.send(r).expect("a receiver");
        }
        // Capacity 2: the first was dropped, the rest come in order.
        assert_eq!(requests.try_recv(), Some(WindowRequest::Minimize));
        assert_eq!(requests.try_recv(), Some(WindowRequest::Show));
        assert_eq!(requests.try_recv(), None);
        drop(tx);
        assert_eq!(requests.try_recv(), None);
        assert_eq!(requests.blocking_recv(), None);
    }
}
