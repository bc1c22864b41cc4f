//! Ed25519 keys and detached signatures for remote templates and variables.
//!
//! # File formats
//!
//! Every file is text: a header line naming what it holds, then one line of
//! standard base64 (with padding). Blank lines and lines starting with `#`
//! are ignored, so an admin may annotate a key file.
//!
//! ```text
//! msipprov-ed25519-public-key       (KEYFILE.pub: the 32-byte public key)
//! msipprov-ed25519-private-key      (KEYFILE: the 32-byte secret seed, mode 0600)
//! msipprov-ed25519-signature        (FILE.sig: the 64-byte signature)
//! ```
//!
//! # What is signed
//!
//! The signature is Ed25519 over `msipprov-signature-v1\n` followed by the
//! 32 raw bytes of the SHA-256 of the file exactly as served. The prefix
//! keeps a msipprov signature from being valid for any other protocol that
//! might share the key; hashing first keeps the signed message small
//! whatever the file's size. Verification is strict (`verify_strict`), so a
//! signature has one valid encoding only.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// First line of a public key file.
pub const PUBLIC_HEADER: &str = "msipprov-ed25519-public-key";
/// First line of a private key file.
pub const PRIVATE_HEADER: &str = "msipprov-ed25519-private-key";
/// First line of a signature file.
pub const SIGNATURE_HEADER: &str = "msipprov-ed25519-signature";
/// The extension of a detached signature: `bundle.tar.gz` → `bundle.tar.gz.sig`.
pub const SIGNATURE_SUFFIX: &str = ".sig";
/// Prepended to the file's SHA-256 before signing (domain separation).
const SIGNED_PREFIX: &[u8] = b"msipprov-signature-v1\n";

/// Why a key or signature could not be made, read or checked.
#[derive(Debug, Error)]
pub enum KeyError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// keygen would overwrite a key file.
    #[error("{} already exists; keygen never overwrites a key (remove it first, or choose another name)", .0.display())]
    Exists(PathBuf),
    /// The text is not in the documented format.
    #[error("{what}: {message}")]
    Format {
        /// The file or argument.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// The system's random source failed.
    #[error("cannot get random bytes for a new key: {0}")]
    Random(String),
}

/// A public key that signatures are checked against.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

impl PublicKey {
    /// The key as one base64 line (what `--trust` accepts inline).
    pub fn to_base64(&self) -> String {
        B64.encode(self.0.as_bytes())
    }

    /// A short, stable name for the key: `SHA256:` and the first 16 hex
    /// digits of the SHA-256 of the key bytes.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        format!("SHA256:{}", hex::encode(&digest[..8]))
    }

    /// The public key file's text.
    pub fn to_file_text(&self) -> String {
        format!("{PUBLIC_HEADER}\n{}\n", self.to_base64())
    }

    /// Parses the text of a public key file; `what` names it in errors.
    pub fn parse_file(text: &str, what: &str) -> Result<Self, KeyError> {
        let bytes = parse_armored(text, PUBLIC_HEADER, 32, what)?;
        Self::from_slice(&bytes, what)
    }

    /// Parses one base64 line holding the 32 key bytes.
    pub fn parse_base64(text: &str, what: &str) -> Result<Self, KeyError> {
        let bytes = decode_b64(text.trim(), 32, what)?;
        Self::from_slice(&bytes, what)
    }

    fn from_slice(bytes: &[u8], what: &str) -> Result<Self, KeyError> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Format {
            what: what.to_owned(),
            message: "a public key is 32 bytes".to_owned(),
        })?;
        VerifyingKey::from_bytes(&array)
            .map(PublicKey)
            .map_err(|_| KeyError::Format {
                what: what.to_owned(),
                message: "not a valid Ed25519 public key".to_owned(),
            })
    }

    /// Resolves a `--trust` or config `trust` value: the key's base64 line
    /// itself, else the path of a public key file (relative paths against
    /// `base`, when given).
    pub fn from_trust_spec(spec: &str, base: Option<&Path>) -> Result<Self, KeyError> {
        let spec = spec.trim();
        if let Ok(key) = Self::parse_base64(spec, spec) {
            return Ok(key);
        }
        let path = match base {
            Some(base) if Path::new(spec).is_relative() => base.join(spec),
            _ => PathBuf::from(spec),
        };
        let text = std::fs::read_to_string(&path).map_err(|source| KeyError::Io {
            path: path.clone(),
            source,
        })?;
        Self::parse_file(&text, &path.display().to_string())
    }
}

