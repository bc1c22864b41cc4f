//! One call's audio stream, sans-IO: RTP out and in, RTCP, DTMF, playout.
//!
//! Driving it (the quinn-proto shape): after every input
//! ([`MediaSession::handle_packet`], [`MediaSession::handle_timeout`],
//! [`MediaSession::push_audio`], [`MediaSession::send_dtmf`]) drain
//! [`MediaSession::poll_transmit`] and [`MediaSession::poll_event`], then
//! sleep until [`MediaSession::poll_timeout`]. The capture side calls
//! `push_audio` with whatever it has; the playback side calls
//! [`MediaSession::pull_audio`] once per frame.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use super::dtmf::{DtmfError, DtmfEvent, DtmfReceiver, DtmfSender};
use super::jitter::{Entry, JitterBuffer, JitterConfig};
use super::playout::{Decoder, Playout};
use super::rtcp::{
    self, is_rtcp, parse_compound, report_interval, NtpTime, ReportBlock, RtcpPacket, SdesChunk,
    SenderInfo,
};
use super::rtp::{RtpError, RtpPacket, RtpReceiver, RtpSender, SeqVerdict};
use super::srtp::SrtpContext;
use super::AudioCodec;
use crate::sip::sdp::{NegotiatedMedia, PayloadCodec, SrtpKeys};

pub use super::playout::FrameKind;

/// Makes a codec instance for a negotiated payload; `None` if unsupported.
pub type CodecFactory = dyn Fn(&PayloadCodec) -> Option<Box<dyn AudioCodec + Send>>;

/// The default packet duration when the peer states no `a=ptime`.
pub const DEFAULT_PTIME: Duration = Duration::from_millis(20);

/// Why a session could not be set up or asked something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The codec factory cannot make the negotiated send codec.
    #[error("no codec implementation for {0}")]
    NoCodec(String),
    /// DTMF was asked for but no telephone-event was negotiated.
    #[error("no telephone-event negotiated")]
    NoTelephoneEvent,
    /// DTMF while the stream does not send (hold, `0.0.0.0`, closed).
    #[error("the stream is not sending")]
    NotSending,
    /// A bad digit.
    #[error(transparent)]
    Dtmf(#[from] DtmfError),
    /// The random source failed.
    #[error(transparent)]
    Rtp(#[from] RtpError),
}

/// Settings that do not come from SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOptions {
    /// Our RTCP CNAME (e.g. `user@host`).
    pub cname: String,
    /// RTP and RTCP share the port (RFC 5761 `a=rtcp-mux`).
    pub rtcp_mux: bool,
    /// Symmetric RTP: send to where the peer's packets come from
    /// (RFC 4961; NAT traversal, MicroSIP's default behaviour).
    pub symmetric_rtp: bool,
    /// The playback frame [`MediaSession::pull_audio`] returns.
    pub playout_frame: Duration,
    /// Jitter buffer bounds.
    pub jitter: JitterConfig,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            cname: "msipphone".to_string(),
            rtcp_mux: false,
            symmetric_rtp: true,
            playout_frame: Duration::from_millis(20),
            jitter: JitterConfig::default(),
        }
    }
}

/// Which socket a datagram leaves by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransmitKind {
    /// The RTP socket.
    Rtp,
    /// The RTCP socket (the RTP one under rtcp-mux).
    Rtcp,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Which socket.
    pub kind: TransmitKind,
    /// Where to.
    pub destination: SocketAddr,
    /// The datagram.
    pub bytes: Vec<u8>,
}

/// Something the application may want to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// A DTMF digit arrived as a telephone-event (reported once).
    Dtmf(DtmfEvent),
    /// Symmetric RTP: the peer's packets come from this address, which
    /// is now where we send.
    PeerLatched(SocketAddr),
    /// The peer's SSRC became valid or changed (`old` is `None` first).
    SsrcChanged {
        /// The previous source.
        old: Option<u32>,
        /// The new one.
        new: u32,
    },
    /// The peer sent an RTCP BYE.
    Bye(u32),
}

