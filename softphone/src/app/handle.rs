//! [`PhoneHandle`]: how the rest of the program (the control socket, the
//! command line, tests) talks to the running phone.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot};

use super::accounts;
use super::dialplan::{self, Dialing};
use super::media_engine::{AudioControls, CallMediaStats, DeviceRole, DtmfRoute, MediaControl};
use super::net::ServerNames;
use super::phone::{Job, PhoneError, SHUTDOWN_GRACE};
use crate::config::settings::DtmfMethod;
use crate::sip::ua::{
    AccountConfig, AccountId, CallId, CallInfo, MessageId, RegistrationState, UaEvent, UserAgent,
};

/// Talks to a running phone. Cheap to clone.
#[derive(Clone)]
pub struct PhoneHandle {
    pub(super) jobs: mpsc::UnboundedSender<Job>,
    pub(super) events: broadcast::Sender<UaEvent>,
    pub(super) accounts: HashMap<AccountId, AccountConfig>,
    pub(super) local: SocketAddr,
    pub(super) names: ServerNames,
    /// Each account's `dialingPrefix` and `dialPlan`.
    pub(super) dialing: std::sync::Arc<HashMap<AccountId, Dialing>>,
    /// The calls' media streams (DTMF, Status).
    pub(super) media: MediaControl,
    /// `DTMFMethod`.
    pub(super) dtmf_method: DtmfMethod,
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
        let uri = config.target_uri(&dialplan::for_account(&self.dialing, account, typed)?);
        let hop = config.next_hop(&uri);
        let addr = if hop == config.first_hop() {
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

    /// Every live call, oldest first.
    pub async fn calls(&self) -> Result<Vec<CallInfo>, PhoneError> {
        self.with(|ua, _| ua.calls().collect()).await
    }

    /// Each account's registration state, by account number.
    pub async fn registrations(&self) -> Result<Vec<(AccountId, RegistrationState)>, PhoneError> {
        let mut ids: Vec<AccountId> = self.accounts.keys().copied().collect();
        ids.sort_unstable();
        self.with(move |ua, _| {
            ids.into_iter()
                .filter_map(|id| ua.registration(id).map(|s| (id, s.clone())))
                .collect()
        })
        .await
    }

    /// Sends one DTMF digit on a connected call the way `DTMFMethod`
    /// says: RFC 4733 telephone-events (auto, when the peer negotiated
    /// them), in-band tones, or SIP INFO. Returns the way it went.
    pub async fn send_dtmf(&self, call: CallId, digit: char) -> Result<DtmfRoute, PhoneError> {
        let (media, method) = (self.media.clone(), self.dtmf_method);
        self.with(move |ua, now| -> Result<DtmfRoute, PhoneError> {
            let route = match ua.media_handle(call) {
                Some(handle) => media.send_dtmf(handle, digit, method)?,
                // Not a call: SIP INFO's path reports it.
                None => DtmfRoute::SipInfo,
            };
            if route == DtmfRoute::SipInfo {
                ua.send_dtmf_info(call, digit, now)?;
            }
            Ok(route)
        })
        .await?
    }

    /// The phone's audio controls (mute, volumes, devices) as the media
    /// engine applies them.
    pub fn audio_controls(&self) -> AudioControls {
        self.media.audio_controls()
    }

    /// Mutes or unmutes the microphone: every call sends silence (its RTP
    /// keeps flowing, as in MicroSIP) until unmuted. Returns the controls.
    pub fn set_muted(&self, muted: bool) -> AudioControls {
        self.media.set_muted(muted)
    }

    /// Flips mute; returns the controls.
    pub fn toggle_mute(&self) -> AudioControls {
        self.media.toggle_mute()
    }

    /// Sets the speaker volume (0–100, clamped), at once on every call.
    pub fn set_speaker_volume(&self, volume: u8) -> AudioControls {
        self.media.set_speaker_volume(volume)
    }

    /// Moves the speaker volume by `delta` percent, within 0–100.
    pub fn adjust_speaker_volume(&self, delta: i16) -> AudioControls {
        self.media.adjust_speaker_volume(delta)
    }

    /// Sets the microphone volume (0–100, clamped, with MicroSIP's
    /// `micAmplification` curve), at once on every call.
    pub fn set_mic_volume(&self, volume: u8) -> AudioControls {
        self.media.set_mic_volume(volume)
    }

    /// Switches the input, output or ring device to `device` (an
    /// `audio*Device` value: a sound card's name, `file:`, `tone:`,
    /// `null`, empty for the default) for new calls and every running
    /// call. If the device cannot be opened the calls and the controls
    /// keep the old one and the error names the device.
    pub async fn set_audio_device(
        &self,
        role: DeviceRole,
        device: &str,
    ) -> Result<AudioControls, PhoneError> {
        Ok(self.media.set_device(role, device).await?)
    }

    /// The call's media codec and statistics (loss, jitter, round trip)
    /// for Status; `None` while the call has no running stream.
    pub async fn media_stats(&self, call: CallId) -> Result<Option<CallMediaStats>, PhoneError> {
        let media = self.media.clone();
        self.with(move |ua, _| ua.media_handle(call).and_then(|h| media.stats(h)))
            .await
    }

    /// Applies a re-read `[AccountN]` list without dropping calls: new
    /// accounts are added and registered; changed ones are un-registered,
    /// replaced and registered again; removed ones are un-registered and
    /// no longer used for new requests (the user agent keeps them for the
    /// calls they may still carry). Unchanged accounts are not touched.
    ///
    /// Every account is resolved before anything changes, so a bad or
    /// unresolvable account leaves the phone as it was.
    pub async fn reload_accounts(
        &mut self,
        list: &[crate::config::Account],
    ) -> Result<ReloadReport, PhoneError> {
        let mut fresh = HashMap::new();
        for account in list {
            let (config, host) = accounts::resolved(account).await?;
            if let Ok(mut names) = self.names.lock() {
                names.insert(config.outbound, host);
            }
            fresh.insert(config.id, config);
        }
        let mut report = ReloadReport::default();
        for (id, old) in &self.accounts {
            match fresh.get(id) {
                None => report.removed.push(*id),
                Some(new) if new != old => report.changed.push(*id),
                Some(_) => report.unchanged.push(*id),
            }
        }
        report.added = fresh
            .keys()
            .filter(|id| !self.accounts.contains_key(id))
            .copied()
            .collect();
        for list in [
            &mut report.added,
            &mut report.changed,
            &mut report.removed,
            &mut report.unchanged,
        ] {
            list.sort_unstable();
        }
        // Un-register first, with the old credentials, and wait for the
        // registrar's answer: replacing an account under its REGISTER
        // would orphan that transaction and leave a stale binding.
        let stopping: Vec<AccountId> = report
            .removed
            .iter()
            .chain(&report.changed)
            .copied()
            .collect();
        let mut events = self.subscribe();
        let mut waiting: Vec<AccountId> = self
            .with(move |ua, now| {
                stopping
                    .into_iter()
                    .filter(|id| {
                        ua.unregister(*id, now).is_ok()
                            && ua.registration(*id) != Some(&RegistrationState::Unregistered)
                    })
                    .collect()
            })
            .await?;
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while !waiting.is_empty() {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Ok(UaEvent::Registration { account, state })) => {
                    if matches!(
                        state,
                        RegistrationState::Unregistered | RegistrationState::Failed { .. }
                    ) {
                        waiting.retain(|id| *id != account);
                    }
                }
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) => return Err(PhoneError::Stopped),
                Err(_) => break,
            }
        }
        let install: Vec<(bool, AccountConfig)> = report
            .changed
            .iter()
            .map(|id| (true, fresh[id].clone()))
            .chain(report.added.iter().map(|id| (false, fresh[id].clone())))
            .collect();
        let results = self
            .with(move |ua, now| {
                install
                    .into_iter()
                    .map(|(replace, config)| {
                        let id = config.id;
                        let registers = config.registrar.is_some();
                        let installed = if replace {
                            ua.replace_account(config)
                        } else {
                            ua.add_account(config)
                        };
                        let result = installed.and_then(|()| {
                            if registers {
                                ua.register(id, now)
                            } else {
                                Ok(())
                            }
                        });
                        (id, result)
                    })
                    .collect::<Vec<_>>()
            })
            .await?;
        for (id, result) in results {
            match result {
                Ok(()) => {
                    self.accounts.insert(id, fresh[&id].clone());
                }
                Err(e) => report.failed.push((id, e.to_string())),
            }
        }
        for id in &report.removed {
            self.accounts.remove(id);
        }
        Ok(report)
    }

    /// As [`Self::shutdown`], giving up this handle first: once no other
    /// handle is left the driver ends as soon as it is idle (the far ends
    /// answered), rather than when the grace period runs out.
    pub async fn stop(self, task: tokio::task::JoinHandle<()>) {
        let _ = self.with(|ua, now| ua.shutdown(now)).await;
        drop(self);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), task).await;
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

/// What [`PhoneHandle::reload_accounts`] did, by account number.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReloadReport {
    /// New accounts, added (and registered when they have a registrar).
    pub added: Vec<AccountId>,
    /// Accounts whose settings changed: re-registered with the new ones.
    pub changed: Vec<AccountId>,
    /// Accounts gone from the file: un-registered, unused for new requests.
    pub removed: Vec<AccountId>,
    /// Accounts left alone.
    pub unchanged: Vec<AccountId>,
    /// Accounts that could not be installed, and why (the old settings
    /// stay for a changed one).
    pub failed: Vec<(AccountId, String)>,
}
