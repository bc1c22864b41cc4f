//! Call audio end to end: the phone (`softphone::app` in-process, its
//! media engine on real sockets) against a real baresip on 127.0.0.1.
//!
//! Our microphone is `tone:1000`, baresip's a 400 Hz WAV; our speaker is a
//! `file:` WAV and baresip records what it hears with sndfile.so. Each
//! side's recording must carry the other's tone in (nearly) every 200 ms
//! stretch of the call, so the tests fail if audio stops flowing either
//! way. DTMF: RFC 4733 both ways, checked against baresip's
//! CALL_DTMF_START events and our `UaEvent::Dtmf`. Hold: held by baresip
//! (recvonly) we send no RTP, and send again once resumed. Audio controls:
//! an output switched mid-call gets baresip's tone, and muting silences
//! what baresip hears until unmuted.
#![cfg(unix)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::peers::{free_port, tone_wav, Baresip, BaresipConfig, AUTO_ANSWER};
use softphone::app::media_engine::DeviceRole;
use softphone::app::{self, PhoneConfig, PhoneHandle};
use softphone::config::{Account, IniDocument, Settings};
use softphone::media::tone::{frequency_power, tone_snr_db};
use softphone::sip::ua::{CallId, CallState, UaEvent};
use tokio::sync::broadcast;
use tokio::task::{block_in_place, JoinHandle};

// Generous: a bound for failures, not a speed target (2-core CI runs peers
// and phones side by side).
const WAIT: Duration = Duration::from_secs(20);
/// How long each call carries audio.
const TALK: Duration = Duration::from_secs(2);
/// What we send and what baresip sends.
const OUR_HZ: f64 = 1000.0;
const THEIR_HZ: f64 = 400.0;
/// The least tone-to-rest ratio a 200 ms stretch must reach.
const MIN_SNR_DB: f64 = 15.0;

struct Phone {
    handle: PhoneHandle,
    task: JoinHandle<()>,
    events: broadcast::Receiver<UaEvent>,
}

/// A phone calling `peer` directly, with `settings` lines added.
async fn phone(peer: &str, settings: &str) -> Phone {
    phone_with(peer, settings, "").await
}

/// [`phone`] with `account` lines added to `[Account1]`.
async fn phone_with(peer: &str, settings: &str, account: &str) -> Phone {
    let text = format!(
        "[Settings]\r\nsourcePort={}\r\n{settings}[Account1]\r\ndomain={peer}\r\nusername=alice\r\n{account}",
        free_port()
    );
    let doc = IniDocument::parse(text.as_bytes()).expect("test ini parses");
    let config = PhoneConfig {
        settings: Settings::from_document(&doc),
        accounts: Account::list(&doc),
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        tls_ca: None,
        behavior: Default::default(),
    };
    let (handle, task) = app::start(config).await.expect("the phone starts");
    let events = handle.subscribe();
    Phone {
        handle,
        task,
        events,
    }
}

async fn expect<T>(
    events: &mut broadcast::Receiver<UaEvent>,
    what: &str,
    mut pick: impl FnMut(&UaEvent) -> Option<T>,
) -> T {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => panic!("event stream ended waiting for {what}: {e}"),
            }
        }
    };
    match tokio::time::timeout(WAIT, wait).await {
        Ok(found) => found,
        Err(_) => panic!("no {what} within {WAIT:?}"),
    }
}

fn connected(call: CallId) -> impl FnMut(&UaEvent) -> Option<()> {
    move |e| match e {
        UaEvent::CallState { call: c, state } if *c == call && *state == CallState::Connected => {
            Some(())
        }
        _ => None,
    }
}

fn ended(call: CallId) -> impl FnMut(&UaEvent) -> Option<()> {
    move |e| match e {
        UaEvent::CallEnded { call: c, .. } if *c == call => Some(()),
        _ => None,
    }
}