/// Statistics for the Status window (cumulative over the call).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MediaStats {
    /// RTP packets sent (audio and DTMF).
    pub packets_sent: u64,
    /// RTP payload bytes sent.
    pub bytes_sent: u64,
    /// Valid RTP packets received.
    pub packets_received: u64,
    /// Their payload bytes.
    pub bytes_received: u64,
    /// Packets lost on the way to us (RFC 3550 cumulative loss).
    pub packets_lost: i64,
    /// `packets_lost` as a percentage of those expected.
    pub loss_percent: f64,
    /// Interarrival jitter of the received stream, ms.
    pub jitter_ms: f64,
    /// Round-trip time from the peer's reports, ms.
    pub rtt_ms: Option<f64>,
    /// The loss the peer reports for our stream (last interval), %.
    pub remote_loss_percent: Option<f64>,
    /// The jitter the peer reports for our stream, ms.
    pub remote_jitter_ms: Option<f64>,
    /// Frames concealed in playout.
    pub concealed_frames: u64,
    /// The jitter buffer's target delay, ms.
    pub jitter_buffer_ms: f64,
    /// Packets that arrived after their playout time.
    pub late_packets: u64,
    /// Datagrams that were neither valid RTP nor RTCP for us.
    pub discarded: u64,
}

/// Send-side state that depends on the negotiated codec.
struct SendPath {
    payload_type: u8,
    encoder: Box<dyn AudioCodec + Send>,
    packet_samples: usize,
    packet_ticks: u32,
    capture: Vec<i16>,
    encoded: Vec<u8>,
}

/// One call's media stream.
pub struct MediaSession {
    media: NegotiatedMedia,
    options: SessionOptions,
    epoch: Instant,
    wallclock: SystemTime,
    sender: RtpSender,
    send: SendPath,
    ptime: Duration,
    dtmf_tx: Option<DtmfSender>,
    remote_rtp: SocketAddr,
    remote_rtcp: SocketAddr,
    latched: bool,
    rtcp_latched: bool,
    clock_rate: u32,
    source: Option<RtpReceiver>,
    candidate: Option<RtpReceiver>,
    previous_received: (u64, u64),
    playout: Playout,
    dtmf_rx: DtmfReceiver,
    next_rtcp: Instant,
    rng: u64,
    peer_sr: Option<(u32, Instant)>,
    rtt: Option<Duration>,
    peer_report: Option<ReportBlock>,
    packets_at_last_report: u32,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SessionEvent>,
    discarded: u64,
    closed: bool,
    /// SDES-SRTP contexts when the call is encrypted.
    srtp: Option<Srtp>,
    /// `VAD`: when set, packets it judges silent are not sent.
    vad: Option<super::device::Vad>,
}

/// The two directions of an encrypted stream.
struct Srtp {
    /// Keyed with our key: protects what we send.
    tx: SrtpContext,
    /// Keyed with the peer's key: checks and decrypts what we receive.
    rx: SrtpContext,
}

impl Srtp {
    fn new(keys: &SrtpKeys) -> Self {
        Self {
            tx: SrtpContext::new(&keys.local),
            rx: SrtpContext::new(&keys.remote),
        }
    }
}

impl std::fmt::Debug for MediaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSession")
            .field("ssrc", &self.sender.ssrc())
            .field("remote_rtp", &self.remote_rtp)
            .field("direction", &self.media.direction)
            .finish_non_exhaustive()
    }
}

fn rtcp_of(rtp: SocketAddr, mux: bool) -> SocketAddr {
    if mux {
        rtp
    } else {
        SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1))
    }
}

fn send_path(
    media: &NegotiatedMedia,
    factory: &CodecFactory,
    ptime: Duration,
) -> Result<SendPath, SessionError> {
    let encoder = factory(&media.send_codec)
        .ok_or_else(|| SessionError::NoCodec(media.send_codec.codec.rtpmap()))?;
    let frame = encoder.frame_samples().max(1);
    let rate = u64::from(encoder.sample_rate().max(1));
    let wanted = (ptime.as_micros() as u64 * rate / 1_000_000) as usize;
    // A whole number of codec frames, at least one, nearest the ptime.
    let frames = ((wanted + frame / 2) / frame).max(1);
    let packet_samples = frames * frame;
    let packet_ticks = (packet_samples as u64 * u64::from(encoder.clock_rate()) / rate)
        .min(u64::from(u32::MAX)) as u32;
    Ok(SendPath {
        payload_type: media.send_codec.pt,
        encoder,
        packet_samples,
        packet_ticks,
        capture: Vec::new(),
        encoded: Vec::new(),
    })
}

