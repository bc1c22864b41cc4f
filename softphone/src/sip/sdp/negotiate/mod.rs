//! RFC 3264 offer/answer for one call's audio stream.

use std::net::{IpAddr, SocketAddr};

use super::codec::{static_codec, Codec};
use super::model::{
    addr_type, Attribute, Connection, Direction, Line, MediaDescription, Origin, SessionDescription,
};
use super::SdpError;
use crypto::KeyMaterial;
pub use crypto::{SrtpKeys, SrtpMode};

/// Whose codec order wins when we answer (MicroSIP's `forceCodec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecOrder {
    /// The offerer's order, as RFC 3264 §6.1 recommends ("the same
    /// relative order they were present in the offer"); `forceCodec=0`.
    Offerer,
    /// Our priority order, which RFC 3264 §6.1 allows ("MAY list the
    /// formats in their desired order of preference"); `forceCodec=1`.
    Ours,
}

impl CodecOrder {
    /// Maps MicroSIP's `forceCodec` setting.
    pub fn from_force_codec(force_codec: bool) -> Self {
        if force_codec {
            CodecOrder::Ours
        } else {
            CodecOrder::Offerer
        }
    }
}

/// What our side offers and accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// The address written in `c=`/`o=`: MicroSIP's `publicAddr` when set
    /// (or a STUN-mapped one), else the RTP socket's local address.
    pub address: IpAddr,
    /// The local RTP port ([`super::MediaEngine::allocate`]).
    pub port: u16,
    /// Our codecs in priority order ([`super::codecs_from_microsip`]).
    pub codecs: Vec<Codec>,
    /// The payload type for `telephone-event/8000` in our offers; `None`
    /// disables RFC 4733 (MicroSIP `DTMFMethod` in-band or SIP INFO).
    pub telephone_event: Option<u8>,
    /// Our `a=ptime` in milliseconds, if we state one.
    pub ptime: Option<u32>,
    /// How we order codecs in answers.
    pub answer_order: CodecOrder,
    /// The account's `SRTP` setting.
    pub srtp: SrtpMode,
}

/// A codec bound to a payload type number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadCodec {
    /// The payload type number.
    pub pt: u8,
    /// The codec.
    pub codec: Codec,
    /// The peer's `a=fmtp` for it (e.g. opus parameters).
    pub remote_fmtp: Option<String>,
}

/// An RFC 4733 telephone-event format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The payload type number.
    pub pt: u8,
    /// Its RTP clock rate (it must equal the audio codec's).
    pub clock_rate: u32,
}

/// The outcome of an offer/answer exchange: what the media engine needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// Our RTP port.
    pub local_port: u16,
    /// Where to send RTP (RTCP: port + 1). `0.0.0.0` under legacy hold.
    pub remote: SocketAddr,
    /// The codec and payload type number to send with.
    pub send_codec: PayloadCodec,
    /// Every codec the peer may send us, with our payload type numbers.
    pub receive_codecs: Vec<PayloadCodec>,
    /// The telephone-event format to send DTMF with, if negotiated.
    pub send_telephone_event: Option<TelephoneEvent>,
    /// Telephone-event formats the peer may send us.
    pub receive_telephone_events: Vec<TelephoneEvent>,
    /// What we do: `SendOnly` when we hold, `RecvOnly` when held, ...
    pub direction: Direction,
    /// The peer's `a=ptime`: how it wants our packets sized.
    pub ptime: Option<u32>,
    /// SDES-SRTP keys when the stream is encrypted; `None`: plain RTP.
    pub srtp: Option<SrtpKeys>,
}

/// The stream part of our pending offer.
#[derive(Debug, Clone)]
struct PendingOffer {
    m_count: usize,
    payloads: Vec<PayloadCodec>,
    events: Vec<TelephoneEvent>,
    direction: Direction,
    /// The key we put in `a=crypto:1`, if any.
    crypto: Option<crate::media::srtp::SrtpKey>,
}

/// The m-line skeleton of the session: RFC 3264 §8 forbids a new offer to
/// drop or reorder m-lines, so rejected ones are repeated with port 0.
#[derive(Debug, Clone)]
struct Layout {
    lines: Vec<MediaDescription>,
    audio_index: usize,
}

