//! `softphone::media::srtp`: SRTP and SRTCP (RFC 3711) with SDES keys
//! (RFC 4568), sans-IO.
//!
//! Only the suites MicroSIP/PJSIP and baresip offer by default are
//! implemented: `AES_CM_128_HMAC_SHA1_80` and `AES_CM_128_HMAC_SHA1_32`
//! (master key 128 bits, salt 112 bits, key derivation rate 0, no MKI).
//!
//! One [`SrtpContext`] protects one direction: the sender builds it from
//! its own SDES key, the receiver from the peer's key. Per-SSRC state
//! (rollover counter, replay window) lives inside, so a peer that changes
//! SSRC mid-call keeps working.

use std::collections::HashMap;

use aes::cipher::{KeyIvInit, StreamCipher};
use base64::Engine as _;
use hmac::Mac;

/// AES-128 in counter mode with a 128-bit big-endian counter, as RFC 3711
/// §4.1.1 defines AES-CM.
type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;
type HmacSha1 = hmac::Hmac<sha1::Sha1>;

/// Master key length in bytes.
pub const MASTER_KEY_LEN: usize = 16;
/// Master salt length in bytes.
pub const MASTER_SALT_LEN: usize = 14;
/// The SRTCP authentication tag length: 80 bits for both suites
/// (RFC 4568 §6.2.2: the `_32` suite shortens only the SRTP tag).
const SRTCP_TAG_LEN: usize = 10;
/// Bytes of the SRTCP `E || index` word.
const SRTCP_INDEX_LEN: usize = 4;
/// Width of the replay window (RFC 3711 §3.3.2 requires at least 64).
const REPLAY_WINDOW: u64 = 64;

/// Why a packet could not be protected or unprotected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// Too short or malformed to be (S)RTP/(S)RTCP.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// The authentication tag does not match: forged or damaged.
    #[error("authentication failed")]
    AuthFailed,
    /// Already received, or too old for the replay window.
    #[error("replayed packet (index {0})")]
    Replay(u64),
    /// The SRTCP index space is exhausted: rekeying is needed.
    #[error("SRTCP index exhausted")]
    IndexExhausted,
    /// An SDES `inline:` key is unreadable.
    #[error("bad SDES key: {0}")]
    BadKey(String),
    /// The OS random source failed.
    #[error("random source failed: {0}")]
    Random(String),
}

/// An SDES crypto suite (RFC 4568 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpSuite {
    /// AES-CM 128, HMAC-SHA1 with an 80-bit tag.
    AesCm128HmacSha1_80,
    /// AES-CM 128, HMAC-SHA1 with a 32-bit SRTP tag (SRTCP stays 80).
    AesCm128HmacSha1_32,
}

impl SrtpSuite {
    /// Our preference order when answering.
    pub const ALL: [SrtpSuite; 2] = [
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
    ];

    /// The suite's name in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// Parses an `a=crypto` suite name (case-sensitive per RFC 4568, but
    /// some peers lowercase it, so compare case-insensitively).
    pub fn from_name(name: &str) -> Option<SrtpSuite> {
        Self::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// The SRTP authentication tag length in bytes.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => 10,
            SrtpSuite::AesCm128HmacSha1_32 => 4,
        }
    }
}

/// One side's SDES master key and salt with its suite.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKey {
    /// The crypto suite.
    pub suite: SrtpSuite,
    /// The 128-bit master key.
    pub master_key: [u8; MASTER_KEY_LEN],
    /// The 112-bit master salt.
    pub master_salt: [u8; MASTER_SALT_LEN],
}

impl std::fmt::Debug for SrtpKey {
    // Keys must never reach logs; the suite is enough to debug.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpKey")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl SrtpKey {
    /// A fresh random key from the OS random source.
    pub fn generate(suite: SrtpSuite) -> Result<SrtpKey, SrtpError> {
        let mut bytes = [0u8; MASTER_KEY_LEN + MASTER_SALT_LEN];
        getrandom::fill(&mut bytes).map_err(|e| SrtpError::Random(e.to_string()))?;
        Ok(Self::from_bytes(suite, &bytes))
    }

    /// A key from raw master key || master salt bytes.
    pub fn from_bytes(suite: SrtpSuite, bytes: &[u8; MASTER_KEY_LEN + MASTER_SALT_LEN]) -> SrtpKey {
        let mut master_key = [0u8; MASTER_KEY_LEN];
        let mut master_salt = [0u8; MASTER_SALT_LEN];
        master_key.copy_from_slice(&bytes[..MASTER_KEY_LEN]);
        master_salt.copy_from_slice(&bytes[MASTER_KEY_LEN..]);
        SrtpKey {
            suite,
            master_key,
            master_salt,
        }
    }

