//! Signal helpers for the codec and device tests: a sine, Goertzel power
//! and a delay-compensated SNR.

/// `len` samples of a sine at `hz`, sampled at `rate`, with peak `amp`.
pub fn sine(hz: f64, rate: u32, amp: f64, len: usize) -> Vec<i16> {
    (0..len)
        .map(|n| {
            let t = n as f64 / f64::from(rate);
            (amp * (2.0 * std::f64::consts::PI * hz * t).sin()).round() as i16
        })
        .collect()
}

/// Goertzel power of `hz` in `x` (sampled at `rate`), normalised so a
/// full-scale-relative amplitude `a` sine gives about `a² / 4`.
pub fn goertzel(x: &[i16], hz: f64, rate: u32) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s = f64::from(v) / 32768.0 + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let n = x.len().max(1) as f64;
    power / (n * n)
}

/// The SNR in dB of `decoded` against `reference`, after finding the
/// codec's delay (0..`max_delay` samples) by cross-correlation, over
/// `reference[skip..]` (skipping the codec's start-up).
pub fn snr_db(reference: &[i16], decoded: &[i16], max_delay: usize, skip: usize) -> f64 {
    let len = reference.len().min(decoded.len());
    let window = len.saturating_sub(max_delay + skip);
    assert!(window > 0, "signals too short for the SNR window");
    let best_delay = (0..max_delay)
        .max_by(|&a, &b| {
            let corr = |d: usize| -> f64 {
                (skip..skip + window)
                    .map(|i| f64::from(reference[i]) * f64::from(decoded[i + d]))
                    .sum()
            };
            corr(a).total_cmp(&corr(b))
        })
        .unwrap_or(0);
    let (mut signal, mut noise) = (0.0f64, 0.0f64);
    for i in skip..skip + window {
        let r = f64::from(reference[i]);
        let e = r - f64::from(decoded[i + best_delay]);
        signal += r * r;
        noise += e * e;
    }
    10.0 * (signal / noise.max(1e-9)).log10()
}
