//! The real [`MediaEngine`]: one RTP/RTCP socket pair and one media thread
//! per call, carrying audio between the audio devices and the peer.
//!
//! Threading: every started call runs on a dedicated OS thread
//! ([`call::run`]), not on a tokio task. Audio has to be paced every
//! ptime whatever the phone's task is doing, and the phone may run on a
//! current-thread runtime (tests, `--headless`) where a busy SIP task
//! would starve a media task sharing the thread; opening a sound card and
//! writing WAV files block; and a call's work per tick is tiny, so a
//! thread per call (a softphone has a handful at most) costs less than
//! making the sans-IO session shareable. The SIP task never waits on a
//! call's thread: it only sends it commands over a channel, and the thread
//! answers through shared stats and the phone's job queue.

mod audio;
mod call;
mod inband;
mod ringer;

pub use audio::{AudioControlError, AudioControls, DeviceRole};
pub use ringer::{RingSettings, Ringer};

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, mpsc as tokio_mpsc};

use super::phone::Job;
use super::ports::PortRange;
use crate::config::settings::DtmfMethod;
use crate::config::{Account, Settings};
use crate::media::codec;
use crate::media::device::{recording_file_name, CivilTime, DeviceError, Gain};
use crate::media::{MediaSession, MediaStats, SessionOptions};
use crate::sip::sdp::{Codec, LocalRtp, MediaEngine, MediaError, MediaHandle, NegotiatedMedia};
use crate::sip::ua::{CallInfo, Direction, UaEvent};

/// The audio part of `[Settings]` a call's thread needs.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaSettings {
    /// `audioInputDevice` (a [`crate::media::device::DeviceSpec`] value).
    pub input_device: String,
    /// `audioOutputDevice`.
    pub output_device: String,
    /// `audioRingDevice`.
    pub ring_device: String,
    /// `volumeInput`, 0-100.
    pub volume_input: i64,
    /// `volumeOutput`, 0-100.
    pub volume_output: i64,
    /// `micAmplification`.
    pub mic_amplification: bool,
    /// `DTMFMethod`.
    pub dtmf_method: DtmfMethod,
    /// `localDTMF`: play the digits we send in our own speaker too.
    pub local_dtmf: bool,
    /// `autoRecording`.
    pub auto_recording: bool,
    /// Where recordings go (`recordingPath`, else `Desktop\Recordings`).
    pub recording_dir: PathBuf,
    /// `VAD`: do not send packets of silence.
    pub vad: bool,
    /// `ringingSound`: empty for the built-in ring.
    pub ringing_sound: String,
    /// `volumeRing`, 0-100.
    pub volume_ring: i64,
}

impl MediaSettings {
    /// Reads them from `[Settings]`.
    pub fn from_settings(settings: &Settings) -> Self {
        let recording_dir = if settings.recording_path.trim().is_empty() {
            dirs::desktop_dir().unwrap_or_default().join("Recordings")
        } else {
            PathBuf::from(settings.recording_path.trim())
        };
        Self {
            input_device: settings.audio_input_device.clone(),
            output_device: settings.audio_output_device.clone(),
            ring_device: settings.audio_ring_device.clone(),
            volume_input: settings.volume_input,
            volume_output: settings.volume_output,
            mic_amplification: settings.mic_amplification,
            dtmf_method: settings.dtmf_method,
            local_dtmf: settings.local_dtmf,
            auto_recording: settings.auto_recording,
            vad: settings.vad,
            ringing_sound: settings.ringing_sound.clone(),
            volume_ring: settings.volume_ring,
            recording_dir,
        }
    }
}

