//! Call scenarios on simulated time: a [`Phone`] wraps one [`Call`] with
//! the transaction layer and a [`FakeMedia`], routing layer events as the
//! user agent does; the far end is either a scripted peer (messages
//! written as text, read through `wire`) or a second `Phone`.

mod b2b;
mod incoming;
mod outgoing;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rsip::{Method, Request, Response, SipMessage};

use super::{Call, CallContext, CallError};
use crate::sip::auth::{Credentials, DigestState, FixedCnonce};
use crate::sip::headers;
use crate::sip::sdp::{static_codec, Codec, FakeMedia, MediaCall, SessionDescription};
use crate::sip::transaction::{TransactionLayer, TxEvent};
use crate::sip::ua::types::{AccountConfig, CallId, HostPort, LocalAddrs, UaEvent};
use crate::sip::{wire, Transmit, Transport};

pub(super) const ME: &str = "192.0.2.10:5060";
pub(super) const PEER: &str = "192.0.2.20:5060";

pub(super) fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

pub(super) fn account(user: &str, session_timers: bool) -> AccountConfig {
    AccountConfig {
        id: 1,
        username: user.into(),
        domain: HostPort::parse("example.com").expect("domain"),
        registrar: None,
        proxy: None,
        auth_user: user.into(),
        password: "secret".into(),
        display_name: "Alice Smith".into(),
        transport: Transport::Udp,
        outbound: addr(PEER),
        register_expires: Duration::from_secs(300),
        keep_alive: None,
        public_addr: None,
        session_timers,
        hide_cid: false,
        srtp: crate::sip::sdp::SrtpMode::Off,
    }
}

/// One phone with (at most) one call.
pub(super) struct Phone {
    pub layer: TransactionLayer,
    pub media: FakeMedia,
    pub auth: DigestState,
    pub account: AccountConfig,
    pub local: LocalAddrs,
    pub codecs: Vec<Codec>,
    pub events: VecDeque<UaEvent>,
    pub now: Instant,
    pub call: Option<Call>,
    /// What an incoming INVITE was refused with by `Call::incoming`.
    pub refused: Option<CallError>,
}

impl Phone {
    pub fn new(user: &str, at: &str, t0: Instant, session_timers: bool) -> Self {
        Self {
            layer: TransactionLayer::default(),
            media: FakeMedia::new(),
            auth: DigestState::with_cnonce_source(
                Credentials {
                    username: user.into(),
                    password: "secret".into(),
                    realm: None,
                },
                Box::new(FixedCnonce("0a4f113b".into())),
            ),
            account: account(user, session_timers),
            local: LocalAddrs { sip: addr(at) },
            codecs: [0, 8].into_iter().filter_map(static_codec).collect(),
            events: VecDeque::new(),
            now: t0,
            call: None,
            refused: None,
        }
    }

    /// Runs `f` on the context and the call.
    pub fn with<R>(&mut self, f: impl FnOnce(&mut Call, &mut CallContext) -> R) -> R {
        let Phone {
            layer,
            media,
            auth,
            account,
            local,
            codecs,
            events,
            now,
            call,
            ..
        } = self;
        let mut ctx = CallContext {
            layer,
            media,
            auth,
            account,
            local,
            codecs,
            telephone_event: Some(101),
            now: *now,
            events,
        };
        let call = call.as_mut().expect("the phone has a call");
        f(call, &mut ctx)
    }

    fn create(
        &mut self,
        f: impl FnOnce(&mut CallContext) -> Result<Call, CallError>,
    ) -> Result<(), CallError> {
        let Phone {
            layer,
            media,
            auth,
            account,
            local,
            codecs,
            events,
            now,
            call,
            ..
        } = self;
        let mut ctx = CallContext {
            layer,
            media,
            auth,
            account,
            local,
            codecs,
            telephone_event: Some(101),
            now: *now,
            events,
        };
        *call = Some(f(&mut ctx)?);
        Ok(())
    }

