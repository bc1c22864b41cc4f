//! One call's media thread: sockets ⇄ [`MediaSession`] ⇄ audio devices.
//!
//! Each turn of the loop handles the phone's commands, feeds the session
//! every captured frame, plays one frame per tick, runs the session's
//! timers, sends what it queued, and then waits on the RTP socket until
//! the next thing is due (so packets are timestamped when they arrive).

use std::io::ErrorKind;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::inband::InbandQueue;
use super::{AudioControls, CallMediaStats, Command, DeviceRole, MediaSettings, Notifier};
use crate::media::codec::{self, Resampler};
use crate::media::device::{
    open_input, open_output, AudioFormat, AudioInput, AudioOutput, DeviceError, DeviceSpec, Gain,
    Pacing, Recorder,
};
use crate::media::{MediaSession, SessionEvent, TransmitKind};
use crate::sip::sdp::MediaHandle;

/// The capture and playback frame.
const TICK: Duration = Duration::from_millis(20);
/// How often Status's figures are refreshed.
const STATS_EVERY: Duration = Duration::from_millis(500);
/// Playback that fell this far behind (a stalled thread) restarts from now
/// rather than bursting the backlog into the device.
const MAX_LAG: Duration = Duration::from_millis(200);
/// The longest datagram we accept.
const MAX_DATAGRAM: usize = 2048;

/// Everything a call's thread owns.
pub(super) struct CallSetup {
    pub handle: MediaHandle,
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    pub session: MediaSession,
    pub codec: String,
    pub audio: AudioSetup,
    pub commands: Receiver<Command>,
    pub stats: Arc<Mutex<CallMediaStats>>,
    pub notifier: Notifier,
}

/// How a call's audio starts: the phone's controls at that moment plus
/// the settings only read at call start.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct AudioSetup {
    pub input_device: String,
    pub output_device: String,
    pub input_gain: Gain,
    pub output_gain: Gain,
    /// `localDTMF`.
    pub local_dtmf: bool,
}

impl AudioSetup {
    pub fn new(settings: &MediaSettings, controls: &AudioControls) -> Self {
        let (input_gain, output_gain) = controls.gains(settings.mic_amplification);
        Self {
            input_device: controls.input_device.clone(),
            output_device: controls.output_device.clone(),
            input_gain,
            output_gain,
            local_dtmf: settings.local_dtmf,
        }
    }
}

/// Converts between the devices' rate (fixed when the call starts, so a
/// `file:` output stays one WAV) and the codec's (which a re-INVITE may
/// change).
struct RateBridge {
    device: u32,
    codec: u32,
    to_codec: Option<Resampler>,
    to_device: Option<Resampler>,
}

impl RateBridge {
    fn new(device: u32, codec: u32) -> Self {
        let make = |from, to| {
            (from != to)
                .then(|| Resampler::new(from, to))
                .and_then(|r| match r {
                    Ok(r) => Some(r),
                    Err(e) => {
                        tracing::warn!("media: no resampler {from} -> {to} Hz: {e}");
                        None
                    }
                })
        };
        Self {
            device,
            codec,
            to_codec: make(device, codec),
            to_device: make(codec, device),
        }
    }
}

fn open_in(value: &str, format: AudioFormat) -> Box<dyn AudioInput> {
    let opened =
        DeviceSpec::parse(value).and_then(|spec| open_input(&spec, format, Pacing::RealTime));
    opened.unwrap_or_else(|e| {
        // The call goes on without a microphone: the peer hears silence
        // rather than the call failing.
        tracing::warn!("media: audio input {value:?} unusable, sending silence: {e}");
        Box::new(crate::media::device::null::NullSource::new(
            format,
            Pacing::RealTime,
        ))
    })
}

fn open_out(value: &str, format: AudioFormat) -> Box<dyn AudioOutput> {
    let opened = DeviceSpec::parse(value).and_then(|spec| open_output(&spec, format));
    opened.unwrap_or_else(|e| {
        tracing::warn!("media: audio output {value:?} unusable, discarding audio: {e}");
        Box::new(crate::media::device::null::NullSink::new(format))
    })
}

/// The audio side of a call: devices, levels, DTMF tones, recording.
struct Audio {
    input: Box<dyn AudioInput>,
    output: Box<dyn AudioOutput>,
    input_gain: Gain,
    output_gain: Gain,
    rates: RateBridge,
    inband: InbandQueue,
    /// `localDTMF`: the digits we send, echoed in our speaker.
    local_tones: Option<InbandQueue>,
    recorder: Option<Recorder>,
    capture: Vec<i16>,
    converted: Vec<i16>,
    played: Vec<i16>,
    /// Captured audio (device rate) not yet mixed into the recording.
    recorded_local: Vec<i16>,
}