/// The SDP side of one call (one SDP session, RFC 3264 §8).
#[derive(Debug, Clone)]
pub struct SdpSession {
    local: LocalMedia,
    session_id: u64,
    version: u64,
    last_sent: Option<SessionDescription>,
    local_hold: bool,
    remote_hold: bool,
    pending: Option<PendingOffer>,
    layout: Option<Layout>,
    /// Our SRTP master key and salt for this call (see [`KeyMaterial`]).
    srtp_material: Option<KeyMaterial>,
}

/// A format on a remote m-line, resolved through rtpmap or RFC 3551.
struct RemoteFormat {
    pt: u8,
    codec: Codec,
    fmtp: Option<String>,
}

impl RemoteFormat {
    fn is_telephone_event(&self) -> bool {
        self.codec.encoding.eq_ignore_ascii_case("telephone-event")
    }
}

fn remote_formats(m: &MediaDescription) -> Vec<RemoteFormat> {
    let maps = m.rtpmaps();
    m.payload_types()
        .into_iter()
        .filter_map(|pt| {
            let codec = match maps.iter().find(|r| r.pt == pt) {
                Some(r) => Codec {
                    encoding: r.encoding.clone(),
                    clock_rate: r.clock_rate,
                    channels: r.channels,
                    static_pt: None,
                    fmtp: None,
                },
                None => static_codec(pt)?,
            };
            Some(RemoteFormat {
                pt,
                codec,
                fmtp: m.fmtp(pt).map(str::to_string),
            })
        })
        .collect()
}

/// The telephone-event to send with: same clock as the codec, else 8000,
/// else any.
fn pick_event(events: &[TelephoneEvent], clock_rate: u32) -> Option<TelephoneEvent> {
    events
        .iter()
        .find(|e| e.clock_rate == clock_rate)
        .or_else(|| events.iter().find(|e| e.clock_rate == 8000))
        .or_else(|| events.first())
        .copied()
}

fn remote_endpoint(sdp: &SessionDescription, m: &MediaDescription) -> Result<SocketAddr, String> {
    let conn = sdp
        .effective_connection(m)
        .ok_or_else(|| "no c= line for the audio stream".to_string())?;
    let ip = conn
        .ip()
        .ok_or_else(|| format!("connection address `{}` is not an IP address", conn.address))?;
    Ok(SocketAddr::new(ip, m.port))
}

/// The peer's direction for `m`, with legacy `c=0.0.0.0` hold meaning
/// "do not send to me".
fn remote_direction(sdp: &SessionDescription, m: &MediaDescription) -> Direction {
    let d = sdp.effective_direction(m);
    if sdp
        .effective_connection(m)
        .is_some_and(Connection::is_legacy_hold)
    {
        d.intersect(Direction::SendOnly)
    } else {
        d
    }
}

fn is_rtp_avp(m: &MediaDescription) -> bool {
    m.proto.eq_ignore_ascii_case("RTP/AVP")
}

fn rejected(m: &MediaDescription) -> MediaDescription {
    MediaDescription {
        media: m.media.clone(),
        port: 0,
        port_count: None,
        proto: m.proto.clone(),
        formats: m.formats.clone(),
        connection: None,
        attributes: Vec::new(),
        other: Vec::new(),
    }
}

impl SdpSession {
    /// A session for a new call. `session_id` should be random (see
    /// [`SdpSession::with_random_id`]); the first version equals it.
    pub fn new(local: LocalMedia, session_id: u64) -> Self {
        // Below 2^62 so version increments never overflow in practice and
        // peers that parse o= numbers as i64 stay happy.
        let session_id = session_id & ((1 << 62) - 1);
        Self {
            local,
            session_id,
            version: session_id,
            last_sent: None,
            local_hold: false,
            remote_hold: false,
            pending: None,
            layout: None,
            srtp_material: None,
        }
    }

    /// [`SdpSession::new`] with an id from the OS random source.
    pub fn with_random_id(local: LocalMedia) -> Result<Self, SdpError> {
        let id = getrandom::u64().map_err(|e| SdpError::Random(e.to_string()))?;
        let srtp = local.srtp;
        let mut session = Self::new(local, id);
        if srtp != SrtpMode::Off {
            session.srtp_material = Some(crypto::random_material().map_err(SdpError::Random)?);
        }
        Ok(session)
    }

    /// Our side's description.
    pub fn local(&self) -> &LocalMedia {
        &self.local
    }

    /// Replaces our side (new address after a network change, new port);
    /// takes effect in the next offer or answer.
    pub fn set_local(&mut self, local: LocalMedia) {
        self.local = local;
    }

