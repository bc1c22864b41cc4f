use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

/// The first packet of /usr/share/sip-tester/dtmf_2833_1.pcap.
const SIPP_EVENT: [u8; 16] = [
    0x80, 0xe5, 0x1f, 0x30, 0x00, 0x00, 0x33, 0xe0, 0x0e, 0x05, 0x38, 0x4e, 0x01, 0x0a, 0x00, 0x00,
];

#[test]
fn parses_a_real_packet() {
    let p = RtpPacket::parse(&SIPP_EVENT).unwrap();
    assert!(p.marker);
    assert_eq!(p.payload_type, 101);
    assert_eq!(p.sequence, 7984);
    assert_eq!(p.timestamp, 13280);
    assert_eq!(p.ssrc, 0x0e05_384e);
    assert_eq!(p.payload, &[0x01, 0x0a, 0, 0]);
    assert_eq!(p.to_vec(), SIPP_EVENT);
}

#[test]
fn round_trips_every_header_field() {
    let ext = [1u8, 2, 3, 4, 5, 6, 7, 8];
    let mut p = RtpPacket::new(96, 65535, u32::MAX, 42, b"hello");
    p.marker = true;
    p.csrcs = vec![1, 2, 3];
    p.extension = Some(RtpExtension {
        profile: 0xbede,
        data: &ext,
    });
    p.padding = 3;
    let bytes = p.to_vec();
    assert_eq!(bytes.len(), 12 + 12 + 4 + 8 + 5 + 3);
    assert_eq!(RtpPacket::parse(&bytes).unwrap(), p);
}

#[test]
fn rejects_bad_input() {
    assert_eq!(RtpPacket::parse(&[]), Err(RtpError::Truncated(0)));
    assert_eq!(
        RtpPacket::parse(&SIPP_EVENT[..11]),
        Err(RtpError::Truncated(11))
    );
    let mut v1 = SIPP_EVENT;
    v1[0] = 0x40;
    assert_eq!(RtpPacket::parse(&v1), Err(RtpError::BadVersion(1)));
    // CSRC count 15 with no room for them.
    let mut cc = SIPP_EVENT;
    cc[0] = 0x8f;
    assert!(matches!(RtpPacket::parse(&cc), Err(RtpError::Truncated(_))));
    // Extension header claiming 100 words.
    let mut ext = SIPP_EVENT[..12].to_vec();
    ext[0] = 0x90;
    ext.extend_from_slice(&[0xbe, 0xde, 0, 100, 1, 2, 3, 4]);
    assert!(matches!(
        RtpPacket::parse(&ext),
        Err(RtpError::Truncated(_))
    ));
    ext[15] = 1;
    let p = RtpPacket::parse(&ext).unwrap();
    assert_eq!(p.extension.map(|e| e.data), Some(&[1u8, 2, 3, 4][..]));
    assert!(p.payload.is_empty());
    // Padding longer than the payload, and zero padding.
    let mut pad = SIPP_EVENT;
    pad[0] = 0xa0;
    pad[15] = 5;
    assert_eq!(RtpPacket::parse(&pad), Err(RtpError::BadPadding(5)));
    pad[15] = 0;
    assert_eq!(RtpPacket::parse(&pad), Err(RtpError::BadPadding(0)));
    pad[15] = 4;
    assert_eq!(RtpPacket::parse(&pad).unwrap().payload, &[] as &[u8]);
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = RtpPacket::parse(&bytes) {
            // Whatever parses re-serialises to the same bytes, except that
            // padding content is normalised to zeros.
            let out = p.to_vec();
            prop_assert_eq!(out.len(), bytes.len());
            prop_assert_eq!(RtpPacket::parse(&out).unwrap(), p);
        }
    }

    #[test]
    fn write_parse_round_trip(
        marker: bool, pt in 0u8..128, seq: u16, ts: u32, ssrc: u32,
        csrcs in proptest::collection::vec(any::<u32>(), 0..16),
        ext in proptest::option::of((any::<u16>(), proptest::collection::vec(any::<u8>(), 0..5).prop_map(|v| v.repeat(4)))),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        padding in 0u8..8,
    ) {
        let mut p = RtpPacket::new(pt, seq, ts, ssrc, &payload);
        p.marker = marker;
        p.csrcs = csrcs;
        p.extension = ext.as_ref().map(|(profile, data)| RtpExtension { profile: *profile, data });
        p.padding = padding;
        let bytes = p.to_vec();
        prop_assert_eq!(RtpPacket::parse(&bytes).unwrap(), p);
    }
}

#[test]
fn sender_numbers_packets_and_marks_talkspurts() {
    let now = Instant::now();
    let mut s = RtpSender::with_state(7, 65535, u32::MAX - 100);
    let mut out = Vec::new();
    s.send_audio(0, &[1; 160], 160, now, &mut out);
    let p = RtpPacket::parse(&out).unwrap();
    assert!(p.marker, "first packet starts a talkspurt");
    assert_eq!(
        (p.sequence, p.timestamp, p.ssrc),
        (65535, u32::MAX - 100, 7)
    );
    out.clear();
    s.send_audio(0, &[1; 160], 160, now, &mut out);
    let p = RtpPacket::parse(&out).unwrap();
    assert!(!p.marker);
    assert_eq!(
        (p.sequence, p.timestamp),
        (0, 59),
        "sequence and timestamp wrap"
    );
    s.skip(320);
    out.clear();
    s.send_audio(0, &[1; 160], 160, now, &mut out);
    let p = RtpPacket::parse(&out).unwrap();
    assert!(p.marker, "after a gap");
    assert_eq!(p.timestamp, 59 + 160 + 320);
    assert_eq!(s.packets_sent(), 3);
    assert_eq!(s.octets_sent(), 480);
    // advance_to never goes backwards.
    let ts = s.timestamp();
    s.advance_to(ts.wrapping_sub(10));
    assert_eq!(s.timestamp(), ts);
    s.advance_to(ts.wrapping_add(10));
    assert_eq!(s.timestamp(), ts.wrapping_add(10));
}