impl Audio {
    fn open(setup: &AudioSetup, rate: u32) -> Self {
        let format = AudioFormat::mono(rate);
        Self {
            input: open_in(&setup.input_device, format),
            output: open_out(&setup.output_device, format),
            input_gain: setup.input_gain,
            output_gain: setup.output_gain,
            rates: RateBridge::new(rate, rate),
            inband: InbandQueue::default(),
            local_tones: setup.local_dtmf.then(InbandQueue::default),
            recorder: None,
            capture: vec![0; format.samples_in_ms(20)],
            converted: Vec::new(),
            played: Vec::new(),
            recorded_local: Vec::new(),
        }
    }

    /// Feeds every frame the input has ready to the session.
    fn capture(&mut self, session: &mut MediaSession, now: Instant) {
        loop {
            match self.input.read_frame(&mut self.capture) {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!("media: audio input failed, sending silence: {e}");
                    self.input = Box::new(crate::media::device::null::NullSource::new(
                        self.input.format(),
                        Pacing::RealTime,
                    ));
                    return;
                }
            }
            self.input_gain.apply(&mut self.capture);
            self.inband.mix(&mut self.capture, self.rates.device);
            if self.recorder.is_some() {
                self.recorded_local.extend_from_slice(&self.capture);
                // A stalled playback side must not grow this forever.
                let cap = self.rates.device as usize;
                if self.recorded_local.len() > cap {
                    let excess = self.recorded_local.len() - cap;
                    self.recorded_local.drain(..excess);
                }
            }
            match self.rates.to_codec.as_mut() {
                Some(r) => {
                    self.converted.clear();
                    r.process(&self.capture, &mut self.converted);
                    session.push_audio(&self.converted, now);
                }
                None => session.push_audio(&self.capture, now),
            }
        }
    }

    /// Plays one frame from the session.
    fn play(&mut self, session: &mut MediaSession, now: Instant) {
        self.converted.clear();
        session.pull_audio(now, &mut self.converted);
        self.played.clear();
        match self.rates.to_device.as_mut() {
            Some(r) => r.process(&self.converted, &mut self.played),
            None => self.played.extend_from_slice(&self.converted),
        }
        self.output_gain.apply(&mut self.played);
        if let Some(tones) = self.local_tones.as_mut() {
            tones.mix(&mut self.played, self.rates.device);
        }
        if let Err(e) = self.output.write(&self.played) {
            tracing::warn!("media: audio output failed, discarding audio: {e}");
            self.output = Box::new(crate::media::device::null::NullSink::new(
                self.output.format(),
            ));
        }
        if let Some(recorder) = self.recorder.as_mut() {
            let n = self.played.len().min(self.recorded_local.len());
            let written = recorder.write(&self.recorded_local[..n], &self.played);
            self.recorded_local.drain(..n);
            if let Err(e) = written {
                tracing::warn!("media: recording stopped: {e}");
                self.recorder = None;
            }
        }
    }

    /// Moves to another device, in the format the call opened with (the
    /// rate bridge and a `file:` output stay valid). On failure the old
    /// device stays.
    fn switch(&mut self, role: DeviceRole, value: &str) -> Result<(), DeviceError> {
        let spec = DeviceSpec::parse(value)?;
        match role {
            DeviceRole::Input => {
                self.input = open_input(&spec, self.input.format(), Pacing::RealTime)?;
            }
            DeviceRole::Output => {
                // The old one is dropped here: a `file:` WAV is finalised.
                self.output = open_output(&spec, self.output.format())?;
            }
            // Not a call's device; the engine never sends it.
            DeviceRole::Ring => {}
        }
        tracing::info!("media: audio {role} device now {value:?}");
        Ok(())
    }

    /// Echoes a digit we send, when `localDTMF` asks for it.
    fn echo(&mut self, digit: char) {
        if let Some(tones) = self.local_tones.as_mut() {
            tones.push(digit);
        }
    }

    fn record(&mut self, path: PathBuf) {
        let dir = path.parent().map(PathBuf::from).unwrap_or_default();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match Recorder::create(&dir, &name, self.rates.device) {
            Ok(r) => {
                tracing::info!(path = %r.path().display(), "recording the call");
                self.recorded_local.clear();
                self.recorder = Some(r);
            }
            Err(e) => tracing::warn!("media: cannot record the call: {e}"),
        }
    }

    fn finish(&mut self) {
        if let Some(recorder) = self.recorder.take() {
            match recorder.finish() {
                Ok(path) => tracing::info!(path = %path.display(), "recording saved"),
                Err(e) => tracing::warn!("media: recording not completed: {e}"),
            }
        }
    }
}

