//! One account's registration with its registrar (RFC 3261 §10.2): the
//! REGISTER, digest retries, 423 handling, refresh before expiry, retry
//! with back-off, un-registration, and CRLF keep-alives.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rsip::{Method, Response};

use super::addressing;
use super::error::UaError;
use super::request::RequestTemplate;
use super::types::{AccountConfig, LocalAddrs, RegistrationState, UaEvent};
use crate::sip::auth::{Attempt, AuthError, ChallengeKind, DigestState};
use crate::sip::headers;
use crate::sip::transaction::{TransactionLayer, TxId};
use crate::sip::wire::reason_phrase;
use crate::sip::Transmit;

/// First retry after a failure; doubles per consecutive failure.
pub const RETRY_FIRST: Duration = Duration::from_secs(5);
/// Cap of the retry back-off.
pub const RETRY_MAX: Duration = Duration::from_secs(300);
/// Earliest retry after the registrar refused our password: retrying a
/// wrong password every few seconds gets accounts locked (fail2ban).
pub const RETRY_WRONG_PASSWORD: Duration = Duration::from_secs(60);
/// The least a refresh goes out before the binding expires (the larger of
/// this and a tenth of the granted time, at most half of it).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5);
/// What is asked for when the account's `registerRefresh` is 0.
pub const DEFAULT_EXPIRES: u32 = 300;
/// Keep-alive payload (RFC 5626 §4.4.1 double CRLF).
pub const KEEP_ALIVE: &[u8] = b"\r\n\r\n";

/// What a registration needs from the user agent for one step.
pub(super) struct RegContext<'a> {
    pub layer: &'a mut TransactionLayer,
    pub auth: &'a mut DigestState,
    pub account: &'a AccountConfig,
    pub local: &'a LocalAddrs,
    pub rport: bool,
    pub user_agent: &'a str,
    pub events: &'a mut VecDeque<UaEvent>,
    pub transmits: &'a mut VecDeque<Transmit>,
    pub now: Instant,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    tx: TxId,
    /// What this REGISTER asked for; 0 un-registers.
    expires: u32,
    attempt: Attempt,
}

/// The registration state machine of one account.
#[derive(Debug)]
pub(super) struct Registration {
    /// Created with the first REGISTER: Call-ID and From tag stay fixed
    /// for the life of the process (§10.2 asks for one Call-ID per
    /// registrar), CSeq keeps increasing.
    template: Option<RequestTemplate>,
    state: RegistrationState,
    /// The user wants to be registered (between `start` and `stop`).
    wanted: bool,
    /// The registrar may hold a binding of ours (a 2xx, not yet undone).
    bound: bool,
    /// The expiry we ask for; raised by a 423's Min-Expires.
    expires: u32,
    in_flight: Option<InFlight>,
    /// When to send the next REGISTER (refresh or retry).
    next_send: Option<Instant>,
    /// The delay before the next retry after a failure.
    backoff: Duration,
    next_keep_alive: Option<Instant>,
}

impl Registration {
    pub fn new(account: &AccountConfig) -> Self {
        let expires = u32::try_from(account.register_expires.as_secs()).unwrap_or(u32::MAX);
        Self {
            template: None,
            state: RegistrationState::Unregistered,
            wanted: false,
            bound: false,
            expires: if expires == 0 {
                DEFAULT_EXPIRES
            } else {
                expires
            },
            in_flight: None,
            next_send: None,
            backoff: RETRY_FIRST,
            next_keep_alive: None,
        }
    }

    pub fn state(&self) -> &RegistrationState {
        &self.state
    }

    /// Whether REGISTER transaction `tx` is ours.
    pub fn owns(&self, tx: TxId) -> bool {
        self.in_flight.is_some_and(|f| f.tx == tx)
    }

    /// Whether a REGISTER is waiting for its answer.
    pub fn is_busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Registers and keeps the registration refreshed until [`Self::stop`].
    pub fn start(&mut self, ctx: &mut RegContext<'_>) -> Result<(), UaError> {
        if ctx.account.registrar.is_none() {
            return Err(UaError::NoRegistrar(ctx.account.id));
        }
        let already = self.wanted
            && (self.in_flight.is_some()
                || matches!(self.state, RegistrationState::Registered { .. }));
        self.wanted = true;
        if self.next_keep_alive.is_none() {
            self.next_keep_alive = ctx.account.keep_alive.map(|every| ctx.now + every);
        }
        if already || self.in_flight.is_some() {
            // §10.2: no new REGISTER before the previous one is answered;
            // its completion looks at `wanted`.
            return Ok(());
        }
        self.set_state(RegistrationState::Registering, ctx);
        self.send(self.expires, Attempt::First, ctx)
            .inspect_err(|e| {
                self.fail(500, e.to_string(), ctx);
            })
    }

