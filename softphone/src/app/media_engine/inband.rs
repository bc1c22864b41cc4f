//! In-band DTMF (`DTMFMethod=1`): queued digits mixed into the microphone
//! audio, each a tone then a gap, so consecutive equal digits stay apart.

use std::collections::VecDeque;

use crate::media::inband::DtmfTone;

/// How long each digit sounds (MicroSIP/pjsua: 100 ms tones).
const TONE_MS: u32 = 100;
/// The silence after it.
const GAP_MS: u32 = 60;

/// Digits waiting to be played and the one playing.
#[derive(Debug, Default)]
pub(super) struct InbandQueue {
    pending: VecDeque<char>,
    /// The digit playing, and the samples of tone and then gap left.
    current: Option<(DtmfTone, usize, usize)>,
    scratch: Vec<i16>,
}

impl InbandQueue {
    /// Queues `digit` (invalid ones are dropped when their turn comes).
    pub fn push(&mut self, digit: char) {
        self.pending.push_back(digit);
    }

    /// Mixes the tones due in `frame` (mono at `rate`) into it.
    pub fn mix(&mut self, frame: &mut [i16], rate: u32) {
        let mut at = 0;
        while at < frame.len() {
            if self.current.is_none() {
                let Some(digit) = self.pending.pop_front() else {
                    return;
                };
                let samples = |ms: u32| (u64::from(rate) * u64::from(ms) / 1000) as usize;
                if let Some(tone) = DtmfTone::new(digit, rate) {
                    self.current = Some((tone, samples(TONE_MS), samples(GAP_MS)));
                }
                continue;
            }
            let Some((tone, tone_left, gap_left)) = self.current.as_mut() else {
                return;
            };
            let room = frame.len() - at;
            if *tone_left > 0 {
                let n = room.min(*tone_left);
                self.scratch.resize(n, 0);
                tone.fill(&mut self.scratch);
                for (s, t) in frame[at..at + n].iter_mut().zip(&self.scratch) {
                    *s = s.saturating_add(*t);
                }
                *tone_left -= n;
                at += n;
            } else {
                let n = room.min(*gap_left);
                *gap_left -= n;
                at += n;
                if *gap_left == 0 {
                    self.current = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::inband::DtmfDetector;

    #[test]
    fn queued_digits_are_detected_in_order_once_each() {
        let rate = 8_000;
        let mut queue = InbandQueue::default();
        for d in ['1', '1', '#', 'x', '9'] {
            queue.push(d);
        }
        let mut detector = DtmfDetector::new(rate);
        let mut heard = Vec::new();
        for _ in 0..60 {
            let mut frame = vec![0i16; 160];
            queue.mix(&mut frame, rate);
            heard.extend(detector.feed(&frame));
        }
        assert_eq!(heard, vec!['1', '1', '#', '9']);
    }
}
