//! The user agent: accounts, registrations, calls and messages on top of
//! the transaction layer, sans-IO like the rest of [`crate::sip`].
//!
//! The driver hands in what arrived ([`UserAgent::handle_datagram`],
//! [`UserAgent::handle_transport_failure`]), the time
//! ([`UserAgent::handle_timeout`]) and the user's commands; after each it
//! drains [`UserAgent::poll_transmit`] and [`UserAgent::poll_event`] and
//! sleeps until [`UserAgent::poll_timeout`].
//!
//! Timing: a registration granted for `g` seconds is refreshed `g/10`
//! before it expires, but at least [`REFRESH_MARGIN`] and at most `g/2`
//! early (60 s → after 54 s, 3600 s → after 3240 s); a failed REGISTER is
//! retried after [`RETRY_FIRST`], doubling to [`RETRY_MAX`] (at least
//! [`RETRY_WRONG_PASSWORD`] after the registrar refused the password), and
//! the back-off resets on success. Keep-alives (`keepAlive`) go to the
//! account's `outbound` from `register` until `unregister`/`shutdown`.

mod addressing;
pub mod call;
mod calls;
mod dispatch;
mod error;
mod message;
mod registration;
mod request;
mod response;
pub mod types;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

pub use calls::CallInfo;
pub use error::UaError;
pub use message::TEXT_PLAIN;
pub use registration::{
    DEFAULT_EXPIRES, KEEP_ALIVE, REFRESH_MARGIN, RETRY_FIRST, RETRY_MAX, RETRY_WRONG_PASSWORD,
};
pub use types::*;

use crate::sip::auth::{Credentials, DigestState};
use crate::sip::sdp::{Codec, MediaEngine};
use crate::sip::transaction::{TimerConfig, TransactionLayer};
use crate::sip::{Transmit, Transport};

use message::{MessageContext, OutgoingMessage};
use registration::{RegContext, Registration};

/// How the user agent is set up (everything but the accounts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UaConfig {
    /// The driver's sockets.
    pub local: LocalAddrs,
    /// `User-Agent` (and `Server`) header value; empty: none.
    pub user_agent: String,
    /// Transaction timers (T1, T2, T4).
    pub timers: TimerConfig,
    /// The codecs to offer, in preference order; those the media engine
    /// does not support are dropped.
    pub codecs: Vec<Codec>,
    /// The RFC 4733 telephone-event payload type to offer, if any.
    pub telephone_event: Option<u8>,
    /// Whether our Vias ask for `rport` (RFC 3581).
    pub rport: bool,
}

/// One account with its credentials and registration.
struct AccountState {
    config: AccountConfig,
    auth: DigestState,
    registration: Registration,
}

impl AccountState {
    /// A fresh account: no credentials cached, not registered.
    fn new(config: AccountConfig) -> Self {
        AccountState {
            auth: DigestState::new(Credentials {
                username: config.auth_user.clone(),
                password: config.password.clone(),
                realm: None,
            }),
            registration: Registration::new(&config),
            config,
        }
    }
}

/// The SIP user agent of the phone: every account, call and message.
pub struct UserAgent {
    config: UaConfig,
    /// `config.codecs` filtered by what the media engine supports.
    codecs: Vec<Codec>,
    layer: TransactionLayer,
    media: Box<dyn MediaEngine + Send>,
    accounts: Vec<AccountState>,
    calls: BTreeMap<CallId, call::Call>,
    transfers: Vec<calls::TransferLink>,
    messages: Vec<OutgoingMessage>,
    events: VecDeque<UaEvent>,
    /// What we send ourselves (keep-alives, 400s to broken requests),
    /// and the layer's output once drained.
    transmits: VecDeque<Transmit>,
    next_call: u64,
    next_message: u64,
    shutting_down: bool,
}

impl std::fmt::Debug for UserAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAgent")
            .field("local", &self.config.local)
            .field("accounts", &self.accounts.len())
            .field("calls", &self.calls.len())
            .field("messages", &self.messages.len())
            .field("shutting_down", &self.shutting_down)
            .finish_non_exhaustive()
    }
}

