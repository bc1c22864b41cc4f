//! RTCP (RFC 3550 §6): SR, RR, SDES CNAME and BYE in compound packets,
//! the report interval and round-trip time.
//!
//! Hand-written rather than `rtcp-types` for the same reason as [`super::rtp`]:
//! four fixed layouts, and one place to prove "never panics" on input.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// RTCP packet types (RFC 3550 §12.1).
pub const PT_SR: u8 = 200;
/// Receiver report.
pub const PT_RR: u8 = 201;
/// Source description.
pub const PT_SDES: u8 = 202;
/// Goodbye.
pub const PT_BYE: u8 = 203;

const SDES_CNAME: u8 = 1;

/// Why bytes are not an RTCP compound packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    /// Shorter than a header or than its length field says.
    #[error("RTCP packet truncated")]
    Truncated,
    /// Version field is not 2.
    #[error("RTCP version {0} is not 2")]
    BadVersion(u8),
    /// RFC 3550 §6.1: a compound packet starts with SR or RR.
    #[error("RTCP compound packet starts with type {0}, not SR/RR")]
    NotCompound(u8),
    /// Padding longer than the packet.
    #[error("invalid RTCP padding")]
    BadPadding,
}

/// A 64-bit NTP timestamp (seconds since 1900 in the high 32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct NtpTime(pub u64);

/// Seconds from 1900-01-01 to 1970-01-01.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

impl NtpTime {
    /// The NTP time of a wall-clock instant.
    pub fn from_system(time: SystemTime) -> Self {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self::from_unix(since)
    }

    /// The NTP time `since` after the Unix epoch.
    pub fn from_unix(since: Duration) -> Self {
        let secs = since.as_secs().wrapping_add(NTP_UNIX_OFFSET);
        let frac = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
        Self(secs << 32 | frac)
    }

    /// The middle 32 bits (the LSR field and "now" for RTT, in 1/65536 s).
    pub fn middle32(self) -> u32 {
        (self.0 >> 16) as u32
    }
}

/// Converts a duration to RTCP's 1/65536 s units (DLSR), saturating.
pub fn to_q16(d: Duration) -> u32 {
    let v = d.as_secs_f64() * 65536.0;
    if v >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        v as u32
    }
}

/// RFC 3550 §6.4.1 round-trip time: `A - LSR - DLSR`, where `A` is the
/// middle 32 bits of our NTP time when the report arrived. `None` when no
/// SR was reflected (LSR 0) or the result is negative (clock skew).
pub fn round_trip(arrival_mid32: u32, lsr: u32, dlsr: u32) -> Option<Duration> {
    if lsr == 0 {
        return None;
    }
    let rtt = arrival_mid32.wrapping_sub(lsr).wrapping_sub(dlsr);
    // More than half the 16-bit seconds range means "negative".
    if rtt > 0x8000_0000 {
        return None;
    }
    Some(Duration::from_secs_f64(f64::from(rtt) / 65536.0))
}

/// The deterministic RTCP interval we use: RFC 3550 §6.2 with the
/// 5 second minimum. With two participants and a 64 kbit/s stream the
/// bandwidth term is far below it, so the full algorithm reduces to
/// this (the "simplified" rule; no reconsideration).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// The next report interval: `Td × U[0.5, 1.5] / (e − 3/2)` (§6.3.1),
/// halving `Td` for the first report (§6.2 "initial"). `unit` is a
/// uniform random number in `[0, 1)`.
pub fn report_interval(initial: bool, unit: f64) -> Duration {
    let td = if initial {
        REPORT_INTERVAL / 2
    } else {
        REPORT_INTERVAL
    };
    let factor = (0.5 + unit.clamp(0.0, 1.0)) / (std::f64::consts::E - 1.5);
    td.mul_f64(factor)
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source reported on.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (signed 24 bits).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub extended_highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the last SR's NTP time from that source.
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// The sender-info part of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// Wall-clock time of the report.
    pub ntp: NtpTime,
    /// The same instant on the RTP clock.
    pub rtp_timestamp: u32,
    /// Packets sent since the start.
    pub packet_count: u32,
    /// Payload octets sent since the start.
    pub octet_count: u32,
}

/// One SDES chunk; only CNAME is kept (other items are skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesChunk {
    /// The source described.
    pub ssrc: u32,
    /// Its canonical name, if present.
    pub cname: Option<String>,
}

