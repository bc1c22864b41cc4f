//! Text encodings and line endings of MicroSIP's files.
//!
//! MicroSIP writes `microsip.ini` as UTF-16 LE with a BOM and CRLF; files made
//! by hand or by scripts are UTF-8 (with or without BOM) or ANSI. We decode
//! each of them losslessly so that writing back gives the same bytes.

use serde::Serialize;
use thiserror::Error;

/// How a file's bytes map to text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// UTF-16 little endian with the `FF FE` byte order mark: MicroSIP's own.
    Utf16LeBom,
    /// UTF-8 with the `EF BB BF` byte order mark.
    Utf8Bom,
    /// UTF-8 without a byte order mark (pure ASCII files land here too).
    Utf8,
    /// Bytes that are not valid UTF-8 and carry no BOM: Windows' ANSI code
    /// page, read as Windows-1252 (a bijection on bytes, so nothing is lost).
    Ansi,
}

impl Encoding {
    /// Whether MicroSIP reads this encoding without mangling non-ASCII text:
    /// only a UTF-16 LE file with BOM is read as Unicode; every other file is
    /// read in the ANSI code page.
    pub fn is_unicode_for_microsip(self) -> bool {
        self == Encoding::Utf16LeBom
    }

    /// A short human name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf16LeBom => "UTF-16 LE with BOM",
            Encoding::Utf8Bom => "UTF-8 with BOM",
            Encoding::Utf8 => "UTF-8",
            Encoding::Ansi => "ANSI (Windows-1252)",
        }
    }
}

/// The end of one line, kept per line so mixed files round-trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LineEnding {
    /// `\r\n`, what MicroSIP and Windows write.
    CrLf,
    /// `\n`.
    Lf,
    /// The last line of a file that does not end with a newline.
    None,
}

impl LineEnding {
    /// The characters of this ending.
    pub fn as_str(self) -> &'static str {
        match self {
            LineEnding::CrLf => "\r\n",
            LineEnding::Lf => "\n",
            LineEnding::None => "",
        }
    }
}

/// Bytes that cannot be read as text in any encoding MicroSIP uses.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// `FE FF`: MicroSIP cannot read UTF-16 big endian.
    #[error("the file is UTF-16 big endian (BOM FE FF); MicroSIP reads only UTF-16 little endian with BOM FF FE, UTF-8 or ANSI")]
    Utf16Be,
    /// An odd number of bytes after a UTF-16 BOM.
    #[error("the file has a UTF-16 BOM but an odd number of bytes ({0}): it is truncated")]
    OddUtf16Length(usize),
    /// A lone surrogate in UTF-16 text.
    #[error("line {line}: invalid UTF-16 (unpaired surrogate {unit:#06x})")]
    UnpairedSurrogate {
        /// 1-based line of the bad code unit.
        line: usize,
        /// The offending code unit.
        unit: u16,
    },
    /// NUL bytes without a BOM: most likely UTF-16 that lost its BOM.
    #[error("line {line}: the file contains NUL bytes but no UTF-16 BOM: it looks like UTF-16 without a byte order mark, which MicroSIP reads as garbage")]
    NulWithoutBom {
        /// 1-based line of the first NUL byte.
        line: usize,
    },
}

const UTF16LE_BOM: [u8; 2] = [0xFF, 0xFE];
const UTF16BE_BOM: [u8; 2] = [0xFE, 0xFF];
const UTF8_BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Decodes a whole file, detecting its encoding from the BOM and content.
pub fn decode(bytes: &[u8]) -> Result<(Encoding, String), DecodeError> {
    if let Some(body) = bytes.strip_prefix(&UTF16LE_BOM) {
        return decode_utf16le(body).map(|text| (Encoding::Utf16LeBom, text));
    }
    if bytes.starts_with(&UTF16BE_BOM) {
        return Err(DecodeError::Utf16Be);
    }
    if let Some(body) = bytes.strip_prefix(&UTF8_BOM) {
        return Ok(decode_8bit(body, true));
    }
    if let Some(pos) = bytes.iter().position(|&b| b == 0) {
        return Err(DecodeError::NulWithoutBom {
            line: line_of_byte(bytes, pos),
        });
    }
    Ok(decode_8bit(bytes, false))
}

fn decode_8bit(body: &[u8], bom: bool) -> (Encoding, String) {
    match std::str::from_utf8(body) {
        Ok(text) => (
            if bom {
                Encoding::Utf8Bom
            } else {
                Encoding::Utf8
            },
            text.to_owned(),
        ),
        // A BOM says UTF-8 but the bytes disagree: keep them all, BOM
        // included, as ANSI text rather than refuse the file; writing gives
        // back the same bytes.
        Err(_) => {
            let all = if bom {
                [&UTF8_BOM[..], body].concat()
            } else {
                body.to_vec()
            };
            let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(&all);
            (Encoding::Ansi, text.into_owned())
        }
    }
}

