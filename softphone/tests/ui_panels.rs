//! The window's panels clicked through headless (egui_kittest, AccessKit
//! queries): contacts written back to Contacts.xml, the call history, the
//! chat, and the settings dialog with policy locks.

use std::path::{Path, PathBuf};

use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;

use softphone::config::edit::backup_path;
use softphone::config::{CallKind, CallRecord, Contact, ContactList, Encoding, IniDocument};
use softphone::control::{Command, Reply, ReplyCode};
use softphone::sip::ua::UaEvent;
use softphone::ui::{ChatPanel, ContactsPanel, HistoryPanel, SettingsDialog, UiAction};

/// A panel and what it asked the window to do.
struct Panel<P> {
    panel: P,
    out: Vec<UiAction>,
}

fn contacts_harness(path: PathBuf) -> Harness<'static, Panel<ContactsPanel>> {
    Harness::new_ui_state(
        |ui, state: &mut Panel<ContactsPanel>| state.panel.ui(ui, &mut state.out),
        Panel {
            panel: ContactsPanel::new(path),
            out: Vec::new(),
        },
    )
}

fn contact(name: &str, number: &str) -> Contact {
    Contact {
        name: name.into(),
        number: number.into(),
        ..Contact::default()
    }
}

/// Alice (with an attribute MicroSIP does not write), Bob and Carol, in
/// MicroSIP's own layout.
fn sample_contacts() -> ContactList {
    let mut alice = contact("Alice", "101");
    alice.email = "alice@example.com".into();
    alice.extra = vec![("x-dept".into(), "ops".into())];
    let mut bob = contact("Bob", "102");
    bob.starred = true;
    ContactList {
        contacts: vec![alice, bob, contact("Carol", "103")],
    }
}

fn write_contacts(dir: &Path, list: &ContactList) -> (PathBuf, Vec<u8>) {
    let path = dir.join("Contacts.xml");
    let bytes = list.to_bytes();
    std::fs::write(&path, &bytes).expect("write Contacts.xml");
    (path, bytes)
}

fn read_contacts(path: &Path) -> ContactList {
    ContactList::parse(&std::fs::read(path).expect("read")).expect("parses")
}

#[test]
fn editing_a_contact_changes_exactly_that_contact() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, before) = write_contacts(dir.path(), &sample_contacts());
    let mut harness = contacts_harness(path.clone());

    harness.get_by_label("Alice").click();
    harness.run();
    harness.get_by_label("Edit").click();
    harness.run();
    let name = harness.get_by_label("Name");
    assert_eq!(name.value().as_deref(), Some("Alice"));
    name.set_text_value_accesskit("Alicia");
    harness.run();
    harness.get_by_label("Save").click();
    harness.run();

    let mut expected = sample_contacts();
    expected.contacts[0].name = "Alicia".into();
    let after = std::fs::read(&path).expect("read");
    assert_eq!(
        String::from_utf8_lossy(&after),
        String::from_utf8_lossy(&expected.to_bytes()),
        "only Alice's name changed, in MicroSIP's layout"
    );
    let list = read_contacts(&path);
    assert_eq!(list.contacts[0].extra, [("x-dept".into(), "ops".into())]);
    assert_eq!(list.contacts[0].email, "alice@example.com");
    assert_eq!(list.contacts[1..], sample_contacts().contacts[1..]);
    assert_eq!(std::fs::read(backup_path(&path)).expect("bak"), before);
    assert!(
        harness.query_by_label("Alicia").is_some(),
        "the list shows it"
    );
    assert!(harness.state().out.is_empty());
}

#[test]
fn a_contact_added_meanwhile_survives_an_edit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, _) = write_contacts(dir.path(), &sample_contacts());
    let mut harness = contacts_harness(path.clone());
    harness.get_by_label("Carol").click();
    harness.run();
    harness.get_by_label("Edit").click();
    harness.run();

    // The provisioner adds a contact while the form is open.
    let mut meanwhile = sample_contacts();
    meanwhile.contacts.push(contact("Dave", "104"));
    std::fs::write(&path, meanwhile.to_bytes()).expect("write");

    harness
        .get_by_label("Mobile")
        .set_text_value_accesskit("+1 555 0103");
    harness.run();
    harness.get_by_label("Save").click();
    harness.run();

    let list = read_contacts(&path);
    let mut expected = meanwhile.clone();
    expected.contacts[2].mobile = "+1 555 0103".into();
    assert_eq!(list, expected);
    assert_eq!(
        std::fs::read(backup_path(&path)).expect("bak"),
        meanwhile.to_bytes(),
        "the backup is the file as it was just before the write"
    );
}