    /// The `inline:` key parameter: base64 of key || salt.
    pub fn inline(&self) -> String {
        let mut bytes = Vec::with_capacity(MASTER_KEY_LEN + MASTER_SALT_LEN);
        bytes.extend_from_slice(&self.master_key);
        bytes.extend_from_slice(&self.master_salt);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// Parses the key parameters of an `a=crypto` line (`inline:<b64>`
    /// with optional `|lifetime|MKI:len` parts, which we ignore: we never
    /// rekey, and an MKI would change the packet layout, so refuse it).
    pub fn from_key_params(suite: SrtpSuite, params: &str) -> Result<SrtpKey, SrtpError> {
        // Several keys may be listed separated by ';'; the first is used.
        let first = params.split(';').next().unwrap_or_default();
        let info = first
            .strip_prefix("inline:")
            .ok_or_else(|| SrtpError::BadKey("no inline: key".into()))?;
        let mut parts = info.split('|');
        let b64 = parts.next().unwrap_or_default();
        if parts.any(|p| p.contains(':')) {
            return Err(SrtpError::BadKey("MKI is not supported".into()));
        }
        // Some peers strip the base64 padding; accept both forms.
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64))
            .map_err(|e| SrtpError::BadKey(e.to_string()))?;
        let bytes: [u8; MASTER_KEY_LEN + MASTER_SALT_LEN] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| SrtpError::BadKey(format!("{} bytes, want 30", decoded.len())))?;
        Ok(Self::from_bytes(suite, &bytes))
    }
}

/// Session keys derived for one of SRTP or SRTCP.
#[derive(Clone)]
struct SessionKeys {
    cipher_key: [u8; 16],
    salt: [u8; MASTER_SALT_LEN],
    auth: HmacSha1,
}

/// RFC 3711 §4.3.1 with key_derivation_rate 0: the PRF is AES-CM keyed
/// with the master key, IV = (master_salt XOR label << 48) * 2^16.
fn derive(key: &SrtpKey, label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..MASTER_SALT_LEN].copy_from_slice(&key.master_salt);
    // The label sits at byte 7 of the 14-byte key_id (label || r, r = 0).
    iv[7] ^= label;
    out.fill(0);
    let mut prf = Aes128Ctr::new(&key.master_key.into(), &iv.into());
    prf.apply_keystream(out);
}

impl SessionKeys {
    fn new(key: &SrtpKey, base_label: u8) -> SessionKeys {
        let mut cipher_key = [0u8; 16];
        let mut auth_key = [0u8; 20];
        let mut salt = [0u8; MASTER_SALT_LEN];
        derive(key, base_label, &mut cipher_key);
        derive(key, base_label + 1, &mut auth_key);
        derive(key, base_label + 2, &mut salt);
        SessionKeys {
            cipher_key,
            salt,
            // HMAC accepts any key length, so this cannot fail.
            auth: <HmacSha1 as hmac::KeyInit>::new_from_slice(&auth_key)
                .unwrap_or_else(|_| unreachable!("HMAC takes any key length")),
        }
    }

    /// RFC 3711 §4.1.1: IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16).
    fn iv(&self, ssrc: u32, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..MASTER_SALT_LEN].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        // The 48-bit index occupies bytes 8..14.
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        iv
    }

    fn crypt(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut ctr = Aes128Ctr::new(&self.cipher_key.into(), &self.iv(ssrc, index).into());
        ctr.apply_keystream(data);
    }

    /// HMAC-SHA1 over `parts`, truncated to `len` bytes.
    fn tag(&self, parts: &[&[u8]], len: usize) -> Vec<u8> {
        let mut mac = self.auth.clone();
        for p in parts {
            mac.update(p);
        }
        let full = mac.finalize().into_bytes();
        full[..len].to_vec()
    }
}

/// Constant-time comparison so tag checks leak no timing.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Replay protection and index tracking for one received SSRC.
#[derive(Debug, Clone, Copy, Default)]
struct ReplayWindow {
    /// The highest index accepted so far.
    highest: u64,
    /// Bit n set: index `highest - n` was accepted.
    bits: u64,
}

