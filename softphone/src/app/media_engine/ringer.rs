//! The ringing sound: while at least one incoming call rings, a thread
//! plays `ringingSound` (or the built-in ring) at `volumeRing` on
//! `audioRingDevice` (empty = the output device, `null` = silence).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::MediaSettings;
use crate::media::device::{open_output, ring::ring_source, AudioFormat, DeviceSpec, Pacing};
use crate::sip::ua::{CallId, CallState, UaEvent};

/// The ring's rate: wideband is plenty for a bell and every device takes it.
const RING_RATE: u32 = 16_000;
/// The frame the ringer writes.
const FRAME: Duration = Duration::from_millis(20);

/// What the ringer plays and where.
#[derive(Debug, Clone, PartialEq)]
pub struct RingSettings {
    /// `audioRingDevice`, or `audioOutputDevice` when that is empty.
    pub device: String,
    /// `ringingSound`: empty for the built-in ring.
    pub sound: String,
    /// Where a relative `ringingSound` is looked up.
    pub base_dir: Option<PathBuf>,
    /// `volumeRing`, 0-100.
    pub volume: i64,
}

impl RingSettings {
    /// The ring settings of `media`.
    pub fn from_media_settings(media: &MediaSettings) -> Self {
        let device = if media.ring_device.is_empty() {
            media.output_device.clone()
        } else {
            media.ring_device.clone()
        };
        Self {
            device,
            sound: media.ringing_sound.clone(),
            base_dir: None,
            volume: media.volume_ring,
        }
    }
}

/// Rings while incoming calls wait for an answer: fed every [`UaEvent`],
/// it starts on the first ringing call and stops when none is left.
#[derive(Debug)]
pub struct Ringer {
    settings: RingSettings,
    ringing: HashSet<CallId>,
    playing: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl Ringer {
    /// A silent ringer that will play as `settings` say.
    pub fn new(settings: RingSettings) -> Self {
        Self {
            settings,
            ringing: HashSet::new(),
            playing: None,
        }
    }

    /// Whether the ring is playing.
    pub fn is_ringing(&self) -> bool {
        self.playing.is_some()
    }

    /// Follows the calls: an incoming call starts the ring; its answer or
    /// end stops it once no other call rings.
    pub fn handle_event(&mut self, event: &UaEvent) {
        match event {
            UaEvent::IncomingCall { call, .. } => {
                self.ringing.insert(*call);
            }
            UaEvent::CallState { call, state } if *state != CallState::Incoming => {
                self.ringing.remove(call);
            }
            UaEvent::CallEnded { call, .. } => {
                self.ringing.remove(call);
            }
            _ => return,
        }
        match (self.ringing.is_empty(), self.playing.is_some()) {
            (false, false) => self.start(),
            (true, true) => self.stop(),
            _ => {}
        }
    }

    fn start(&mut self) {
        let settings = self.settings.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("ringer".into())
            .spawn(move || play(&settings, &flag));
        match spawned {
            Ok(thread) => self.playing = Some((stop, thread)),
            // The call still rings on the SIP side; only the sound is lost.
            Err(e) => tracing::warn!("ringer: cannot start its thread: {e}"),
        }
    }

    fn stop(&mut self) {
        if let Some((stop, thread)) = self.playing.take() {
            stop.store(true, Ordering::Relaxed);
            // Joined so a `file:` device is complete once the call is
            // answered; the thread wakes every frame, so this is short.
            if thread.join().is_err() {
                tracing::warn!("ringer: its thread panicked");
            }
        }
    }
}

impl Drop for Ringer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The ringer thread: one frame per [`FRAME`] until `stop`.
fn play(settings: &RingSettings, stop: &AtomicBool) {
    let format = AudioFormat::mono(RING_RATE);
    let opened = DeviceSpec::parse(&settings.device).and_then(|spec| {
        let output = open_output(&spec, format)?;
        let source = ring_source(
            &settings.sound,
            settings.base_dir.as_deref(),
            settings.volume,
            format,
            Pacing::Unpaced,
        )?;
        Ok((output, source))
    });
    let (mut output, mut source) = match opened {
        Ok(devices) => devices,
        Err(e) => {
            tracing::warn!("ringer: {:?} unusable: {e}", settings.device);
            return;
        }
    };
    let mut frame = vec![0i16; format.samples_in_ms(20)];
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match source.read_frame(&mut frame) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                tracing::warn!("ringer: ring sound: {e}");
                break;
            }
        }
        if let Err(e) = output.write(&frame) {
            tracing::warn!("ringer: ring device: {e}");
            break;
        }
        // Paced here, not by the source, so a `file:` device gets
        // exactly real time and stopping is checked every frame.
        next += FRAME;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}
