//! [`PhoneApp`]: the main window, compact like MicroSIP's. From the top:
//! the accounts and their registration (the active one marked), the tabs
//! (Dialer with the number entry, keypad and calls; Contacts; History;
//! Messages), and a status line with the last reply's message and the
//! Settings button. Ringing calls pop up over it.
//!
//! Everything the user does becomes a [`UiAction`]; commands go through
//! the [`CoreLink`] to the same [`crate::control::server::Server`] `ctl`
//! talks to, and what comes back (replies, events, notices, `Status`)
//! updates the window.
//!
//! The drawing is [`PhoneApp::frame`], which takes a `Ui`: eframe calls it
//! through [`eframe::App`], tests drive it with `egui_kittest`.

use eframe::egui;

use super::calls::CallsView;
use super::core::{CoreLink, CoreUpdate, StatusView};
use super::dialpad::{keypad, number_entry};
use super::incoming;
use super::tray::Tray;
use super::window::{WindowControl, WindowStart};
use super::{ChatPanel, ContactsPanel, HistoryPanel, SettingsDialog, UiAction};
use crate::control::command::CallId;
use crate::control::notice::Notice;
use crate::control::{Command, Reply};
use crate::sip::ua::UaEvent;

/// The tabs under the accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// Number entry, keypad, calls.
    Dialer,
    /// Contacts.xml.
    Contacts,
    /// `[Calls]`.
    History,
    /// SIP MESSAGE chats.
    Messages,
}

/// The line at the bottom: the last reply (or what `ctl` had done).
#[derive(Debug, Clone, PartialEq, Eq)]
struct StatusLine {
    text: String,
    error: bool,
}

/// The window.
pub struct PhoneApp {
    link: CoreLink,
    window: WindowControl,
    /// The latest `Status`; `None` until the first arrives.
    status: Option<StatusView>,
    tab: Tab,
    number: String,
    calls: CallsView,
    contacts: ContactsPanel,
    history: HistoryPanel,
    chat: ChatPanel,
    settings: SettingsDialog,
    line: Option<StatusLine>,
    /// The link wakes this window's context (set on the first frame).
    linked: bool,
}

impl PhoneApp {
    /// The window for the phone behind `link`, started as `start`
    /// (Contacts.xml beside the ini).
    pub fn new(link: CoreLink, start: WindowStart) -> PhoneApp {
        let ini = start.ini_path.clone();
        let contacts = ini.with_file_name(crate::config::CONTACTS_FILE_NAME);
        PhoneApp {
            link,
            window: WindowControl::new(start),
            status: None,
            tab: Tab::Dialer,
            number: String::new(),
            calls: CallsView::default(),
            contacts: ContactsPanel::new(contacts),
            history: HistoryPanel::new(ini.clone()),
            chat: ChatPanel::new(),
            settings: SettingsDialog::new(ini),
            line: None,
            linked: false,
        }
    }

    /// Gives the window its tray icon (`None`: no tray; closing the window
    /// then stops the phone).
    pub fn set_tray(&mut self, tray: Option<Tray>) {
        self.window.set_tray(tray);
    }

    /// The latest `Status` the window shows.
    pub fn status(&self) -> Option<&StatusView> {
        self.status.as_ref()
    }

    /// The tab shown.
    pub fn tab(&self) -> Tab {
        self.tab
    }

    /// One frame: take in what the core sent, then draw.
    pub fn frame(&mut self, ui: &mut egui::Ui) {
        self.update_state(ui.ctx());
        self.draw(ui);
    }

    /// Takes in the core's updates and the window's own events (tray,
    /// close button); runs also while the window is hidden.
    pub fn update_state(&mut self, ctx: &egui::Context) {
        if !self.linked {
            self.linked = true;
            self.link.wake_on_update(ctx);
        }
        self.window.on_frame(ctx);
        while let Some(update) = self.link.try_recv() {
            self.take(ctx, update);
        }
    }

    fn take(&mut self, ctx: &egui::Context, update: CoreUpdate) {
        match update {
            CoreUpdate::Reply { command, reply } => {
                self.chat.on_reply(&command, &reply);
                self.show_reply(&reply);
            }
            CoreUpdate::Event(event) => {
                self.chat.on_event(&event);
                match event {
                    UaEvent::CallEnded { .. } => self.history.reload(),
                    UaEvent::IncomingCall { .. } if self.window.brings_to_front_on_incoming() => {
                        self.window.bring_to_front(ctx);
                    }
                    _ => {}
                }
            }
            CoreUpdate::Notice(Notice::Executed { command, reply }) => {
                // Also the window's own commands, whose reply says the same.
                if command.changes_state() {
                    self.show_reply(&reply);
                }
                if command == Command::Reload {
                    self.contacts.reload();
                }
            }
            CoreUpdate::Notice(Notice::Window(request)) | CoreUpdate::Window(request) => {
                self.window.apply(ctx, request);
            }
            CoreUpdate::Status(view) => self.status = Some(view),
            CoreUpdate::Stopped => self.window.quit(ctx),
        }
    }

    fn show_reply(&mut self, reply: &Reply) {
        self.line = Some(StatusLine {
            text: reply.message.clone(),
            error: reply.code != 0,
        });
    }