fn playout_for(
    media: &NegotiatedMedia,
    factory: &CodecFactory,
    options: &SessionOptions,
    sample_rate: u32,
    clock_rate: u32,
    ptime: Duration,
) -> Playout {
    let decoders = media
        .receive_codecs
        .iter()
        .filter_map(|pc| {
            factory(pc).map(|codec| Decoder {
                payload_type: pc.pt,
                codec,
            })
        })
        .collect();
    let buffer = JitterBuffer::new(options.jitter, clock_rate, ptime);
    Playout::new(buffer, decoders, sample_rate)
}

impl MediaSession {
    /// Starts a stream from the negotiated media. `now` and `wallclock`
    /// are the same moment (the wall clock feeds only RTCP NTP times).
    pub fn new(
        media: &NegotiatedMedia,
        factory: &CodecFactory,
        options: SessionOptions,
        now: Instant,
        wallclock: SystemTime,
    ) -> Result<Self, SessionError> {
        let ptime = media
            .ptime
            .filter(|&p| (10..=200).contains(&p))
            .map_or(DEFAULT_PTIME, |p| Duration::from_millis(u64::from(p)));
        let send = send_path(media, factory, ptime)?;
        let clock_rate = send.encoder.clock_rate().max(1);
        let sample_rate = send.encoder.sample_rate().max(1);
        let playout = playout_for(media, factory, &options, sample_rate, clock_rate, ptime);
        let seed = getrandom::u64().map_err(|_| RtpError::Random)?;
        let mut session = Self {
            remote_rtp: media.remote,
            remote_rtcp: rtcp_of(media.remote, options.rtcp_mux),
            media: media.clone(),
            epoch: now,
            wallclock,
            sender: RtpSender::new()?,
            send,
            ptime,
            dtmf_tx: None,
            latched: false,
            rtcp_latched: false,
            clock_rate,
            source: None,
            candidate: None,
            previous_received: (0, 0),
            playout,
            dtmf_rx: DtmfReceiver::new(clock_rate),
            next_rtcp: now,
            rng: seed | 1,
            peer_sr: None,
            rtt: None,
            peer_report: None,
            packets_at_last_report: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            discarded: 0,
            closed: false,
            srtp: media.srtp.as_ref().map(Srtp::new),
            vad: None,
            options,
        };
        session.dtmf_tx = session.make_dtmf_sender();
        let unit = session.random_unit();
        session.next_rtcp = now + report_interval(true, unit);
        Ok(session)
    }

    fn make_dtmf_sender(&self) -> Option<DtmfSender> {
        self.media
            .send_telephone_event
            .map(|te| DtmfSender::new(te.clock_rate, self.ptime))
    }

    /// Applies a later offer/answer (hold, resume, new address or codec).
    pub fn update(
        &mut self,
        media: &NegotiatedMedia,
        factory: &CodecFactory,
    ) -> Result<(), SessionError> {
        if media.send_codec != self.media.send_codec || media.ptime != self.media.ptime {
            self.ptime = media
                .ptime
                .filter(|&p| (10..=200).contains(&p))
                .map_or(DEFAULT_PTIME, |p| Duration::from_millis(u64::from(p)));
            self.send = send_path(media, factory, self.ptime)?;
            self.sender.skip(0);
        }
        if media.receive_codecs != self.media.receive_codecs
            || media.send_codec != self.media.send_codec
        {
            let rate = self.send.encoder.sample_rate().max(1);
            self.clock_rate = self.send.encoder.clock_rate().max(1);
            self.playout = playout_for(
                media,
                factory,
                &self.options,
                rate,
                self.clock_rate,
                self.ptime,
            );
        }
        if media.remote != self.media.remote {
            self.remote_rtp = media.remote;
            self.remote_rtcp = rtcp_of(media.remote, self.options.rtcp_mux);
            self.latched = false;
            self.rtcp_latched = false;
        }
        if media.srtp != self.media.srtp {
            // New keys (or encryption switched on/off) by a re-INVITE: the
            // old contexts' ROC and replay state belong to the old keys.
            // A direction whose key is unchanged keeps its context, so our
            // sending never restarts an index under the same key (that
            // would reuse keystream).
            self.srtp = match (self.srtp.take(), &media.srtp, &self.media.srtp) {
                (Some(mut old), Some(new), Some(prev)) => {
                    if new.local != prev.local {
                        old.tx = SrtpContext::new(&new.local);
                    }
                    if new.remote != prev.remote {
                        old.rx = SrtpContext::new(&new.remote);
                    }
                    Some(old)
                }
                (_, new, _) => new.as_ref().map(Srtp::new),
            };
        }
        let te_changed = media.send_telephone_event != self.media.send_telephone_event;
        self.media = media.clone();
        if te_changed {
            self.dtmf_tx = self.make_dtmf_sender();
        }
        Ok(())
    }