#[test]
fn a_contact_changed_meanwhile_is_not_overwritten() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, _) = write_contacts(dir.path(), &sample_contacts());
    let mut harness = contacts_harness(path.clone());
    harness.get_by_label("Bob").click();
    harness.run();
    harness.get_by_label("Edit").click();
    harness.run();
    let mut meanwhile = sample_contacts();
    meanwhile.contacts[1].number = "202".into();
    std::fs::write(&path, meanwhile.to_bytes()).expect("write");

    harness
        .get_by_label("Name")
        .set_text_value_accesskit("Robert");
    harness.run();
    harness.get_by_label("Save").click();
    harness.run();

    assert_eq!(read_contacts(&path), meanwhile, "the other edit is kept");
    assert!(harness
        .query_by_label_contains("was changed or removed in Contacts.xml meanwhile")
        .is_some());
}

#[test]
fn adding_and_deleting_contacts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, _) = write_contacts(dir.path(), &sample_contacts());
    let mut harness = contacts_harness(path.clone());

    harness.get_by_label("Add").click();
    harness.run();
    harness.get_by_label("Name").set_text_value_accesskit("Eve");
    harness.run();
    harness.get_by_label("Save").click();
    harness.run();
    assert!(
        harness
            .query_by_label_contains("Number: required")
            .is_some(),
        "a contact without a number is refused"
    );
    assert_eq!(read_contacts(&path), sample_contacts());

    harness
        .get_by_label("Number")
        .set_text_value_accesskit("105");
    harness.run();
    harness.get_by_label("Save").click();
    harness.run();
    let mut expected = sample_contacts();
    expected.contacts.push(contact("Eve", "105"));
    assert_eq!(read_contacts(&path), expected);

    harness.get_by_label("Bob").click();
    harness.run();
    harness.get_by_label("Delete").click();
    harness.run();
    assert!(harness
        .query_by_label_contains("Delete Bob (102)")
        .is_some());
    assert_eq!(read_contacts(&path), expected, "nothing before confirming");
    harness.get_by_label("Yes, delete").click();
    harness.run();
    expected.contacts.remove(1);
    assert_eq!(read_contacts(&path), expected);
    assert!(harness.query_by_label("Bob").is_none());
}

#[test]
fn contacts_are_searched_called_and_messaged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, _) = write_contacts(dir.path(), &sample_contacts());
    let mut harness = contacts_harness(path);
    assert_eq!(harness.state().panel.contacts(), sample_contacts().contacts);

    harness
        .get_by_label("Search")
        .set_text_value_accesskit("BO");
    harness.run();
    assert!(harness.query_by_label("Bob").is_some());
    assert!(harness.query_by_label("Alice").is_none());
    assert!(harness.query_by_label("Carol").is_none());

    harness
        .get_by_label("Search")
        .set_text_value_accesskit("103");
    harness.run();
    assert!(harness.query_by_label("Carol").is_some());
    assert!(harness.query_by_label("Bob").is_none());
    harness.get_by_label("Call").click();
    harness.run();
    harness.get_by_label("Message").click();
    harness.run();
    assert_eq!(
        harness.state().out,
        [
            UiAction::Run(Command::Dial("103".into())),
            UiAction::OpenChat("103".into())
        ]
    );
}

#[test]
fn a_malformed_contacts_file_is_shown_and_never_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("Contacts.xml");
    let bad = b"<?xml version=\"1.0\"?>\r\n<contacts>\r\n<contact name=\"A\" number=\"1\"\r\n</contacts>\r\n";
    std::fs::write(&path, bad).expect("write");
    let mut harness = contacts_harness(path.clone());
    harness.run();
    let error = harness.get_by_label_contains("Contacts.xml: line ");
    let text = error.accesskit_node().value().unwrap_or_default();
    assert!(text.contains(", column "), "{text}");
    assert!(harness.query_by_label("Add").is_none(), "nothing to edit");
    assert!(harness.query_by_label("Edit").is_none());
    harness.get_by_label("Reload").click();
    harness.run();
    assert_eq!(std::fs::read(&path).expect("read"), bad);
    assert!(!backup_path(&path).exists());
}