    /// Places a call to `target` via the peer.
    pub fn dial(&mut self, target: &str) {
        self.create(|ctx| Call::outgoing(CallId(1), target, addr(PEER), ctx))
            .expect("outgoing call starts");
        self.pump();
    }

    /// A message arrives from `source`.
    pub fn receive(&mut self, message: SipMessage, source: &str) {
        self.layer
            .handle_message(message, Transport::Udp, addr(source), self.now)
            .expect("the layer takes the message");
        self.pump();
    }

    /// Routes the layer's events as the user agent does.
    pub fn pump(&mut self) {
        while let Some(event) = self.layer.poll_event() {
            match event {
                TxEvent::Request {
                    id,
                    request,
                    transport,
                    source,
                } => {
                    if self.call.is_none() && request.method == Method::Invite {
                        let result = self.create(|ctx| {
                            Call::incoming(CallId(2), id, request.clone(), transport, source, ctx)
                        });
                        if let Err(e) = result {
                            let code = e.status().expect("a refusal has a status");
                            let response = super::build::response(&request, code, Some("x"), false);
                            self.layer
                                .send_response(id, response, self.now)
                                .expect("refusal sent");
                            self.refused = Some(e);
                        }
                    } else if self.call.is_some() {
                        self.with(|c, ctx| c.on_request(id, request, transport, source, ctx));
                    }
                }
                TxEvent::Ack { request, .. } => {
                    if self.call.is_some() {
                        self.with(|c, ctx| c.on_ack(request, ctx));
                    }
                }
                TxEvent::Response { id, response } => {
                    if self.owns(id) {
                        self.with(|c, ctx| c.on_response(id, response, ctx));
                    }
                }
                TxEvent::Stray2xx { response, .. } => {
                    if self.call.is_some() {
                        self.with(|c, ctx| c.on_stray_2xx(response, ctx));
                    }
                }
                TxEvent::Timeout { id, kind } => {
                    if self.owns(id) {
                        self.with(|c, ctx| c.on_timeout(id, kind, ctx));
                    }
                }
                TxEvent::TransportError { id } => {
                    if self.owns(id) {
                        self.with(|c, ctx| c.on_transport_error(id, ctx));
                    }
                }
                TxEvent::Terminated { .. } => {}
            }
        }
    }

    fn owns(&self, id: crate::sip::transaction::TxId) -> bool {
        self.call.as_ref().is_some_and(|c| c.owns_transaction(id))
    }

    fn next_deadline(&self) -> Option<Instant> {
        let call = self.call.as_ref().and_then(Call::next_timeout);
        [self.layer.poll_timeout(), call]
            .into_iter()
            .flatten()
            .min()
    }

    /// Fires every timer up to `until`.
    pub fn advance_to(&mut self, until: Instant) {
        while let Some(at) = self.next_deadline().filter(|t| *t <= until) {
            self.now = self.now.max(at);
            self.layer.handle_timeout(self.now);
            self.pump();
            if self
                .call
                .as_ref()
                .and_then(Call::next_timeout)
                .is_some_and(|t| t <= self.now)
            {
                self.with(|c, ctx| c.handle_timeout(ctx));
                self.pump();
            }
        }
        self.now = until;
    }

    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        self.advance_to(until);
    }

    /// Everything sent since the last call.
    pub fn transmits(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.layer.poll_transmit()).collect()
    }

    /// Everything sent since the last call, parsed as the peer would.
    pub fn sent(&mut self) -> Vec<SipMessage> {
        self.transmits().iter().map(parse).collect()
    }

    pub fn events(&mut self) -> Vec<UaEvent> {
        self.events.drain(..).collect()
    }

    pub fn call(&self) -> &Call {
        self.call.as_ref().expect("the phone has a call")
    }
}

pub(super) fn parse(t: &Transmit) -> SipMessage {
    match wire::parse_datagram(&t.bytes) {
        Ok(wire::Incoming::Message(m)) => m,
        other => panic!("sent bytes do not parse: {other:?}"),
    }
}

