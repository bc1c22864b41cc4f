//! Sound cards through `cpal`: WASAPI on Windows, ALSA on Linux.
//!
//! cpal calls our closures on its own real-time threads. They only move
//! samples between the device and a lock-free single-producer ring buffer
//! (`rtrb`), converting the sample type; format conversion (channels,
//! rate) happens on the phone's side, in [`AudioInput::read_frame`] and
//! [`AudioOutput::write`], which never wait. The device is opened in the
//! format it prefers nearest to the one asked for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig};

use super::convert::Converter;
use super::spec::DeviceSpec;
use super::{AudioFormat, AudioInput, AudioOutput, DeviceError, Direction};

/// Ring buffer between the callback and the phone, in milliseconds of
/// device audio: room for a late phone tick without dropping audio, short
/// enough that a stalled phone does not build up a long delay.
const RING_MS: u32 = 200;
/// How long cpal may take to start a stream.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// A sound card as we list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The name MicroSIP's settings use (cpal's description name, e.g.
    /// `Microphone (USB Audio)` on Windows).
    pub name: String,
    /// cpal's stable id, e.g. `alsa:null`; also accepted as a name.
    pub id: String,
}

/// The sound cards of the default host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceList {
    /// Capture devices.
    pub inputs: Vec<DeviceInfo>,
    /// Playback devices.
    pub outputs: Vec<DeviceInfo>,
}

fn backend(device: &str, error: impl std::fmt::Display) -> DeviceError {
    DeviceError::Backend {
        device: device.to_string(),
        message: error.to_string(),
    }
}

fn info(device: &cpal::Device) -> DeviceInfo {
    let id = device.id().map(|id| id.to_string()).unwrap_or_default();
    let name = device
        .description()
        .map(|d| d.name().to_string())
        .unwrap_or_else(|_| id.clone());
    DeviceInfo { name, id }
}

fn devices(direction: Direction) -> Result<Vec<cpal::Device>, DeviceError> {
    let host = cpal::default_host();
    let list = match direction {
        Direction::Input => host.input_devices().map(|d| d.collect()),
        Direction::Output => host.output_devices().map(|d| d.collect()),
    };
    list.map_err(|e| backend(host.id().name(), e))
}

/// Lists the default host's capture and playback devices.
pub fn list_devices() -> Result<DeviceList, DeviceError> {
    Ok(DeviceList {
        inputs: devices(Direction::Input)?.iter().map(info).collect(),
        outputs: devices(Direction::Output)?.iter().map(info).collect(),
    })
}

/// The device `spec` names: the default, or the one whose name is exactly
/// `name` (as MicroSIP matches), else whose cpal id is `name` (with or
/// without the `host:` prefix).
fn find(spec: &DeviceSpec, direction: Direction) -> Result<(cpal::Device, String), DeviceError> {
    let name = match spec {
        DeviceSpec::Named(name) => name,
        _ => {
            let host = cpal::default_host();
            let device = match direction {
                Direction::Input => host.default_input_device(),
                Direction::Output => host.default_output_device(),
            };
            let device = device.ok_or(DeviceError::NoDefault(direction))?;
            let label = info(&device).name;
            return Ok((device, label));
        }
    };
    let all = devices(direction)?;
    let infos: Vec<DeviceInfo> = all.iter().map(info).collect();
    let by_name = infos.iter().position(|i| &i.name == name);
    let by_id = || {
        infos
            .iter()
            .position(|i| &i.id == name || i.id.split_once(':').is_some_and(|(_, id)| id == name))
    };
    match by_name.or_else(by_id) {
        Some(index) => {
            let label = infos[index].name.clone();
            all.into_iter()
                .nth(index)
                .map(|d| (d, label))
                .ok_or(DeviceError::NoDefault(direction))
        }
        None => Err(DeviceError::UnknownDevice {
            direction,
            name: name.clone(),
            available: infos.into_iter().map(|i| i.name).collect(),
        }),
    }
}

