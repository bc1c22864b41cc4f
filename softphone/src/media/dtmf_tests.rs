use std::time::{Duration, Instant};

use super::*;
use crate::media::rtp::RtpPacket;

#[test]
fn digit_codes() {
    let digits = "0123456789*#ABCD";
    for (code, d) in digits.chars().enumerate() {
        assert_eq!(event_code(d), Some(code as u8));
        assert_eq!(event_digit(code as u8), Some(d));
    }
    assert_eq!(event_code('a'), Some(12));
    assert_eq!(event_code('E'), None);
    assert_eq!(event_digit(16), None, "flash is not a digit");
}

#[test]
fn payload_round_trip() {
    let p = EventPayload {
        event: 11,
        end: true,
        volume: 10,
        duration: 2240,
    };
    assert_eq!(p.to_bytes(), [11, 0x8a, 0x08, 0xc0]);
    assert_eq!(EventPayload::parse(&p.to_bytes()), Ok(p));
    assert_eq!(
        EventPayload::parse(&[1, 2, 3]),
        Err(DtmfError::BadPayload(3))
    );
}

/// Drives a sender every millisecond, collecting (time ms, packet).
fn drive(
    tx: &mut DtmfSender,
    t0: Instant,
    until_ms: u64,
    ts: u32,
) -> Vec<(u64, EventPacket, Option<u32>)> {
    let mut out = Vec::new();
    for ms in 0..until_ms {
        let now = t0 + Duration::from_millis(ms);
        while let Some((p, resume)) = tx.poll(now, ts.wrapping_add(ms as u32 * 8)) {
            out.push((ms, p, resume));
        }
    }
    out
}

#[test]
fn sender_follows_rfc_4733() {
    let t0 = Instant::now();
    let mut tx = DtmfSender::new(8000, Duration::from_millis(20));
    tx.queue('5', Duration::from_millis(100), t0).unwrap();
    assert_eq!(tx.timeout(), Some(t0));
    let sent = drive(&mut tx, t0, 1000, 1000);
    let times: Vec<u64> = sent.iter().map(|(t, _, _)| *t).collect();
    assert_eq!(times, [0, 20, 40, 60, 80, 100, 120]);
    let durations: Vec<u16> = sent.iter().map(|(_, p, _)| p.payload.duration).collect();
    assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
    let ends: Vec<bool> = sent.iter().map(|(_, p, _)| p.payload.end).collect();
    assert_eq!(ends, [false, false, false, false, true, true, true]);
    assert!(sent
        .iter()
        .all(|(_, p, _)| p.timestamp == 1000 && p.payload.event == 5));
    assert!(sent.iter().all(|(_, p, _)| p.payload.volume == VOLUME));
    let markers: Vec<bool> = sent.iter().map(|(_, p, _)| p.marker).collect();
    assert_eq!(markers, [true, false, false, false, false, false, false]);
    assert_eq!(
        sent.last().map(|s| s.2),
        Some(Some(1800)),
        "audio resumes after the event"
    );
    assert!(tx.is_idle());
}

#[test]
fn queued_digits_are_spaced_and_distinct() {
    let t0 = Instant::now();
    let mut tx = DtmfSender::new(8000, Duration::from_millis(20));
    for d in "12#".chars() {
        tx.queue(d, Duration::from_millis(60), t0).unwrap();
    }
    assert_eq!(
        tx.queue('x', Duration::from_millis(60), t0),
        Err(DtmfError::InvalidDigit('x'))
    );
    let sent = drive(&mut tx, t0, 2000, 0);
    let starts: Vec<(u64, u8, u32)> = sent
        .iter()
        .filter(|(_, p, _)| p.marker)
        .map(|(t, p, _)| (*t, p.payload.event, p.timestamp))
        .collect();
    assert_eq!(starts.len(), 3);
    assert_eq!(starts.iter().map(|s| s.1).collect::<Vec<_>>(), [1, 2, 11]);
    for w in starts.windows(2) {
        // 60 ms tone + 2 more End repeats, then the gap.
        assert!(w[1].0 - w[0].0 >= 60 + 40 + INTER_DIGIT_GAP.as_millis() as u64 - 20);
        assert_ne!(w[0].2, w[1].2, "each event has its own timestamp");
    }
    assert_eq!(sent.iter().filter(|(_, p, _)| p.payload.end).count(), 9);
}

