use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;

use super::*;

fn block(ssrc: u32, lost: i32) -> ReportBlock {
    ReportBlock {
        ssrc,
        fraction_lost: 25,
        cumulative_lost: lost,
        extended_highest_seq: 0x0001_0010,
        jitter: 77,
        last_sr: 0x1234_5678,
        delay_since_last_sr: 65536,
    }
}

#[test]
fn sr_sdes_bye_round_trip() {
    let packets = vec![
        RtcpPacket::SenderReport {
            ssrc: 0xdead_beef,
            info: SenderInfo {
                ntp: NtpTime::from_unix(Duration::from_secs(1_700_000_000)),
                rtp_timestamp: 160,
                packet_count: 50,
                octet_count: 8000,
            },
            reports: vec![block(7, 3)],
        },
        RtcpPacket::SourceDescription(vec![SdesChunk {
            ssrc: 0xdead_beef,
            cname: Some("alice@example.org".into()),
        }]),
        RtcpPacket::Bye {
            sources: vec![0xdead_beef],
            reason: Some("bye".into()),
        },
    ];
    let bytes = write_compound(&packets);
    assert_eq!(bytes.len() % 4, 0);
    assert!(is_rtcp(&bytes));
    assert_eq!(parse_compound(&bytes).unwrap(), packets);
}

#[test]
fn rr_with_negative_loss_round_trips() {
    let packets = vec![
        RtcpPacket::ReceiverReport {
            ssrc: 1,
            reports: vec![block(2, -5), block(3, 0x7f_ffff)],
        },
        RtcpPacket::SourceDescription(vec![SdesChunk {
            ssrc: 1,
            cname: None,
        }]),
    ];
    let bytes = write_compound(&packets);
    assert_eq!(bytes.len(), 4 + 4 + 48 + 4 + 8);
    assert_eq!(parse_compound(&bytes).unwrap(), packets);
}

#[test]
fn rejects_bad_compounds() {
    assert_eq!(parse_compound(&[]), Err(RtcpError::Truncated));
    let bye = write_compound(&[RtcpPacket::Bye {
        sources: vec![1],
        reason: None,
    }]);
    assert_eq!(parse_compound(&bye), Err(RtcpError::NotCompound(PT_BYE)));
    let rr_bye = [
        RtcpPacket::ReceiverReport {
            ssrc: 1,
            reports: vec![],
        },
        RtcpPacket::Bye {
            sources: vec![1],
            reason: None,
        },
    ];
    assert_eq!(parse_compound(&write_compound(&rr_bye)).unwrap(), rr_bye);
    let rr = write_compound(&[RtcpPacket::ReceiverReport {
        ssrc: 1,
        reports: vec![block(2, 0)],
    }]);
    assert_eq!(
        parse_compound(&rr[..rr.len() - 4]),
        Err(RtcpError::Truncated)
    );
    let mut v1 = rr.clone();
    v1[0] = 0x41;
    assert_eq!(parse_compound(&v1), Err(RtcpError::BadVersion(1)));
    // Report count says 2 but the length holds one block.
    let mut count = rr.clone();
    count[0] = 0x82;
    assert_eq!(parse_compound(&count), Err(RtcpError::Truncated));
}

#[test]
fn other_types_are_skipped() {
    let mut bytes = write_compound(&[RtcpPacket::ReceiverReport {
        ssrc: 1,
        reports: vec![],
    }]);
    // An APP packet (type 204), two words long.
    bytes.extend_from_slice(&[0x80, 204, 0, 2, 0, 0, 0, 1, b'n', b'a', b'm', b'e']);
    let parsed = parse_compound(&bytes).unwrap();
    assert_eq!(parsed.get(1), Some(&RtcpPacket::Other { packet_type: 204 }));
}

#[test]
fn demultiplexes_rtp_from_rtcp() {
    assert!(!is_rtcp(&[0x80, 0x00]), "PCMU");
    assert!(!is_rtcp(&[0x80, 0xe5]), "marker + PT 101");
    assert!(is_rtcp(&[0x80, 200]));
    assert!(is_rtcp(&[0x80, 201]));
    assert!(!is_rtcp(&[0x80]));
}

#[test]
fn ntp_and_round_trip() {
    let t = NtpTime::from_system(UNIX_EPOCH + Duration::from_millis(1500));
    assert_eq!(t.0 >> 32, NTP_UNIX_OFFSET + 1);
    assert_eq!(t.0 as u32, 1 << 31, "half a second");
    assert_eq!(t.middle32(), ((NTP_UNIX_OFFSET + 1) as u32) << 16 | 0x8000);
    // SR sent at LSR, held 1 s by the peer, back 1.25 s after sending.
    let lsr = 0x0001_0000;
    let rtt = round_trip(lsr + 0x0001_4000, lsr, 0x0001_0000).unwrap();
    assert_eq!(rtt, Duration::from_millis(250));
    assert_eq!(round_trip(5, 0, 0), None, "no SR reflected");
    assert_eq!(round_trip(lsr, lsr, 10), None, "negative");
    assert_eq!(to_q16(Duration::from_millis(500)), 0x8000);
}

#[test]
fn report_interval_is_randomised_around_five_seconds() {
    let lo = report_interval(false, 0.0);
    let hi = report_interval(false, 0.999_999);
    assert!(
        lo > Duration::from_millis(2000) && lo < Duration::from_millis(2100),
        "{lo:?}"
    );
    assert!(
        hi > Duration::from_millis(6100) && hi < Duration::from_millis(6200),
        "{hi:?}"
    );
    assert!(report_interval(true, 0.5) < report_interval(false, 0.5));
    // The mean over the range is Td / 1.21828 ≈ 4.1 s.
    let mean: f64 = (0..100)
        .map(|i| report_interval(false, f64::from(i) / 100.0).as_secs_f64())
        .sum::<f64>()
        / 100.0;
    assert!((mean - 4.1).abs() < 0.05, "{mean}");
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_compound(&bytes);
    }

    #[test]
    fn parse_never_panics_on_rtcp_like_input(
        count in 0u8..32, pt in 200u8..205, words in 0u16..20,
        body in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let mut bytes = vec![0x80 | count, pt];
        bytes.extend_from_slice(&words.to_be_bytes());
        bytes.extend_from_slice(&body);
        let _ = parse_compound(&bytes);
        bytes[0] |= 0x20;
        let _ = parse_compound(&bytes);
    }
}
