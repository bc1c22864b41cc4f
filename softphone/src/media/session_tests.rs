use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use proptest::prelude::*;

use super::*;
use crate::media::rtcp::{parse_compound, RtcpPacket};
use crate::media::rtp::RtpPacket;
use crate::media::test_support::{negotiated, test_factory};
use crate::sip::sdp::Direction;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn session(media: &NegotiatedMedia, now: Instant) -> MediaSession {
    MediaSession::new(
        media,
        &test_factory,
        SessionOptions::default(),
        now,
        SystemTime::now(),
    )
    .unwrap()
}

fn drain(s: &mut MediaSession) -> Vec<Transmit> {
    std::iter::from_fn(|| s.poll_transmit()).collect()
}

fn events(s: &mut MediaSession) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn rtp_packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    RtpPacket::new(pt, seq, ts, ssrc, payload).to_vec()
}

#[test]
fn sends_one_packet_per_ptime() {
    let t0 = Instant::now();
    let remote = addr("192.0.2.1:7000");
    let mut s = session(&negotiated(remote), t0);
    s.push_audio(&[100; 500], t0);
    let tx = drain(&mut s);
    assert_eq!(tx.len(), 3, "500 samples = 3 full 20 ms packets");
    let parsed: Vec<RtpPacket<'_>> = tx
        .iter()
        .map(|t| RtpPacket::parse(&t.bytes).unwrap())
        .collect();
    assert!(tx
        .iter()
        .all(|t| t.destination == remote && t.kind == TransmitKind::Rtp));
    assert!(parsed
        .iter()
        .all(|p| p.payload_type == 0 && p.payload.len() == 320 && p.ssrc == s.ssrc()));
    assert_eq!(
        parsed.iter().map(|p| p.marker).collect::<Vec<_>>(),
        [true, false, false]
    );
    assert_eq!(parsed[1].sequence, parsed[0].sequence.wrapping_add(1));
    assert_eq!(parsed[2].timestamp, parsed[0].timestamp.wrapping_add(320));
    // The 20 leftover samples go into the next packet.
    s.push_audio(&[100; 140], t0);
    assert_eq!(drain(&mut s).len(), 1);
    assert_eq!(s.stats().packets_sent, 4);
    assert_eq!(s.stats().bytes_sent, 4 * 320);
}

#[test]
fn honours_the_peers_ptime() {
    let t0 = Instant::now();
    let mut media = negotiated(addr("192.0.2.1:7000"));
    media.ptime = Some(30);
    let mut s = session(&media, t0);
    s.push_audio(&[1; 480], t0);
    let tx = drain(&mut s);
    // 30 ms is not a whole number of 20 ms TestCodec frames: the nearest
    // is 40 ms (codecs with 10 ms frames get 30 ms exactly).
    assert_eq!(tx.len(), 1);
    let p = RtpPacket::parse(&tx[0].bytes).unwrap();
    assert_eq!(p.payload.len(), 2 * 320);
}

#[test]
fn holds_stop_sending_but_keep_the_clock() {
    let t0 = Instant::now();
    let remote = addr("192.0.2.1:7000");
    let mut media = negotiated(remote);
    // The peer put us on hold (it is sendonly, we are recvonly).
    media.direction = Direction::RecvOnly;
    let mut s = session(&media, t0);
    s.push_audio(&[1; 1600], t0);
    assert!(drain(&mut s).is_empty());
    assert_eq!(
        s.send_dtmf('1', Duration::from_millis(100), t0),
        Err(SessionError::NotSending)
    );
    // Resume.
    media.direction = Direction::SendRecv;
    s.update(&media, &test_factory).unwrap();
    s.push_audio(&[1; 160], t0);
    let tx = drain(&mut s);
    let p = RtpPacket::parse(&tx.last().unwrap().bytes).unwrap();
    assert!(p.marker, "talkspurt after the hold");
    // Legacy hold: c=0.0.0.0.
    media.remote = addr("0.0.0.0:7000");
    s.update(&media, &test_factory).unwrap();
    s.push_audio(&[1; 160], t0);
    assert!(drain(&mut s).is_empty());
    s.handle_timeout(t0 + Duration::from_secs(10));
    assert!(drain(&mut s).is_empty(), "no RTCP to 0.0.0.0");
}