    /// Removes our binding (Expires: 0) and stops refreshing.
    pub fn stop(&mut self, ctx: &mut RegContext<'_>) -> Result<(), UaError> {
        self.wanted = false;
        self.next_send = None;
        self.next_keep_alive = None;
        if self.in_flight.is_some() {
            return Ok(());
        }
        if self.bound {
            return self.send(0, Attempt::First, ctx);
        }
        self.set_state(RegistrationState::Unregistered, ctx);
        Ok(())
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        match (self.next_send, self.next_keep_alive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sends what is due: a refresh or retry, a keep-alive.
    pub fn handle_timeout(&mut self, ctx: &mut RegContext<'_>) {
        if let (Some(at), Some(every)) = (self.next_keep_alive, ctx.account.keep_alive) {
            if at <= ctx.now {
                ctx.transmits.push_back(Transmit {
                    transport: ctx.account.transport,
                    destination: ctx.account.outbound,
                    bytes: KEEP_ALIVE.to_vec(),
                });
                // A zero interval would otherwise fire on every wake-up.
                self.next_keep_alive = Some(ctx.now + every.max(Duration::from_secs(1)));
            }
        }
        if self.next_send.is_some_and(|at| at <= ctx.now) && self.in_flight.is_none() {
            self.next_send = None;
            if self.wanted {
                if let Err(e) = self.send(self.expires, Attempt::First, ctx) {
                    self.fail(500, e.to_string(), ctx);
                }
            }
        }
    }

    /// A response to our REGISTER `tx`.
    pub fn on_response(&mut self, tx: TxId, response: &Response, ctx: &mut RegContext<'_>) {
        let Some(flight) = self.in_flight.filter(|f| f.tx == tx) else {
            return;
        };
        let code = response.status_code.code();
        if code < 200 {
            return;
        }
        self.in_flight = None;
        match code {
            200..=299 => self.on_success(flight, response, ctx),
            401 | 407 => self.on_challenge(flight, code, response, ctx),
            423 if flight.expires > 0 => {
                match headers::min_expires(&response.headers).ok().flatten() {
                    // Min-Expires only ever raises what we ask, so this
                    // cannot loop.
                    Some(min) if min > self.expires => {
                        self.expires = min;
                        self.resend(Attempt::First, ctx);
                    }
                    _ => self.fail(423, "Interval Too Brief without a usable Min-Expires", ctx),
                }
            }
            _ if flight.expires == 0 => self.unbound(ctx),
            _ => self.fail(code, reason(response), ctx),
        }
    }

    /// Our REGISTER `tx` got no answer (timer F) or could not be sent.
    pub fn on_failure(&mut self, tx: TxId, code: u16, why: &str, ctx: &mut RegContext<'_>) {
        let Some(flight) = self.in_flight.filter(|f| f.tx == tx) else {
            return;
        };
        self.in_flight = None;
        if flight.expires == 0 {
            self.unbound(ctx);
        } else {
            self.fail(code, why, ctx);
        }
    }

    fn on_success(&mut self, flight: InFlight, response: &Response, ctx: &mut RegContext<'_>) {
        if flight.expires == 0 {
            self.unbound(ctx);
            return;
        }
        let granted = granted_expires(response, ctx.account, ctx.local).unwrap_or(flight.expires);
        if granted == 0 {
            self.fail(
                response.status_code.code(),
                "the registrar kept no binding for our Contact",
                ctx,
            );
            return;
        }
        self.bound = true;
        self.backoff = RETRY_FIRST;
        self.set_state(RegistrationState::Registered { expires: granted }, ctx);
        if self.wanted {
            self.next_send = Some(ctx.now + refresh_after(granted));
        } else if let Err(e) = self.send(0, Attempt::First, ctx) {
            // Un-registering is best effort: the binding will expire.
            self.bound = false;
            self.set_state(RegistrationState::Unregistered, ctx);
            tracing::warn!(account = ctx.account.id, "cannot un-register: {e}");
        }
    }

    fn on_challenge(
        &mut self,
        flight: InFlight,
        code: u16,
        response: &Response,
        ctx: &mut RegContext<'_>,
    ) {
        let kind = if code == 407 {
            ChallengeKind::Proxy
        } else {
            ChallengeKind::Www
        };
        let name = if code == 407 {
            "Proxy-Authenticate"
        } else {
            "WWW-Authenticate"
        };
        let values: Vec<&str> = headers::raw_values(&response.headers, name).collect();
        match ctx.auth.on_challenge(kind, &values, flight.attempt) {
            Ok(()) => {
                let expires = flight.expires;
                if let Err(e) = self.send(expires, Attempt::Retry, ctx) {
                    self.fail(500, e.to_string(), ctx);
                }
            }
            Err(_) if flight.expires == 0 => self.unbound(ctx),
            Err(AuthError::Rejected(realm)) => {
                self.backoff = self.backoff.max(RETRY_WRONG_PASSWORD);
                self.fail(code, format!("wrong password for realm {realm}"), ctx);
            }
            Err(e) => self.fail(code, e.to_string(), ctx),
        }
    }

    /// After a 423: the same REGISTER with the new expiry.
    fn resend(&mut self, attempt: Attempt, ctx: &mut RegContext<'_>) {
        if let Err(e) = self.send(self.expires, attempt, ctx) {
            self.fail(500, e.to_string(), ctx);
        }
    }

    /// The binding is gone (or un-registering gave up): report it, and
    /// register again if the user asked for it meanwhile.
    fn unbound(&mut self, ctx: &mut RegContext<'_>) {
        self.bound = false;
        self.set_state(RegistrationState::Unregistered, ctx);
        if self.wanted {
            self.set_state(RegistrationState::Registering, ctx);
            self.resend(Attempt::First, ctx);
        }
    }

    /// A REGISTER failed: report it and retry after the back-off.
    fn fail(&mut self, code: u16, why: impl Into<String>, ctx: &mut RegContext<'_>) {
        self.in_flight = None;
        self.set_state(
            RegistrationState::Failed {
                code,
                reason: why.into(),
            },
            ctx,
        );
        if self.wanted {
            self.next_send = Some(ctx.now + self.backoff);
            self.backoff = self.backoff.saturating_mul(2).min(RETRY_MAX);
        } else if self.bound {
            // Un-register was asked for while this REGISTER was out.
            if self.send(0, Attempt::First, ctx).is_err() {
                self.bound = false;
                self.set_state(RegistrationState::Unregistered, ctx);
            }
        } else {
            self.set_state(RegistrationState::Unregistered, ctx);
        }
    }

    fn send(
        &mut self,
        expires: u32,
        attempt: Attempt,
        ctx: &mut RegContext<'_>,
    ) -> Result<(), UaError> {
        let account = ctx.account;
        let registrar = account
            .registrar
            .as_ref()
            .ok_or(UaError::NoRegistrar(account.id))?;
        let template = match &mut self.template {
            Some(t) => t,
            None => {
                let aor = format!("<{}>", account.aor());
                let uri = format!("sip:{}", registrar.uri_host());
                self.template
                    .insert(RequestTemplate::new(Method::Register, uri, aor, account)?)
            }
        };
        let contact = addressing::contact_uri(account, ctx.local);
        template.extra = vec![
            ("Contact", format!("<{contact}>;expires={expires}")),
            ("Expires", expires.to_string()),
            ("Allow", super::response::ALLOW.to_owned()),
        ];
        let via = addressing::new_via(account, ctx.local, ctx.rport)?;
        let request = template.next(&via, ctx.auth, ctx.user_agent)?;
        let tx = ctx
            .layer
            .send_request(request, account.transport, account.outbound, ctx.now)?;
        self.in_flight = Some(InFlight {
            tx,
            expires,
            attempt,
        });
        // This REGISTER supersedes any scheduled one; its outcome
        // schedules the next.
        self.next_send = None;
        Ok(())
    }

    fn set_state(&mut self, state: RegistrationState, ctx: &mut RegContext<'_>) {
        if self.state != state {
            self.state = state.clone();
            ctx.events.push_back(UaEvent::Registration {
                account: ctx.account.id,
                state,
            });
        }
    }
}

/// The expiry the registrar granted our binding (§10.2.4): the `expires`
/// of our own Contact among those it lists, else of the only Contact,
/// else its Expires header. `None` when it says nothing.
fn granted_expires(
    response: &Response,
    account: &AccountConfig,
    local: &LocalAddrs,
) -> Option<u32> {
    let ours = addressing::contact_uri(account, local);
    let contacts = headers::contacts(&response.headers).unwrap_or_default();
    let own = contacts
        .iter()
        .find(|c| addressing::same_binding(&c.uri, &ours))
        .or(match contacts.as_slice() {
            [only] => Some(only),
            _ => None,
        })
        .and_then(|c| c.expires());
    own.or_else(|| headers::expires(&response.headers).ok().flatten())
}

/// When to refresh a binding granted for `granted` seconds: a tenth of
/// it, but at least [`REFRESH_MARGIN`] and at most half of it, early.
pub(super) fn refresh_after(granted: u32) -> Duration {
    let granted = Duration::from_secs(u64::from(granted));
    let margin = (granted / 10).max(REFRESH_MARGIN).min(granted / 2);
    granted - margin
}

fn reason(response: &Response) -> String {
    reason_phrase(&response.status_code)
}
