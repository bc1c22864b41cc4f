//! The Messages tab: SIP MESSAGE conversations, one per peer, as
//! MicroSIP's message window keeps them (one tab per contact).
//!
//! Incoming messages arrive as [`UaEvent::MessageReceived`]; a message the
//! user sends is a [`Command::Message`], exactly what `msipphone ctl
//! Message` sends, and its reply (delivered, or refused with the SIP code)
//! marks the message.

use eframe::egui::{self, RichText, TextEdit};

use crate::config::Contact;
use crate::control::reply::ReplyCode;
use crate::control::{Command, Reply};
use crate::sip::ua::UaEvent;

use super::UiAction;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The peer.
    Incoming,
    /// The user.
    Outgoing,
}

/// What became of a message the user sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Sent, no answer yet.
    Pending,
    /// The far end took it (2xx).
    Delivered,
    /// Refused or lost: the reply's message says why.
    Failed(String),
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Who wrote it.
    pub direction: Direction,
    /// The text.
    pub text: String,
    /// For outgoing messages, what became of it; incoming ones are
    /// [`Delivery::Delivered`].
    pub delivery: Delivery,
}

/// The messages exchanged with one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// Where replies go: the number or URI as opened, or the sender's URI.
    pub peer: String,
    /// Oldest first.
    pub messages: Vec<ChatMessage>,
    /// Incoming messages not yet shown.
    pub unread: usize,
}

/// The chat panel.
#[derive(Debug, Default)]
pub struct ChatPanel {
    conversations: Vec<Conversation>,
    /// Index into `conversations` of the one shown.
    current: Option<usize>,
    /// The text being written in the current conversation.
    draft: String,
    /// The number typed to start a new conversation.
    new_peer: String,
    /// Names for numbers, from the contacts.
    names: Vec<(String, String)>,
}

/// A peer without display name, brackets, scheme, parameters or headers:
/// `"Bob" <sip:Bob@PBX;transport=tcp>` gives `Bob@PBX`.
fn bare_peer(peer: &str) -> &str {
    let mut s = peer.trim();
    if let (Some(open), Some(close)) = (s.find('<'), s.rfind('>')) {
        if open < close {
            s = &s[open + 1..close];
        }
    }
    for scheme in ["sips:", "sip:", "tel:"] {
        if s.len() >= scheme.len()
            && s.is_char_boundary(scheme.len())
            && s[..scheme.len()].eq_ignore_ascii_case(scheme)
        {
            s = &s[scheme.len()..];
            break;
        }
    }
    let end = s.find([';', '?']).unwrap_or(s.len());
    &s[..end]
}

/// A peer reduced for comparison: [`bare_peer`] in lower case, so
/// `"Bob" <sip:Bob@PBX;transport=tcp>` and `bob@pbx` are the same peer.
fn peer_key(peer: &str) -> String {
    bare_peer(peer).to_lowercase()
}

/// The user part of a peer (the whole key when it has no `@`).
fn user_part(key: &str) -> &str {
    key.split_once('@').map_or(key, |(user, _)| user)
}

/// Whether two peers are the same person: equal keys, or, when one of them
/// is a bare number without a domain (as typed or as in the contacts), the
/// same user part.
pub fn same_peer(a: &str, b: &str) -> bool {
    let (a, b) = (peer_key(a), peer_key(b));
    if a == b {
        return true;
    }
    (!a.contains('@') || !b.contains('@')) && !a.is_empty() && user_part(&a) == user_part(&b)
}