    /// Puts the call on hold or resumes it; send the result of
    /// [`SdpSession::create_offer`] in a re-INVITE afterwards.
    pub fn set_hold(&mut self, hold: bool) {
        self.local_hold = hold;
    }

    /// Whether we hold the call.
    pub fn is_local_hold(&self) -> bool {
        self.local_hold
    }

    /// Whether the peer's last offer put us on hold (sendonly, inactive or
    /// `c=0.0.0.0`).
    pub fn is_remote_hold(&self) -> bool {
        self.remote_hold
    }

    /// The `o=` session id.
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// The `o=` version of the last SDP we produced.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether an offer of ours awaits its answer.
    pub fn has_pending_offer(&self) -> bool {
        self.pending.is_some()
    }

    /// Forgets our pending offer when its transaction failed (RFC 3264
    /// §8: a rejected offer leaves the session as it was).
    pub fn rollback_offer(&mut self) {
        self.pending = None;
    }

    /// Our SRTP key with `suite`. The material is made on first use when
    /// [`SdpSession::new`] (not [`SdpSession::with_random_id`]) built the
    /// session; `None` only if the OS random source fails.
    fn srtp_key(
        &mut self,
        suite: crate::media::srtp::SrtpSuite,
    ) -> Option<crate::media::srtp::SrtpKey> {
        if self.srtp_material.is_none() {
            self.srtp_material = crypto::random_material().ok();
        }
        self.srtp_material
            .as_ref()
            .map(|m| crate::media::srtp::SrtpKey::from_bytes(suite, m))
    }

    fn desired_direction(&self) -> Direction {
        match (self.local_hold, self.remote_hold) {
            (false, _) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (true, true) => Direction::Inactive,
        }
    }

    fn audio_section(
        &self,
        payloads: &[PayloadCodec],
        events: &[TelephoneEvent],
        direction: Direction,
        proto: &str,
        crypto: Option<(u32, &crate::media::srtp::SrtpKey)>,
    ) -> MediaDescription {
        let mut formats: Vec<String> = payloads.iter().map(|p| p.pt.to_string()).collect();
        formats.extend(events.iter().map(|e| e.pt.to_string()));
        let mut attributes = Vec::new();
        for p in payloads {
            attributes.push(Attribute::value(
                "rtpmap",
                format!("{} {}", p.pt, p.codec.rtpmap()),
            ));
            if let Some(f) = &p.codec.fmtp {
                attributes.push(Attribute::value("fmtp", format!("{} {f}", p.pt)));
            }
        }
        for e in events {
            attributes.push(Attribute::value(
                "rtpmap",
                format!("{} telephone-event/{}", e.pt, e.clock_rate),
            ));
            attributes.push(Attribute::value("fmtp", format!("{} 0-16", e.pt)));
        }
        if let Some(ptime) = self.local.ptime {
            attributes.push(Attribute::value("ptime", ptime.to_string()));
        }
        attributes.push(Attribute::flag(direction.token()));
        if let Some((tag, key)) = crypto {
            attributes.push(crypto::crypto_attribute(tag, key));
        }
        MediaDescription {
            media: "audio".to_string(),
            port: self.local.port,
            port_count: None,
            proto: proto.to_string(),
            formats,
            connection: None,
            attributes,
            other: Vec::new(),
        }
    }

    /// Wraps media sections into our session description, bumping the
    /// `o=` version when anything changed since the last one we sent
    /// (RFC 3264 §8: same SDP, same version, so session refreshes do not
    /// look like changes).
    fn finish(&mut self, media: Vec<MediaDescription>) -> SessionDescription {
        let build = |version: u64, local: &LocalMedia, id: u64| SessionDescription {
            origin: Some(Origin {
                username: "-".to_string(),
                session_id: id.to_string(),
                session_version: version.to_string(),
                address_type: addr_type(local.address).to_string(),
                address: local.address.to_string(),
            }),
            session_name: "msipphone".to_string(),
            connection: Some(Connection::from_ip(local.address)),
            attributes: Vec::new(),
            other: vec![Line {
                kind: 't',
                value: "0 0".to_string(),
            }],
            media: media.clone(),
        };
        let mut sdp = build(self.version, &self.local, self.session_id);
        if self.last_sent.as_ref().is_some_and(|prev| *prev != sdp) {
            self.version = self.version.wrapping_add(1);
            sdp = build(self.version, &self.local, self.session_id);
        }
        self.last_sent = Some(sdp.clone());
        sdp
    }
}

mod answer;
mod crypto;
mod offer;

#[cfg(test)]
mod tests;