#[test]
fn long_durations_saturate_the_field() {
    let t0 = Instant::now();
    let mut tx = DtmfSender::new(8000, Duration::from_millis(50));
    tx.queue('0', Duration::from_secs(20), t0).unwrap();
    let sent = drive(&mut tx, t0, 10_000, 0);
    assert_eq!(sent.last().map(|s| s.1.payload.duration), Some(u16::MAX));
    assert!(sent
        .windows(2)
        .all(|w| w[0].1.payload.duration <= w[1].1.payload.duration));
}

fn ms(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

fn ev(code: u8, end: bool, duration: u16) -> [u8; 4] {
    EventPayload {
        event: code,
        end,
        volume: 10,
        duration,
    }
    .to_bytes()
}

#[test]
fn receiver_reports_once_despite_repeated_ends() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8000);
    for (i, d) in [160u16, 320, 480].iter().enumerate() {
        rx.on_packet(500, &ev(7, false, *d), ms(t0, i as u64 * 20))
            .unwrap();
    }
    assert_eq!(rx.poll_event(), None, "not reported before it ends");
    for i in 0..3 {
        rx.on_packet(500, &ev(7, true, 640), ms(t0, 60 + i * 20))
            .unwrap();
    }
    assert_eq!(
        rx.poll_event(),
        Some(DtmfEvent {
            digit: '7',
            duration: Duration::from_millis(80)
        })
    );
    assert_eq!(rx.poll_event(), None);
    assert_eq!(rx.timeout(), None);
    // A straggler of the same event later changes nothing.
    rx.on_packet(500, &ev(7, false, 320), ms(t0, 200)).unwrap();
    assert_eq!(rx.poll_event(), None);
    assert!(rx.on_packet(900, &[1, 2], ms(t0, 210)).is_err());
}

#[test]
fn receiver_survives_lost_ends() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8000);
    rx.on_packet(100, &ev(1, false, 160), t0).unwrap();
    rx.on_packet(100, &ev(1, false, 320), ms(t0, 20)).unwrap();
    let deadline = rx.timeout().unwrap();
    assert_eq!(deadline, ms(t0, 20) + END_TIMEOUT);
    rx.handle_timeout(deadline - Duration::from_millis(1));
    assert_eq!(rx.poll_event(), None);
    rx.handle_timeout(deadline);
    assert_eq!(
        rx.poll_event().map(|e| (e.digit, e.duration)),
        Some(('1', Duration::from_millis(40)))
    );
    // Its End arriving late is ignored.
    rx.on_packet(100, &ev(1, true, 800), ms(t0, 400)).unwrap();
    assert_eq!(rx.poll_event(), None);
}

#[test]
fn a_new_event_ends_the_previous_one() {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new(8000);
    rx.on_packet(100, &ev(2, false, 160), t0).unwrap();
    // Next event's packets (all but its last End lost for the first).
    rx.on_packet(2000, &ev(3, true, 400), ms(t0, 300)).unwrap();
    let got: Vec<char> = std::iter::from_fn(|| rx.poll_event())
        .map(|e| e.digit)
        .collect();
    assert_eq!(got, ['2', '3']);
    // An older timestamp than the current event is a straggler.
    rx.on_packet(3000, &ev(4, false, 160), ms(t0, 400)).unwrap();
    rx.on_packet(2500, &ev(5, false, 160), ms(t0, 410)).unwrap();
    rx.handle_timeout(ms(t0, 1000));
    let got: Vec<char> = std::iter::from_fn(|| rx.poll_event())
        .map(|e| e.digit)
        .collect();
    assert_eq!(got, ['4']);
}