/// Baresip answering at once with `codec`, playing a 400 Hz tone and
/// recording what it hears into `record`.
fn baresip(dir: &Path, codec: &str, module: Option<&str>) -> Baresip {
    baresip_with(dir, codec, module.into_iter().collect(), "")
}

/// [`baresip`] with `modules` and account `options` (`;`-prefixed) added.
fn baresip_with(dir: &Path, codec: &str, modules: Vec<&str>, options: &str) -> Baresip {
    let wav = dir.join("bob-mic.wav");
    std::fs::write(&wav, tone_wav(THEIR_HZ, 8000.0, Duration::from_secs(120)))
        .expect("write baresip's WAV");
    let record = dir.join("bob-heard");
    std::fs::create_dir_all(&record).expect("create baresip's recording folder");
    block_in_place(|| {
        Baresip::start_with(BaresipConfig {
            options: format!("{AUTO_ANSWER};audio_codecs={codec}{options}"),
            audio_file: Some(wav),
            record_dir: Some(record),
            modules: modules.into_iter().map(str::to_owned).collect(),
            ..BaresipConfig::default()
        })
    })
}

fn read_wav(path: &Path) -> (Vec<i16>, u32) {
    let mut reader =
        hound::WavReader::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let spec = reader.spec();
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    // baresip records Opus calls in stereo: keep the first channel.
    let channels = usize::from(spec.channels.max(1));
    let mono = samples.into_iter().step_by(channels).collect();
    (mono, spec.sample_rate)
}

/// The tones `hz` together against everything else, in dB.
fn tones_snr_db(pcm: &[i16], rate: u32, hz: &[f64]) -> f64 {
    let tones: f64 = hz.iter().map(|&f| frequency_power(pcm, rate, f)).sum();
    let total: f64 =
        pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len().max(1) as f64;
    10.0 * (tones.max(1e-9) / (total - tones).max(1e-9)).log10()
}

/// Asserts `path` carries each of `hz` (and little else) in at least 90%
/// of the 200 ms stretches of its middle (the first 400 ms and the last
/// 200 ms are call set-up and tear-down), and that there are enough of
/// them.
fn assert_tone(what: &str, path: &Path, hz: &[f64], min_audio: Duration) {
    let (pcm, rate) = read_wav(path);
    let ms = |n: u64| (u64::from(rate) * n / 1000) as usize;
    let skip = ms(400);
    let tail = ms(200);
    assert!(
        pcm.len() >= skip + tail + ms(min_audio.as_millis() as u64),
        "{what}: only {} ms recorded in {}",
        pcm.len() * 1000 / rate as usize,
        path.display()
    );
    let middle = &pcm[skip..pcm.len() - tail];
    let chunks: Vec<&[i16]> = middle.chunks_exact(ms(200)).collect();
    let snr = |pcm: &[i16]| match hz {
        [one] => tone_snr_db(pcm, rate, *one),
        many => tones_snr_db(pcm, rate, many),
    };
    let good = chunks
        .iter()
        .filter(|c| snr(c) > MIN_SNR_DB && hz.iter().all(|&f| frequency_power(c, rate, f) > 1.0e4))
        .count();
    let snrs: Vec<i64> = chunks.iter().map(|c| snr(c).round() as i64).collect();
    assert!(
        good * 10 >= chunks.len() * 9,
        "{what}: {hz:?} Hz clear in only {good} of {} 200 ms stretches (SNR dB: {snrs:?})",
        chunks.len()
    );
    let whole = snr(middle);
    assert!(whole > MIN_SNR_DB, "{what}: {hz:?} Hz SNR {whole:.1} dB");
}

/// The WAV sndfile.so wrote with `suffix` (`dec`: what baresip heard).
fn baresip_recording(dir: &Path, suffix: &str) -> PathBuf {
    let folder = dir.join("bob-heard");
    let found = std::fs::read_dir(&folder)
        .expect("read baresip's recording folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(&format!("-{suffix}.wav")))
        });
    found.unwrap_or_else(|| panic!("no *-{suffix}.wav in {}", folder.display()))
}

