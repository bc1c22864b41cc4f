//! Test helpers: a trivial codec (16-bit big-endian linear PCM at 8 kHz,
//! (L16-like), 20 ms frames, optional PLC by repeating the last frame.

use super::AudioCodec;

/// Linear PCM "codec" used by the unit and back-to-back tests.
#[derive(Debug, Clone, Default)]
pub struct TestCodec {
    /// Whether `conceal` produces anything (else the playout fades).
    pub plc: bool,
    last: Vec<i16>,
    /// How many times `conceal` was called.
    pub conceal_calls: usize,
}

impl TestCodec {
    pub fn new(plc: bool) -> Self {
        Self {
            plc,
            ..Self::default()
        }
    }
}

impl AudioCodec for TestCodec {
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        for s in pcm {
            out.extend_from_slice(&s.to_be_bytes());
        }
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        let start = out.len();
        out.extend(
            payload
                .chunks_exact(2)
                .map(|c| i16::from_be_bytes([c[0], c[1]])),
        );
        self.last = out[start..].to_vec();
    }

    fn conceal(&mut self, out: &mut Vec<i16>) {
        self.conceal_calls += 1;
        if self.plc {
            out.extend(self.last.iter().map(|s| s / 2));
        }
    }

    fn clock_rate(&self) -> u32 {
        8000
    }

    fn sample_rate(&self) -> u32 {
        8000
    }

    fn frame_samples(&self) -> usize {
        160
    }
}

/// A deterministic xorshift64* generator so simulated networks repeat.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

use std::net::SocketAddr;

use crate::sip::sdp::{static_codec, Direction, NegotiatedMedia, PayloadCodec, TelephoneEvent};

/// PCMU/8000 on PT 0 with telephone-event on 101, sendrecv, to `remote`.
pub fn negotiated(remote: SocketAddr) -> NegotiatedMedia {
    let pc = PayloadCodec {
        pt: 0,
        codec: static_codec(0).unwrap_or_else(|| unreachable!()),
        remote_fmtp: None,
    };
    let te = TelephoneEvent {
        pt: 101,
        clock_rate: 8000,
    };
    NegotiatedMedia {
        local_port: 4000,
        remote,
        send_codec: pc.clone(),
        receive_codecs: vec![pc],
        send_telephone_event: Some(te),
        receive_telephone_events: vec![te],
        direction: Direction::SendRecv,
        ptime: None,
        srtp: None,
    }
}

/// A codec factory that makes [`TestCodec`]s for every payload.
pub fn test_factory(pc: &PayloadCodec) -> Option<Box<dyn AudioCodec + Send>> {
    let _ = pc;
    Some(Box::new(TestCodec::new(false)))
}