/// A UTF-16 LE ini with a BOM and CRLF, as MicroSIP writes it.
fn write_utf16_ini(dir: &Path, text: &str) -> (PathBuf, Vec<u8>) {
    let path = dir.join("microsip.ini");
    let bytes = IniDocument::from_text(Encoding::Utf16LeBom, text).to_bytes();
    assert_eq!(&bytes[..2], &[0xFF, 0xFE]);
    std::fs::write(&path, &bytes).expect("write ini");
    (path, bytes)
}

const CALLS_INI: &str = "[Settings]\r\naccountId=1\r\ncallsLastKey=2\r\n[Calls]\r\n\
    0=101;Alice;1;1756109189;30;Call Ended\r\n\
    1=102;Bob;2;1756110000;0;Request Terminated\r\n\
    2=103;;0;1756120000;65;Call Ended\r\n";

#[test]
fn history_lists_calls_newest_first_with_call_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, _) = write_utf16_ini(dir.path(), CALLS_INI);
    let mut harness = Harness::new_ui_state(
        |ui, state: &mut Panel<HistoryPanel>| state.panel.ui(ui, &mut state.out),
        Panel {
            panel: HistoryPanel::new(path.clone()),
            out: Vec::new(),
        },
    );
    let numbers: Vec<&str> = harness
        .state()
        .panel
        .records()
        .iter()
        .map(|r| r.number.as_str())
        .collect();
    assert_eq!(numbers, ["103", "102", "101"]);
    assert!(harness.query_by_label("missed").is_some());
    assert!(harness.query_by_label("Alice").is_some());
    assert!(harness.query_by_label("1:05").is_some(), "duration of 65 s");
    // Shown in the local time zone, as MicroSIP shows its log.
    let shown = softphone::ui::history::format_time(1_756_109_189);
    assert!(harness.query_by_label(&shown).is_some(), "{shown}");

    let buttons: Vec<_> = harness.get_all_by_label("Call back").collect();
    assert_eq!(buttons.len(), 3);
    buttons[0].click();
    harness.run();
    let buttons: Vec<_> = harness.get_all_by_label("Call back").collect();
    buttons[2].click();
    harness.run();
    assert_eq!(
        harness.state().out,
        [
            UiAction::Run(Command::Dial("103".into())),
            UiAction::Run(Command::Dial("101".into()))
        ]
    );

    // A call ends: the phone logs it, the window reloads.
    softphone::app::calllog::write(
        &path,
        &[softphone::app::calllog::LogWrite::Call(CallRecord {
            key: 0,
            number: "104".into(),
            name: "Dave".into(),
            kind: CallKind::Outgoing,
            time: 1_756_130_000,
            duration: 5,
            info: "Call Ended".into(),
        })],
    )
    .expect("log");
    harness.state_mut().panel.reload();
    harness.run();
    assert_eq!(harness.state().panel.records()[0].number, "104");
    assert!(harness.query_by_label("Dave").is_some());
}

fn chat_harness() -> Harness<'static, Panel<ChatPanel>> {
    Harness::new_ui_state(
        |ui, state: &mut Panel<ChatPanel>| state.panel.ui(ui, &mut state.out),
        Panel {
            panel: ChatPanel::new(),
            out: Vec::new(),
        },
    )
}