#[test]
fn random_senders_differ() {
    let a = RtpSender::new().unwrap();
    let b = RtpSender::new().unwrap();
    assert!(a.ssrc() != b.ssrc() || a.timestamp() != b.timestamp());
}

fn feed(r: &mut RtpReceiver, seqs: impl IntoIterator<Item = u16>, t0: Instant) -> Vec<SeqVerdict> {
    seqs.into_iter()
        .map(|s| {
            let i = u32::from(s);
            r.on_packet(
                s,
                i * 160,
                160,
                t0 + Duration::from_millis(u64::from(i) * 20),
            )
        })
        .collect()
}

#[test]
fn probation_then_valid() {
    let t0 = Instant::now();
    let mut r = RtpReceiver::new(1, 100, 8000, t0);
    assert_eq!(feed(&mut r, [100], t0), [SeqVerdict::Probation]);
    assert!(!r.is_valid());
    assert_eq!(
        feed(&mut r, [101, 102], t0),
        [SeqVerdict::Valid, SeqVerdict::Valid]
    );
    assert!(r.is_valid());
    assert_eq!(r.received(), 2);
    assert_eq!(r.expected(), 2);
    assert_eq!(r.cumulative_lost(), 0);
}

#[test]
fn probation_restarts_on_a_gap() {
    let t0 = Instant::now();
    let mut r = RtpReceiver::new(1, 100, 8000, t0);
    assert_eq!(
        feed(&mut r, [100, 105, 106], t0),
        [
            SeqVerdict::Probation,
            SeqVerdict::Probation,
            SeqVerdict::Valid
        ]
    );
}

#[test]
fn wraps_and_counts_loss() {
    let t0 = Instant::now();
    let mut r = RtpReceiver::new(9, 65500, 8000, t0);
    let mut verdicts = Vec::new();
    for i in 0u16..200 {
        let seq = 65500u16.wrapping_add(i);
        // Lose every 20th packet after probation.
        if i > 2 && i % 20 == 0 {
            continue;
        }
        verdicts.push(r.on_packet(
            seq,
            u32::from(i) * 160,
            160,
            t0 + Duration::from_millis(u64::from(i) * 20),
        ));
    }
    assert_eq!(
        verdicts
            .iter()
            .filter(|v| **v == SeqVerdict::Probation)
            .count(),
        1
    );
    assert_eq!(
        r.extended_max(),
        65536 + u32::from(65500u16.wrapping_add(199))
    );
    assert_eq!(r.expected(), 199);
    assert_eq!(r.cumulative_lost(), 9);
    let fraction = r.take_fraction_lost();
    assert_eq!(fraction, (9 * 256 / 199) as u8);
    assert_eq!(r.take_fraction_lost(), 0, "a new interval");
    assert_eq!(r.jitter(), 0, "perfectly paced");
}

#[test]
fn duplicates_make_loss_negative() {
    let t0 = Instant::now();
    let mut r = RtpReceiver::new(1, 10, 8000, t0);
    feed(&mut r, [10, 11, 12, 12, 12, 13], t0);
    assert_eq!(r.expected(), 3);
    assert_eq!(r.received(), 5);
    assert_eq!(r.cumulative_lost(), -2);
}

#[test]
fn a_big_jump_needs_a_second_packet() {
    let t0 = Instant::now();
    let mut r = RtpReceiver::new(1, 10, 8000, t0);
    feed(&mut r, [10, 11, 12], t0);
    assert_eq!(feed(&mut r, [20000], t0), [SeqVerdict::Invalid]);
    assert_eq!(
        feed(&mut r, [13], t0),
        [SeqVerdict::Valid],
        "old stream goes on"
    );
    assert_eq!(
        feed(&mut r, [30000, 30001], t0),
        [SeqVerdict::Invalid, SeqVerdict::Valid]
    );
    assert_eq!(r.extended_max(), 30001, "the stream restarted");
    assert_eq!(r.expected(), 1);
}

#[test]
fn jitter_follows_a_8_delay_variation() {
    let t0 = Instant::now();
    let mut r = RtpReceiver::new(1, 0, 8000, t0);
    for i in 0u32..400 {
        // Every other packet 10 ms late: |D| = 80 timestamp units.
        let late = if i % 2 == 1 { 10 } else { 0 };
        let at = t0 + Duration::from_millis(u64::from(i) * 20 + late);
        r.on_packet(i as u16, i * 160, 160, at);
    }
    assert!((78..=80).contains(&r.jitter()), "jitter {}", r.jitter());
    assert!((r.jitter_ms() - 10.0).abs() < 0.3);
    assert_eq!(r.bytes(), 399 * 160);
}