/// The only request with `method` in `messages` (retransmissions of it
/// aside).
pub(super) fn only_request(messages: &[SipMessage], method: Method) -> Request {
    let mut found: Vec<&Request> = Vec::new();
    for m in messages {
        if let SipMessage::Request(r) = m {
            if r.method == method && !found.contains(&r) {
                found.push(r);
            }
        }
    }
    assert_eq!(found.len(), 1, "expected one {method} in {messages:#?}");
    found[0].clone()
}

/// The responses in `messages`, by status code.
pub(super) fn responses(messages: &[SipMessage]) -> Vec<Response> {
    messages
        .iter()
        .filter_map(|m| match m {
            SipMessage::Response(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn codes(messages: &[SipMessage]) -> Vec<u16> {
    responses(messages)
        .iter()
        .map(|r| r.status_code.code())
        .collect()
}

pub(super) fn header<'a>(headers: &'a rsip::Headers, name: &'a str) -> Option<&'a str> {
    headers::raw_values(headers, name).next()
}

pub(super) fn sdp(body: &[u8]) -> SessionDescription {
    SessionDescription::parse(std::str::from_utf8(body).expect("utf-8 SDP")).expect("SDP parses")
}

/// The peer's audio offer/answer on port 30000.
pub(super) fn peer_sdp(direction: &str) -> String {
    format!(
        "v=0\r\no=- 7 7 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n\
         m=audio 30000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na={direction}\r\n"
    )
}

fn read(text: String) -> SipMessage {
    wire::parse_message(text.as_bytes()).expect("scripted message parses")
}

/// A response of the scripted peer to `request`: its Vias, From, Call-ID
/// and CSeq; To with `tag`; then `extra` header lines and `body`.
pub(super) fn reply(
    request: &Request,
    code: u16,
    tag: Option<&str>,
    extra: &str,
    body: &str,
) -> SipMessage {
    let mut text = format!(
        "SIP/2.0 {code} {}\r\n",
        wire::canonical_reason(code).unwrap_or("Whatever")
    );
    for h in request.headers.iter() {
        let (name, value) = headers::name_and_value(h);
        if headers::same_name(name, "To") {
            match tag {
                Some(tag) if !value.contains("tag=") => {
                    text.push_str(&format!("To: {value};tag={tag}\r\n"));
                }
                _ => text.push_str(&format!("To: {value}\r\n")),
            }
        } else if ["Via", "From", "Call-ID", "CSeq"]
            .iter()
            .any(|n| headers::same_name(name, n))
        {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    text.push_str(extra);
    if !body.is_empty() {
        text.push_str("Content-Type: application/sdp\r\n");
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    read(text)
}

/// A request of the scripted peer (Bob at 192.0.2.20).
#[allow(clippy::too_many_arguments)]
pub(super) fn peer_request(
    method: &str,
    uri: &str,
    from: &str,
    to: &str,
    call_id: &str,
    cseq: u32,
    extra: &str,
    body: &str,
) -> SipMessage {
    let branch = headers::new_branch().expect("branch");
    read(format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.20:5060;branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: {from}\r\n\
         To: {to}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n\
         {extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

/// The media calls recorded, without the allocation.
pub(super) fn media_calls(phone: &Phone) -> Vec<&MediaCall> {
    phone
        .media
        .calls
        .iter()
        .filter(|c| !matches!(c, MediaCall::Allocate(_)))
        .collect()
}

/// The end reason reported, if any.
pub(super) fn ended(events: &[UaEvent]) -> Option<(u16, String, bool)> {
    events.iter().find_map(|e| match e {
        UaEvent::CallEnded { reason, .. } => {
            Some((reason.code, reason.text.clone(), reason.by_remote))
        }
        _ => None,
    })
}

/// The CallState events reported, in order.
pub(super) fn states(events: &[UaEvent]) -> Vec<crate::sip::ua::types::CallState> {
    events
        .iter()
        .filter_map(|e| match e {
            UaEvent::CallState { state, .. } => Some(*state),
            _ => None,
        })
        .collect()
}