/// One call with `codec` (MicroSIP id; baresip's name): audio both ways.
async fn audio_both_ways(microsip_codec: &str, baresip_codec: &str, module: Option<&str>) {
    audio_both_ways_with(microsip_codec, baresip_codec, module, false).await;
}

/// [`audio_both_ways`], with mandatory SDES-SRTP on both sides if `srtp`.
async fn audio_both_ways_with(
    microsip_codec: &str,
    baresip_codec: &str,
    module: Option<&str>,
    srtp: bool,
) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut modules: Vec<&str> = module.into_iter().collect();
    let (bob_options, alice_account) = if srtp {
        modules.push("srtp.so");
        (";mediaenc=srtp-mand", "SRTP=mandatory\r\n")
    } else {
        ("", "")
    };
    let mut bob = baresip_with(dir.path(), baresip_codec, modules, bob_options);
    let heard = dir.path().join("alice-heard.wav");
    let recordings = dir.path().join("recordings");
    let settings = format!(
        "audioCodecs={microsip_codec}\r\naudioInputDevice=tone:{OUR_HZ}\r\naudioOutputDevice=file:{}\r\nautoRecording=1\r\nrecordingPath={}\r\n",
        heard.display(),
        recordings.display()
    );
    let mut alice = phone_with(&bob.addr().to_string(), &settings, alice_account).await;
    let call = alice.handle.dial(1, "bob").await.expect("dial");
    expect(&mut alice.events, "Connected", connected(call)).await;
    tokio::time::sleep(TALK).await;
    let stats = alice
        .handle
        .media_stats(call)
        .await
        .expect("the phone runs")
        .expect("the call has media");
    assert!(
        stats
            .codec
            .to_ascii_lowercase()
            .starts_with(&baresip_codec.to_ascii_lowercase()),
        "codec {stats:?}"
    );
    assert!(
        stats.stats.packets_received > 50 && stats.stats.packets_sent > 50,
        "{stats:?}"
    );
    alice.handle.hangup(call).await.expect("hang up");
    expect(&mut alice.events, "CallEnded", ended(call)).await;
    block_in_place(|| bob.wait_event("CALL_CLOSED", WAIT));
    // Stopping the phone joins the media threads: the WAVs are complete.
    alice.handle.stop(alice.task).await;
    drop(bob);
    let min = TALK - Duration::from_millis(800);
    assert_tone("our speaker", &heard, &[THEIR_HZ], min);
    assert_tone(
        "baresip's speaker",
        &baresip_recording(dir.path(), "dec"),
        &[OUR_HZ],
        min,
    );
    let recording = std::fs::read_dir(&recordings)
        .expect("the recordings folder exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with("-bob-outgoing-alice.wav"))
        })
        .expect("a recording named as MicroSIP names it");
    // Both directions mixed.
    assert_tone("the recording", &recording, &[OUR_HZ, THEIR_HZ], min);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcmu_audio_flows_both_ways_and_is_recorded() {
    audio_both_ways("PCMU/8000/1", "PCMU", None).await;
}