impl ReplayWindow {
    fn check(&self, index: u64) -> Result<(), SrtpError> {
        if index > self.highest {
            return Ok(());
        }
        let delta = self.highest - index;
        if delta >= REPLAY_WINDOW || self.bits & (1 << delta) != 0 {
            return Err(SrtpError::Replay(index));
        }
        Ok(())
    }

    fn accept(&mut self, index: u64) {
        if index > self.highest {
            let shift = index - self.highest;
            self.bits = if shift >= REPLAY_WINDOW {
                0
            } else {
                self.bits << shift
            };
            self.bits |= 1;
            self.highest = index;
        } else {
            self.bits |= 1 << (self.highest - index);
        }
    }
}

/// Per-SSRC SRTP state.
#[derive(Debug, Clone, Copy, Default)]
struct RtpStream {
    /// The highest 48-bit packet index seen (ROC << 16 | SEQ).
    index: Option<u64>,
    replay: ReplayWindow,
}

impl RtpStream {
    /// RFC 3711 Appendix A: the packet index guessed from SEQ and ROC.
    fn estimate(&self, seq: u16) -> u64 {
        let Some(last) = self.index else {
            return u64::from(seq);
        };
        let roc = last >> 16;
        let s_l = (last & 0xffff) as u16;
        let v = if s_l < 0x8000 {
            if seq > s_l && seq - s_l > 0x8000 {
                roc.wrapping_sub(1)
            } else {
                roc
            }
        } else if s_l - 0x8000 > seq {
            roc + 1
        } else {
            roc
        };
        // A wrap below ROC 0 only happens for packets reordered before the
        // very first one; index 0 then fails the replay check harmlessly.
        (v & 0xffff_ffff) << 16 | u64::from(seq)
    }

    fn advance(&mut self, index: u64) {
        if self.index.is_none_or(|i| index > i) {
            self.index = Some(index);
        }
    }
}

/// Per-SSRC SRTCP state.
#[derive(Debug, Clone, Copy, Default)]
struct RtcpStream {
    next_index: u32,
    replay: ReplayWindow,
}

/// Protects or unprotects one direction of one RTP session.
#[derive(Clone)]
pub struct SrtpContext {
    suite: SrtpSuite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    rtp_streams: HashMap<u32, RtpStream>,
    rtcp_streams: HashMap<u32, RtcpStream>,
}

impl std::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpContext")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// Bytes of the RTP header including CSRCs and the extension.
fn rtp_header_len(packet: &[u8]) -> Result<usize, SrtpError> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return Err(SrtpError::Malformed("not RTP version 2"));
    }
    let mut len = 12 + 4 * usize::from(packet[0] & 0x0f);
    if packet[0] & 0x10 != 0 {
        let ext = packet
            .get(len + 2..len + 4)
            .ok_or(SrtpError::Malformed("truncated header extension"))?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    if len > packet.len() {
        return Err(SrtpError::Malformed("truncated RTP header"));
    }
    Ok(len)
}

fn ssrc_at(packet: &[u8], at: usize) -> Result<u32, SrtpError> {
    packet
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or(SrtpError::Malformed("no SSRC"))
}

impl SrtpContext {
    /// A context keyed with `key` (ours to protect, the peer's to
    /// unprotect).
    pub fn new(key: &SrtpKey) -> SrtpContext {
        SrtpContext {
            suite: key.suite,
            // RFC 3711 §4.3.1 labels: 0..2 for SRTP, 3..5 for SRTCP.
            rtp: SessionKeys::new(key, 0),
            rtcp: SessionKeys::new(key, 3),
            rtp_streams: HashMap::new(),
            rtcp_streams: HashMap::new(),
        }
    }