/// A private key, for `pack --sign` and `sign`.
pub struct PrivateKey(SigningKey);

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secret material, even in debug output.
        write!(f, "PrivateKey(public {})", self.public().fingerprint())
    }
}

impl PrivateKey {
    /// A new random key from the operating system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(PrivateKey(SigningKey::from_bytes(&seed)))
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Reads a private key file.
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.to_owned(),
            source,
        })?;
        let what = path.display().to_string();
        let bytes = parse_armored(&text, PRIVATE_HEADER, 32, &what)?;
        let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::Format {
            what,
            message: "a private key is 32 bytes".to_owned(),
        })?;
        Ok(PrivateKey(SigningKey::from_bytes(&seed)))
    }

    /// Signs `bytes`; returns the signature file's text.
    pub fn sign(&self, bytes: &[u8]) -> String {
        let signature = self.0.sign(&signed_message(bytes));
        format!("{SIGNATURE_HEADER}\n{}\n", B64.encode(signature.to_bytes()))
    }

    /// Writes the key pair: `path` (private, owner-only on Unix) and
    /// `path.pub`. Refuses when either file exists.
    pub fn write_pair(&self, path: &Path) -> Result<PathBuf, KeyError> {
        let public_path = public_path_of(path);
        for p in [path, public_path.as_path()] {
            if p.exists() {
                return Err(KeyError::Exists(p.to_owned()));
            }
        }
        let private_text = format!("{PRIVATE_HEADER}\n{}\n", B64.encode(self.0.to_bytes()));
        write_new(path, private_text.as_bytes(), true)?;
        if let Err(e) = write_new(&public_path, self.public().to_file_text().as_bytes(), false) {
            // Half a pair is worse than none: the next keygen would refuse.
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Ok(public_path)
    }
}

/// `KEYFILE.pub` beside `KEYFILE`.
pub fn public_path_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Creates `path`, failing if it exists (`create_new` closes the race
/// between the existence check and the write).
fn write_new(path: &Path, bytes: &[u8], private: bool) -> Result<(), KeyError> {
    let io_err = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    // On Windows a new file inherits the folder's ACL, which under the
    // user's profile is already owner (and SYSTEM/admins) only.
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            KeyError::Exists(path.to_owned())
        } else {
            io_err(e)
        }
    })?;
    file.write_all(bytes).map_err(io_err)?;
    file.sync_all().map_err(io_err)
}

/// Why a signature did not verify.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum VerifyError {
    /// The signature file is not in the documented format.
    #[error("the signature is malformed: {0}")]
    Malformed(String),
    /// No trusted key verifies the signature: the file was changed after
    /// signing, or signed with a key that is not trusted.
    #[error("the signature does not match the file for any trusted key ({keys}): the file was changed after signing, or signed with another key")]
    Mismatch {
        /// The trusted keys' fingerprints, comma separated.
        keys: String,
    },
}