/// What the phone's side asks a call's thread to do.
#[derive(Debug)]
enum Command {
    /// A later offer/answer.
    Update(Box<NegotiatedMedia>),
    /// Send a digit as RFC 4733 telephone-events.
    Rfc4733(char),
    /// Mix a digit's tones into the microphone audio.
    InBand(char),
    /// A digit sent by SIP INFO: only its local echo (`localDTMF`).
    LocalTone(char),
    /// Record the call (both directions mixed) to this file.
    Record(PathBuf),
    /// New microphone and speaker levels (mute is a zero microphone gain).
    SetGains {
        /// Applied to captured audio before it is encoded.
        input: Gain,
        /// Applied to decoded audio before it is played.
        output: Gain,
    },
    /// Switch to another device; the thread answers whether it opened
    /// (a tokio oneshot: its `send` needs no runtime, and the waiting side
    /// is async).
    SwitchDevice {
        /// Input or output (never ring: calls do not play the ring).
        role: DeviceRole,
        /// The device's `audioInputDevice`/`audioOutputDevice` value.
        device: String,
        /// The outcome: the device error when it cannot be opened.
        reply: tokio::sync::oneshot::Sender<Result<(), DeviceError>>,
    },
    /// End: RTCP BYE, close the devices and files, release the ports.
    Stop,
}

/// A call's media as Status shows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallMediaStats {
    /// The codec we send with, `encoding/clock rate` (`PCMU/8000`).
    pub codec: String,
    /// Counters, loss, jitter, round-trip time.
    pub stats: MediaStats,
}

/// How a digit travels, as decided by [`MediaControl::send_dtmf`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfRoute {
    /// RFC 4733 telephone-events on the media stream.
    Rfc4733,
    /// Tones mixed into the audio we send.
    InBand,
    /// It has to go by SIP INFO.
    SipInfo,
}

impl DtmfRoute {
    /// The name control replies use (`rfc4733`, `inband`, `info`).
    pub fn name(self) -> &'static str {
        match self {
            DtmfRoute::Rfc4733 => "rfc4733",
            DtmfRoute::InBand => "inband",
            DtmfRoute::SipInfo => "info",
        }
    }
}

struct Entry {
    commands: Sender<Command>,
    stats: Arc<Mutex<CallMediaStats>>,
    telephone_event: bool,
}

/// What [`MediaControl`] guards under one lock: the streams and the
/// phone-wide audio controls together, so a call starting while a control
/// changes either gets the new value at open or receives the change.
struct Shared {
    calls: HashMap<MediaHandle, Entry>,
    audio: AudioControls,
    /// `micAmplification`: a setting, not a control, but the gains need it.
    mic_amplification: bool,
}

/// The phone's side of the running streams: shared by the engine (which
/// the user agent owns) and every [`super::PhoneHandle`].
#[derive(Clone)]
pub struct MediaControl {
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for MediaControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaControl").finish_non_exhaustive()
    }
}

impl MediaControl {
    /// Controls starting as `settings` say, with no stream yet.
    pub fn new(settings: &MediaSettings) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Shared {
                calls: HashMap::new(),
                audio: AudioControls::from_media_settings(settings),
                mic_amplification: settings.mic_amplification,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        // A panicked media thread leaves nothing half-written in the map.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn command(&self, handle: MediaHandle, command: Command) -> Result<(), MediaError> {
        let shared = self.lock();
        let entry = shared
            .calls
            .get(&handle)
            .ok_or(MediaError::UnknownHandle(handle))?;
        entry
            .commands
            .send(command)
            .map_err(|_| MediaError::Engine("the call's media thread has ended".into()))
    }

    /// Sends `digit` on `handle`'s stream the way `method` says, or says it
    /// has to go by SIP INFO (method 3, or auto without telephone-event).
    pub fn send_dtmf(
        &self,
        handle: MediaHandle,
        digit: char,
        method: DtmfMethod,
    ) -> Result<DtmfRoute, MediaError> {
        let digit = digit.to_ascii_uppercase();
        if crate::media::dtmf::event_code(digit).is_none() {
            return Err(MediaError::Engine(format!("{digit:?} is not a DTMF digit")));
        }
        let negotiated = self.lock().calls.get(&handle).map(|e| e.telephone_event);
        let (command, route) = match (method, negotiated) {
            (DtmfMethod::SipInfo, _) | (DtmfMethod::Auto, None | Some(false)) => {
                // A call without a stream has no speaker to echo in.
                let _ = self.command(handle, Command::LocalTone(digit));
                return Ok(DtmfRoute::SipInfo);
            }
            (_, None) => return Err(MediaError::UnknownHandle(handle)),
            (DtmfMethod::InBand, Some(_)) => (Command::InBand(digit), DtmfRoute::InBand),
            (DtmfMethod::Auto | DtmfMethod::Rfc2833, Some(true)) => {
                (Command::Rfc4733(digit), DtmfRoute::Rfc4733)
            }
            (DtmfMethod::Rfc2833, Some(false)) => {
                return Err(MediaError::Engine(
                    "the peer did not negotiate telephone-event".into(),
                ))
            }
        };
        self.command(handle, command)?;
        Ok(route)
    }