/// UDP payloads of a classic pcap (Ethernet, IPv4, UDP); test-only parser.
fn pcap_udp_payloads(bytes: &[u8]) -> Vec<Vec<u8>> {
    assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    assert_eq!(
        u32::from_le_bytes(bytes[20..24].try_into().unwrap()),
        1,
        "Ethernet"
    );
    let mut at = 24;
    let mut out = Vec::new();
    while at + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &bytes[at + 16..at + 16 + len];
        at += 16 + len;
        assert_eq!(&frame[12..14], &[0x08, 0x00], "IPv4");
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        assert_eq!(ip[9], 17, "UDP");
        let udp = &ip[ihl..];
        let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
        out.push(udp[8..udp_len].to_vec());
    }
    out
}

#[test]
fn matches_the_sipp_reference_captures() {
    let names = [
        ("0", '0'),
        ("1", '1'),
        ("2", '2'),
        ("3", '3'),
        ("4", '4'),
        ("5", '5'),
        ("6", '6'),
        ("7", '7'),
        ("8", '8'),
        ("9", '9'),
        ("star", '*'),
        ("pound", '#'),
    ];
    let dir = std::path::Path::new("/usr/share/sip-tester");
    if !dir.exists() {
        eprintln!("sip-tester captures not installed; skipping");
        return;
    }
    for (name, digit) in names {
        let path = dir.join(format!("dtmf_2833_{name}.pcap"));
        let bytes = std::fs::read(&path).unwrap();
        let packets = pcap_udp_payloads(&bytes);
        let rtp: Vec<RtpPacket<'_>> = packets
            .iter()
            .map(|p| RtpPacket::parse(p).unwrap())
            .collect();
        assert_eq!(rtp.len(), 10, "{name}");
        let events: Vec<EventPayload> = rtp
            .iter()
            .map(|p| EventPayload::parse(p.payload).unwrap())
            .collect();
        // What the research note says, checked packet by packet.
        assert!(rtp.iter().all(|p| p.payload_type == 101));
        assert!(rtp[0].marker && rtp[1..].iter().all(|p| !p.marker));
        assert!(
            rtp.iter().all(|p| p.timestamp == rtp[0].timestamp),
            "one timestamp per event"
        );
        assert!(events.iter().all(|e| event_digit(e.event) == Some(digit)));
        assert!(events.iter().all(|e| e.volume == 10));
        assert!(events
            .windows(2)
            .take(7)
            .all(|w| w[1].duration == w[0].duration + 320));
        assert_eq!(events.iter().filter(|e| e.end).count(), 3, "End x3");
        assert!(events[7..]
            .iter()
            .all(|e| e.end && e.duration == events[7].duration));
        // Our receiver reports it once, with the final duration.
        let t0 = Instant::now();
        let mut rx = DtmfReceiver::new(8000);
        for (i, p) in rtp.iter().enumerate() {
            rx.on_packet(p.timestamp, p.payload, ms(t0, i as u64 * 40))
                .unwrap();
        }
        rx.handle_timeout(ms(t0, 5000));
        let got: Vec<DtmfEvent> = std::iter::from_fn(|| rx.poll_event()).collect();
        assert_eq!(
            got,
            [DtmfEvent {
                digit,
                duration: Duration::from_millis(280)
            }],
            "{name}"
        );
        // Our sender, at sipp's 40 ms update interval and duration, emits
        // the same payload sequence.
        let mut tx = DtmfSender::new(8000, Duration::from_millis(40));
        tx.queue(digit, Duration::from_millis(280), t0).unwrap();
        let ours: Vec<EventPayload> = drive(&mut tx, t0, 1000, 0)
            .iter()
            .map(|s| s.1.payload)
            .collect();
        let theirs_from_second: Vec<EventPayload> = events[1..].to_vec();
        assert_eq!(
            ours, theirs_from_second,
            "{name}: sipp starts at duration 0, we at one interval"
        );
    }
}