/// Sends what the session queued.
fn flush(session: &mut MediaSession, rtp: &UdpSocket, rtcp: &UdpSocket) {
    while let Some(t) = session.poll_transmit() {
        let socket = match t.kind {
            TransmitKind::Rtp => rtp,
            TransmitKind::Rtcp => rtcp,
        };
        if let Err(e) = socket.send_to(&t.bytes, t.destination) {
            tracing::debug!("media: send to {} failed: {e}", t.destination);
        }
    }
}

/// Whether a receive error only means "nothing came" (or an ICMP port
/// unreachable from a peer that is not up yet, which Windows reports on
/// the next receive).
fn is_transient(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::WouldBlock
            | ErrorKind::TimedOut
            | ErrorKind::Interrupted
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionRefused
    )
}

/// Runs the call until [`Command::Stop`] (or the engine is gone).
pub(super) fn run(setup: CallSetup) {
    let CallSetup {
        handle,
        rtp,
        rtcp,
        mut session,
        codec: mut codec_name,
        audio: audio_setup,
        commands,
        stats,
        notifier,
    } = setup;
    if let Err(e) = rtcp.set_nonblocking(true) {
        tracing::warn!("media: RTCP socket: {e}");
    }
    let mut audio = Audio::open(&audio_setup, session.sample_rate());
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut next_play = Instant::now() + TICK;
    let mut next_stats = Instant::now();
    'call: loop {
        loop {
            let now = Instant::now();
            match commands.try_recv() {
                Ok(Command::Stop) | Err(TryRecvError::Disconnected) => break 'call,
                Err(TryRecvError::Empty) => break,
                Ok(Command::Update(media)) => {
                    match session.update(&media, &codec::for_negotiated) {
                        Ok(()) => {
                            codec_name = super::codec_name(&media);
                            if session.sample_rate() != audio.rates.codec {
                                audio.rates =
                                    RateBridge::new(audio.rates.device, session.sample_rate());
                            }
                        }
                        Err(e) => tracing::warn!("media: update refused: {e}"),
                    }
                }
                Ok(Command::Rfc4733(digit)) => {
                    match session.send_dtmf(digit, Duration::from_millis(100), now) {
                        Ok(()) => audio.echo(digit),
                        Err(e) => tracing::warn!("media: DTMF {digit:?} not sent: {e}"),
                    }
                }
                Ok(Command::InBand(digit)) => {
                    audio.inband.push(digit);
                    audio.echo(digit);
                }
                Ok(Command::LocalTone(digit)) => audio.echo(digit),
                Ok(Command::Record(path)) => audio.record(path),
                Ok(Command::SetGains { input, output }) => {
                    audio.input_gain = input;
                    audio.output_gain = output;
                }
                Ok(Command::SwitchDevice {
                    role,
                    device,
                    reply,
                }) => {
                    // The asker may have given up waiting: nothing to tell.
                    let _ = reply.send(audio.switch(role, &device));
                }
            }
        }
        let now = Instant::now();
        audio.capture(&mut session, now);
        if now.saturating_duration_since(next_play) > MAX_LAG {
            next_play = now;
        }
        while now >= next_play {
            audio.play(&mut session, now);
            next_play += TICK;
        }
        if session.poll_timeout().is_some_and(|t| t <= now) {
            session.handle_timeout(now);
        }
        flush(&mut session, &rtp, &rtcp);
        while let Some(event) = session.poll_event() {
            match event {
                SessionEvent::Dtmf(e) => notifier.dtmf(handle, e.digit),
                other => tracing::debug!(?other, "media event"),
            }
        }
        if now >= next_stats {
            let mut shared = stats.lock().unwrap_or_else(PoisonError::into_inner);
            shared.codec.clone_from(&codec_name);
            shared.stats = session.stats();
            next_stats = now + STATS_EVERY;
        }
        let wake = session
            .poll_timeout()
            .map_or(next_play, |t| t.min(next_play));
        let wait = wake
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        if let Err(e) = rtp.set_read_timeout(Some(wait)) {
            tracing::warn!("media: RTP socket: {e}");
            std::thread::sleep(wait);
        }
        match rtp.recv_from(&mut buf) {
            Ok((n, from)) => session.handle_packet(&buf[..n], from, Instant::now()),
            Err(e) if is_transient(e.kind()) => {}
            Err(e) => {
                tracing::debug!("media: RTP receive: {e}");
                std::thread::sleep(wait);
            }
        }
        loop {
            match rtcp.recv_from(&mut buf) {
                Ok((n, from)) => session.handle_packet(&buf[..n], from, Instant::now()),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if is_transient(e.kind()) => {}
                Err(e) => {
                    tracing::debug!("media: RTCP receive: {e}");
                    break;
                }
            }
        }
    }
    session.close(Instant::now());
    flush(&mut session, &rtp, &rtcp);
    audio.finish();
    let mut shared = stats.lock().unwrap_or_else(PoisonError::into_inner);
    shared.stats = session.stats();
}