/// One packet of a compound RTCP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    /// Sender report.
    SenderReport {
        /// The sender.
        ssrc: u32,
        /// Its sending statistics.
        info: SenderInfo,
        /// Reception reports (at most 31).
        reports: Vec<ReportBlock>,
    },
    /// Receiver report.
    ReceiverReport {
        /// The reporter.
        ssrc: u32,
        /// Reception reports (at most 31).
        reports: Vec<ReportBlock>,
    },
    /// Source description.
    SourceDescription(Vec<SdesChunk>),
    /// The sources are leaving.
    Bye {
        /// The sources.
        sources: Vec<u32>,
        /// Why, if said.
        reason: Option<String>,
    },
    /// Any other type (APP, XR, feedback), skipped.
    Other {
        /// Its packet type.
        packet_type: u8,
    },
}

fn be32(buf: &[u8], at: usize) -> Result<u32, RtcpError> {
    let b = buf.get(at..at + 4).ok_or(RtcpError::Truncated)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn parse_block(body: &[u8], at: usize) -> Result<ReportBlock, RtcpError> {
    let lost_word = be32(body, at + 4)?;
    // Sign-extend the 24-bit cumulative loss.
    let cumulative_lost = ((lost_word << 8) as i32) >> 8;
    Ok(ReportBlock {
        ssrc: be32(body, at)?,
        fraction_lost: (lost_word >> 24) as u8,
        cumulative_lost,
        extended_highest_seq: be32(body, at + 8)?,
        jitter: be32(body, at + 12)?,
        last_sr: be32(body, at + 16)?,
        delay_since_last_sr: be32(body, at + 20)?,
    })
}

fn parse_blocks(body: &[u8], start: usize, count: u8) -> Result<Vec<ReportBlock>, RtcpError> {
    (0..usize::from(count))
        .map(|i| parse_block(body, start + i * 24))
        .collect()
}

fn parse_sdes(body: &[u8], count: u8) -> Result<Vec<SdesChunk>, RtcpError> {
    let mut chunks = Vec::new();
    let mut at = 0;
    for _ in 0..count {
        let ssrc = be32(body, at)?;
        at += 4;
        let mut cname = None;
        loop {
            let kind = *body.get(at).ok_or(RtcpError::Truncated)?;
            if kind == 0 {
                // The item list ends with a null octet, padded to 32 bits.
                at = (at + 4) & !3;
                break;
            }
            let len = usize::from(*body.get(at + 1).ok_or(RtcpError::Truncated)?);
            let text = body.get(at + 2..at + 2 + len).ok_or(RtcpError::Truncated)?;
            if kind == SDES_CNAME {
                cname = Some(String::from_utf8_lossy(text).into_owned());
            }
            at += 2 + len;
        }
        chunks.push(SdesChunk { ssrc, cname });
    }
    Ok(chunks)
}

fn parse_bye(body: &[u8], count: u8) -> Result<RtcpPacket, RtcpError> {
    let sources = (0..usize::from(count))
        .map(|i| be32(body, i * 4))
        .collect::<Result<Vec<_>, _>>()?;
    let at = usize::from(count) * 4;
    let reason = match body.get(at) {
        // A zero length is the padding of a BYE without a reason.
        Some(&len) if len > 0 => {
            let text = body
                .get(at + 1..at + 1 + usize::from(len))
                .ok_or(RtcpError::Truncated)?;
            Some(String::from_utf8_lossy(text).into_owned())
        }
        _ => None,
    };
    Ok(RtcpPacket::Bye { sources, reason })
}

/// Parses a compound RTCP packet. Never panics, whatever the bytes.
pub fn parse_compound(buf: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    let mut packets = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let header = rest.get(..4).ok_or(RtcpError::Truncated)?;
        let version = header[0] >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion(version));
        }
        let padded = header[0] & 0x20 != 0;
        let count = header[0] & 0x1f;
        let packet_type = header[1];
        let words = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let total = (words + 1) * 4;
        let packet = rest.get(..total).ok_or(RtcpError::Truncated)?;
        rest = &rest[total..];
        let mut body = &packet[4..];
        if padded {
            let pad = usize::from(*body.last().ok_or(RtcpError::BadPadding)?);
            if pad == 0 || pad > body.len() {
                return Err(RtcpError::BadPadding);
            }
            body = &body[..body.len() - pad];
        }
        if packets.is_empty() && packet_type != PT_SR && packet_type != PT_RR {
            return Err(RtcpError::NotCompound(packet_type));
        }
        let parsed = match packet_type {
            PT_SR => {
                let info = SenderInfo {
                    ntp: NtpTime(u64::from(be32(body, 4)?) << 32 | u64::from(be32(body, 8)?)),
                    rtp_timestamp: be32(body, 12)?,
                    packet_count: be32(body, 16)?,
                    octet_count: be32(body, 20)?,
                };
                RtcpPacket::SenderReport {
                    ssrc: be32(body, 0)?,
                    info,
                    reports: parse_blocks(body, 24, count)?,
                }
            }
            PT_RR => RtcpPacket::ReceiverReport {
                ssrc: be32(body, 0)?,
                reports: parse_blocks(body, 4, count)?,
            },
            PT_SDES => RtcpPacket::SourceDescription(parse_sdes(body, count)?),
            PT_BYE => parse_bye(body, count)?,
            other => RtcpPacket::Other { packet_type: other },
        };
        packets.push(parsed);
    }
    if packets.is_empty() {
        return Err(RtcpError::Truncated);
    }
    Ok(packets)
}