/// Checks `signature_text` (a signature file) over `bytes` against every
/// trusted key; returns the key that verified it.
pub fn verify<'k>(
    trusted: &'k [PublicKey],
    bytes: &[u8],
    signature_text: &str,
) -> Result<&'k PublicKey, VerifyError> {
    let raw = parse_armored(signature_text, SIGNATURE_HEADER, 64, "signature")
        .map_err(|e| VerifyError::Malformed(e.to_string()))?;
    let array: [u8; 64] = raw
        .as_slice()
        .try_into()
        .map_err(|_| VerifyError::Malformed("a signature is 64 bytes".to_owned()))?;
    let signature = Signature::from_bytes(&array);
    let message = signed_message(bytes);
    trusted
        .iter()
        .find(|key| key.0.verify_strict(&message, &signature).is_ok())
        .ok_or_else(|| VerifyError::Mismatch {
            keys: trusted
                .iter()
                .map(PublicKey::fingerprint)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn signed_message(bytes: &[u8]) -> Vec<u8> {
    let mut message = SIGNED_PREFIX.to_vec();
    message.extend_from_slice(&Sha256::digest(bytes));
    message
}

/// The base64 payload of a header + base64 text, checked for length.
fn parse_armored(text: &str, header: &str, len: usize, what: &str) -> Result<Vec<u8>, KeyError> {
    let format = |message: String| KeyError::Format {
        what: what.to_owned(),
        message,
    };
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    match lines.next() {
        Some(first) if first == header => {}
        Some(first) => {
            let found = [PUBLIC_HEADER, PRIVATE_HEADER, SIGNATURE_HEADER]
                .into_iter()
                .find(|h| *h == first);
            return Err(format(match found {
                Some(other) => format!("holds a {other}, expected a {header}"),
                None => format!("the first line must be {header:?}"),
            }));
        }
        None => return Err(format("empty".to_owned())),
    }
    let payload = lines
        .next()
        .ok_or_else(|| format(format!("no base64 line after {header:?}")))?;
    if lines.next().is_some() {
        return Err(format("more than one base64 line".to_owned()));
    }
    decode_b64(payload, len, what)
}

fn decode_b64(text: &str, len: usize, what: &str) -> Result<Vec<u8>, KeyError> {
    let bytes = B64.decode(text).map_err(|e| KeyError::Format {
        what: what.to_owned(),
        message: format!("not base64: {e}"),
    })?;
    if bytes.len() != len {
        return Err(KeyError::Format {
            what: what.to_owned(),
            message: format!("{} bytes, expected {len}", bytes.len()),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip_and_detect_changes() {
        let key = PrivateKey::generate().unwrap();
        let other = PrivateKey::generate().unwrap();
        let sig = key.sign(b"bundle bytes");
        let trusted = [other.public(), key.public()];
        assert_eq!(verify(&trusted, b"bundle bytes", &sig), Ok(&trusted[1]));
        assert!(matches!(
            verify(&trusted, b"bundle bytez", &sig),
            Err(VerifyError::Mismatch { .. })
        ));
        assert!(matches!(
            verify(&[other.public()], b"bundle bytes", &sig),
            Err(VerifyError::Mismatch { .. })
        ));
        assert!(matches!(
            verify(&trusted, b"bundle bytes", "garbage"),
            Err(VerifyError::Malformed(_))
        ));
    }

    #[test]
    fn key_files_round_trip_and_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corp");
        let key = PrivateKey::generate().unwrap();
        let public_path = key.write_pair(&path).unwrap();
        assert_eq!(public_path, dir.path().join("corp.pub"));
        let read = PrivateKey::read(&path).unwrap();
        assert_eq!(read.public(), key.public());
        let public = PublicKey::from_trust_spec("corp.pub", Some(dir.path())).unwrap();
        assert_eq!(public, key.public());
        let inline = PublicKey::from_trust_spec(&key.public().to_base64(), None).unwrap();
        assert_eq!(inline, key.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = PrivateKey::generate().unwrap();
        assert!(matches!(again.write_pair(&path), Err(KeyError::Exists(_))));
        assert_eq!(PrivateKey::read(&path).unwrap().public(), key.public());
    }

    #[test]
    fn wrong_kind_of_file_is_named() {
        let key = PrivateKey::generate().unwrap();
        let err = PublicKey::parse_file(&key.sign(b"x"), "k.pub").unwrap_err();
        assert!(err
            .to_string()
            .contains("holds a msipprov-ed25519-signature"));
        let commented = format!("# corp key\n\n{}", key.public().to_file_text());
        assert_eq!(
            PublicKey::parse_file(&commented, "k.pub").unwrap(),
            key.public()
        );
    }
}