#[test]
fn latches_onto_the_peers_real_address() {
    let t0 = Instant::now();
    let mut s = session(&negotiated(addr("10.0.0.5:7000")), t0);
    let nat = addr("203.0.113.9:31000");
    for seq in 0..3u16 {
        let at = t0 + Duration::from_millis(u64::from(seq) * 20);
        s.handle_packet(
            &rtp_packet(0, seq, u32::from(seq) * 160, 77, &[0; 320]),
            nat,
            at,
        );
    }
    let ev = events(&mut s);
    assert_eq!(
        ev,
        [
            SessionEvent::SsrcChanged { old: None, new: 77 },
            SessionEvent::PeerLatched(nat)
        ]
    );
    assert_eq!(s.remote_rtp(), nat);
    s.push_audio(&[0; 160], t0);
    assert_eq!(drain(&mut s)[0].destination, nat);
    // Another address later does not steal the stream.
    s.handle_packet(
        &rtp_packet(0, 3, 480, 77, &[0; 320]),
        addr("198.51.100.1:9"),
        t0,
    );
    assert_eq!(s.remote_rtp(), nat);
    // RTCP follows to port + 1.
    s.handle_timeout(t0 + Duration::from_secs(4));
    let rtcp: Vec<Transmit> = drain(&mut s)
        .into_iter()
        .filter(|t| t.kind == TransmitKind::Rtcp)
        .collect();
    assert_eq!(rtcp[0].destination, addr("203.0.113.9:31001"));
    assert_eq!(s.stats().packets_received, 3, "first packet is probation");
}

#[test]
fn reports_a_new_ssrc() {
    let t0 = Instant::now();
    let peer = addr("10.0.0.5:7000");
    let mut s = session(&negotiated(peer), t0);
    for seq in 0..5u16 {
        s.handle_packet(&rtp_packet(0, seq, 0, 1, &[0; 320]), peer, t0);
    }
    for seq in 9000..9003u16 {
        s.handle_packet(&rtp_packet(0, seq, 0, 2, &[0; 320]), peer, t0);
    }
    let ev = events(&mut s);
    assert!(
        ev.contains(&SessionEvent::SsrcChanged {
            old: Some(1),
            new: 2
        }),
        "{ev:?}"
    );
    assert_eq!(s.stats().packets_received, 4 + 2);
}

#[test]
fn discards_what_is_not_ours() {
    let t0 = Instant::now();
    let peer = addr("10.0.0.5:7000");
    let mut s = session(&negotiated(peer), t0);
    s.handle_packet(&rtp_packet(8, 0, 0, 1, &[0; 160]), peer, t0);
    s.handle_packet(b"garbage", peer, t0);
    s.handle_packet(&[0x80, 200, 0, 0], peer, t0);
    assert_eq!(s.stats().discarded, 3);
    assert_eq!(s.stats().packets_received, 0);
}