    /// Where RTP goes now (after latching, the peer's real address).
    pub fn remote_rtp(&self) -> SocketAddr {
        self.remote_rtp
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.sender.ssrc()
    }

    /// Samples per [`MediaSession::pull_audio`] frame.
    pub fn playout_frame_samples(&self) -> usize {
        let rate = u128::from(self.playout.sample_rate());
        ((self.options.playout_frame.as_micros() * rate / 1_000_000) as usize).max(1)
    }

    /// Turns silence suppression (`VAD`) on with `vad`, or off with
    /// `None`. Suppressed packets advance the RTP timestamp without being
    /// sent, so the peer sees a gap and the next talkspurt's marker bit;
    /// RTCP keeps flowing so the call is not taken for dead.
    pub fn set_vad(&mut self, vad: Option<super::device::Vad>) {
        self.vad = vad;
    }

    /// The PCM rate of pushed and pulled audio (the send codec's).
    pub fn sample_rate(&self) -> u32 {
        self.playout.sample_rate()
    }

    fn random_unit(&mut self) -> f64 {
        // xorshift64*: RTCP jitter needs spread, not secrecy.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let v = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (v >> 11) as f64 / (1u64 << 53) as f64
    }

    fn can_send(&self) -> bool {
        !self.closed
            && self.media.direction.sends()
            && !self.remote_rtp.ip().is_unspecified()
            && self.remote_rtp.port() != 0
    }

    fn ntp(&self, now: Instant) -> NtpTime {
        NtpTime::from_system(self.wallclock + now.saturating_duration_since(self.epoch))
    }

    /// Feeds captured PCM (mono, at [`MediaSession::sample_rate`]); every
    /// full packet's worth is encoded and queued, or skipped while not
    /// sending (hold, DTMF, silence under VAD) so timestamps keep following
    /// the capture clock.
    pub fn push_audio(&mut self, pcm: &[i16], now: Instant) {
        self.drive_dtmf(now);
        self.send.capture.extend_from_slice(pcm);
        let n = self.send.packet_samples;
        while self.send.capture.len() >= n {
            let (head, _) = self.send.capture.split_at(n);
            // The VAD sees every frame (even unsent ones) so its hangover
            // follows the real capture timeline.
            let voice = self.vad.as_mut().is_none_or(|v| v.is_voice(head));
            let sending =
                voice && self.can_send() && !self.dtmf_tx.as_ref().is_some_and(|d| d.is_active());
            if sending {
                self.send.encoded.clear();
                self.send.encoder.encode(head, &mut self.send.encoded);
                let mut bytes = Vec::with_capacity(12 + self.send.encoded.len());
                self.sender.send_audio(
                    self.send.payload_type,
                    &self.send.encoded,
                    self.send.packet_ticks,
                    now,
                    &mut bytes,
                );
                self.transmits.push_back(Transmit {
                    kind: TransmitKind::Rtp,
                    destination: self.remote_rtp,
                    bytes,
                });
            } else {
                self.sender.skip(self.send.packet_ticks);
            }
            self.send.capture.drain(..n);
        }
    }

    /// Appends one playout frame ([`MediaSession::playout_frame_samples`])
    /// to `out`: decoded audio, concealment or silence.
    pub fn pull_audio(&mut self, now: Instant, out: &mut Vec<i16>) -> FrameKind {
        let n = self.playout_frame_samples();
        self.playout.pull(now, n, out)
    }