    /// Draws the window into `ui` and carries out what the user did.
    pub fn draw(&mut self, ui: &mut egui::Ui) {
        let mut actions = Vec::new();
        egui::Panel::top("accounts").show(ui, |ui| self.accounts(ui));
        egui::Panel::bottom("status line").show(ui, |ui| self.status_line(ui));
        egui::CentralPanel::default_margins().show(ui, |ui| {
            self.tabs(ui);
            ui.separator();
            egui::ScrollArea::vertical()
                .auto_shrink([false, false])
                .show(ui, |ui| match self.tab {
                    Tab::Dialer => self.dialer(ui, &mut actions),
                    Tab::Contacts => self.contacts.ui(ui, &mut actions),
                    Tab::History => self.history.ui(ui, &mut actions),
                    Tab::Messages => {
                        self.chat.set_contacts(self.contacts.contacts());
                        self.chat.ui(ui, &mut actions);
                    }
                });
        });
        let ctx = ui.ctx().clone();
        if let Some(status) = &self.status {
            incoming::popups(&ctx, &status.calls, self.contacts.contacts(), &mut actions);
        }
        self.settings.show(&ctx, &mut actions);
        for action in actions {
            self.act(action);
        }
    }

    fn act(&mut self, action: UiAction) {
        match action {
            UiAction::Run(command) => {
                tracing::debug!("window: {command}");
                self.link.run(command);
            }
            UiAction::OpenChat(peer) => {
                self.chat.open(&peer);
                self.tab = Tab::Messages;
            }
        }
    }

    /// Each account with its registration; the active one marked.
    fn accounts(&self, ui: &mut egui::Ui) {
        ui.add_space(2.0);
        let Some(status) = &self.status else {
            ui.weak("starting");
            return;
        };
        if status.accounts.is_empty() {
            ui.weak("no account configured");
        }
        for account in &status.accounts {
            let active = account.account == status.active_account;
            ui.horizontal(|ui| {
                let colour = match account.registration.as_str() {
                    "registered" => egui::Color32::from_rgb(40, 160, 70),
                    "failed" => ui.visuals().error_fg_color,
                    _ => ui.visuals().weak_text_color(),
                };
                // A dot in the state's colour (drawn: the fonts have no bullet).
                let (dot, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
                ui.painter().circle_filled(dot.center(), 4.0, colour);
                let caption = egui::RichText::new(account.label.as_deref().unwrap_or(&account.aor));
                let caption = ui.label(if active { caption.strong() } else { caption });
                if account.label.is_some() {
                    caption.on_hover_text(&account.aor);
                }
                ui.label(account.describe());
                if active && status.accounts.len() > 1 {
                    ui.weak("(active)");
                }
            });
        }
        ui.add_space(2.0);
    }

    fn tabs(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.tab, Tab::Dialer, "Dialer");
            ui.selectable_value(&mut self.tab, Tab::Contacts, "Contacts");
            ui.selectable_value(&mut self.tab, Tab::History, "History");
            ui.selectable_value(&mut self.tab, Tab::Messages, "Messages");
            let unread = self.chat.unread();
            if unread > 0 {
                ui.colored_label(ui.visuals().warn_fg_color, format!("{unread} new"));
            }
        });
    }

    fn dialer(&mut self, ui: &mut egui::Ui, actions: &mut Vec<UiAction>) {
        match number_entry(ui, &mut self.number) {
            Some(Ok(target)) => actions.push(UiAction::Run(Command::Dial(target))),
            Some(Err(why)) => {
                self.line = Some(StatusLine {
                    text: why,
                    error: true,
                })
            }
            None => {}
        }
        ui.add_space(4.0);
        match self.calls.dtmf_call(self.status.as_ref()) {
            Some(call) => {
                ui.horizontal(|ui| {
                    ui.label(format!("The keypad sends DTMF to call {call}"));
                    if ui.button("Done").clicked() {
                        self.calls.close_dtmf();
                    }
                });
                if let Some(key) = keypad(ui) {
                    actions.push(UiAction::Run(Command::SendDtmf {
                        digits: key.to_string(),
                        call: Some(CallId(call)),
                    }));
                }
            }
            None => {
                if let Some(key) = keypad(ui) {
                    self.number.push(key);
                }
            }
        }
        ui.add_space(6.0);
        ui.separator();
        self.calls
            .ui(ui, self.status.as_ref(), self.contacts.contacts(), actions);
    }

    /// The last reply's message, and the Settings button beside it.
    fn status_line(&mut self, ui: &mut egui::Ui) {
        ui.add_space(2.0);
        ui.horizontal(|ui| {
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.button("Settings").clicked() {
                    self.settings.open();
                }
                ui.with_layout(
                    egui::Layout::left_to_right(egui::Align::Center),
                    |ui| match &self.line {
                        Some(line) if line.error => {
                            ui.colored_label(ui.visuals().error_fg_color, &line.text);
                        }
                        Some(line) => {
                            ui.label(&line.text);
                        }
                        None => {
                            ui.weak("ready");
                        }
                    },
                );
            });
        });
        ui.add_space(2.0);
    }

    /// Saves where the window is (it is closing).
    pub fn save_window(&self) {
        self.window.save();
    }
}

impl eframe::App for PhoneApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.update_state(ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.draw(ui);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.save_window();
    }
}

/// Opens the window on this thread (the main thread: winit needs it) and
/// returns when it closed for good. The tray icon is created once the
/// event loop runs.
pub fn run(link: CoreLink, start: WindowStart) -> Result<(), eframe::Error> {
    let options = eframe::NativeOptions {
        viewport: start.viewport(),
        ..eframe::NativeOptions::default()
    };
    eframe::run_native(
        "msipphone",
        options,
        Box::new(move |cc| {
            let mut app = PhoneApp::new(link, start);
            app.set_tray(Tray::create(&cc.egui_ctx));
            Ok(Box::new(app))
        }),
    )
}
