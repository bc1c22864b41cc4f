use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::sip::sdp::{PayloadCodec, TelephoneEvent};
use crate::sip::ua::CallState;

/// An engine, and its job queue's both ends (the sender stands for the
/// phone's handles: while it lives, the weak one upgrades).
type Queue = (
    tokio_mpsc::UnboundedSender<Job>,
    tokio_mpsc::UnboundedReceiver<Job>,
);

fn engine(settings: MediaSettings) -> (AudioEngine, Queue) {
    let (jobs, rx) = tokio_mpsc::unbounded_channel();
    let (events, _) = broadcast::channel(16);
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let notifier = Notifier {
        jobs: jobs.downgrade(),
        events,
    };
    let engine = AudioEngine::new(local, local, PortRange::new(0, 0), settings, notifier);
    (engine, (jobs, rx))
}

fn settings(input: &str, output: &str) -> MediaSettings {
    MediaSettings {
        input_device: input.into(),
        output_device: output.into(),
        ring_device: String::new(),
        volume_input: 100,
        volume_output: 100,
        mic_amplification: false,
        dtmf_method: DtmfMethod::Auto,
        local_dtmf: false,
        auto_recording: false,
        recording_dir: PathBuf::new(),
        vad: false,
        ringing_sound: String::new(),
        volume_ring: 100,
    }
}

fn pcmu() -> PayloadCodec {
    let codec = crate::sip::sdp::codecs_from_microsip(&["PCMU/8000/1".to_string()], false)
        .0
        .remove(0);
    PayloadCodec {
        pt: 0,
        codec,
        remote_fmtp: None,
    }
}

fn media(local_port: u16, remote_port: u16, events: bool) -> NegotiatedMedia {
    let te = TelephoneEvent {
        pt: 101,
        clock_rate: 8000,
    };
    NegotiatedMedia {
        local_port,
        remote: SocketAddr::from(([127, 0, 0, 1], remote_port)),
        send_codec: pcmu(),
        receive_codecs: vec![pcmu()],
        send_telephone_event: events.then_some(te),
        receive_telephone_events: vec![te],
        direction: crate::sip::sdp::Direction::SendRecv,
        ptime: None,
        srtp: None,
    }
}

#[test]
fn two_engines_carry_a_tone_and_digits_between_them() {
    let dir = tempfile::tempdir().unwrap();
    let heard = dir.path().join("b.wav");
    let (mut a, _jobs_a) = engine(settings("tone:1000", "null"));
    let (mut b, (_keep, mut jobs_b)) =
        engine(settings("null", &format!("file:{}", heard.display())));
    let la = a.allocate().unwrap();
    let lb = b.allocate().unwrap();
    assert_eq!(la.port % 2, 0);
    a.start(la.handle, &media(la.port, lb.port, true)).unwrap();
    b.start(lb.handle, &media(lb.port, la.port, false)).unwrap();
    let control = a.control();
    // B negotiated no telephone-event: auto falls back to SIP INFO.
    assert_eq!(
        b.control().send_dtmf(lb.handle, '1', DtmfMethod::Auto),
        Ok(DtmfRoute::SipInfo)
    );
    assert!(b
        .control()
        .send_dtmf(lb.handle, '1', DtmfMethod::Rfc2833)
        .is_err());
    assert!(control.send_dtmf(la.handle, 'x', DtmfMethod::Auto).is_err());
    std::thread::sleep(Duration::from_millis(300));
    for d in ['4', '2'] {
        assert_eq!(
            control.send_dtmf(la.handle, d, DtmfMethod::Auto),
            Ok(DtmfRoute::Rfc4733)
        );
    }
    std::thread::sleep(Duration::from_millis(1300));
    let stats = control.stats(la.handle).unwrap();
    assert_eq!(stats.codec, "PCMU/8000");
    assert!(stats.stats.packets_sent > 30, "{stats:?}");
    a.stop(la.handle);
    b.stop(lb.handle);
    assert!(control.stats(la.handle).is_none());
    drop(a);
    drop(b);
    // B heard the tone once the digits were over (RFC 4733 events stand
    // in for the audio while they last)...
    let mut reader = hound::WavReader::open(&heard).unwrap();
    let pcm: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    assert!(pcm.len() > 8000, "{} samples", pcm.len());
    let middle = &pcm[pcm.len() - 4800..pcm.len() - 800];
    let snr = crate::media::tone::tone_snr_db(middle, 8000, 1000.0);
    assert!(snr > 15.0, "SNR {snr}");
    // ...and reported both digits as jobs for the phone's task.
    let mut jobs = 0;
    while jobs_b.try_recv().is_ok() {
        jobs += 1;
    }
    assert_eq!(jobs, 2);
}

