//! Temporary stand-in while contacts.rs is written.
use super::diagnostic::Diagnostic;
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contact;
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactList;
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactsError;
impl ContactList { pub fn validate(_: &[u8]) -> Vec<Diagnostic> { Vec::new() } }
