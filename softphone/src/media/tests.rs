//! Two sessions back to back through a lossy, reordering, duplicating
//! in-memory network, with simulated time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use super::session::{MediaSession, SessionEvent, SessionOptions};
use super::test_support::{negotiated, test_factory, Rng};
use super::tone::{frequency_power, tone_snr_db, SineSource};

struct Net {
    rng: Rng,
    loss: f64,
    dup: f64,
    delay_ms: (u64, u64),
    /// (delivery ms, tiebreak) -> (to, from, bytes)
    queue: BTreeMap<(u64, u64), (SocketAddr, SocketAddr, Vec<u8>)>,
    n: u64,
}

impl Net {
    fn send(&mut self, now_ms: u64, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        if self.rng.chance(self.loss) {
            return;
        }
        let copies = if self.rng.chance(self.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let span = self.delay_ms.1 - self.delay_ms.0;
            let delay = self.delay_ms.0 + (self.rng.unit() * span as f64) as u64;
            self.n += 1;
            self.queue
                .insert((now_ms + delay, self.n), (to, from, bytes.clone()));
        }
    }

    fn due(&mut self, now_ms: u64) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
        let later = self.queue.split_off(&(now_ms + 1, 0));
        let due = std::mem::replace(&mut self.queue, later);
        due.into_values().collect()
    }
}

struct Peer {
    session: MediaSession,
    rtp: SocketAddr,
    rtcp: SocketAddr,
    tone: SineSource,
    heard: Vec<i16>,
    digits: Vec<char>,
}

impl Peer {
    fn new(rtp: &str, rtcp: &str, remote: &str, hz: f64, t0: Instant) -> Self {
        let media = negotiated(remote.parse().unwrap());
        let session = MediaSession::new(
            &media,
            &test_factory,
            SessionOptions::default(),
            t0,
            SystemTime::now(),
        )
        .unwrap();
        Self {
            session,
            rtp: rtp.parse().unwrap(),
            rtcp: rtcp.parse().unwrap(),
            tone: SineSource::new(hz, 8000, 8000.0),
            heard: Vec::new(),
            digits: Vec::new(),
        }
    }

    fn flush(&mut self, net: &mut Net, now_ms: u64) {
        while let Some(t) = self.session.poll_transmit() {
            let from = match t.kind {
                super::TransmitKind::Rtp => self.rtp,
                super::TransmitKind::Rtcp => self.rtcp,
            };
            net.send(now_ms, from, t.destination, t.bytes);
        }
        while let Some(e) = self.session.poll_event() {
            if let SessionEvent::Dtmf(d) = e {
                self.digits.push(d.digit);
            }
        }
    }
}

/// Runs both directions for `secs`; A sends `a_digits` from 3.5 s, B
/// sends `b_digits` from 4 s.
fn call(net: &mut Net, secs: u64, a_digits: &str, b_digits: &str) -> (Peer, Peer) {
    let t0 = Instant::now();
    let mut a = Peer::new(
        "10.0.0.1:4000",
        "10.0.0.1:4001",
        "10.0.0.2:5000",
        1000.0,
        t0,
    );
    let mut b = Peer::new("10.0.0.2:5000", "10.0.0.2:5001", "10.0.0.1:4000", 400.0, t0);
    let mut a_digits = a_digits.chars();
    let mut b_digits = b_digits.chars();
    for ms in 0..secs * 1000 {
        let now = t0 + Duration::from_millis(ms);
        for (to, from, bytes) in net.due(ms) {
            let peer = if to == a.rtp || to == a.rtcp {
                &mut a
            } else {
                &mut b
            };
            peer.session.handle_packet(&bytes, from, now);
        }
        for p in [&mut a, &mut b] {
            if p.session.poll_timeout().is_some_and(|t| t <= now) {
                p.session.handle_timeout(now);
            }
            if ms % 20 == 0 {
                let frame = p.tone.frame(160);
                p.session.push_audio(&frame, now);
                p.session.pull_audio(now, &mut p.heard);
            }
        }
        if ms >= 3500 && ms % 300 == 0 {
            if let Some(d) = a_digits.next() {
                a.session
                    .send_dtmf(d, Duration::from_millis(100), now)
                    .unwrap();
            }
        }
        if ms >= 4000 && ms % 300 == 0 {
            if let Some(d) = b_digits.next() {
                b.session
                    .send_dtmf(d, Duration::from_millis(100), now)
                    .unwrap();
            }
        }
        a.flush(net, ms);
        b.flush(net, ms);
    }
    (a, b)
}

