use super::*;
use crate::media::test_support::Rng;
use crate::media::tone::SineSource;

const DIGITS: &str = "0123456789*#ABCD";

fn tone(digit: char, rate: u32, ms: usize) -> Vec<i16> {
    let mut pcm = vec![0; rate as usize * ms / 1000];
    DtmfTone::new(digit, rate).unwrap().fill(&mut pcm);
    pcm
}

fn add_noise(pcm: &mut [i16], rng: &mut Rng, amplitude: f64) {
    for s in pcm {
        let n = (rng.unit() * 2.0 - 1.0) * amplitude;
        *s = (f64::from(*s) + n).clamp(-32768.0, 32767.0) as i16;
    }
}

#[test]
fn frequencies_of_the_keypad() {
    assert_eq!(frequencies('1'), Some((697.0, 1209.0)));
    assert_eq!(frequencies('0'), Some((941.0, 1336.0)));
    assert_eq!(frequencies('#'), Some((941.0, 1477.0)));
    assert_eq!(frequencies('d'), Some((941.0, 1633.0)));
    assert_eq!(frequencies('E'), None);
    assert!(DtmfTone::new('x', 8000).is_none());
}

#[test]
fn generated_level_is_minus_10_dbm0_per_tone() {
    let pcm = tone('5', 8000, 200);
    let low = crate::media::tone::frequency_power(&pcm, 8000, 770.0);
    let high = crate::media::tone::frequency_power(&pcm, 8000, 1336.0);
    let expected = dbm0_to_peak(-10.0).powi(2) / 2.0;
    for p in [low, high] {
        assert!((p / expected - 1.0).abs() < 0.05, "{p} vs {expected}");
    }
}

#[test]
fn detects_every_digit_once_in_noise() {
    let mut rng = Rng::new(11);
    for rate in [8000, 16000] {
        let mut pcm = Vec::new();
        for d in DIGITS.chars() {
            pcm.extend(tone(d, rate, 70));
            pcm.extend(vec![0; rate as usize * 60 / 1000]);
        }
        // Noise about 20 dB below the tones.
        add_noise(&mut pcm, &mut rng, 1500.0);
        let mut det = DtmfDetector::new(rate);
        // Feed in odd-sized chunks, as a device would.
        let found: Vec<char> = pcm.chunks(157).flat_map(|c| det.feed(c)).collect();
        assert_eq!(found.iter().collect::<String>(), DIGITS, "rate {rate}");
    }
}

#[test]
fn a_long_press_is_one_digit_and_a_repeat_is_two() {
    let mut det = DtmfDetector::new(8000);
    let mut pcm = tone('9', 8000, 1000);
    pcm.extend(vec![0; 480]);
    pcm.extend(tone('9', 8000, 80));
    assert_eq!(det.feed(&pcm), ['9', '9']);
}

#[test]
fn too_short_a_tone_is_ignored() {
    let mut det = DtmfDetector::new(8000);
    let mut pcm = tone('3', 8000, 30);
    pcm.extend(vec![0; 800]);
    assert!(det.feed(&pcm).is_empty());
}

#[test]
fn twist_beyond_8_db_is_rejected() {
    let rate = 8000;
    let mut pcm = vec![0i16; 800];
    let mut low = SineSource::new(697.0, rate, 12_000.0);
    let mut high = SineSource::new(1209.0, rate, 12_000.0 / 3.5); // -10.9 dB
    for s in pcm.iter_mut() {
        *s = (low.next_f64() + high.next_f64()) as i16;
    }
    assert!(DtmfDetector::new(rate).feed(&pcm).is_empty());
    // Within limits (-6 dB) it is found.
    let mut high = SineSource::new(1209.0, rate, 6_000.0);
    for s in pcm.iter_mut() {
        *s = (low.next_f64() + high.next_f64()) as i16;
    }
    assert_eq!(DtmfDetector::new(rate).feed(&pcm), ['1']);
}

#[test]
fn rejects_noise_and_speech_like_signals() {
    let mut rng = Rng::new(5);
    let rate = 8000;
    // 10 s of white noise at a loud level.
    let mut noise = vec![0i16; rate as usize * 10];
    add_noise(&mut noise, &mut rng, 12_000.0);
    assert!(DtmfDetector::new(rate).feed(&noise).is_empty());
    // Voiced "speech": a gliding 100-250 Hz fundamental with 20 harmonics
    // under a formant-like envelope, syllable-rate amplitude modulation.
    let mut speech = vec![0i16; rate as usize * 10];
    let mut phase = 0.0f64;
    for (i, s) in speech.iter_mut().enumerate() {
        let t = i as f64 / f64::from(rate);
        let f0 = 175.0 + 75.0 * (t * 1.3).sin();
        phase += std::f64::consts::TAU * f0 / f64::from(rate);
        let mut v = 0.0;
        for h in 1..=20 {
            let f = f0 * f64::from(h);
            let formant = (-((f - 700.0) / 300.0).powi(2)).exp()
                + 0.6 * (-((f - 1200.0) / 250.0).powi(2)).exp();
            v += formant * (phase * f64::from(h)).sin();
        }
        let syllable = 0.5 + 0.5 * (t * std::f64::consts::TAU * 4.0).sin();
        *s = (v * 6000.0 * syllable).clamp(-32768.0, 32767.0) as i16;
    }
    add_noise(&mut speech, &mut rng, 300.0);
    let found = DtmfDetector::new(rate).feed(&speech);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn silence_and_single_tones_are_not_digits() {
    assert_eq!(detect_block(&[0; 205], 8000), None);
    let mut one = vec![0i16; 205];
    SineSource::new(697.0, 8000, 10_000.0).fill(&mut one);
    assert_eq!(detect_block(&one, 8000), None);
}