#[test]
fn chat_shows_incoming_messages_and_sends_replies() {
    let mut harness = chat_harness();
    harness
        .state_mut()
        .panel
        .on_event(&UaEvent::MessageReceived {
            account: 1,
            from: "sip:alice@example.com".into(),
            content_type: "text/plain".into(),
            body: "are you there?".into(),
        });
    harness.run();
    assert_eq!(harness.state().panel.unread(), 1);
    harness.get_by_label("alice (1)").click();
    harness.run();
    assert!(harness.query_by_label("are you there?").is_some());
    assert_eq!(harness.state().panel.unread(), 0, "read once shown");

    harness
        .get_by_label("Message")
        .set_text_value_accesskit("yes, call me");
    harness.run();
    harness.get_by_label("Send").click();
    harness.run();
    let sent = Command::Message {
        to: "sip:alice@example.com".into(),
        text: "yes, call me".into(),
    };
    assert_eq!(harness.state().out, [UiAction::Run(sent.clone())]);
    assert!(harness.query_by_label("sending").is_some());

    // A second message from the same peer, written differently, lands in
    // the same conversation.
    harness
        .state_mut()
        .panel
        .on_event(&UaEvent::MessageReceived {
            account: 1,
            from: "<sip:Alice@EXAMPLE.com;transport=tcp>".into(),
            content_type: "text/plain".into(),
            body: "ok".into(),
        });
    harness.state_mut().panel.on_reply(
        &sent,
        &Reply::ok("message delivered to sip:alice@example.com"),
    );
    harness.run();
    assert_eq!(harness.state().panel.conversations().len(), 1);
    assert!(harness.query_by_label("ok").is_some());
    assert!(harness.query_by_label("delivered").is_some());
}

#[test]
fn chat_opened_for_a_number_sends_to_it_and_shows_failures() {
    let mut harness = chat_harness();
    harness.state_mut().panel.open("101");
    harness.run();
    harness
        .get_by_label("Message")
        .set_text_value_accesskit("hi");
    harness.run();
    harness.get_by_label("Send").click();
    harness.run();
    let sent = Command::Message {
        to: "101".into(),
        text: "hi".into(),
    };
    assert_eq!(harness.state().out, [UiAction::Run(sent.clone())]);
    harness.state_mut().panel.on_reply(
        &sent,
        &Reply::new(ReplyCode::Failed, "message to 101 refused with SIP 404"),
    );
    harness.run();
    assert!(harness
        .query_by_label("not delivered: message to 101 refused with SIP 404")
        .is_some());
}

const SETTINGS_INI: &str = "[Settings]\r\n; provisioned by IT\r\naccountId=1\r\n\
    autoAnswer=button\r\nminimized=0\r\nalwaysOnTop=0\r\n\
    audioInputDevice=\"Микрофон (USB)\"\r\n\
    [Account1]\r\nlabel=Office\r\nserver=pbx.example.com\r\ndomain=pbx.example.com\r\n\
    username=alice\r\npassword=s3cret\r\ntransport=udp\r\n";

fn write_locks(dir: &Path, json: &str) {
    let state = dir.join(".msipprov");
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::write(state.join("state.json"), json).expect("state.json");
}

const KIOSK_LOCKS: &str = r#"{"version": 1, "locks": {
    "Settings/minimized": {"rule": "enforce", "value": "0", "reason": "Kiosk phones stay visible", "policy": "kiosk"},
    "Account/transport": {"rule": "allow", "value": "one of \"tls\"", "reason": "Only TLS leaves the building", "policy": "secure"}
}}"#;

fn settings_harness(path: PathBuf) -> Harness<'static, Panel<SettingsDialog>> {
    let mut dialog = SettingsDialog::new(path);
    assert!(!dialog.is_open());
    dialog.open();
    assert!(dialog.is_open());
    Harness::builder().with_size([900.0, 700.0]).build_ui_state(
        |ui, state: &mut Panel<SettingsDialog>| {
            let ctx = ui.ctx().clone();
            state.panel.show(&ctx, &mut state.out);
        },
        Panel {
            panel: dialog,
            out: Vec::new(),
        },
    )
}

