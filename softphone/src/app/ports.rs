//! RTP/RTCP port pairs inside `rtpPortMin..=rtpPortMax`: the media engine
//! binds one pair per call (RTP on an even port, RTCP on the next).

use std::net::{IpAddr, UdpSocket};

/// MicroSIP's `rtpPortMin`/`rtpPortMax`, normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    min: u16,
    max: u16,
}

impl PortRange {
    /// `min..=max`; 0 (or an empty range) means any port, as in MicroSIP.
    pub fn new(min: u16, max: u16) -> Self {
        if min == 0 || max < min {
            Self { min: 0, max: 0 }
        } else {
            Self { min, max }
        }
    }

    /// Binds an RTP socket on an even port and RTCP on the next, both on
    /// `bind`; `None` when the range has no free pair.
    pub fn bind_pair(self, bind: IpAddr) -> Option<(UdpSocket, UdpSocket)> {
        if self.min == 0 {
            // Any even port whose successor is free too.
            for _ in 0..64 {
                let rtp = UdpSocket::bind((bind, 0)).ok()?;
                let port = rtp.local_addr().ok()?.port();
                if port % 2 == 0 {
                    if let Ok(rtcp) = UdpSocket::bind((bind, port.checked_add(1)?)) {
                        return Some((rtp, rtcp));
                    }
                }
            }
            return None;
        }
        let first = self.min + (self.min % 2);
        (first..self.max).step_by(2).find_map(|port| {
            let rtp = UdpSocket::bind((bind, port)).ok()?;
            let rtcp = UdpSocket::bind((bind, port + 1)).ok()?;
            Some((rtp, rtcp))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_the_range_in_pairs_and_are_released() {
        let local = IpAddr::from([127, 0, 0, 1]);
        // A range of one pair: the second bind must fail until the first
        // is dropped.
        let probe = UdpSocket::bind((local, 0)).unwrap();
        let base = probe.local_addr().unwrap().port() & !1;
        drop(probe);
        let range = PortRange::new(base, base + 1);
        let first = range.bind_pair(local).unwrap();
        assert_eq!(first.0.local_addr().unwrap().port(), base);
        assert!(
            UdpSocket::bind((local, base + 1)).is_err(),
            "RTCP port held"
        );
        assert!(range.bind_pair(local).is_none());
        drop(first);
        let again = range.bind_pair(local).unwrap();
        assert_eq!(again.0.local_addr().unwrap().port(), base);
        let any = PortRange::new(0, 0).bind_pair(local).unwrap();
        assert_eq!(any.0.local_addr().unwrap().port() % 2, 0);
    }
}
