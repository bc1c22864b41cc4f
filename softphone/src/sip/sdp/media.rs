//! The small interface between the SIP core and the media engine.
//!
//! The core never touches RTP: it asks the engine for a local RTP
//! endpoint before building SDP, hands over [`NegotiatedMedia`] after each
//! completed offer/answer, and stops the stream when the call ends. The
//! driver implements [`MediaEngine`] over real sockets; tests use
//! [`FakeMedia`].

use std::net::{IpAddr, Ipv4Addr};

use super::codec::Codec;
use super::negotiate::NegotiatedMedia;

/// Identifies one call's media stream inside the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MediaHandle(pub u64);

/// A local RTP endpoint reserved for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalRtp {
    /// The stream's handle for later calls.
    pub handle: MediaHandle,
    /// The socket's local address (the SDP may advertise `publicAddr`
    /// instead).
    pub address: IpAddr,
    /// The RTP port (RTCP uses port + 1).
    pub port: u16,
}

/// Why the engine refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// No free port in `rtpPortMin..=rtpPortMax`.
    #[error("no free RTP port")]
    NoPort,
    /// The handle is not (or no longer) known.
    #[error("unknown media handle {0:?}")]
    UnknownHandle(MediaHandle),
    /// Anything else the engine reports (device, codec, socket).
    #[error("media engine: {0}")]
    Engine(String),
}

/// What the SIP core needs from the media engine.
pub trait MediaEngine {
    /// Whether the engine can encode and decode `codec`; the UA filters
    /// the configured `audioCodecs` with it before offering.
    fn supports(&self, codec: &Codec) -> bool;
    /// Reserves a local RTP (and RTCP) port for a new call.
    fn allocate(&mut self) -> Result<LocalRtp, MediaError>;
    /// Starts the stream after the first completed offer/answer.
    fn start(&mut self, handle: MediaHandle, media: &NegotiatedMedia) -> Result<(), MediaError>;
    /// Applies a later offer/answer (hold, resume, new address or codec).
    fn update(&mut self, handle: MediaHandle, media: &NegotiatedMedia) -> Result<(), MediaError>;
    /// Stops the stream and releases its port; unknown handles are ignored
    /// so teardown paths may call it twice.
    fn stop(&mut self, handle: MediaHandle);
}

/// One call made on [`FakeMedia`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaCall {
    /// `allocate` returned this endpoint.
    Allocate(LocalRtp),
    /// `start` with this media.
    Start(MediaHandle, Box<NegotiatedMedia>),
    /// `update` with this media.
    Update(MediaHandle, Box<NegotiatedMedia>),
    /// `stop`.
    Stop(MediaHandle),
}

/// A test double that records calls: ports 40000, 40002, ... on
/// 127.0.0.1; supports every codec unless restricted.
#[derive(Debug, Clone)]
pub struct FakeMedia {
    /// Every call in order.
    pub calls: Vec<MediaCall>,
    /// Encoding names (case-insensitive) it claims to support; `None` = all.
    pub supported: Option<Vec<String>>,
    /// Makes `allocate` fail with [`MediaError::NoPort`].
    pub fail_allocate: bool,
    next: u64,
    live: Vec<MediaHandle>,
}

impl Default for FakeMedia {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeMedia {
    /// An engine with no calls yet.
    pub fn new() -> Self {
        Self {
            calls: Vec::new(),
            supported: None,
            fail_allocate: false,
            next: 0,
            live: Vec::new(),
        }
    }

    /// Handles allocated and not stopped.
    pub fn live(&self) -> &[MediaHandle] {
        &self.live
    }

    fn check(&self, handle: MediaHandle) -> Result<(), MediaError> {
        if self.live.contains(&handle) {
            Ok(())
        } else {
            Err(MediaError::UnknownHandle(handle))
        }
    }
}

impl MediaEngine for FakeMedia {
    fn supports(&self, codec: &Codec) -> bool {
        self.supported.as_ref().is_none_or(|names| {
            names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&codec.encoding))
        })
    }

    fn allocate(&mut self) -> Result<LocalRtp, MediaError> {
        if self.fail_allocate {
            return Err(MediaError::NoPort);
        }
        let offset = u16::try_from(self.next * 2).map_err(|_| MediaError::NoPort)?;
        let port = 40000u16.checked_add(offset).ok_or(MediaError::NoPort)?;
        let rtp = LocalRtp {
            handle: MediaHandle(self.next),
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
        };
        self.next += 1;
        self.live.push(rtp.handle);
        self.calls.push(MediaCall::Allocate(rtp));
        Ok(rtp)
    }

    fn start(&mut self, handle: MediaHandle, media: &NegotiatedMedia) -> Result<(), MediaError> {
        self.check(handle)?;
        self.calls
            .push(MediaCall::Start(handle, Box::new(media.clone())));
        Ok(())
    }

    fn update(&mut self, handle: MediaHandle, media: &NegotiatedMedia) -> Result<(), MediaError> {
        self.check(handle)?;
        self.calls
            .push(MediaCall::Update(handle, Box::new(media.clone())));
        Ok(())
    }

    fn stop(&mut self, handle: MediaHandle) {
        self.live.retain(|h| *h != handle);
        self.calls.push(MediaCall::Stop(handle));
    }
}