impl UserAgent {
    /// A user agent for `accounts`, none registered yet.
    pub fn new(
        config: UaConfig,
        accounts: Vec<AccountConfig>,
        media: Box<dyn MediaEngine + Send>,
    ) -> Self {
        let codecs = config
            .codecs
            .iter()
            .filter(|c| media.supports(c))
            .cloned()
            .collect();
        let accounts = accounts.into_iter().map(AccountState::new).collect();
        Self {
            layer: TransactionLayer::new(config.timers),
            config,
            codecs,
            media,
            accounts,
            calls: BTreeMap::new(),
            transfers: Vec::new(),
            messages: Vec::new(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            next_call: 0,
            next_message: 0,
            shutting_down: false,
        }
    }

    /// One complete message (a UDP datagram or a frame the driver cut from
    /// a stream), or a keep-alive, from `source`.
    pub fn handle_datagram(
        &mut self,
        bytes: &[u8],
        transport: Transport,
        source: SocketAddr,
        now: Instant,
    ) {
        self.on_datagram(bytes, transport, source, now);
        self.pump(now);
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        self.pump(now);
        for index in 0..self.accounts.len() {
            if self.accounts[index]
                .registration
                .next_timeout()
                .is_some_and(|at| at <= now)
            {
                self.with_registration(index, now, |reg, ctx| {
                    reg.handle_timeout(ctx);
                    Ok(())
                })
                .ok();
            }
        }
        self.calls_timeout(now);
        self.pump(now);
    }

    /// The transport to `peer` failed (connection refused or reset, ICMP
    /// unreachable): every transaction using it fails.
    pub fn handle_transport_failure(
        &mut self,
        transport: Transport,
        peer: SocketAddr,
        now: Instant,
    ) {
        self.layer.handle_transport_failure(transport, peer);
        self.pump(now);
    }

    /// Registers `account` and keeps the registration refreshed (and the
    /// CRLF keep-alive going) until [`Self::unregister`].
    pub fn register(&mut self, account: AccountId, now: Instant) -> Result<(), UaError> {
        if self.shutting_down {
            return Err(UaError::ShuttingDown);
        }
        let index = self.account_index(account)?;
        let result = self.with_registration(index, now, |reg, ctx| reg.start(ctx));
        self.pump(now);
        result
    }

    /// Removes `account`'s binding (Expires: 0) and stops refreshing;
    /// [`UaEvent::Registration`] with `Unregistered` follows when the
    /// registrar answers (or does not).
    pub fn unregister(&mut self, account: AccountId, now: Instant) -> Result<(), UaError> {
        let index = self.account_index(account)?;
        let result = self.with_registration(index, now, |reg, ctx| reg.stop(ctx));
        self.pump(now);
        result
    }

    /// Sends `text` as a MESSAGE from `account` to `target_uri` via `hop`;
    /// [`UaEvent::MessageResult`] reports the outcome.
    pub fn send_message(
        &mut self,
        account: AccountId,
        target_uri: &str,
        hop: SocketAddr,
        text: &str,
        now: Instant,
    ) -> Result<MessageId, UaError> {
        if self.shutting_down {
            return Err(UaError::ShuttingDown);
        }
        let index = self.account_index(account)?;
        self.next_message += 1;
        let id = MessageId(self.next_message);
        let message = {
            let Self {
                layer,
                accounts,
                config,
                ..
            } = self;
            let state = &mut accounts[index];
            let mut ctx = MessageContext {
                layer,
                auth: &mut state.auth,
                account: &state.config,
                local: &config.local,
                rport: config.rport,
                user_agent: &config.user_agent,
                now,
            };
            OutgoingMessage::send(id, target_uri, hop, text, &mut ctx)?
        };
        self.messages.push(message);
        self.pump(now);
        Ok(id)
    }

    /// Adds an account (a config reload found a new `[AccountN]`); it is
    /// not registered until [`Self::register`].
    pub fn add_account(&mut self, config: AccountConfig) -> Result<(), UaError> {
        if self.shutting_down {
            return Err(UaError::ShuttingDown);
        }
        if self.account_index(config.id).is_ok() {
            return Err(UaError::AccountExists(config.id));
        }
        self.accounts.push(AccountState::new(config));
        Ok(())
    }

    /// Replaces an account's settings (a config reload changed them). The
    /// old registration must be over ([`Self::unregister`], and its answer
    /// or timeout): a REGISTER still in flight is refused rather than
    /// orphaned. Live calls keep their dialogs; new requests use the new
    /// settings. Not registered until [`Self::register`].
    pub fn replace_account(&mut self, config: AccountConfig) -> Result<(), UaError> {
        let index = self.account_index(config.id)?;
        if self.accounts[index].registration.is_busy() {
            return Err(UaError::RegistrationBusy(config.id));
        }
        self.accounts[index] = AccountState::new(config);
        Ok(())
    }

    /// `account`'s registration state; `None` for an unknown account.
    pub fn registration(&self, account: AccountId) -> Option<&RegistrationState> {
        self.accounts
            .iter()
            .find(|a| a.config.id == account)
            .map(|a| a.registration.state())
    }

    /// Hangs up every call and un-registers every account; nothing new
    /// starts afterwards. The driver exits once [`Self::is_idle`].
    pub fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        self.hangup_all(now);
        for index in 0..self.accounts.len() {
            if let Err(e) = self.with_registration(index, now, |reg, ctx| reg.stop(ctx)) {
                tracing::warn!("un-register at shutdown: {e}");
            }
        }
        self.pump(now);
    }

    /// After [`Self::shutdown`]: no call left, no REGISTER or MESSAGE
    /// waiting for its answer, nothing left to send.
    pub fn is_idle(&self) -> bool {
        self.shutting_down
            && self.calls.is_empty()
            && self.messages.is_empty()
            && self.transmits.is_empty()
            && self.accounts.iter().all(|a| !a.registration.is_busy())
    }

    /// The next bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits
            .pop_front()
            .or_else(|| self.layer.poll_transmit())
    }

    /// The next thing to report.
    pub fn poll_event(&mut self) -> Option<UaEvent> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let accounts = self
            .accounts
            .iter()
            .filter_map(|a| a.registration.next_timeout());
        let calls = self.calls.values().filter_map(|c| c.next_timeout());
        self.layer
            .poll_timeout()
            .into_iter()
            .chain(accounts)
            .chain(calls)
            .min()
    }

    fn account_index(&self, account: AccountId) -> Result<usize, UaError> {
        self.accounts
            .iter()
            .position(|a| a.config.id == account)
            .ok_or(UaError::UnknownAccount(account))
    }

    /// Runs `f` on account `index`'s registration with everything it may
    /// touch borrowed from `self`.
    fn with_registration<R>(
        &mut self,
        index: usize,
        now: Instant,
        f: impl FnOnce(&mut Registration, &mut RegContext<'_>) -> Result<R, UaError>,
    ) -> Result<R, UaError> {
        let Self {
            layer,
            accounts,
            config,
            events,
            transmits,
            ..
        } = self;
        let Some(state) = accounts.get_mut(index) else {
            return Err(UaError::UnknownAccount(0));
        };
        let mut ctx = RegContext {
            layer,
            auth: &mut state.auth,
            account: &state.config,
            local: &config.local,
            rport: config.rport,
            user_agent: &config.user_agent,
            events,
            transmits,
            now,
        };
        f(&mut state.registration, &mut ctx)
    }
}