impl ChatPanel {
    /// No conversations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names conversations after contacts (number, phone or mobile).
    pub fn set_contacts(&mut self, contacts: &[Contact]) {
        self.names = contacts
            .iter()
            .filter(|c| !c.name.is_empty())
            .flat_map(|c| {
                [&c.number, &c.phone, &c.mobile]
                    .into_iter()
                    .filter(|n| !n.is_empty())
                    .map(|n| (n.clone(), c.name.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
    }

    /// The conversations, in the order they started.
    pub fn conversations(&self) -> &[Conversation] {
        &self.conversations
    }

    /// Incoming messages not yet shown, over all conversations.
    pub fn unread(&self) -> usize {
        self.conversations.iter().map(|c| c.unread).sum()
    }

    /// The conversation with `peer`, created when there is none.
    fn conversation(&mut self, peer: &str) -> usize {
        if let Some(i) = self
            .conversations
            .iter()
            .position(|c| same_peer(&c.peer, peer))
        {
            return i;
        }
        self.conversations.push(Conversation {
            peer: peer.trim().to_owned(),
            messages: Vec::new(),
            unread: 0,
        });
        self.conversations.len() - 1
    }

    /// Shows the conversation with `peer` (a number or URI), starting it
    /// when there is none.
    pub fn open(&mut self, peer: &str) {
        if peer.trim().is_empty() {
            return;
        }
        let i = self.conversation(peer);
        if self.current != Some(i) {
            self.draft.clear();
        }
        self.current = Some(i);
    }

    /// Takes in what the phone reports: a received message goes to its
    /// sender's conversation, unread until shown.
    pub fn on_event(&mut self, event: &UaEvent) {
        if let UaEvent::MessageReceived {
            from,
            content_type,
            body,
            ..
        } = event
        {
            let text = if content_type.is_empty()
                || content_type.to_ascii_lowercase().starts_with("text/")
            {
                body.clone()
            } else {
                format!("[{content_type}] {body}")
            };
            let i = self.conversation(from);
            let conversation = &mut self.conversations[i];
            conversation.messages.push(ChatMessage {
                direction: Direction::Incoming,
                text,
                delivery: Delivery::Delivered,
            });
            conversation.unread += 1;
        }
    }

    /// Takes in the reply to a command the window ran: the reply to a
    /// `Message` marks the oldest pending message with that text to that
    /// peer delivered or failed (with the reply's message).
    pub fn on_reply(&mut self, command: &Command, reply: &Reply) {
        let Command::Message { to, text } = command else {
            return;
        };
        let Some(conversation) = self
            .conversations
            .iter_mut()
            .find(|c| same_peer(&c.peer, to))
        else {
            return;
        };
        if let Some(message) = conversation.messages.iter_mut().find(|m| {
            m.direction == Direction::Outgoing && m.delivery == Delivery::Pending && &m.text == text
        }) {
            message.delivery = if reply.reply_code() == ReplyCode::Ok {
                Delivery::Delivered
            } else {
                Delivery::Failed(reply.message.clone())
            };
        }
    }

    /// The name shown for a peer: the contact's name, else its user part.
    fn title(&self, peer: &str) -> String {
        if let Some((_, name)) = self.names.iter().find(|(n, _)| same_peer(n, peer)) {
            return name.clone();
        }
        let user = user_part(bare_peer(peer));
        if user.is_empty() {
            peer.to_owned()
        } else {
            user.to_owned()
        }
    }

    /// Draws the conversation tabs, the current conversation and the
    /// text box; a message sent goes to `out` as a `Message` command.
    pub fn ui(&mut self, ui: &mut egui::Ui, out: &mut Vec<UiAction>) {
        ui.horizontal(|ui| {
            let label = ui.label("Chat with");
            let field = ui
                .add(
                    TextEdit::singleline(&mut self.new_peer)
                        .hint_text("number or sip: URI")
                        .desired_width(160.0),
                )
                .labelled_by(label.id);
            let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if ui.button("Open").clicked() || enter {
                let peer = std::mem::take(&mut self.new_peer);
                self.open(&peer);
            }
        });
        if self.conversations.is_empty() {
            ui.weak("No messages yet.");
            return;
        }
        ui.horizontal_wrapped(|ui| {
            for i in 0..self.conversations.len() {
                let conversation = &self.conversations[i];
                let mut title = self.title(&conversation.peer);
                if conversation.unread > 0 {
                    title = format!("{title} ({})", conversation.unread);
                }
                let tab = ui
                    .selectable_label(self.current == Some(i), title)
                    .on_hover_text(&conversation.peer);
                if tab.clicked() && self.current != Some(i) {
                    self.current = Some(i);
                    self.draft.clear();
                }
            }
        });
        ui.separator();
        let Some(i) = self.current.filter(|&i| i < self.conversations.len()) else {
            ui.weak("Choose a conversation.");
            return;
        };
        let title = self.title(&self.conversations[i].peer);
        let conversation = &mut self.conversations[i];
        conversation.unread = 0;
        let (error, weak) = (ui.visuals().error_fg_color, ui.visuals().weak_text_color());
        let height = (ui.available_height() - 40.0).max(80.0);
        egui::ScrollArea::vertical()
            .id_salt(("chat", i))
            .max_height(height)
            .stick_to_bottom(true)
            .auto_shrink([false, true])
            .show(ui, |ui| {
                for message in &conversation.messages {
                    let who = match message.direction {
                        Direction::Incoming => title.as_str(),
                        Direction::Outgoing => "me",
                    };
                    ui.horizontal_wrapped(|ui| {
                        ui.label(RichText::new(format!("{who}:")).strong());
                        ui.label(&message.text);
                        match &message.delivery {
                            Delivery::Pending => {
                                ui.label(RichText::new("sending").small().color(weak));
                            }
                            Delivery::Delivered if message.direction == Direction::Outgoing => {
                                ui.label(RichText::new("delivered").small().color(weak));
                            }
                            Delivery::Delivered => {}
                            Delivery::Failed(why) => {
                                ui.label(
                                    RichText::new(format!("not delivered: {why}"))
                                        .small()
                                        .color(error),
                                );
                            }
                        }
                    });
                }
            });
        ui.horizontal(|ui| {
            let label = ui.label("Message");
            let field = ui
                .add(
                    TextEdit::singleline(&mut self.draft)
                        .id_salt("chat-draft")
                        .desired_width((ui.available_width() - 60.0).max(80.0)),
                )
                .labelled_by(label.id);
            let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            let send = ui
                .add_enabled(!self.draft.trim().is_empty(), egui::Button::new("Send"))
                .clicked();
            if (send || enter) && !self.draft.trim().is_empty() {
                let text = std::mem::take(&mut self.draft);
                let to = conversation.peer.clone();
                conversation.messages.push(ChatMessage {
                    direction: Direction::Outgoing,
                    text: text.clone(),
                    delivery: Delivery::Pending,
                });
                out.push(UiAction::Run(Command::Message { to, text }));
                if enter {
                    field.request_focus();
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_compare_as_people_mean_them() {
        assert!(same_peer(
            "sip:bob@pbx.example.com",
            "\"Bob\" <sip:Bob@PBX.example.com;transport=tcp>"
        ));
        assert!(same_peer("101", "sip:101@pbx"));
        assert!(same_peer("sip:101@pbx", "101"));
        assert!(!same_peer("sip:101@pbx", "sip:101@other"));
        assert!(!same_peer("101", "102"));
        assert!(!same_peer("", "sip:@pbx"));
    }

    #[test]
    fn replies_mark_the_pending_message() {
        let mut chat = ChatPanel::new();
        chat.open("101");
        chat.conversations[0].messages.push(ChatMessage {
            direction: Direction::Outgoing,
            text: "hi".into(),
            delivery: Delivery::Pending,
        });
        let command = Command::Message {
            to: "101".into(),
            text: "hi".into(),
        };
        chat.on_reply(
            &command,
            &Reply::new(ReplyCode::Failed, "message to 101 refused with SIP 404"),
        );
        assert_eq!(
            chat.conversations[0].messages[0].delivery,
            Delivery::Failed("message to 101 refused with SIP 404".into())
        );
    }

    #[test]
    fn titles_come_from_contacts_or_the_user_part() {
        let mut chat = ChatPanel::new();
        chat.set_contacts(&[Contact {
            name: "Bob".into(),
            number: "101".into(),
            ..Contact::default()
        }]);
        assert_eq!(chat.title("sip:101@pbx"), "Bob");
        assert_eq!(chat.title("sip:Alice@pbx"), "Alice");
        assert_eq!(chat.title("102"), "102");
    }
}