    /// Queues an RFC 4733 digit (`0-9 * # A-D`); refused while the
    /// stream does not send, as nobody would hear it.
    pub fn send_dtmf(
        &mut self,
        digit: char,
        duration: Duration,
        now: Instant,
    ) -> Result<(), SessionError> {
        if !self.can_send() {
            return Err(SessionError::NotSending);
        }
        let tx = self
            .dtmf_tx
            .as_mut()
            .ok_or(SessionError::NoTelephoneEvent)?;
        tx.queue(digit, duration, now)?;
        self.drive_dtmf(now);
        Ok(())
    }

    fn drive_dtmf(&mut self, now: Instant) {
        let Some(te) = self.media.send_telephone_event else {
            return;
        };
        let can_send = self.can_send();
        while let Some((packet, resume)) = self
            .dtmf_tx
            .as_mut()
            .and_then(|tx| tx.poll(now, self.sender.timestamp()))
        {
            if can_send {
                let mut bytes = Vec::with_capacity(16);
                self.sender.send_raw(
                    te.pt,
                    packet.marker,
                    packet.timestamp,
                    &packet.payload.to_bytes(),
                    now,
                    &mut bytes,
                );
                self.transmits.push_back(Transmit {
                    kind: TransmitKind::Rtp,
                    destination: self.remote_rtp,
                    bytes,
                });
            }
            if let Some(ts) = resume {
                self.sender.advance_to(ts);
            }
        }
    }

    /// Feeds a datagram from either socket (RTP and RTCP are told apart
    /// by RFC 5761 §4 whatever the port).
    /// On an SRTP call, packets that fail authentication or replay checks
    /// are dropped here, before they can latch or change anything.
    pub fn handle_packet(&mut self, bytes: &[u8], source: SocketAddr, now: Instant) {
        let rtcp = is_rtcp(bytes);
        let plain;
        let bytes = match &mut self.srtp {
            None => bytes,
            Some(srtp) => {
                let result = if rtcp {
                    srtp.rx.unprotect_rtcp(bytes)
                } else {
                    srtp.rx.unprotect_rtp(bytes)
                };
                match result {
                    Ok(p) => {
                        plain = p;
                        &plain[..]
                    }
                    Err(e) => {
                        tracing::debug!("SRTP packet from {source} dropped: {e}");
                        self.discarded += 1;
                        return;
                    }
                }
            }
        };
        if rtcp {
            self.handle_rtcp(bytes, source, now);
        } else {
            self.handle_rtp(bytes, source, now);
        }
    }

    fn handle_rtp(&mut self, bytes: &[u8], source: SocketAddr, now: Instant) {
        let Ok(packet) = RtpPacket::parse(bytes) else {
            self.discarded += 1;
            return;
        };
        let pt = packet.payload_type;
        let is_event = self
            .media
            .receive_telephone_events
            .iter()
            .any(|te| te.pt == pt);
        let is_audio = self.media.receive_codecs.iter().any(|pc| pc.pt == pt);
        if self.closed || !(is_event || is_audio) || !self.media.direction.receives() {
            self.discarded += 1;
            return;
        }
        if !self.accept_source(&packet, now) {
            return;
        }
        self.latch(source);
        if is_event {
            // A malformed event payload is dropped like any bad packet.
            if self
                .dtmf_rx
                .on_packet(packet.timestamp, packet.payload, now)
                .is_err()
            {
                self.discarded += 1;
            }
            self.drain_dtmf();
        } else {
            let entry = Entry {
                payload_type: pt,
                timestamp: packet.timestamp,
                payload: packet.payload.to_vec(),
            };
            self.playout
                .buffer_mut()
                .insert(packet.sequence, entry, now);
        }
    }