fn write_block(block: &ReportBlock, out: &mut Vec<u8>) {
    out.extend_from_slice(&block.ssrc.to_be_bytes());
    let lost = (block.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32) & 0x00ff_ffff;
    out.extend_from_slice(&(u32::from(block.fraction_lost) << 24 | lost).to_be_bytes());
    out.extend_from_slice(&block.extended_highest_seq.to_be_bytes());
    out.extend_from_slice(&block.jitter.to_be_bytes());
    out.extend_from_slice(&block.last_sr.to_be_bytes());
    out.extend_from_slice(&block.delay_since_last_sr.to_be_bytes());
}

/// Pads `out` from `start` to a 32-bit boundary and fills in the header's
/// length field (words − 1).
fn finish(out: &mut Vec<u8>, start: usize) {
    while (out.len() - start) % 4 != 0 {
        out.push(0);
    }
    let words = ((out.len() - start) / 4 - 1).min(usize::from(u16::MAX)) as u16;
    out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
}

fn header(out: &mut Vec<u8>, count: usize, packet_type: u8) -> usize {
    let start = out.len();
    out.push(0x80 | (count.min(31) as u8));
    out.push(packet_type);
    out.extend_from_slice(&[0, 0]);
    start
}

impl RtcpPacket {
    /// Appends this packet to `out`. Lists beyond what the 5-bit count
    /// can say (31) and texts beyond 255 bytes are truncated.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            RtcpPacket::SenderReport {
                ssrc,
                info,
                reports,
            } => {
                let reports = &reports[..reports.len().min(31)];
                let start = header(out, reports.len(), PT_SR);
                out.extend_from_slice(&ssrc.to_be_bytes());
                out.extend_from_slice(&info.ntp.0.to_be_bytes());
                out.extend_from_slice(&info.rtp_timestamp.to_be_bytes());
                out.extend_from_slice(&info.packet_count.to_be_bytes());
                out.extend_from_slice(&info.octet_count.to_be_bytes());
                reports.iter().for_each(|b| write_block(b, out));
                finish(out, start);
            }
            RtcpPacket::ReceiverReport { ssrc, reports } => {
                let reports = &reports[..reports.len().min(31)];
                let start = header(out, reports.len(), PT_RR);
                out.extend_from_slice(&ssrc.to_be_bytes());
                reports.iter().for_each(|b| write_block(b, out));
                finish(out, start);
            }
            RtcpPacket::SourceDescription(chunks) => {
                let chunks = &chunks[..chunks.len().min(31)];
                let start = header(out, chunks.len(), PT_SDES);
                for chunk in chunks {
                    out.extend_from_slice(&chunk.ssrc.to_be_bytes());
                    if let Some(cname) = &chunk.cname {
                        let text = truncate_255(cname);
                        out.push(SDES_CNAME);
                        out.push(text.len() as u8);
                        out.extend_from_slice(text);
                    }
                    // Null item, then pad the chunk to 32 bits.
                    out.push(0);
                    while (out.len() - start) % 4 != 0 {
                        out.push(0);
                    }
                }
                finish(out, start);
            }
            RtcpPacket::Bye { sources, reason } => {
                let sources = &sources[..sources.len().min(31)];
                let start = header(out, sources.len(), PT_BYE);
                sources
                    .iter()
                    .for_each(|s| out.extend_from_slice(&s.to_be_bytes()));
                if let Some(reason) = reason {
                    let text = truncate_255(reason);
                    out.push(text.len() as u8);
                    out.extend_from_slice(text);
                }
                finish(out, start);
            }
            RtcpPacket::Other { .. } => {}
        }
    }
}

fn truncate_255(text: &str) -> &[u8] {
    let bytes = text.as_bytes();
    &bytes[..bytes.len().min(255)]
}

/// Serialises packets into one compound packet.
pub fn write_compound(packets: &[RtcpPacket]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    packets.iter().for_each(|p| p.write(&mut out));
    out
}

/// RFC 5761 §4 demultiplexing on one port: RTCP packet types 192..=223
/// occupy the second octet where RTP would carry marker + PT 64..=95,
/// which RFC 5761 §4 forbids RTP to use.
pub fn is_rtcp(datagram: &[u8]) -> bool {
    matches!(datagram.get(1), Some(192..=223))
}

#[cfg(test)]
#[path = "rtcp_tests.rs"]
mod tests;