    /// The stream's codec and statistics, if it runs.
    pub fn stats(&self, handle: MediaHandle) -> Option<CallMediaStats> {
        let shared = self.lock();
        let entry = shared.calls.get(&handle)?;
        let stats = entry
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Some(stats)
    }

    /// Starts recording `handle`'s call to `path`.
    pub fn record(&self, handle: MediaHandle, path: PathBuf) -> Result<(), MediaError> {
        self.command(handle, Command::Record(path))
    }
}

/// How a call's thread reaches the phone's subscribers.
#[derive(Clone)]
pub(super) struct Notifier {
    /// Weak: a live call must not keep the phone's job queue open (the
    /// driver shuts down once every handle is gone).
    pub jobs: tokio_mpsc::WeakUnboundedSender<Job>,
    pub events: broadcast::Sender<UaEvent>,
}

impl Notifier {
    /// Reports a digit received on `handle`'s stream as [`UaEvent::Dtmf`],
    /// through the phone's task (which alone maps streams to calls), so it
    /// reaches subscribers in order with the SIP events.
    fn dtmf(&self, handle: MediaHandle, digit: char) {
        let Some(jobs) = self.jobs.upgrade() else {
            return;
        };
        let events = self.events.clone();
        let _ = jobs.send(Box::new(move |ua, _| {
            if let Some(call) = ua.call_for_media(handle) {
                let _ = events.send(UaEvent::Dtmf { call, digit });
            }
        }));
    }
}

/// Binds RTP ports and runs one media thread per started call.
pub struct AudioEngine {
    bind: IpAddr,
    address: IpAddr,
    range: PortRange,
    next: u64,
    settings: MediaSettings,
    reserved: HashMap<MediaHandle, (UdpSocket, UdpSocket)>,
    control: MediaControl,
    notifier: Notifier,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for AudioEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioEngine")
            .field("bind", &self.bind)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

impl AudioEngine {
    /// Ports bound on `bind` within `range`, announced as `address`.
    pub(super) fn new(
        bind: IpAddr,
        address: IpAddr,
        range: PortRange,
        settings: MediaSettings,
        notifier: Notifier,
    ) -> Self {
        Self {
            bind,
            address,
            range,
            next: 1,
            control: MediaControl::new(&settings),
            settings,
            reserved: HashMap::new(),
            notifier,
            threads: Vec::new(),
        }
    }

    /// The handle the phone's other side uses to reach the streams.
    pub fn control(&self) -> MediaControl {
        self.control.clone()
    }
}

fn options_for(local: Option<SocketAddr>) -> SessionOptions {
    SessionOptions {
        cname: match local {
            Some(addr) => format!("msipphone@{}", addr.ip()),
            None => "msipphone".into(),
        },
        ..SessionOptions::default()
    }
}

fn codec_name(media: &NegotiatedMedia) -> String {
    let c = &media.send_codec.codec;
    format!("{}/{}", c.encoding, c.clock_rate)
}

impl MediaEngine for AudioEngine {
    fn supports(&self, codec: &Codec) -> bool {
        codec::for_payload(codec).is_some()
    }

    fn allocate(&mut self) -> Result<LocalRtp, MediaError> {
        let pair = self.range.bind_pair(self.bind).ok_or(MediaError::NoPort)?;
        let port = pair
            .0
            .local_addr()
            .map_err(|e| MediaError::Engine(e.to_string()))?
            .port();
        let handle = MediaHandle(self.next);
        self.next += 1;
        self.reserved.insert(handle, pair);
        Ok(LocalRtp {
            handle,
            address: self.address,
            port,
        })
    }