    /// RFC 3550 A.1 validation per SSRC; a new SSRC replaces the current
    /// one once it has passed probation itself.
    fn accept_source(&mut self, packet: &RtpPacket<'_>, now: Instant) -> bool {
        let (seq, ts, len) = (packet.sequence, packet.timestamp, packet.payload.len());
        if let Some(src) = self.source.as_mut().filter(|s| s.ssrc() == packet.ssrc) {
            return src.on_packet(seq, ts, len, now) == SeqVerdict::Valid;
        }
        let candidate = match self.candidate.take() {
            Some(c) if c.ssrc() == packet.ssrc => c,
            _ => RtpReceiver::new(packet.ssrc, seq, self.clock_rate, self.epoch),
        };
        let mut candidate = candidate;
        if candidate.on_packet(seq, ts, len, now) != SeqVerdict::Valid {
            self.candidate = Some(candidate);
            return false;
        }
        let old = self.source.replace(candidate);
        if let Some(old) = &old {
            self.previous_received.0 += u64::from(old.received());
            self.previous_received.1 += old.bytes();
            // A new source may come from a new address (re-routed media).
            self.latched = false;
        }
        self.playout.reset();
        self.dtmf_rx = DtmfReceiver::new(self.clock_rate);
        self.peer_sr = None;
        self.events.push_back(SessionEvent::SsrcChanged {
            old: old.map(|o| o.ssrc()),
            new: packet.ssrc,
        });
        true
    }

    fn latch(&mut self, source: SocketAddr) {
        if !self.options.symmetric_rtp || self.latched {
            return;
        }
        self.latched = true;
        if source != self.remote_rtp {
            self.remote_rtp = source;
            if !self.rtcp_latched {
                self.remote_rtcp = rtcp_of(source, self.options.rtcp_mux);
            }
            self.events.push_back(SessionEvent::PeerLatched(source));
        }
    }

    fn drain_dtmf(&mut self) {
        while let Some(event) = self.dtmf_rx.poll_event() {
            self.events.push_back(SessionEvent::Dtmf(event));
        }
    }

    fn handle_rtcp(&mut self, bytes: &[u8], source: SocketAddr, now: Instant) {
        let Ok(packets) = parse_compound(bytes) else {
            self.discarded += 1;
            return;
        };
        if self.options.symmetric_rtp && !self.options.rtcp_mux && !self.rtcp_latched {
            self.rtcp_latched = true;
            self.remote_rtcp = source;
        }
        let ours = self.sender.ssrc();
        let peer = self.source.as_ref().map(RtpReceiver::ssrc);
        for packet in packets {
            let blocks = match packet {
                RtcpPacket::SenderReport {
                    ssrc,
                    info,
                    reports,
                } => {
                    if peer.is_none_or(|p| p == ssrc) {
                        self.peer_sr = Some((info.ntp.middle32(), now));
                    }
                    reports
                }
                RtcpPacket::ReceiverReport { reports, .. } => reports,
                RtcpPacket::Bye { sources, .. } => {
                    if let Some(p) = peer.filter(|p| sources.contains(p)) {
                        self.events.push_back(SessionEvent::Bye(p));
                    }
                    continue;
                }
                RtcpPacket::SourceDescription(_) | RtcpPacket::Other { .. } => continue,
            };
            if let Some(block) = blocks.into_iter().find(|b| b.ssrc == ours) {
                let arrival = self.ntp(now).middle32();
                if let Some(rtt) =
                    rtcp::round_trip(arrival, block.last_sr, block.delay_since_last_sr)
                {
                    self.rtt = Some(rtt);
                }
                self.peer_report = Some(block);
            }
        }
    }