#[test]
fn recording_names_follow_microsip() {
    let doc = crate::config::IniDocument::parse(
        b"[Account1]\r\ndomain=pbx\r\nusername=alice\r\nlabel=Work Line\r\n",
    )
    .unwrap();
    let accounts = Account::list(&doc);
    let call = CallInfo {
        id: crate::sip::ua::CallId(1),
        account: 1,
        direction: Direction::Incoming,
        remote_uri: "sip:1001@pbx;user=phone".into(),
        remote_name: String::new(),
        local_uri: String::new(),
        state: CallState::Connected,
        local_hold: false,
        remote_hold: false,
        codec: None,
        started_at: Instant::now(),
        answered_at: None,
    };
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert_eq!(
        recording_name(&call, &accounts, at),
        "20231114-221320-1001-incoming-Work_Line.wav"
    );
}

#[test]
fn audio_controls_start_from_the_settings_and_give_microsip_gains() {
    let mut s = settings("tone:1000", "null");
    s.volume_input = 75;
    s.volume_output = 140;
    s.mic_amplification = true;
    s.ring_device = "Speakers".into();
    let controls = AudioControls::from_media_settings(&s);
    assert!(!controls.muted);
    assert_eq!(controls.speaker_volume, 100, "clamped");
    assert_eq!(controls.mic_volume, 75);
    assert_eq!(controls.device(DeviceRole::Input), "tone:1000");
    assert_eq!(controls.device(DeviceRole::Output), "null");
    assert_eq!(controls.device(DeviceRole::Ring), "Speakers");
    let (input, output) = controls.gains(true);
    assert_eq!(input, Gain::input(75, true, false));
    assert!(input.factor() > 1.0, "micAmplification boosts above 50");
    assert_eq!(output, Gain::UNITY);
    assert_eq!(controls.gains(false).0.factor(), 0.75);
    let muted = AudioControls {
        muted: true,
        ..controls
    };
    assert_eq!(muted.gains(true), (Gain::MUTE, Gain::UNITY));
    // What a call opens with: the controls, not the settings' levels.
    let setup = call::AudioSetup::new(&s, &muted);
    assert_eq!(setup.input_gain, Gain::MUTE);
    assert_eq!(setup.output_device, "null");
}

#[tokio::test]
async fn controls_change_in_one_step_and_bad_devices_are_refused() {
    let control = MediaControl::new(&settings("tone:1000", "null"));
    assert!(control.toggle_mute().muted);
    assert!(!control.toggle_mute().muted);
    assert!(control.set_muted(true).muted);
    assert_eq!(control.adjust_speaker_volume(-30).speaker_volume, 70);
    assert_eq!(control.adjust_speaker_volume(200).speaker_volume, 100);
    assert_eq!(control.adjust_speaker_volume(-500).speaker_volume, 0);
    assert_eq!(control.set_speaker_volume(250).speaker_volume, 100);
    assert_eq!(control.set_mic_volume(30).mic_volume, 30);
    let err = control
        .set_device(DeviceRole::Output, "file:")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"file:\""), "{err}");
    assert_eq!(control.audio_controls().output_device, "null");
    let now = control
        .set_device(DeviceRole::Ring, "Headset")
        .await
        .unwrap();
    assert_eq!(now.ring_device, "Headset");
    let now = control
        .set_device(DeviceRole::Input, "tone:440")
        .await
        .unwrap();
    assert_eq!(now.input_device, "tone:440");
    assert!(now.muted, "a device switch leaves the levels alone");
}

fn wav(path: &std::path::Path) -> Vec<i16> {
    let mut reader = hound::WavReader::open(path).unwrap();
    reader.samples::<i16>().map(Result::unwrap).collect()
}