/// The stream format to open: one the device supports at exactly the
/// asked rate and channels if there is one (no conversion at all), else
/// the device's default.
fn choose_config(
    device: &cpal::Device,
    label: &str,
    direction: Direction,
    wanted: AudioFormat,
) -> Result<(StreamConfig, SampleFormat), DeviceError> {
    let ranges: Vec<cpal::SupportedStreamConfigRange> = match direction {
        Direction::Input => device.supported_input_configs().map(|r| r.collect()),
        Direction::Output => device.supported_output_configs().map(|r| r.collect()),
    }
    .unwrap_or_default();
    let usable =
        |f: SampleFormat| matches!(f, SampleFormat::I16 | SampleFormat::F32 | SampleFormat::I32);
    let exact = ranges.iter().find(|r| {
        r.channels() == wanted.channels
            && usable(r.sample_format())
            && (r.min_sample_rate()..=r.max_sample_rate()).contains(&wanted.sample_rate)
    });
    let supported = match exact {
        Some(range) => range.with_sample_rate(wanted.sample_rate),
        None => match direction {
            Direction::Input => device.default_input_config(),
            Direction::Output => device.default_output_config(),
        }
        .map_err(|e| backend(label, e))?,
    };
    Ok((supported.config(), supported.sample_format()))
}

fn device_format(config: &StreamConfig) -> AudioFormat {
    AudioFormat {
        sample_rate: config.sample_rate,
        channels: config.channels,
    }
}

/// The first stream error, shared with cpal's error callback.
type ErrorSlot = Arc<OnceLock<String>>;

fn on_error(slot: &ErrorSlot) -> impl FnMut(cpal::Error) + Send + 'static {
    let slot = Arc::clone(slot);
    move |error| {
        // Only the first error matters: the stream is dead after it.
        let _ = slot.set(error.to_string());
    }
}

/// A microphone on a sound card.
pub struct RealInput {
    label: String,
    format: AudioFormat,
    consumer: rtrb::Consumer<i16>,
    converter: Converter,
    /// Converted audio not yet handed out.
    ready: Vec<i16>,
    scratch: Vec<i16>,
    error: ErrorSlot,
    overruns: Arc<AtomicU64>,
    /// Kept alive: dropping it stops the device.
    _stream: cpal::Stream,
}

impl std::fmt::Debug for RealInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealInput")
            .field("device", &self.label)
            .field("format", &self.format)
            .finish()
    }
}