    /// Datagrams to send, oldest first.
    /// On an SRTP call they come out protected.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        loop {
            let mut t = self.transmits.pop_front()?;
            let Some(srtp) = &mut self.srtp else {
                return Some(t);
            };
            let protected = match t.kind {
                TransmitKind::Rtp => srtp.tx.protect_rtp(&t.bytes),
                TransmitKind::Rtcp => srtp.tx.protect_rtcp(&t.bytes),
            };
            match protected {
                Ok(bytes) => {
                    t.bytes = bytes;
                    return Some(t);
                }
                // Our own packets are well formed, so this is only the
                // SRTCP index running out; never send such a packet in clear.
                Err(e) => tracing::warn!("SRTP protect failed, packet dropped: {e}"),
            }
        }
    }

    /// Events, oldest first.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When [`MediaSession::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let rtcp = (!self.closed).then_some(self.next_rtcp);
        [
            rtcp,
            self.dtmf_tx.as_ref().and_then(DtmfSender::timeout),
            self.dtmf_rx.timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs timers due at `now`: DTMF packets, DTMF end by timeout, RTCP.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.drive_dtmf(now);
        self.dtmf_rx.handle_timeout(now);
        self.drain_dtmf();
        if !self.closed && now >= self.next_rtcp {
            self.send_report(now, None);
            let unit = self.random_unit();
            self.next_rtcp = now + report_interval(false, unit);
        }
    }

    /// Ends the stream: queues an RTCP BYE; nothing is sent afterwards.
    pub fn close(&mut self, now: Instant) {
        if !self.closed {
            self.send_report(
                now,
                Some(RtcpPacket::Bye {
                    sources: vec![self.sender.ssrc()],
                    reason: None,
                }),
            );
            self.closed = true;
        }
    }

    fn report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        let (last_sr, dlsr) = match self.peer_sr {
            Some((lsr, at)) => (lsr, rtcp::to_q16(now.saturating_duration_since(at))),
            None => (0, 0),
        };
        let src = self.source.as_mut()?;
        Some(ReportBlock {
            ssrc: src.ssrc(),
            fraction_lost: src.take_fraction_lost(),
            cumulative_lost: src.cumulative_lost(),
            extended_highest_seq: src.extended_max(),
            jitter: src.jitter(),
            last_sr,
            delay_since_last_sr: dlsr,
        })
    }

    /// Queues SR (if we sent RTP since the last report) or RR, SDES, and
    /// `extra` (a BYE).
    fn send_report(&mut self, now: Instant, extra: Option<RtcpPacket>) {
        let destination = self.remote_rtcp;
        if destination.ip().is_unspecified() || destination.port() == 0 {
            return;
        }
        let ssrc = self.sender.ssrc();
        let reports: Vec<ReportBlock> = self.report_block(now).into_iter().collect();
        let sent = self.sender.packets_sent();
        let first = if sent != self.packets_at_last_report {
            let rtp_timestamp = match self.sender.last_sent() {
                Some((ts, at)) => {
                    let ticks = now.saturating_duration_since(at).as_secs_f64()
                        * f64::from(self.clock_rate);
                    ts.wrapping_add(ticks as u32)
                }
                None => self.sender.timestamp(),
            };
            RtcpPacket::SenderReport {
                ssrc,
                info: SenderInfo {
                    ntp: self.ntp(now),
                    rtp_timestamp,
                    packet_count: sent,
                    octet_count: self.sender.octets_sent(),
                },
                reports,
            }
        } else {
            RtcpPacket::ReceiverReport { ssrc, reports }
        };
        self.packets_at_last_report = sent;
        let sdes = RtcpPacket::SourceDescription(vec![SdesChunk {
            ssrc,
            cname: Some(self.options.cname.clone()),
        }]);
        let mut packets = vec![first, sdes];
        packets.extend(extra);
        self.transmits.push_back(Transmit {
            kind: TransmitKind::Rtcp,
            destination,
            bytes: rtcp::write_compound(&packets),
        });
    }

    /// Statistics so far.
    pub fn stats(&self) -> MediaStats {
        let (mut packets_received, mut bytes_received) = self.previous_received;
        let mut stats = MediaStats::default();
        if let Some(src) = &self.source {
            packets_received += u64::from(src.received());
            bytes_received += src.bytes();
            stats.packets_lost = i64::from(src.cumulative_lost());
            let expected = f64::from(src.expected());
            if expected > 0.0 {
                stats.loss_percent =
                    (stats.packets_lost.max(0) as f64 * 100.0 / expected).min(100.0);
            }
            stats.jitter_ms = src.jitter_ms();
        }
        let playout = self.playout.stats();
        let jitter = self.playout.jitter_stats();
        MediaStats {
            packets_sent: u64::from(self.sender.packets_sent()),
            bytes_sent: u64::from(self.sender.octets_sent()),
            packets_received,
            bytes_received,
            rtt_ms: self.rtt.map(|d| d.as_secs_f64() * 1000.0),
            remote_loss_percent: self
                .peer_report
                .map(|b| f64::from(b.fraction_lost) * 100.0 / 256.0),
            remote_jitter_ms: self
                .peer_report
                .map(|b| f64::from(b.jitter) * 1000.0 / f64::from(self.clock_rate)),
            concealed_frames: playout.concealed,
            jitter_buffer_ms: self.playout.buffer().target().as_secs_f64() * 1000.0,
            late_packets: jitter.late,
            discarded: self.discarded,
            ..stats
        }
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
