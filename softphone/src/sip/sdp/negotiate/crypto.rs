//! SDES (RFC 4568) `a=crypto` offer/answer for the audio stream.

use super::super::model::{Attribute, MediaDescription};
use crate::media::srtp::{SrtpKey, SrtpSuite, MASTER_KEY_LEN, MASTER_SALT_LEN};

/// The account's `SRTP` setting as the SDP layer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SrtpMode {
    /// Plain RTP only; `RTP/SAVP` offers are refused.
    #[default]
    Off,
    /// Offer `RTP/AVP` with `a=crypto` (as MicroSIP/PJSIP do) and use
    /// SRTP whenever the peer does.
    Optional,
    /// Offer `RTP/SAVP`; refuse plain RTP.
    Mandatory,
}

/// The SRTP keys of a negotiated stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    /// Ours: protects what we send.
    pub local: SrtpKey,
    /// The peer's: unprotects what we receive.
    pub remote: SrtpKey,
}

/// Our master key and salt, kept for the whole call so re-INVITEs do not
/// rekey (a new key would break packets already in flight).
pub(super) type KeyMaterial = [u8; MASTER_KEY_LEN + MASTER_SALT_LEN];

/// Fresh key material from the OS random source.
pub(super) fn random_material() -> Result<KeyMaterial, String> {
    let mut bytes = [0u8; MASTER_KEY_LEN + MASTER_SALT_LEN];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// One parsed `a=crypto:<tag> <suite> <key-params>` line we can use.
pub(super) struct Crypto {
    pub tag: u32,
    pub key: SrtpKey,
}

/// The `a=crypto` lines of `m` whose suite and key we support, in order.
pub(super) fn crypto_lines(m: &MediaDescription) -> Vec<Crypto> {
    m.attributes
        .iter()
        .filter(|a| a.name.eq_ignore_ascii_case("crypto"))
        .filter_map(|a| {
            let mut parts = a.value.as_deref()?.split_whitespace();
            let tag = parts.next()?.parse().ok()?;
            let suite = SrtpSuite::from_name(parts.next()?)?;
            let key = SrtpKey::from_key_params(suite, parts.next()?).ok()?;
            // Session parameters (UNENCRYPTED_SRTP, KDR, ...) change the
            // packet processing we implement, so such lines are skipped.
            if parts.next().is_some() {
                return None;
            }
            Some(Crypto { tag, key })
        })
        .collect()
}

/// Our `a=crypto` attribute.
pub(super) fn crypto_attribute(tag: u32, key: &SrtpKey) -> Attribute {
    Attribute::value(
        "crypto",
        format!("{tag} {} inline:{}", key.suite.name(), key.inline()),
    )
}

/// Whether `m` is the secure AVP profile.
pub(super) fn is_savp(m: &MediaDescription) -> bool {
    m.proto.eq_ignore_ascii_case("RTP/SAVP")
}
