//! [`PhoneHandle`]: how the rest of the program (the control socket, the
//! command line, tests) talks to the running phone.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot};

use super::accounts;
use super::net::ServerNames;
use super::phone::{Job, PhoneError, SHUTDOWN_GRACE};
use crate::sip::ua::{AccountConfig, AccountId, CallId, MessageId, UaEvent, UserAgent};

/// Talks to a running phone. Cheap to clone.
#[derive(Clone)]
pub struct PhoneHandle {
    pub(super) jobs: mpsc::UnboundedSender<Job>,
    pub(super) events: broadcast::Sender<UaEvent>,
    pub(super) accounts: HashMap<AccountId, AccountConfig>,
    pub(super) local: SocketAddr,
    pub(super) names: ServerNames,
}

impl PhoneHandle {
    /// The SIP socket's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<UaEvent> {
        self.events.subscribe()
    }

    /// The accounts, as the user agent uses them.
    pub fn accounts(&self) -> impl Iterator<Item = &AccountConfig> {
        self.accounts.values()
    }

    /// Runs `f` on the phone's task and returns its result.
    pub async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut UserAgent, Instant) -> R + Send + 'static,
    ) -> Result<R, PhoneError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move |ua, now| {
                let _ = tx.send(f(ua, now));
            }))
            .map_err(|_| PhoneError::Stopped)?;
        rx.await.map_err(|_| PhoneError::Stopped)
    }

    /// Registers every account that has a registrar.
    pub async fn register_all(&self) -> Result<(), PhoneError> {
        let ids: Vec<AccountId> = self
            .accounts
            .values()
            .filter(|a| a.registrar.is_some())
            .map(|a| a.id)
            .collect();
        self.with(move |ua, now| ids.into_iter().try_for_each(|id| ua.register(id, now)))
            .await??;
        Ok(())
    }

    fn account(&self, id: AccountId) -> Result<&AccountConfig, PhoneError> {
        self.accounts.get(&id).ok_or(PhoneError::NoAccount(id))
    }

    /// The Request-URI and resolved first hop for what the user typed.
    async fn route(
        &self,
        account: AccountId,
        typed: &str,
    ) -> Result<(String, SocketAddr), PhoneError> {
        let config = self.account(account)?;
        let uri = config.target_uri(typed);
        let hop = config.next_hop(&uri);
        let addr = if config.proxy.is_some()
            || hop
                == config
                    .registrar
                    .clone()
                    .unwrap_or_else(|| config.domain.clone())
        {
            config.outbound
        } else {
            let addr = accounts::resolve(&hop, config.transport)
                .await
                .map_err(|why| PhoneError::Resolve {
                    host: hop.uri_host(),
                    why,
                })?;
            if let Ok(mut names) = self.names.lock() {
                names.insert(addr, hop.host.clone());
            }
            addr
        };
        Ok((uri, addr))
    }

    /// Calls what the user typed (a number, `sip:` URI, `tel:`/`callto:`).
    pub async fn dial(&self, account: AccountId, typed: &str) -> Result<CallId, PhoneError> {
        let (uri, hop) = self.route(account, typed).await?;
        Ok(self
            .with(move |ua, now| ua.call(account, &uri, hop, now))
            .await??)
    }

    /// Sends a SIP MESSAGE.
    pub async fn message(
        &self,
        account: AccountId,
        typed: &str,
        text: &str,
    ) -> Result<MessageId, PhoneError> {
        let (uri, hop) = self.route(account, typed).await?;
        let text = text.to_owned();
        Ok(self
            .with(move |ua, now| ua.send_message(account, &uri, hop, &text, now))
            .await??)
    }

    /// Answers a ringing call.
    pub async fn answer(&self, call: CallId) -> Result<(), PhoneError> {
        Ok(self.with(move |ua, now| ua.answer(call, now)).await??)
    }

    /// Rejects a ringing call with `code` (486 busy, 603 decline).
    pub async fn reject(&self, call: CallId, code: u16) -> Result<(), PhoneError> {
        Ok(self
            .with(move |ua, now| ua.reject(call, code, now))
            .await??)
    }

    /// Hangs up (CANCEL before answer, BYE after).
    pub async fn hangup(&self, call: CallId) -> Result<(), PhoneError> {
        Ok(self.with(move |ua, now| ua.hangup(call, now)).await??)
    }

    /// Puts a call on hold.
    pub async fn hold(&self, call: CallId) -> Result<(), PhoneError> {
        Ok(self.with(move |ua, now| ua.hold(call, now)).await??)
    }

    /// Takes a call off hold.
    pub async fn resume(&self, call: CallId) -> Result<(), PhoneError> {
        Ok(self.with(move |ua, now| ua.resume(call, now)).await??)
    }

    /// Blind transfer of a call to what the user typed.
    pub async fn transfer(
        &self,
        call: CallId,
        account: AccountId,
        typed: &str,
    ) -> Result<(), PhoneError> {
        let uri = self.account(account)?.target_uri(typed);
        Ok(self
            .with(move |ua, now| ua.transfer(call, &uri, now))
            .await??)
    }

    /// Hangs up every call, un-registers every account, and waits (at most
    /// a few seconds) until the far ends answered.
    pub async fn shutdown(&self, task: tokio::task::JoinHandle<()>) {
        let _ = self.with(|ua, now| ua.shutdown(now)).await;
        // The driver stops by itself once idle; closing our queue tells it
        // no one else is coming.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), task).await;
    }
}
