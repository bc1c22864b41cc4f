//! Request-Line and Status-Line (RFC 3261 §7.1, §7.2), read strictly.

use super::error::{clip, WireError};
use super::normalize::is_token_char;

/// A start line, checked but not yet mapped onto rsip types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StartLine {
    Request { method: String, uri: String },
    Response { code: u16, reason: String },
}

const VERSION: &str = "SIP/2.0";

pub(crate) fn parse(line: &str) -> Result<StartLine, WireError> {
    let is_response = line
        .get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("SIP/"));
    if is_response {
        parse_status_line(line)
    } else {
        parse_request_line(line)
    }
}

fn check_version(version: &str) -> Result<(), WireError> {
    if version.eq_ignore_ascii_case(VERSION) {
        Ok(())
    } else {
        Err(WireError::UnsupportedVersion {
            version: clip(version),
        })
    }
}

fn parse_status_line(line: &str) -> Result<StartLine, WireError> {
    let (version, rest) = line.split_once(' ').unwrap_or((line, ""));
    check_version(version)?;
    // The SP after the code is mandatory, but a missing reason is harmless
    // and some stacks omit both.
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    let bad_code = || WireError::BadStatusCode { code: clip(code) };
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_code());
    }
    let code: u16 = code.parse().map_err(|_| bad_code())?;
    if !(100..=699).contains(&code) {
        return Err(WireError::BadStatusCode {
            code: code.to_string(),
        });
    }
    if reason.chars().any(|c| c.is_control() && c != '\t') {
        return Err(WireError::BadStartLine {
            reason: "control character in the reason phrase",
        });
    }
    Ok(StartLine::Response {
        code,
        reason: reason.to_owned(),
    })
}

fn parse_request_line(line: &str) -> Result<StartLine, WireError> {
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, uri, version] = parts.as_slice() else {
        return Err(WireError::BadStartLine {
            reason: "request line must be Method SP Request-URI SP SIP-Version, single spaces",
        });
    };
    if method.is_empty() || !method.chars().all(is_token_char) {
        return Err(WireError::BadStartLine {
            reason: "method is not a token",
        });
    }
    if !version
        .get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("SIP/"))
    {
        return Err(WireError::BadStartLine {
            reason: "request line does not end in a SIP version",
        });
    }
    check_version(version)?;
    if uri.is_empty() {
        return Err(WireError::BadRequestUri { reason: "empty" });
    }
    Ok(StartLine::Request {
        method: (*method).to_owned(),
        uri: (*uri).to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, uri: &str) -> StartLine {
        StartLine::Request {
            method: method.into(),
            uri: uri.into(),
        }
    }

    #[test]
    fn request_lines() {
        assert_eq!(
            parse("INVITE sip:a@b SIP/2.0"),
            Ok(request("INVITE", "sip:a@b"))
        );
        assert_eq!(parse("FOO sip:a@b sip/2.0"), Ok(request("FOO", "sip:a@b")));
        for bad in [
            "INVITE  sip:a@b  SIP/2.0",
            "INVITE sip:a@b SIP/2.0  ",
            "INVITE sip:a@b; lr SIP/2.0",
            "INVITE sip:a@b",
            "",
        ] {
            assert!(
                matches!(parse(bad), Err(WireError::BadStartLine { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse("OPTIONS sip:a@b SIP/7.0"),
            Err(WireError::UnsupportedVersion {
                version: "SIP/7.0".into()
            })
        );
        assert!(matches!(
            parse("IN(VITE sip:a@b SIP/2.0"),
            Err(WireError::BadStartLine { .. })
        ));
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            parse("SIP/2.0 180 Ringing"),
            Ok(StartLine::Response {
                code: 180,
                reason: "Ringing".into()
            })
        );
        assert_eq!(
            parse("SIP/2.0 100 "),
            Ok(StartLine::Response {
                code: 100,
                reason: String::new()
            })
        );
        for bad in [
            "SIP/2.0 4294967301 big",
            "SIP/2.0 20 OK",
            "SIP/2.0 099 x",
            "SIP/2.0 700 x",
            "SIP/2.0 2x0 x",
        ] {
            assert!(
                matches!(parse(bad), Err(WireError::BadStatusCode { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse("SIP/1.0 200 OK"),
            Err(WireError::UnsupportedVersion { .. })
        ));
    }
}