#[test]
fn rtcp_reports_are_periodic_and_well_formed() {
    let t0 = Instant::now();
    let peer = addr("10.0.0.5:7000");
    let mut s = session(&negotiated(peer), t0);
    let first = s.poll_timeout().unwrap();
    assert!(first > t0 + Duration::from_millis(1000) && first < t0 + Duration::from_millis(3100));
    s.handle_timeout(first);
    let tx = drain(&mut s);
    assert_eq!(tx.len(), 1);
    assert_eq!(
        (tx[0].kind, tx[0].destination),
        (TransmitKind::Rtcp, addr("10.0.0.5:7001"))
    );
    let packets = parse_compound(&tx[0].bytes).unwrap();
    assert!(
        matches!(packets[0], RtcpPacket::ReceiverReport { .. }),
        "nothing sent yet: RR"
    );
    assert!(
        matches!(&packets[1], RtcpPacket::SourceDescription(c) if c[0].cname.as_deref() == Some("msipphone"))
    );
    // After sending audio: SR with our counts.
    s.push_audio(&[5; 320], first);
    drain(&mut s);
    let second = s.poll_timeout().unwrap();
    let gap = second - first;
    assert!(
        gap >= Duration::from_millis(2000) && gap <= Duration::from_millis(6200),
        "{gap:?}"
    );
    s.handle_timeout(second);
    let packets = parse_compound(&drain(&mut s)[0].bytes).unwrap();
    match &packets[0] {
        RtcpPacket::SenderReport { ssrc, info, .. } => {
            assert_eq!(*ssrc, s.ssrc());
            assert_eq!((info.packet_count, info.octet_count), (2, 640));
        }
        other => panic!("expected SR, got {other:?}"),
    }
    // Closing sends a BYE, then nothing.
    s.close(second);
    let packets = parse_compound(&drain(&mut s)[0].bytes).unwrap();
    assert!(matches!(packets.last(), Some(RtcpPacket::Bye { .. })));
    s.push_audio(&[5; 320], second);
    s.handle_timeout(second + Duration::from_secs(20));
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn rtcp_mux_uses_the_rtp_address() {
    let t0 = Instant::now();
    let peer = addr("10.0.0.5:7000");
    let options = SessionOptions {
        rtcp_mux: true,
        ..SessionOptions::default()
    };
    let mut s = MediaSession::new(
        &negotiated(peer),
        &test_factory,
        options,
        t0,
        SystemTime::now(),
    )
    .unwrap();
    s.handle_timeout(t0 + Duration::from_secs(4));
    assert_eq!(drain(&mut s)[0].destination, peer);
}

#[test]
fn dtmf_needs_telephone_event() {
    let t0 = Instant::now();
    let mut media = negotiated(addr("10.0.0.5:7000"));
    let mut s = session(&media, t0);
    assert_eq!(
        s.send_dtmf('x', Duration::from_millis(100), t0),
        Err(SessionError::Dtmf(
            crate::media::dtmf::DtmfError::InvalidDigit('x')
        ))
    );
    media.send_telephone_event = None;
    s.update(&media, &test_factory).unwrap();
    assert_eq!(
        s.send_dtmf('1', Duration::from_millis(100), t0),
        Err(SessionError::NoTelephoneEvent)
    );
}

#[test]
fn dtmf_suppresses_audio_and_keeps_timestamps_apart() {
    let t0 = Instant::now();
    let mut s = session(&negotiated(addr("10.0.0.5:7000")), t0);
    s.push_audio(&[1; 160], t0);
    s.send_dtmf('7', Duration::from_millis(100), t0).unwrap();
    let mut packets = Vec::new();
    for k in 0..20u64 {
        let now = t0 + Duration::from_millis(k * 20);
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
        s.push_audio(&[1; 160], now);
        packets.extend(drain(&mut s));
    }
    let parsed: Vec<RtpPacket<'_>> = packets
        .iter()
        .filter(|t| t.kind == TransmitKind::Rtp)
        .map(|t| RtpPacket::parse(&t.bytes).unwrap())
        .collect();
    let pts: Vec<u8> = parsed.iter().map(|p| p.payload_type).collect();
    let first_event = pts.iter().position(|&p| p == 101).unwrap();
    let last_event = pts.iter().rposition(|&p| p == 101).unwrap();
    assert_eq!(
        pts[first_event..=last_event]
            .iter()
            .filter(|&&p| p == 0)
            .count(),
        0,
        "{pts:?}"
    );
    assert_eq!(last_event - first_event + 1, 7);
    let event_ts = parsed[first_event].timestamp;
    let resumed = &parsed[last_event + 1];
    assert!(resumed.marker);
    assert!(resumed.timestamp.wrapping_sub(event_ts) >= 800);
    // Sequence numbers run on across audio and events.
    assert!(parsed
        .windows(2)
        .all(|w| w[1].sequence == w[0].sequence.wrapping_add(1)));
}

proptest! {
    #[test]
    fn hostile_datagrams_never_panic(
        datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 1..40),
        force_rtp in any::<bool>(),
    ) {
        let t0 = Instant::now();
        let peer = addr("10.0.0.5:7000");
        let mut s = session(&negotiated(peer), t0);
        for (i, mut d) in datagrams.into_iter().enumerate() {
            if force_rtp && d.len() >= 2 {
                d[0] = 0x80;
                d[1] = if i % 2 == 0 { 0 } else { 101 };
            }
            let now = t0 + Duration::from_millis(i as u64 * 7);
            s.handle_packet(&d, peer, now);
            s.handle_timeout(now);
            let mut out = Vec::new();
            s.pull_audio(now, &mut out);
            prop_assert_eq!(out.len(), 160);
        }
        let _ = s.stats();
    }
}