fn decode_utf16le(body: &[u8]) -> Result<String, DecodeError> {
    if body.len() % 2 != 0 {
        return Err(DecodeError::OddUtf16Length(body.len() + UTF16LE_BOM.len()));
    }
    let units = body
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]));
    let mut text = String::with_capacity(body.len() / 2);
    let mut line = 1;
    for unit in char::decode_utf16(units) {
        match unit {
            Ok(c) => {
                if c == '\n' {
                    line += 1;
                }
                text.push(c);
            }
            Err(e) => {
                return Err(DecodeError::UnpairedSurrogate {
                    line,
                    unit: e.unpaired_surrogate(),
                })
            }
        }
    }
    Ok(text)
}

/// Encodes text back to bytes in `encoding`, BOM included.
///
/// Text that came from [`decode`] always encodes back to the same bytes.
/// For [`Encoding::Ansi`], characters outside Windows-1252 become `?`, as
/// Windows does; callers that care check [`fits_ansi`] first.
pub fn encode(text: &str, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Utf16LeBom => {
            let mut out = Vec::with_capacity(2 + text.len() * 2);
            out.extend_from_slice(&UTF16LE_BOM);
            for unit in text.encode_utf16() {
                out.extend_from_slice(&unit.to_le_bytes());
            }
            out
        }
        Encoding::Utf8Bom => {
            let mut out = Vec::with_capacity(3 + text.len());
            out.extend_from_slice(&UTF8_BOM);
            out.extend_from_slice(text.as_bytes());
            out
        }
        Encoding::Utf8 => text.as_bytes().to_vec(),
        Encoding::Ansi => text
            .chars()
            .flat_map(|c| {
                let mut buf = [0u8; 4];
                let s = c.encode_utf8(&mut buf);
                let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(s);
                if unmappable {
                    vec![b'?']
                } else {
                    bytes.into_owned()
                }
            })
            .collect(),
    }
}

/// Whether `text` can be written in the ANSI code page without loss.
pub fn fits_ansi(text: &str) -> bool {
    let (_, _, unmappable) = encoding_rs::WINDOWS_1252.encode(text);
    !unmappable
}

fn line_of_byte(bytes: &[u8], pos: usize) -> usize {
    1 + bytes[..pos].iter().filter(|&&b| b == b'\n').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16le_with_bom_round_trips() {
        let text = "[Calls]\r\n5=9787563142;Hard (Академическая);1;1718273852;0;\r\n";
        let bytes = encode(text, Encoding::Utf16LeBom);
        assert_eq!(&bytes[..2], &[0xFF, 0xFE]);
        assert_eq!(
            decode(&bytes).unwrap(),
            (Encoding::Utf16LeBom, text.to_owned())
        );
    }

    #[test]
    fn invalid_utf8_is_read_as_ansi_and_written_back_unchanged() {
        let bytes = b"[Account1]\r\nlabel=Caf\xe9 \x81\x9d\r\n".to_vec();
        let (enc, text) = decode(&bytes).unwrap();
        assert_eq!(enc, Encoding::Ansi);
        assert!(text.contains("Café"));
        assert_eq!(encode(&text, enc), bytes);
    }

    #[test]
    fn utf8_bom_with_invalid_body_keeps_its_bytes() {
        let bytes = b"\xEF\xBB\xBF[x]\r\na=\xff\r\n".to_vec();
        let (enc, text) = decode(&bytes).unwrap();
        assert_eq!(enc, Encoding::Ansi);
        assert_eq!(encode(&text, enc), bytes);
    }

    #[test]
    fn broken_utf16_is_an_error_with_its_line() {
        assert_eq!(decode(&[0xFE, 0xFF, 0, b'a']), Err(DecodeError::Utf16Be));
        assert!(matches!(
            decode(&[0xFF, 0xFE, b'a']),
            Err(DecodeError::OddUtf16Length(3))
        ));
        let mut bytes = encode("a\r\nb\r\n", Encoding::Utf16LeBom);
        bytes.extend_from_slice(&0xD800u16.to_le_bytes());
        assert_eq!(
            decode(&bytes),
            Err(DecodeError::UnpairedSurrogate {
                line: 3,
                unit: 0xD800
            })
        );
        assert_eq!(
            decode(b"[a]\r\nk\0=\0"),
            Err(DecodeError::NulWithoutBom { line: 2 })
        );
    }
}