fn lossy(seed: u64) -> Net {
    Net {
        rng: Rng::new(seed),
        loss: 0.05,
        dup: 0.01,
        delay_ms: (20, 60),
        queue: BTreeMap::new(),
        n: 0,
    }
}

/// 1 s to 3.3 s of what a peer heard (settled, before any DTMF).
fn window(heard: &[i16]) -> &[i16] {
    &heard[8000..26_400]
}

#[test]
fn tones_cross_a_lossy_network_both_ways() {
    let mut net = lossy(42);
    let (a, b) = call(&mut net, 12, "", "");
    let at_b = window(&b.heard);
    let at_a = window(&a.heard);
    let snr_b = tone_snr_db(at_b, 8000, 1000.0);
    let snr_a = tone_snr_db(at_a, 8000, 400.0);
    eprintln!("SNR at B {snr_b:.1} dB, at A {snr_a:.1} dB");
    assert!(snr_b > 20.0, "1 kHz at B: {snr_b:.1} dB");
    assert!(snr_a > 20.0, "400 Hz at A: {snr_a:.1} dB");
    // No crosstalk: each hears only the other's tone.
    assert!(frequency_power(at_b, 8000, 400.0) < frequency_power(at_b, 8000, 1000.0) / 1000.0);
    let stats = b.session.stats();
    assert!(
        stats.loss_percent > 2.0 && stats.loss_percent < 9.0,
        "{stats:?}"
    );
    assert!(stats.jitter_ms > 1.0 && stats.jitter_ms < 40.0, "{stats:?}");
    assert!(stats.concealed_frames > 0, "{stats:?}");
    assert!(stats.packets_received > 150, "{stats:?}");
    let rtt = a.session.stats().rtt_ms.expect("RTT from RTCP");
    assert!((40.0..=125.0).contains(&rtt), "{rtt}");
}

#[test]
fn a_clean_network_is_bit_exact_after_buffering() {
    let mut net = Net {
        loss: 0.0,
        dup: 0.0,
        delay_ms: (30, 31),
        ..lossy(1)
    };
    let (_, b) = call(&mut net, 4, "", "");
    let snr = tone_snr_db(window(&b.heard), 8000, 1000.0);
    assert!(snr > 40.0, "{snr:.1} dB");
    let stats = b.session.stats();
    assert_eq!(stats.packets_lost, 0);
    assert_eq!(stats.concealed_frames, 0);
}

#[test]
fn dtmf_digits_arrive_exactly_once_each() {
    for seed in [7, 8, 9] {
        let mut net = lossy(seed);
        let (a, b) = call(&mut net, 9, "159#*D0", "42");
        assert_eq!(
            b.digits.iter().collect::<String>(),
            "159#*D0",
            "seed {seed}"
        );
        assert_eq!(a.digits.iter().collect::<String>(), "42", "seed {seed}");
    }
}

#[test]
fn dtmf_survives_heavy_loss_by_timeout() {
    // 30 % loss: some events lose every End packet.
    let mut net = Net {
        loss: 0.3,
        ..lossy(3)
    };
    let (_, b) = call(&mut net, 9, "0123456789", "");
    let got: String = b.digits.iter().collect();
    // A digit may vanish entirely only if all its packets were lost;
    // none may be reported twice or out of order.
    let mut expected = "0123456789".chars().peekable();
    for d in got.chars() {
        while expected.peek().is_some_and(|&e| e != d) {
            expected.next();
        }
        assert_eq!(expected.next(), Some(d), "{got}");
    }
    assert!(got.len() >= 9, "{got}");
}