#[test]
fn srtp_sessions_protect_and_drop_forgeries() {
    use crate::media::srtp::{SrtpKey, SrtpSuite};
    use crate::sip::sdp::SrtpKeys;
    let t0 = Instant::now();
    let key_a = SrtpKey::generate(SrtpSuite::AesCm128HmacSha1_80).unwrap();
    let key_b = SrtpKey::generate(SrtpSuite::AesCm128HmacSha1_80).unwrap();
    let (pa, pb) = (addr("10.0.0.1:7000"), addr("10.0.0.2:7000"));
    let mut ma = negotiated(pb);
    ma.srtp = Some(SrtpKeys {
        local: key_a.clone(),
        remote: key_b.clone(),
    });
    let mut mb = negotiated(pa);
    mb.srtp = Some(SrtpKeys {
        local: key_b,
        remote: key_a,
    });
    let mut a = session(&ma, t0);
    let mut b = session(&mb, t0);
    a.push_audio(&[100; 320], t0);
    let tx = drain(&mut a);
    assert_eq!(tx.len(), 2);
    assert!(tx.iter().all(|t| t.bytes.len() == 12 + 320 + 10));
    // Encrypted: the payload is no longer the codec's output.
    let plain = RtpPacket::parse(&tx[0].bytes).unwrap();
    assert_ne!(plain.payload[..320], [100u8; 320][..]);
    let mut forged = tx[1].bytes.clone();
    forged[20] ^= 1;
    b.handle_packet(&forged, pa, t0);
    assert_eq!(b.stats().discarded, 1);
    assert_eq!(b.stats().packets_received, 0);
    for t in &tx {
        b.handle_packet(&t.bytes, pa, t0);
    }
    // The first packet of a source is its RFC 3550 probation.
    assert_eq!(b.stats().packets_received, 1);
    assert_eq!(b.stats().discarded, 1);
    // RTCP goes out as SRTCP (E flag, index and tag) and is accepted.
    a.handle_timeout(t0 + Duration::from_secs(10));
    let rtcp: Vec<Transmit> = drain(&mut a)
        .into_iter()
        .filter(|t| t.kind == TransmitKind::Rtcp)
        .collect();
    assert!(!rtcp.is_empty());
    let e_index = rtcp[0].bytes.len() - 14;
    assert_eq!(rtcp[0].bytes[e_index] & 0x80, 0x80, "E flag");
    b.handle_packet(&rtcp[0].bytes, pa, t0);
    assert_eq!(b.stats().discarded, 1);
}

#[test]
fn vad_skips_silence_keeps_the_clock_and_marks_the_talkspurt() {
    let t0 = Instant::now();
    let mut s = session(&negotiated(addr("192.0.2.1:7000")), t0);
    s.set_vad(Some(crate::media::device::Vad::new(-45.0, 0)));
    let loud: Vec<i16> = (0..160)
        .map(|n| if n % 2 == 0 { 8000 } else { -8000 })
        .collect();
    s.push_audio(&loud, t0);
    let first = drain(&mut s);
    assert_eq!(first.len(), 1);
    let first = RtpPacket::parse(&first[0].bytes).unwrap();
    s.push_audio(&[0; 800], t0);
    assert!(drain(&mut s).is_empty(), "silence is not sent");
    s.push_audio(&loud, t0);
    let tx = drain(&mut s);
    assert_eq!(tx.len(), 1);
    let p = RtpPacket::parse(&tx[0].bytes).unwrap();
    assert!(p.marker, "talkspurt after the silence");
    assert_eq!(p.timestamp, first.timestamp.wrapping_add(160 * 6));
    assert_eq!(p.sequence, first.sequence.wrapping_add(1));
    // RTCP keeps flowing through the silence.
    s.push_audio(&[0; 1600], t0);
    s.handle_timeout(t0 + Duration::from_secs(10));
    let rtcp = drain(&mut s);
    assert!(!rtcp.is_empty() && rtcp.iter().all(|t| t.kind == TransmitKind::Rtcp));
}
