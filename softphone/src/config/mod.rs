//! MicroSIP's configuration files: the lossless `microsip.ini` document, its
//! typed view, validation, and the contacts XML.
//!
//! Facts about the formats come from `shared/microsip-format.md` and
//! `shared/research/microsip.md`; where this module encodes one, it says so.

pub mod account;
pub mod calls;
pub mod contacts;
pub mod diagnostic;
pub mod document;
pub mod edit;
pub mod encoding;
pub mod kind;
pub mod locks;
pub mod paths;
pub mod schema;
pub mod settings;
pub mod validate;
pub mod value;

pub use account::{Account, Password};
pub use calls::{CallKind, CallRecord, Dialed};
pub use contacts::{Contact, ContactList, ContactsError};
pub use diagnostic::{Diagnostic, Severity};
pub use document::{Edit, Entry, IniDocument, IniError, SectionView};
pub use encoding::{Encoding, LineEnding};
pub use kind::{detect_kind, FileKind};
pub use locks::{Lock, LockRule, LocksError, PolicyLocks};
pub use settings::Settings;
pub use validate::{validate_contacts, validate_document, validate_file, validate_ini};

/// The file name of MicroSIP's settings file (named after `microsip.exe`).
pub const INI_FILE_NAME: &str = "microsip.ini";
/// The file name of MicroSIP's contacts file (fixed, whatever the exe name).
pub const CONTACTS_FILE_NAME: &str = "Contacts.xml";