fn input_stream<T>(
    device: &cpal::Device,
    config: StreamConfig,
    mut producer: rtrb::Producer<i16>,
    overruns: Arc<AtomicU64>,
    error: &ErrorSlot,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    i16: FromSample<T>,
{
    device.build_input_stream::<T, _, _>(
        config,
        move |data: &[T], _| {
            let mut dropped = 0u64;
            for &s in data {
                if producer.push(s.to_sample::<i16>()).is_err() {
                    dropped += 1;
                }
            }
            if dropped > 0 {
                overruns.fetch_add(dropped, Ordering::Relaxed);
            }
        },
        on_error(error),
        Some(OPEN_TIMEOUT),
    )
}

impl RealInput {
    /// Opens the capture device `spec` (the default or a name) for `format`.
    pub fn open(spec: &DeviceSpec, format: AudioFormat) -> Result<Self, DeviceError> {
        let (device, label) = find(spec, Direction::Input)?;
        let (config, sample_format) = choose_config(&device, &label, Direction::Input, format)?;
        let dev_format = device_format(&config).validate()?;
        let (producer, consumer) = rtrb::RingBuffer::new(dev_format.samples_in_ms(RING_MS).max(64));
        let error = ErrorSlot::default();
        let overruns = Arc::new(AtomicU64::new(0));
        let stream = match sample_format {
            SampleFormat::I16 => {
                input_stream::<i16>(&device, config, producer, overruns.clone(), &error)
            }
            SampleFormat::I32 => {
                input_stream::<i32>(&device, config, producer, overruns.clone(), &error)
            }
            SampleFormat::F32 => {
                input_stream::<f32>(&device, config, producer, overruns.clone(), &error)
            }
            other => {
                return Err(backend(
                    &label,
                    format_args!("unsupported sample format {other}"),
                ))
            }
        }
        .map_err(|e| backend(&label, e))?;
        stream.play().map_err(|e| backend(&label, e))?;
        tracing::debug!(device = %label, ?dev_format, ?format, "capture started");
        Ok(Self {
            converter: Converter::new(dev_format, format)?,
            label,
            format,
            consumer,
            ready: Vec::new(),
            scratch: Vec::new(),
            error,
            overruns,
            _stream: stream,
        })
    }

    /// Device samples dropped because the phone read too late.
    pub fn overruns(&self) -> u64 {
        self.overruns.load(Ordering::Relaxed)
    }
}

impl AudioInput for RealInput {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn read_frame(&mut self, frame: &mut [i16]) -> Result<bool, DeviceError> {
        if let Some(message) = self.error.get() {
            return Err(backend(&self.label, message));
        }
        let available = self.consumer.slots();
        if available > 0 {
            self.scratch.clear();
            if let Ok(chunk) = self.consumer.read_chunk(available) {
                let (a, b) = chunk.as_slices();
                self.scratch.extend_from_slice(a);
                self.scratch.extend_from_slice(b);
                chunk.commit_all();
            }
            self.converter.process(&self.scratch, &mut self.ready);
        }
        if self.ready.len() < frame.len() {
            return Ok(false);
        }
        frame.copy_from_slice(&self.ready[..frame.len()]);
        self.ready.drain(..frame.len());
        // Keep at most the ring's worth of converted audio: older audio
        // only adds delay.
        let limit = self.format.samples_in_ms(RING_MS);
        if self.ready.len() > limit {
            let excess = self.ready.len() - limit;
            self.ready.drain(..excess);
        }
        Ok(true)
    }
}

/// A speaker on a sound card.
pub struct RealOutput {
    label: String,
    format: AudioFormat,
    producer: rtrb::Producer<i16>,
    converter: Converter,
    scratch: Vec<i16>,
    error: ErrorSlot,
    underruns: Arc<AtomicU64>,
    /// Kept alive: dropping it stops the device.
    _stream: cpal::Stream,
}

impl std::fmt::Debug for RealOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealOutput")
            .field("device", &self.label)
            .field("format", &self.format)
            .finish()
    }
}

