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
        volume_input: 100,
        volume_output: 100,
        mic_amplification: false,
        dtmf_method: DtmfMethod::Auto,
        local_dtmf: false,
        auto_recording: false,
        recording_dir: PathBuf::new(),
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
            Ok(DtmfRoute::Media)
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