#[tokio::test]
async fn running_calls_take_mute_and_a_new_output_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.wav");
    let second = dir.path().join("second.wav");
    let (mut a, _jobs_a) = engine(settings("tone:1000", "null"));
    let (mut b, _jobs_b) = engine(settings("null", &format!("file:{}", first.display())));
    let la = a.allocate().unwrap();
    let lb = b.allocate().unwrap();
    a.start(la.handle, &media(la.port, lb.port, false)).unwrap();
    b.start(lb.handle, &media(lb.port, la.port, false)).unwrap();
    let pause = Duration::from_millis(700);
    tokio::time::sleep(pause).await;
    let to_second = format!("file:{}", second.display());
    let now = b
        .control()
        .set_device(DeviceRole::Output, &to_second)
        .await
        .unwrap();
    assert_eq!(now.output_device, to_second);
    // A device the call cannot open: it keeps the old one, so do the controls.
    let err = b
        .control()
        .set_device(DeviceRole::Output, "tone:440")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"tone:440\""), "{err}");
    assert_eq!(b.control().audio_controls().output_device, to_second);
    tokio::time::sleep(pause).await;
    assert!(a.control().set_muted(true).muted);
    tokio::time::sleep(pause).await;
    let sent = a.control().stats(la.handle).unwrap().stats.packets_sent;
    a.stop(la.handle);
    b.stop(lb.handle);
    drop(a);
    drop(b);
    let power = |pcm: &[i16]| crate::media::tone::frequency_power(pcm, 8000, 1000.0);
    let first = wav(&first);
    assert!(
        power(&first[first.len() / 2..]) > 1.0e4,
        "tone before the switch"
    );
    let second = wav(&second);
    // ~700 ms unmuted then ~700 ms muted, at 8 kHz (jitter buffer aside).
    assert!(second.len() > 8000, "{} samples", second.len());
    let before = power(&second[800..3200]);
    let after = power(&second[second.len() - 3200..second.len() - 800]);
    assert!(before > 1.0e4, "tone after the switch: {before}");
    assert!(after * 1000.0 < before, "muted: {before} -> {after}");
    assert!(sent > 80, "RTP kept flowing while muted: {sent}");
}

/// Packets A sent to B in 800 ms of `input` with `VAD` set as `vad`.
fn packets_sent_with_vad(input: &str, vad: bool) -> u64 {
    let (mut a, _jobs_a) = engine(MediaSettings {
        vad,
        ..settings(input, "null")
    });
    let (mut b, _jobs_b) = engine(settings("null", "null"));
    let la = a.allocate().unwrap();
    let lb = b.allocate().unwrap();
    a.start(la.handle, &media(la.port, lb.port, false)).unwrap();
    b.start(lb.handle, &media(lb.port, la.port, false)).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let sent = a.control().stats(la.handle).unwrap().stats.packets_sent;
    a.stop(la.handle);
    b.stop(lb.handle);
    sent
}

#[test]
fn vad_suppresses_silence_but_not_a_tone() {
    // Silence with VAD: the hangover is the only thing ever sent, and at
    // start it is empty, so nothing flows.
    let silent = packets_sent_with_vad("null", true);
    assert!(silent <= 1, "{silent} packets of silence sent");
    let tone = packets_sent_with_vad("tone:1000", true);
    assert!(tone > 20, "{tone} packets of tone");
    let plain = packets_sent_with_vad("null", false);
    assert!(plain > 20, "{plain} packets of silence without VAD");
}

#[test]
fn ringer_plays_the_ring_until_the_call_is_answered() {
    use crate::sip::ua::CallId;
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("ring.wav");
    let mut ringer = Ringer::new(RingSettings::from_media_settings(&MediaSettings {
        ring_device: format!("file:{}", wav.display()),
        ..settings("null", "null")
    }));
    let call = CallId(7);
    ringer.handle_event(&crate::sip::ua::UaEvent::IncomingCall {
        call,
        account: Default::default(),
        remote_uri: "sip:1001@pbx".into(),
        remote_name: String::new(),
    });
    assert!(ringer.is_ringing());
    // The built-in ring's first burst is 400 ms long.
    std::thread::sleep(Duration::from_millis(600));
    ringer.handle_event(&crate::sip::ua::UaEvent::CallState {
        call,
        state: CallState::Connected,
    });
    assert!(!ringer.is_ringing());
    let len = std::fs::metadata(&wav).unwrap().len();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(std::fs::metadata(&wav).unwrap().len(), len, "still growing");
    let mut reader = hound::WavReader::open(&wav).unwrap();
    let rate = reader.spec().sample_rate;
    let pcm: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    assert!(pcm.len() >= rate as usize / 2, "{} samples", pcm.len());
    let burst = &pcm[rate as usize / 20..rate as usize * 7 / 20];
    let power = |hz| crate::media::tone::frequency_power(burst, rate, hz);
    assert!(power(400.0) > 100.0 * power(1000.0), "400 Hz missing");
    assert!(power(450.0) > 100.0 * power(1000.0), "450 Hz missing");
}
