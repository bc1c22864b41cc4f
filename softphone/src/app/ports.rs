//! The media stand-in until [media] lands: it reserves a real RTP/RTCP port
//! pair per call inside `rtpPortMin..=rtpPortMax` (so the SDP names a port
//! nobody else holds) and carries no audio.

use std::collections::HashMap;
use std::net::{IpAddr, UdpSocket};

use crate::sip::sdp::{Codec, LocalRtp, MediaEngine, MediaError, MediaHandle, NegotiatedMedia};

/// Reserves RTP ports; no audio.
#[derive(Debug)]
pub struct PortReserver {
    /// Where the sockets are bound (may be 0.0.0.0).
    bind: IpAddr,
    /// The address the SDP names.
    address: IpAddr,
    range: (u16, u16),
    next: u64,
    held: HashMap<MediaHandle, (UdpSocket, UdpSocket)>,
    started: HashMap<MediaHandle, NegotiatedMedia>,
}

impl PortReserver {
    /// Ports bound on `bind` within `min..=max` (MicroSIP's `rtpPortMin`,
    /// `rtpPortMax`; 0 means any port), announced as `address`.
    pub fn new(bind: IpAddr, address: IpAddr, min: u16, max: u16) -> Self {
        let range = if min == 0 || max < min {
            (0, 0)
        } else {
            (min, max)
        };
        Self {
            bind,
            address,
            range,
            next: 1,
            held: HashMap::new(),
            started: HashMap::new(),
        }
    }

    /// What the call's media was last negotiated to (for Status).
    pub fn negotiated(&self, handle: MediaHandle) -> Option<&NegotiatedMedia> {
        self.started.get(&handle)
    }

    fn bind_pair(&self) -> Option<(UdpSocket, UdpSocket)> {
        if self.range == (0, 0) {
            // Any even port whose successor is free too.
            for _ in 0..64 {
                let rtp = UdpSocket::bind((self.bind, 0)).ok()?;
                let port = rtp.local_addr().ok()?.port();
                if port % 2 == 0 {
                    if let Ok(rtcp) = UdpSocket::bind((self.bind, port.checked_add(1)?)) {
                        return Some((rtp, rtcp));
                    }
                }
            }
            return None;
        }
        let (min, max) = self.range;
        let first = min + (min % 2);
        (first..max).step_by(2).find_map(|port| {
            let rtp = UdpSocket::bind((self.bind, port)).ok()?;
            let rtcp = UdpSocket::bind((self.bind, port + 1)).ok()?;
            Some((rtp, rtcp))
        })
    }
}

impl MediaEngine for PortReserver {
    fn supports(&self, codec: &Codec) -> bool {
        // Signalling offers what the settings list; the media engine of
        // the [media] issue narrows this to what it can encode.
        let _ = codec;
        true
    }

    fn allocate(&mut self) -> Result<LocalRtp, MediaError> {
        let pair = self.bind_pair().ok_or(MediaError::NoPort)?;
        let port = pair
            .0
            .local_addr()
            .map_err(|e| MediaError::Engine(e.to_string()))?
            .port();
        let handle = MediaHandle(self.next);
        self.next += 1;
        self.held.insert(handle, pair);
        Ok(LocalRtp {
            handle,
            address: self.address,
            port,
        })
    }

    fn start(&mut self, handle: MediaHandle, media: &NegotiatedMedia) -> Result<(), MediaError> {
        if !self.held.contains_key(&handle) {
            return Err(MediaError::UnknownHandle(handle));
        }
        self.started.insert(handle, media.clone());
        Ok(())
    }

    fn update(&mut self, handle: MediaHandle, media: &NegotiatedMedia) -> Result<(), MediaError> {
        self.start(handle, media)
    }

    fn stop(&mut self, handle: MediaHandle) {
        self.held.remove(&handle);
        self.started.remove(&handle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_the_range_in_pairs_and_are_released() {
        let local = IpAddr::from([127, 0, 0, 1]);
        // A range of one pair: the second call must fail until the first stops.
        let probe = UdpSocket::bind((local, 0)).unwrap();
        let base = probe.local_addr().unwrap().port() & !1;
        drop(probe);
        let mut media = PortReserver::new(local, local, base, base + 1);
        let first = media.allocate().unwrap();
        assert_eq!(first.port, base);
        assert!(
            UdpSocket::bind((local, base + 1)).is_err(),
            "RTCP port held"
        );
        assert!(matches!(media.allocate(), Err(MediaError::NoPort)));
        media.stop(first.handle);
        assert_eq!(media.allocate().unwrap().port, base);
        let mut any = PortReserver::new(local, local, 0, 0);
        assert_eq!(any.allocate().unwrap().port % 2, 0);
    }
}
