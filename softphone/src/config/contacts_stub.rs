//! Temporary stand-in while contacts.rs is written.
use super::diagnostic::Diagnostic;
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Contact;
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactList { pub contacts: Vec<Contact> }
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stub")]
pub struct ContactsError;
impl ContactList { pub fn validate(_: &[u8]) -> Vec<Diagnostic> { Vec::new() } pub fn parse(_: &[u8]) -> Result<Self, ContactsError> { Ok(Self::default()) } }
