//! Request-URI → `rsip::Uri`, split by RFC 3261 §19.1.1 rather than rsip's
//! tokenizer (which loses dotted users and rejects `;` or `?` in the user part).

use super::error::{clip, WireError};
use rsip::{Auth, Host, HostWithPort, Param, Port, Scheme, Uri};
use std::net::{IpAddr, Ipv6Addr};

/// Reads a SIP or SIPS Request-URI. Any other scheme is
/// [`WireError::UnsupportedUriScheme`] (a user agent answers 416).
pub(crate) fn parse_request_uri(text: &str) -> Result<Uri, WireError> {
    let bad = |reason| WireError::BadRequestUri { reason };
    if text.starts_with('<') {
        return Err(bad("must not be enclosed in <>"));
    }
    let (scheme, rest) = text.split_once(':').ok_or(bad("no scheme"))?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return Err(bad("malformed scheme"));
    }
    let scheme = if scheme.eq_ignore_ascii_case("sip") {
        Scheme::Sip
    } else if scheme.eq_ignore_ascii_case("sips") {
        Scheme::Sips
    } else {
        return Err(WireError::UnsupportedUriScheme {
            scheme: clip(scheme),
        });
    };
    if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains whitespace or control characters"));
    }
    // `@` cannot appear unescaped after the userinfo, so the last one ends it.
    let (auth, after_user) = match rest.rsplit_once('@') {
        Some((userinfo, after)) => (Some(parse_userinfo(userinfo)?), after),
        None => (None, rest),
    };
    if after_user.contains('?') {
        return Err(bad("header fields are not allowed in a Request-URI"));
    }
    let mut pieces = after_user.split(';');
    let host_with_port = parse_hostport(pieces.next().unwrap_or_default())?;
    let params = pieces.map(parse_param).collect::<Result<Vec<_>, _>>()?;
    Ok(Uri {
        scheme: Some(scheme),
        auth,
        host_with_port,
        params,
        headers: Vec::new(),
    })
}

fn parse_userinfo(userinfo: &str) -> Result<Auth, WireError> {
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(password.to_owned())),
        None => (userinfo, None),
    };
    if user.is_empty() {
        return Err(WireError::BadRequestUri {
            reason: "empty user part",
        });
    }
    Ok(Auth {
        user: user.to_owned(),
        password,
    })
}

fn parse_hostport(text: &str) -> Result<HostWithPort, WireError> {
    let bad = |reason| WireError::BadRequestUri { reason };
    let (host, port) = if let Some(inner) = text.strip_prefix('[') {
        let (v6, after) = inner
            .split_once(']')
            .ok_or(bad("unclosed IPv6 reference"))?;
        v6.parse::<Ipv6Addr>()
            .map_err(|_| bad("malformed IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or(bad("junk after IPv6 reference"))?,
            ),
        };
        // rsip prints an IPv6 `Host::IpAddr` without brackets, which breaks the
        // URI on the way out, so the reference is kept as text.
        (Host::Domain(format!("[{v6}]").into()), port)
    } else {
        let (name, port) = match text.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (text, None),
        };
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !valid {
            return Err(bad("malformed host"));
        }
        let host = match name.parse::<IpAddr>() {
            Ok(ip) => Host::IpAddr(ip),
            Err(_) => Host::Domain(name.to_owned().into()),
        };
        (host, port)
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map(Port::from)
                .map_err(|_| bad("malformed port"))
        })
        .transpose()?;
    Ok(HostWithPort { host, port })
}

fn parse_param(text: &str) -> Result<Param, WireError> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (text, None),
    };
    if name.is_empty() {
        return Err(WireError::BadRequestUri {
            reason: "empty URI parameter",
        });
    }
    // rsip types the parameters it knows and refuses values it does not
    // (e.g. an unknown transport); those stay as they came.
    Ok(Param::try_from((name, value))
        .unwrap_or_else(|_| Param::Other(name.into(), value.map(Into::into))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_users_and_ports_survive() {
        let uri = parse_request_uri("sip:john.doe@example.com:5070;transport=tcp;lr").unwrap();
        assert_eq!(uri.user(), Some("john.doe"));
        assert_eq!(uri.host().to_string(), "example.com");
        assert_eq!(uri.port().map(|p| *p.value()), Some(5070));
        assert_eq!(
            uri.to_string(),
            "sip:john.doe@example.com:5070;transport=TCP;lr"
        );
    }

    #[test]
    fn semicolons_and_question_marks_in_the_user_part_belong_to_the_user() {
        let uri = parse_request_uri("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(uri.user(), Some("user;par=u%40example.net"));
        assert!(uri.params.is_empty());
        let uri = parse_request_uri("sip:a?b:pw@example.com").unwrap();
        assert_eq!(uri.user(), Some("a?b"));
        assert_eq!(uri.auth.and_then(|a| a.password).as_deref(), Some("pw"));
    }

    #[test]
    fn ipv6_references_keep_their_brackets() {
        let uri = parse_request_uri("sip:100@[2001:db8::1]:5060").unwrap();
        assert_eq!(uri.to_string(), "sip:100@[2001:db8::1]:5060");
        assert!(parse_request_uri("sip:[2001:db8::zz]").is_err());
    }

    #[test]
    fn refusals() {
        for (text, reason) in [
            ("<sip:a@b>", "must not be enclosed in <>"),
            (
                "sip:a@b?Route=%3Csip:x%3E",
                "header fields are not allowed in a Request-URI",
            ),
            ("sip:@b", "empty user part"),
            ("sip:a@", "malformed host"),
            ("sip:a@b:99999", "malformed port"),
            ("sip:a@b;;lr", "empty URI parameter"),
            ("nocolon", "no scheme"),
        ] {
            assert_eq!(
                parse_request_uri(text),
                Err(WireError::BadRequestUri { reason }),
                "{text}"
            );
        }
        assert_eq!(
            parse_request_uri("tel:+15551234"),
            Err(WireError::UnsupportedUriScheme {
                scheme: "tel".into()
            })
        );
    }
}
