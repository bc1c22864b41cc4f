//! In-band DTMF (ITU-T Q.23/Q.24): tone generation and a Goertzel
//! detector.
//!
//! Detection works on blocks of 205 samples at 8 kHz (25.6 ms; scaled for
//! other rates), the classic size whose bins sit close to the eight DTMF
//! frequencies. A block holds a digit when:
//! * both the strongest row and column tones exceed [`MIN_TONE_POWER`]
//!   (about −37 dBm0 each),
//! * twist (row vs column level) is within ±8 dB,
//! * each is 8 dB above the other tones of its group,
//! * the two tones carry at least 60 % of the block's energy (speech and
//!   noise spread theirs).
//!
//! A digit is reported once, after two consecutive blocks agree (≥ 40 ms
//! of tone, Q.24), and again only after two blocks without it.

use super::dtmf::event_code;
use super::tone::{dbm0_to_peak, frequency_power, total_power, SineSource};

/// The low-group (row) frequencies in Hz.
pub const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
/// The high-group (column) frequencies in Hz.
pub const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Each generated tone's level.
pub const TONE_DBM0: f64 = -10.0;
/// The least mean power of each tone in a block (≈ −37 dBm0).
pub const MIN_TONE_POWER: f64 = 1.0e5;
const MAX_TWIST_DB: f64 = 8.0;
const GROUP_MARGIN_DB: f64 = 8.0;
const MIN_ENERGY_SHARE: f64 = 0.6;

/// The (row, column) frequencies of a digit.
pub fn frequencies(digit: char) -> Option<(f64, f64)> {
    event_code(digit)?;
    let d = digit.to_ascii_uppercase();
    KEYS.iter().enumerate().find_map(|(r, row)| {
        let c = row.iter().position(|&k| k == d)?;
        Some((*ROWS.get(r)?, *COLS.get(c)?))
    })
}

/// Generates a digit's two tones at [`TONE_DBM0`] each.
#[derive(Debug, Clone)]
pub struct DtmfTone {
    low: SineSource,
    high: SineSource,
}

impl DtmfTone {
    /// The tone of `digit` at `sample_rate`, or `None` for a non-digit.
    pub fn new(digit: char, sample_rate: u32) -> Option<Self> {
        let (low, high) = frequencies(digit)?;
        let peak = dbm0_to_peak(TONE_DBM0);
        Some(Self {
            low: SineSource::new(low, sample_rate, peak),
            high: SineSource::new(high, sample_rate, peak),
        })
    }

    /// Fills `out` with the next samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out {
            let v = self.low.next_f64() + self.high.next_f64();
            *s = v.round().clamp(-32768.0, 32767.0) as i16;
        }
    }
}

fn db(ratio: f64) -> f64 {
    10.0 * ratio.max(1e-12).log10()
}

/// The strongest of four frequencies and whether it stands out.
fn strongest(powers: &[f64; 4]) -> (usize, f64, bool) {
    let mut best = 0;
    for i in 1..4 {
        if powers[i] > powers[best] {
            best = i;
        }
    }
    let peak = powers[best];
    let clear = powers
        .iter()
        .enumerate()
        .all(|(i, &p)| i == best || db(peak / p.max(1e-12)) >= GROUP_MARGIN_DB);
    (best, peak, clear)
}

/// The digit in one block, if the block passes every check.
pub fn detect_block(block: &[i16], sample_rate: u32) -> Option<char> {
    let rows = ROWS.map(|f| frequency_power(block, sample_rate, f));
    let cols = COLS.map(|f| frequency_power(block, sample_rate, f));
    let (r, row_p, row_clear) = strongest(&rows);
    let (c, col_p, col_clear) = strongest(&cols);
    if row_p < MIN_TONE_POWER || col_p < MIN_TONE_POWER || !row_clear || !col_clear {
        return None;
    }
    if db(row_p / col_p).abs() > MAX_TWIST_DB {
        return None;
    }
    if row_p + col_p < MIN_ENERGY_SHARE * total_power(block) {
        return None;
    }
    KEYS.get(r)?.get(c).copied()
}

/// A streaming in-band DTMF detector.
#[derive(Debug, Clone)]
pub struct DtmfDetector {
    sample_rate: u32,
    block_len: usize,
    block: Vec<i16>,
    candidate: Option<char>,
    reported: Option<char>,
    misses: u32,
}

impl DtmfDetector {
    /// A detector for PCM at `sample_rate`.
    pub fn new(sample_rate: u32) -> Self {
        let block_len = (sample_rate as usize * 205 / 8000).max(64);
        Self {
            sample_rate,
            block_len,
            block: Vec::with_capacity(block_len),
            candidate: None,
            reported: None,
            misses: 0,
        }
    }

    /// Feeds samples; returns the digits newly recognised in them.
    pub fn feed(&mut self, pcm: &[i16]) -> Vec<char> {
        let mut found = Vec::new();
        for &s in pcm {
            self.block.push(s);
            if self.block.len() == self.block_len {
                if let Some(d) = self.on_block() {
                    found.push(d);
                }
                self.block.clear();
            }
        }
        found
    }

    fn on_block(&mut self) -> Option<char> {
        let digit = detect_block(&self.block, self.sample_rate);
        let confirmed = digit.is_some() && digit == self.candidate;
        self.candidate = digit;
        if confirmed {
            self.misses = 0;
            if self.reported != digit {
                self.reported = digit;
                return digit;
            }
        } else if digit != self.reported {
            // Two blocks without the reported digit end it.
            self.misses += 1;
            if self.misses >= 2 {
                self.reported = None;
            }
        }
        None
    }
}

#[cfg(test)]
#[path = "inband_tests.rs"]
mod tests;
