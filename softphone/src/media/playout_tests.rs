use std::time::{Duration, Instant};

use super::*;
use crate::media::jitter::{Entry, JitterConfig};
use crate::media::test_support::TestCodec;

fn playout(plc: bool) -> Playout {
    let buffer = JitterBuffer::new(JitterConfig::default(), 8000, Duration::from_millis(20));
    let decoders = vec![Decoder {
        payload_type: 96,
        codec: Box::new(TestCodec::new(plc)),
    }];
    Playout::new(buffer, decoders, 8000)
}

fn packet(value: i16, samples: usize) -> Entry {
    let mut payload = Vec::new();
    for _ in 0..samples {
        payload.extend_from_slice(&value.to_be_bytes());
    }
    Entry {
        payload_type: 96,
        timestamp: 0,
        payload,
    }
}

/// Sends packets (value = seq + 1, 160 samples) every 20 ms except those
/// in `lost`, pulls 160 samples every 20 ms; returns (kind, first sample).
fn run(p: &mut Playout, count: u16, lost: &[u16], pull_samples: usize) -> Vec<(FrameKind, i16)> {
    let t0 = Instant::now();
    let mut out = Vec::new();
    for k in 0..u64::from(count) + 20 {
        let now = t0 + Duration::from_millis(k * 20);
        if let Ok(seq) = u16::try_from(k) {
            if seq < count && !lost.contains(&seq) {
                let mut e = packet(seq as i16 + 1, 160);
                e.timestamp = u32::from(seq) * 160;
                p.buffer_mut().insert(seq, e, now);
            }
        }
        let mut frame = Vec::new();
        let kind = p.pull(now + Duration::from_millis(1), pull_samples, &mut frame);
        assert_eq!(frame.len(), pull_samples, "every pull is one full frame");
        out.push((kind, frame[0]));
    }
    out
}

#[test]
fn decodes_in_order() {
    let mut p = playout(false);
    let out = run(&mut p, 50, &[], 160);
    let decoded: Vec<i16> = out
        .iter()
        .filter(|o| o.0 == FrameKind::Decoded)
        .map(|o| o.1)
        .collect();
    assert!(decoded.windows(2).all(|w| w[1] > w[0]));
    assert!(decoded.len() >= 47, "{}", decoded.len());
    // Concealment only after the stream's last packet.
    let last = out.iter().rposition(|o| o.0 == FrameKind::Decoded).unwrap();
    assert!(out[..last]
        .iter()
        .skip(3)
        .all(|o| o.0 == FrameKind::Decoded));
    assert_eq!(out[0].0, FrameKind::Silence, "buffering");
}

#[test]
fn fades_over_a_loss_then_falls_silent() {
    let mut p = playout(false);
    // One lost packet, then a burst longer than MAX_CONCEAL.
    let lost: Vec<u16> = std::iter::once(10).chain(20..30).collect();
    let out = run(&mut p, 50, &lost, 160);
    let last = out.iter().rposition(|o| o.0 == FrameKind::Decoded).unwrap();
    let kinds: Vec<FrameKind> = out[..last].iter().map(|o| o.0).collect();
    let concealed = kinds.iter().filter(|k| **k == FrameKind::Concealed).count();
    // One for the single loss, MAX_CONCEAL for the burst (plus possibly a
    // frame waited for a just-due packet).
    assert!(
        (1 + MAX_CONCEAL as usize..=3 + MAX_CONCEAL as usize).contains(&concealed),
        "{kinds:?}"
    );
    // The single loss repeats packet 10's content (value 10) faded.
    let i = out.iter().position(|o| o.1 == 10).unwrap();
    assert_eq!(out[i + 1], (FrameKind::Concealed, 7));
    assert_eq!(out[i + 2].1, 12);
    // During the burst the fade decays, then silence.
    let burst: Vec<i16> = out
        .iter()
        .skip_while(|o| o.1 != 20)
        .skip(1)
        .take(6)
        .map(|o| o.1)
        .collect();
    assert!(
        burst[..5].windows(2).all(|w| w[1].abs() < w[0].abs()),
        "{burst:?}"
    );
    assert!(kinds.contains(&FrameKind::Silence));
    // The tail after the last packet is concealed the same way.
    assert_eq!(
        p.stats().concealed as usize,
        concealed + MAX_CONCEAL as usize
    );
}

#[test]
fn uses_codec_plc_when_it_has_one() {
    let mut p = playout(true);
    let out = run(&mut p, 30, &[15], 160);
    let i = out.iter().position(|o| o.1 == 15).unwrap();
    // TestCodec's PLC halves the last frame.
    assert_eq!(out[i + 1], (FrameKind::Concealed, 7));
    assert_eq!(out[i + 2].1, 17);
}

#[test]
fn pull_size_need_not_match_packet_size() {
    let mut p = playout(false);
    // 10 ms pulls of 20 ms packets: twice as many pulls as packets.
    let t0 = Instant::now();
    let mut samples = Vec::new();
    for k in 0..200u64 {
        let now = t0 + Duration::from_millis(k * 10);
        if k % 2 == 0 && k < 160 {
            let seq = (k / 2) as u16;
            let mut e = packet(seq as i16 + 1, 160);
            e.timestamp = u32::from(seq) * 160;
            p.buffer_mut().insert(seq, e, now);
        }
        p.pull(now, 80, &mut samples);
    }
    assert_eq!(samples.len(), 200 * 80);
    // Up to the last packet (value 80), values only increase.
    let end = samples.iter().rposition(|&v| v == 80).unwrap();
    let mut values: Vec<i16> = samples[..=end].iter().copied().filter(|&v| v > 0).collect();
    values.dedup();
    assert!(values.windows(2).all(|w| w[1] > w[0]));
    assert!(values.len() >= 75);
}

#[test]
fn unknown_payload_types_are_concealed_not_decoded() {
    let mut p = playout(false);
    let t0 = Instant::now();
    for seq in 0..10u16 {
        let now = t0 + Duration::from_millis(u64::from(seq) * 20);
        let mut e = packet(5, 160);
        e.payload_type = if seq == 5 { 8 } else { 96 };
        e.timestamp = u32::from(seq) * 160;
        p.buffer_mut().insert(seq, e, now);
        p.pull(now, 160, &mut Vec::new());
    }
    assert_eq!(p.stats().undecodable, 1);
    assert!(p.decodes(96) && !p.decodes(8));
}