#[test]
fn settings_show_locked_keys_read_only_and_save_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, before) = write_utf16_ini(dir.path(), SETTINGS_INI);
    write_locks(dir.path(), KIOSK_LOCKS);
    let mut harness = settings_harness(path.clone());

    let locked = harness.get_by_label("minimized");
    assert!(
        locked.accesskit_node().is_disabled(),
        "a locked key is read-only"
    );
    locked.click();
    harness.run();
    assert!(harness
        .query_by_label("Locked by policy kiosk: Kiosk phones stay visible")
        .is_some());
    let free = harness.get_by_label("alwaysOnTop");
    assert!(!free.accesskit_node().is_disabled());
    free.click();
    harness.run();

    harness.get_by_label("Account 1").click();
    harness.run();
    assert!(harness
        .get_by_label("transport")
        .accesskit_node()
        .is_disabled());
    assert!(harness
        .query_by_label("Locked by policy secure: Only TLS leaves the building")
        .is_some());
    let password = harness.get_by_label("password");
    assert!(
        !password.value().unwrap_or_default().contains("s3cret"),
        "the stored password is never shown"
    );

    harness.get_by_label("Save").click();
    harness.run();
    let after = std::fs::read(&path).expect("read");
    let expected = IniDocument::from_text(
        Encoding::Utf16LeBom,
        &SETTINGS_INI.replace("alwaysOnTop=0", "alwaysOnTop=1"),
    )
    .to_bytes();
    assert_eq!(after, expected, "exactly one line changed, still UTF-16");
    assert_eq!(std::fs::read(backup_path(&path)).expect("bak"), before);
    assert_eq!(harness.state().out, [UiAction::Run(Command::Reload)]);
    assert!(!harness.state().panel.is_open(), "closed after saving");
}

#[test]
fn a_new_password_and_a_bad_server_are_handled_by_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, before) = write_utf16_ini(dir.path(), SETTINGS_INI);
    let mut harness = settings_harness(path.clone());
    harness.get_by_label("Account 1").click();
    harness.run();
    harness
        .get_by_label("server")
        .set_text_value_accesskit("sip:pbx.example.com");
    harness
        .get_by_label("password")
        .set_text_value_accesskit("n3w");
    harness.run();
    harness.get_by_label("Save").click();
    harness.run();
    assert!(harness
        .query_by_label_contains("[Account1] server: \"sip:pbx.example.com\" must be a host[:port]")
        .is_some());
    assert_eq!(
        std::fs::read(&path).expect("read"),
        before,
        "nothing written"
    );
    assert!(harness.state().out.is_empty());

    harness
        .get_by_label("server")
        .set_text_value_accesskit("pbx2.example.com:5070");
    harness.run();
    harness.get_by_label("Save").click();
    harness.run();
    let expected = SETTINGS_INI
        .replace("server=pbx.example.com", "server=pbx2.example.com:5070")
        .replace("password=s3cret", "password=n3w");
    let doc = IniDocument::parse(&std::fs::read(&path).expect("read")).expect("parse");
    assert_eq!(doc.to_text(), expected);
    assert_eq!(doc.encoding(), Encoding::Utf16LeBom);
    assert_eq!(harness.state().out, [UiAction::Run(Command::Reload)]);
}

#[test]
fn a_lock_applied_while_the_dialog_is_open_wins() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, before) = write_utf16_ini(dir.path(), SETTINGS_INI);
    let mut harness = settings_harness(path.clone());
    harness.get_by_label("alwaysOnTop").click();
    harness.run();
    write_locks(
        dir.path(),
        r#"{"locks": {"Settings/alwaysOnTop": {"rule": "enforce", "value": "0", "reason": "No window on top of the CRM", "policy": "crm"}}}"#,
    );
    harness.get_by_label("Save").click();
    harness.run();
    assert_eq!(std::fs::read(&path).expect("read"), before);
    assert!(harness.state().out.is_empty());
    assert!(harness.state().panel.is_open());
    assert!(harness
        .query_by_label_contains("[Settings] alwaysOnTop: Locked by policy crm")
        .is_some());
    assert!(harness
        .get_by_label("alwaysOnTop")
        .accesskit_node()
        .is_disabled());
}

#[test]
fn unreadable_locks_disable_saving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, before) = write_utf16_ini(dir.path(), SETTINGS_INI);
    write_locks(dir.path(), "{ not json");
    let mut harness = settings_harness(path.clone());
    assert!(harness
        .query_by_label_contains("the policy locks cannot be read")
        .is_some());
    assert!(harness.get_by_label("Save").accesskit_node().is_disabled());
    harness.get_by_label("alwaysOnTop").click();
    harness.run();
    harness.get_by_label("Save").click();
    harness.run();
    assert_eq!(std::fs::read(&path).expect("read"), before);
    harness.get_by_label("Cancel").click();
    harness.run();
    assert!(!harness.state().panel.is_open());
}