/// SDES-SRTP (issue #8): baresip with `mediaenc=srtp-mand` answers our
/// `RTP/SAVP` offer, and the tones survive encryption both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srtp_pcmu_audio_flows_both_ways() {
    audio_both_ways_with("PCMU/8000/1", "PCMU", None, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcma_audio_flows_both_ways_and_is_recorded() {
    audio_both_ways("PCMA/8000/1", "PCMA", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g722_audio_flows_both_ways_and_is_recorded() {
    audio_both_ways("G722/16000/1", "G722", Some("g722.so")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_audio_flows_both_ways_and_is_recorded() {
    audio_both_ways("opus/48000/2", "opus", Some("opus.so")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc4733_dtmf_both_ways() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut bob = baresip(dir.path(), "PCMU", None);
    let settings = "audioCodecs=PCMU/8000/1\r\naudioInputDevice=null\r\naudioOutputDevice=null\r\nDTMFMethod=2\r\n";
    let mut alice = phone(&bob.addr().to_string(), settings).await;
    let call = alice.handle.dial(1, "bob").await.expect("dial");
    expect(&mut alice.events, "Connected", connected(call)).await;
    block_in_place(|| bob.wait_event("CALL_ESTABLISHED", WAIT));
    // Ours to baresip.
    let sent = ['1', '5', '#', '*', '9', '9'];
    for digit in sent {
        alice
            .handle
            .send_dtmf(call, digit)
            .await
            .expect("send DTMF");
    }
    let mut got = Vec::new();
    block_in_place(|| {
        while got.len() < sent.len() {
            let event = bob.wait_event("CALL_DTMF_START", WAIT);
            let digit = event["param"].as_str().unwrap_or_default().to_owned();
            got.extend(digit.chars());
        }
    });
    assert_eq!(got, sent, "digits baresip reported");
    // Baresip's to us: one sndcode per digit (it keeps one key at a time).
    let theirs = ['7', '0', '#', '#', 'A'];
    for digit in theirs {
        block_in_place(|| {
            bob.command_ok("sndcode", Some(&digit.to_string()));
            std::thread::sleep(Duration::from_millis(250));
        });
    }
    let mut received = Vec::new();
    while received.len() < theirs.len() {
        let digit = expect(&mut alice.events, "Dtmf", |e| match e {
            UaEvent::Dtmf { call: c, digit } if *c == call => Some(*digit),
            _ => None,
        })
        .await;
        received.push(digit);
    }
    assert_eq!(received, theirs, "digits we reported");
    // Each once: nothing more arrives.
    let extra = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            if let Ok(UaEvent::Dtmf { digit, .. }) = alice.events.recv().await {
                return digit;
            }
        }
    })
    .await;
    assert!(extra.is_err(), "a digit was reported twice: {extra:?}");
    alice.handle.hangup(call).await.expect("hang up");
    expect(&mut alice.events, "CallEnded", ended(call)).await;
    alice.handle.stop(alice.task).await;
}

/// RTP packets we sent so far on `call`.
async fn packets_sent(phone: &Phone, call: CallId) -> u64 {
    phone
        .handle
        .media_stats(call)
        .await
        .expect("the phone runs")
        .expect("the call has media")
        .stats
        .packets_sent
}

fn remote_hold(call: CallId, held: bool) -> impl FnMut(&UaEvent) -> Option<()> {
    move |e| match e {
        UaEvent::CallHold {
            call: c, remote, ..
        } if *c == call && *remote == held => Some(()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_by_baresip_we_stop_sending_and_resume_after() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut bob = baresip(dir.path(), "PCMU", None);
    let settings =
        "audioCodecs=PCMU/8000/1\r\naudioInputDevice=tone:1000\r\naudioOutputDevice=null\r\n";
    let mut alice = phone(&bob.addr().to_string(), settings).await;
    let call = alice.handle.dial(1, "bob").await.expect("dial");
    expect(&mut alice.events, "Connected", connected(call)).await;
    block_in_place(|| bob.wait_event("CALL_ESTABLISHED", WAIT));
    block_in_place(|| bob.hold());
    expect(&mut alice.events, "held", remote_hold(call, true)).await;
    // Stats are refreshed twice a second: let them catch up first.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let held = packets_sent(&alice, call).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let still = packets_sent(&alice, call).await;
    assert_eq!(still, held, "RTP sent while the peer holds us (recvonly)");
    block_in_place(|| bob.resume());
    expect(&mut alice.events, "resumed", remote_hold(call, false)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let resumed = packets_sent(&alice, call).await;
    assert!(
        resumed >= still + 25,
        "sending did not resume: {still} -> {resumed}"
    );
    alice.handle.hangup(call).await.expect("hang up");
    expect(&mut alice.events, "CallEnded", ended(call)).await;
    alice.handle.stop(alice.task).await;
}

/// The mean 1000 Hz power of `pcm` between `from` and `to` (offsets from
/// its start), 200 ms at a time, and the weakest and strongest stretch.
fn our_tone_between(pcm: &[i16], rate: u32, from: Duration, to: Duration) -> (f64, f64) {
    let at = |d: Duration| (u128::from(rate) * d.as_millis() / 1000) as usize;
    let (start, end) = (at(from).min(pcm.len()), at(to).min(pcm.len()));
    let powers: Vec<f64> = pcm[start..end]
        .chunks_exact(at(Duration::from_millis(200)))
        .map(|c| frequency_power(c, rate, OUR_HZ))
        .collect();
    assert!(
        !powers.is_empty(),
        "no audio between {from:?} and {to:?} ({} samples)",
        pcm.len()
    );
    let min = powers.iter().copied().fold(f64::INFINITY, f64::min);
    let max = powers.iter().copied().fold(0.0, f64::max);
    (min, max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_switch_and_mute_apply_to_a_running_call() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut bob = baresip(dir.path(), "PCMU", None);
    let first = dir.path().join("A.wav");
    let second = dir.path().join("B.wav");
    let settings = format!(
        "audioCodecs=PCMU/8000/1\r\naudioInputDevice=tone:{OUR_HZ}\r\naudioOutputDevice=file:{}\r\n",
        first.display()
    );
    let mut alice = phone(&bob.addr().to_string(), &settings).await;
    let call = alice.handle.dial(1, "bob").await.expect("dial");
    expect(&mut alice.events, "Connected", connected(call)).await;
    // baresip records from about when the call connects: times below are
    // offsets from here, with margins for set-up and the jitter buffers.
    let start = tokio::time::Instant::now();
    let step = Duration::from_millis(1200);
    tokio::time::sleep(step).await;
    let to_second = format!("file:{}", second.display());
    let controls = alice
        .handle
        .set_audio_device(DeviceRole::Output, &to_second)
        .await
        .expect("switch the output");
    assert_eq!(controls.output_device, to_second);
    tokio::time::sleep(step).await;
    let muted_at = start.elapsed();
    assert!(alice.handle.set_muted(true).muted);
    tokio::time::sleep(step).await;
    let unmuted_at = start.elapsed();
    assert!(!alice.handle.toggle_mute().muted);
    tokio::time::sleep(step).await;
    let ended_at = start.elapsed();
    alice.handle.hangup(call).await.expect("hang up");
    expect(&mut alice.events, "CallEnded", ended(call)).await;
    block_in_place(|| bob.wait_event("CALL_CLOSED", WAIT));
    alice.handle.stop(alice.task).await;
    drop(bob);

    // From the switch on, our speaker is B.wav, and it hears baresip.
    assert_tone("the switched-to output", &second, &[THEIR_HZ], step * 2);
    // Either way: baresip's file may start a little before or after our
    // clock (its recording begins with its first audio).
    let margin = Duration::from_millis(400);
    let (heard, rate) = read_wav(&baresip_recording(dir.path(), "dec"));
    let (before, _) = our_tone_between(&heard, rate, margin, muted_at - margin);
    let (_, during) = our_tone_between(&heard, rate, muted_at + margin, unmuted_at - margin);
    let (after, _) = our_tone_between(&heard, rate, unmuted_at + margin, ended_at - margin);
    assert!(before > 1.0e4, "our tone before mute: {before:.0}");
    assert!(
        during * 1000.0 < before,
        "muting left our tone audible: {before:.0} -> {during:.0}"
    );
    assert!(
        after > 1.0e4,
        "our tone did not come back after unmute: {after:.0}"
    );
}