    fn start(&mut self, handle: MediaHandle, media: &NegotiatedMedia) -> Result<(), MediaError> {
        let local = self
            .reserved
            .get(&handle)
            .ok_or(MediaError::UnknownHandle(handle))?
            .0
            .local_addr()
            .ok();
        // The ports stay reserved if this fails: a later offer/answer may
        // start the stream with a codec we have.
        let mut session = MediaSession::new(
            media,
            &codec::for_negotiated,
            options_for(local),
            Instant::now(),
            SystemTime::now(),
        )
        .map_err(|e| MediaError::Engine(e.to_string()))?;
        if self.settings.vad {
            session.set_vad(Some(crate::media::device::Vad::default()));
        }
        let (rtp, rtcp) = self
            .reserved
            .remove(&handle)
            .ok_or(MediaError::UnknownHandle(handle))?;
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(Mutex::new(CallMediaStats {
            codec: codec_name(media),
            stats: MediaStats::default(),
        }));
        // Held from reading the controls until the stream is listed: a
        // control changed meanwhile waits, then reaches this call too.
        let mut shared = self.control.lock();
        let setup = call::CallSetup {
            handle,
            rtp,
            rtcp,
            session,
            codec: codec_name(media),
            audio: call::AudioSetup::new(&self.settings, &shared.audio),
            commands: rx,
            stats: stats.clone(),
            notifier: self.notifier.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("media-{}", handle.0))
            .spawn(move || call::run(setup))
            .map_err(|e| MediaError::Engine(format!("cannot start the media thread: {e}")))?;
        shared.calls.insert(
            handle,
            Entry {
                commands: tx,
                stats,
                telephone_event: media.send_telephone_event.is_some(),
            },
        );
        drop(shared);
        self.threads.retain(|t| !t.is_finished());
        self.threads.push(thread);
        Ok(())
    }

    fn update(&mut self, handle: MediaHandle, media: &NegotiatedMedia) -> Result<(), MediaError> {
        if let Some(entry) = self.control.lock().calls.get_mut(&handle) {
            entry.telephone_event = media.send_telephone_event.is_some();
        }
        self.control
            .command(handle, Command::Update(Box::new(media.clone())))
    }

    fn stop(&mut self, handle: MediaHandle) {
        self.reserved.remove(&handle);
        if let Some(entry) = self.control.lock().calls.remove(&handle) {
            // The thread sends RTCP BYE, closes its files and drops the
            // sockets within one tick; nobody waits for it here.
            let _ = entry.commands.send(Command::Stop);
        }
        self.threads.retain(|t| !t.is_finished());
    }
}

impl Drop for AudioEngine {
    /// Stops every stream and waits for the threads, so recordings and
    /// `file:` outputs are complete once the phone's task has ended.
    fn drop(&mut self) {
        for (_, entry) in self.control.lock().calls.drain() {
            let _ = entry.commands.send(Command::Stop);
        }
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::warn!("a media thread panicked");
            }
        }
    }
}

/// The file name MicroSIP would record `call` to, at `now`.
pub fn recording_name(call: &CallInfo, accounts: &[Account], now: SystemTime) -> String {
    let remote_user = call
        .remote_uri
        .split_once(':')
        .map_or(call.remote_uri.as_str(), |(_, rest)| rest);
    let remote_user = remote_user
        .split(['@', ';', '>'])
        .next()
        .unwrap_or(remote_user);
    let local = accounts
        .iter()
        .find(|a| a.number == call.account)
        .map(|a| {
            if a.keys.label.is_empty() {
                a.keys.username.clone()
            } else {
                a.keys.label.clone()
            }
        })
        .unwrap_or_default();
    let unix = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let time = CivilTime::local(unix);
    recording_file_name(
        &time,
        remote_user,
        call.direction == Direction::Outgoing,
        &local,
    )
}

#[cfg(test)]
mod tests;