    /// Encrypts an RTP packet and appends its tag (RFC 3711 §3.3).
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let header = rtp_header_len(packet)?;
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = ssrc_at(packet, 8)?;
        let stream = self.rtp_streams.entry(ssrc).or_default();
        let index = stream.estimate(seq);
        stream.advance(index);
        let mut out = packet.to_vec();
        self.rtp.crypt(ssrc, index, &mut out[header..]);
        let roc = ((index >> 16) as u32).to_be_bytes();
        let tag = self.rtp.tag(&[&out, &roc], self.suite.rtp_tag_len());
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Checks and decrypts an SRTP packet; forged, damaged and replayed
    /// packets are refused, and the caller drops them.
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let tag_len = self.suite.rtp_tag_len();
        let body_len = packet
            .len()
            .checked_sub(tag_len)
            .ok_or(SrtpError::Malformed("shorter than the tag"))?;
        let (body, tag) = packet.split_at(body_len);
        let header = rtp_header_len(body)?;
        let seq = u16::from_be_bytes([body[2], body[3]]);
        let ssrc = ssrc_at(body, 8)?;
        let stream = self.rtp_streams.get(&ssrc).copied().unwrap_or_default();
        let index = stream.estimate(seq);
        if stream.index.is_some() {
            stream.replay.check(index)?;
        }
        let roc = ((index >> 16) as u32).to_be_bytes();
        if !ct_eq(&self.rtp.tag(&[body, &roc], tag_len), tag) {
            return Err(SrtpError::AuthFailed);
        }
        // Only authenticated packets may move the ROC and the window.
        let entry = self.rtp_streams.entry(ssrc).or_default();
        entry.advance(index);
        entry.replay.accept(index);
        let mut out = body.to_vec();
        self.rtp.crypt(ssrc, index, &mut out[header..]);
        Ok(out)
    }

    /// Encrypts an RTCP compound packet (all but the first 8 bytes),
    /// appends `E=1 || SRTCP index` and the tag (RFC 3711 §3.4).
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        if packet.len() < 8 || packet[0] >> 6 != 2 {
            return Err(SrtpError::Malformed("not RTCP"));
        }
        let ssrc = ssrc_at(packet, 4)?;
        let stream = self.rtcp_streams.entry(ssrc).or_default();
        let index = stream.next_index;
        if index > 0x7fff_ffff {
            return Err(SrtpError::IndexExhausted);
        }
        stream.next_index += 1;
        let mut out = packet.to_vec();
        self.rtcp.crypt(ssrc, u64::from(index), &mut out[8..]);
        out.extend_from_slice(&(index | 0x8000_0000).to_be_bytes());
        let tag = self.rtcp.tag(&[&out], SRTCP_TAG_LEN);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Checks and decrypts an SRTCP packet.
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let body_len = packet
            .len()
            .checked_sub(SRTCP_TAG_LEN + SRTCP_INDEX_LEN)
            .filter(|&n| n >= 8)
            .ok_or(SrtpError::Malformed("SRTCP too short"))?;
        let (authed, tag) = packet.split_at(body_len + SRTCP_INDEX_LEN);
        if !ct_eq(&self.rtcp.tag(&[authed], SRTCP_TAG_LEN), tag) {
            return Err(SrtpError::AuthFailed);
        }
        let (body, e_index) = authed.split_at(body_len);
        let word = u32::from_be_bytes([e_index[0], e_index[1], e_index[2], e_index[3]]);
        let encrypted = word & 0x8000_0000 != 0;
        let index = u64::from(word & 0x7fff_ffff);
        let ssrc = ssrc_at(body, 4)?;
        let stream = self.rtcp_streams.entry(ssrc).or_default();
        if stream.replay.bits != 0 {
            stream.replay.check(index)?;
        }
        stream.replay.accept(index);
        let mut out = body.to_vec();
        if encrypted {
            self.rtcp.crypt(ssrc, index, &mut out[8..]);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).expect("test hex")
    }

    fn b3_key() -> SrtpKey {
        let mut bytes = [0u8; 30];
        bytes[..16].copy_from_slice(&hex("E1F97A0D3E018BE0D64FA32C06DE4139"));
        bytes[16..].copy_from_slice(&hex("0EC675AD498AFEEBB6960B3AABE6"));
        SrtpKey::from_bytes(SrtpSuite::AesCm128HmacSha1_80, &bytes)
    }

    /// RFC 3711 Appendix B.3.
    #[test]
    fn key_derivation_matches_rfc3711_b3() {
        let key = b3_key();
        let mut k = [0u8; 16];
        derive(&key, 0, &mut k);
        assert_eq!(k.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
        let mut s = [0u8; 14];
        derive(&key, 2, &mut s);
        assert_eq!(s.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
        let mut a = [0u8; 94];
        derive(&key, 1, &mut a);
        assert_eq!(
            a.to_vec(),
            hex(
                "CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE \
                 E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25 \
                 6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2"
            )
        );
    }

    /// RFC 3711 Appendix B.2: AES-CM keystream for SSRC 0, index 0.
    #[test]
    fn keystream_matches_rfc3711_b2() {
        let mut salt = [0u8; 14];
        salt.copy_from_slice(&hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"));
        let keys = SessionKeys {
            cipher_key: hex("2B7E151628AED2A6ABF7158809CF4F3C")
                .try_into()
                .expect("16 bytes"),
            salt,
            auth: <HmacSha1 as hmac::KeyInit>::new_from_slice(&[0u8; 20]).expect("hmac"),
        };
        let mut stream = vec![0u8; 0xff02 * 16];
        keys.crypt(0, 0, &mut stream);
        assert_eq!(
            stream[..16].to_vec(),
            hex("E03EAD0935C95E80E166B16DD92B4EB4")
        );
        assert_eq!(
            stream[16..32].to_vec(),
            hex("D23513162B02D0F72A43A2FE4A5F97AB")
        );
        assert_eq!(
            stream[32..48].to_vec(),
            hex("41E95B3BB0A2E8DD477901E4FCA894C0")
        );
        let block = |n: usize| stream[n * 16..n * 16 + 16].to_vec();
        assert_eq!(block(0xfeff), hex("EC8CDF7398607CB0F2D21675EA9EA1E4"));
        assert_eq!(block(0xff00), hex("362B7C3C6773516318A077D7FC5073AE"));
        assert_eq!(block(0xff01), hex("6A2CC3787889374FBEB4C81B17BA6C44"));
    }

    fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 160, 0x12, 0x34, 0x56, 0x78];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn rtp_round_trip_detects_tampering_and_replay() {
        for suite in SrtpSuite::ALL {
            let key = SrtpKey::generate(suite).expect("random");
            let mut tx = SrtpContext::new(&key);
            let mut rx = SrtpContext::new(&key);
            let plain = rtp(7, b"hello audio");
            let wire = tx.protect_rtp(&plain).expect("protect");
            assert_eq!(wire.len(), plain.len() + suite.rtp_tag_len());
            assert_ne!(&wire[12..23], b"hello audio");
            let mut forged = wire.clone();
            forged[14] ^= 1;
            assert_eq!(rx.unprotect_rtp(&forged), Err(SrtpError::AuthFailed));
            assert_eq!(rx.unprotect_rtp(&wire).expect("unprotect"), plain);
            assert_eq!(rx.unprotect_rtp(&wire), Err(SrtpError::Replay(7)));
        }
    }

    #[test]
    fn rollover_counter_follows_sequence_wrap() {
        let key = SrtpKey::generate(SrtpSuite::AesCm128HmacSha1_80).expect("random");
        let mut tx = SrtpContext::new(&key);
        let mut rx = SrtpContext::new(&key);
        for seq in (0xfff0u16..=0xffff).chain(0..0x10) {
            let plain = rtp(seq, &[seq as u8; 20]);
            let wire = tx.protect_rtp(&plain).expect("protect");
            assert_eq!(
                rx.unprotect_rtp(&wire).expect("unprotect"),
                plain,
                "seq {seq}"
            );
        }
        assert_eq!(rx.rtp_streams[&0x1234_5678].index, Some(0x1_000f));
    }

    #[test]
    fn rtcp_round_trip_sets_e_flag_and_index() {
        let key = SrtpKey::generate(SrtpSuite::AesCm128HmacSha1_32).expect("random");
        let mut tx = SrtpContext::new(&key);
        let mut rx = SrtpContext::new(&key);
        let plain = vec![0x80, 201, 0, 1, 1, 2, 3, 4, 9, 9, 9, 9];
        for n in 0..3u32 {
            let wire = tx.protect_rtcp(&plain).expect("protect");
            assert_eq!(wire.len(), plain.len() + 14);
            assert_eq!(wire[12..16], (0x8000_0000 | n).to_be_bytes());
            let mut forged = wire.clone();
            forged[9] ^= 0x80;
            assert_eq!(rx.unprotect_rtcp(&forged), Err(SrtpError::AuthFailed));
            assert_eq!(rx.unprotect_rtcp(&wire).expect("unprotect"), plain);
            assert!(rx.unprotect_rtcp(&wire).is_err(), "replay {n}");
        }
    }

    #[test]
    fn inline_keys_round_trip_and_reject_garbage() {
        let key = SrtpKey::generate(SrtpSuite::AesCm128HmacSha1_80).expect("random");
        let inline = format!("inline:{}|2^31", key.inline());
        let parsed = SrtpKey::from_key_params(key.suite, &inline).expect("parse");
        assert!(parsed == key);
        assert!(SrtpKey::from_key_params(key.suite, "inline:AAAA").is_err());
        assert!(SrtpKey::from_key_params(key.suite, "nokey").is_err());
        let mki = format!("inline:{}|2^20|1:4", key.inline());
        assert!(SrtpKey::from_key_params(key.suite, &mki).is_err());
    }
}
