//! Why a user-agent command was refused.

use super::call::CallError;
use super::types::{AccountId, CallId};
use crate::sip::headers::HeaderError;
use crate::sip::transaction::TxError;
use crate::sip::wire::WireError;

/// Why a [`super::UserAgent`] command could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UaError {
    /// No account has this number.
    #[error("no account {0}")]
    UnknownAccount(AccountId),
    /// An account with this number exists already.
    #[error("account {0} exists already")]
    AccountExists(AccountId),
    /// The account's REGISTER is still waiting for its answer.
    #[error("account {0} has a REGISTER in flight")]
    RegistrationBusy(AccountId),
    /// The account has no `server`, so there is nothing to register with.
    #[error("account {0} has no registrar")]
    NoRegistrar(AccountId),
    /// No live call has this id (it may have ended).
    #[error("no call {0:?}")]
    UnknownCall(CallId),
    /// [`super::UserAgent::shutdown`] was called; nothing new starts.
    #[error("the user agent is shutting down")]
    ShuttingDown,
    /// A request we built does not read back as valid SIP, e.g. because
    /// the target URI typed by the user is malformed.
    #[error("cannot build {what}: {source}")]
    Build {
        /// What was being built (`MESSAGE to sip:...`).
        what: String,
        /// Why the wire reader refused it.
        source: WireError,
    },
    /// A header could not be read or generated (random source failure).
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The transaction layer refused the request or response.
    #[error(transparent)]
    Transaction(#[from] TxError),
    /// The call refused the command (wrong state, bad target, ...).
    #[error("call: {0}")]
    Call(#[from] CallError),
}