fn output_stream<T>(
    device: &cpal::Device,
    config: StreamConfig,
    mut consumer: rtrb::Consumer<i16>,
    underruns: Arc<AtomicU64>,
    error: &ErrorSlot,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<i16>,
{
    device.build_output_stream::<T, _, _>(
        config,
        move |data: &mut [T], _| {
            let mut missing = 0u64;
            for slot in data.iter_mut() {
                *slot = match consumer.pop() {
                    Ok(s) => T::from_sample(s),
                    Err(_) => {
                        missing += 1;
                        T::EQUILIBRIUM
                    }
                };
            }
            if missing > 0 {
                underruns.fetch_add(missing, Ordering::Relaxed);
            }
        },
        on_error(error),
        Some(OPEN_TIMEOUT),
    )
}

impl RealOutput {
    /// Opens the playback device `spec` (the default or a name) for `format`.
    pub fn open(spec: &DeviceSpec, format: AudioFormat) -> Result<Self, DeviceError> {
        let (device, label) = find(spec, Direction::Output)?;
        let (config, sample_format) = choose_config(&device, &label, Direction::Output, format)?;
        let dev_format = device_format(&config).validate()?;
        let (producer, consumer) = rtrb::RingBuffer::new(dev_format.samples_in_ms(RING_MS).max(64));
        let error = ErrorSlot::default();
        let underruns = Arc::new(AtomicU64::new(0));
        let stream = match sample_format {
            SampleFormat::I16 => {
                output_stream::<i16>(&device, config, consumer, underruns.clone(), &error)
            }
            SampleFormat::I32 => {
                output_stream::<i32>(&device, config, consumer, underruns.clone(), &error)
            }
            SampleFormat::F32 => {
                output_stream::<f32>(&device, config, consumer, underruns.clone(), &error)
            }
            other => {
                return Err(backend(
                    &label,
                    format_args!("unsupported sample format {other}"),
                ))
            }
        }
        .map_err(|e| backend(&label, e))?;
        stream.play().map_err(|e| backend(&label, e))?;
        tracing::debug!(device = %label, ?dev_format, ?format, "playback started");
        Ok(Self {
            converter: Converter::new(format, dev_format)?,
            label,
            format,
            producer,
            scratch: Vec::new(),
            error,
            underruns,
            _stream: stream,
        })
    }

    /// Device samples played as silence because the phone fed too little.
    pub fn underruns(&self) -> u64 {
        self.underruns.load(Ordering::Relaxed)
    }
}

impl AudioOutput for RealOutput {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn write(&mut self, pcm: &[i16]) -> Result<usize, DeviceError> {
        if let Some(message) = self.error.get() {
            return Err(backend(&self.label, message));
        }
        self.scratch.clear();
        self.converter.process(pcm, &mut self.scratch);
        let fits = self.producer.slots().min(self.scratch.len());
        if let Ok(mut chunk) = self.producer.write_chunk(fits) {
            let (a, b) = chunk.as_mut_slices();
            let split = a.len();
            a.copy_from_slice(&self.scratch[..split]);
            b.copy_from_slice(&self.scratch[split..fits]);
            chunk.commit_all();
        }
        // Report in the caller's samples, proportionally.
        Ok(if fits == self.scratch.len() {
            pcm.len()
        } else {
            pcm.len() * fits / self.scratch.len().max(1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether this machine has any sound system cpal can talk to.
    fn host_devices() -> Option<DeviceList> {
        match list_devices() {
            Ok(list) if !list.inputs.is_empty() || !list.outputs.is_empty() => Some(list),
            Ok(_) => {
                println!("note: no audio devices on this machine; cpal checks skipped");
                None
            }
            Err(e) => {
                println!("note: no usable audio host ({e}); cpal checks skipped");
                None
            }
        }
    }

    #[test]
    fn lists_devices_and_rejects_unknown_names() {
        let Some(list) = host_devices() else { return };
        for d in list.inputs.iter().chain(&list.outputs) {
            assert!(!d.id.is_empty(), "{d:?}");
        }
        let spec = DeviceSpec::Named("No Such Device 42".into());
        let Err(error) = RealOutput::open(&spec, AudioFormat::mono(8_000)) else {
            panic!("a missing device opened");
        };
        let text = error.to_string();
        assert!(
            text.starts_with("no audio output device named \"No Such Device 42\"; available: "),
            "{text}"
        );
        if let Some(first) = list.outputs.first() {
            assert!(text.contains(&format!("{:?}", first.name)), "{text}");
        }
    }

    #[test]
    fn alsa_null_device_plays_and_captures() {
        let Some(list) = host_devices() else { return };
        let is_null = |d: &&DeviceInfo| d.id.ends_with(":null");
        let Some(null_out) = list.outputs.iter().find(is_null) else {
            println!("note: no ALSA null device; skipped");
            return;
        };
        // By exact name, as MicroSIP stores it.
        let spec = DeviceSpec::Named(null_out.name.clone());
        let mut out = match RealOutput::open(&spec, AudioFormat::mono(8_000)) {
            Ok(out) => out,
            Err(e) => panic!("ALSA null is listed but does not open: {e}"),
        };
        let tone = crate::media::codec::testutil::sine(440.0, 8_000, 8_000.0, 160);
        let mut taken = 0;
        for _ in 0..10 {
            taken += out.write(&tone).expect("writes");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(taken >= 160, "the device took {taken} samples");
        // By id too, for capture (ALSA's null also records silence).
        if list.inputs.iter().any(|d| d.id.ends_with(":null")) {
            let mut input = match RealInput::open(
                &DeviceSpec::Named("null".into()),
                AudioFormat::mono(8_000),
            ) {
                Ok(i) => i,
                Err(e) => panic!("ALSA null capture does not open: {e}"),
            };
            let mut frame = [1i16; 160];
            let mut got = false;
            for _ in 0..50 {
                if input.read_frame(&mut frame).expect("reads") {
                    got = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(got, "no frame from ALSA null within 500 ms");
            assert!(
                frame.iter().all(|&s| s.unsigned_abs() < 2),
                "null capture is silent"
            );
        }
    }
}
