//! Parsing of `WWW-Authenticate` / `Proxy-Authenticate` values.
//!
//! Hand-written because rsip 0.4 rejects `qop="auth,auth-int"` and
//! `algorithm=SHA-256` (research §1.2), both common from kamailio,
//! OpenSIPS and RFC 8760 servers.

use super::AuthError;

/// A digest algorithm from RFC 7616 §3.3 / RFC 8760 §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5` (also the meaning of an absent `algorithm`).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256`.
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl Algorithm {
    /// Reads an algorithm token, case-insensitively (RFC 7616 §3.3 tokens
    /// are case-insensitive; some servers send `md5`).
    pub fn from_token(token: &str) -> Option<Self> {
        let t = token.to_ascii_uppercase();
        Some(match t.as_str() {
            "MD5" => Algorithm::Md5,
            "MD5-SESS" => Algorithm::Md5Sess,
            "SHA-256" => Algorithm::Sha256,
            "SHA-256-SESS" => Algorithm::Sha256Sess,
            "SHA-512-256" => Algorithm::Sha512_256,
            "SHA-512-256-SESS" => Algorithm::Sha512_256Sess,
            _ => return None,
        })
    }

    /// Whether HA1 is bound to the nonce and cnonce (the `-sess` variants).
    pub fn is_session(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// How much we prefer the algorithm: RFC 8760 §2.4 lets local policy
    /// on strength override the server's order.
    pub(super) fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 0,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 1,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => 2,
        }
    }
}

/// A quality of protection (RFC 2617 §3.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    /// `auth`: the request line is protected.
    Auth,
    /// `auth-int`: the body is protected as well.
    AuthInt,
}

impl Qop {
    /// The token as written in a response.
    pub fn token(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

/// One parsed Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`, unescaped.
    pub realm: String,
    /// `nonce`, unescaped.
    pub nonce: String,
    /// `opaque`, echoed back verbatim when present.
    pub opaque: Option<String>,
    /// `stale=true`: the nonce expired, the credentials were fine.
    pub stale: bool,
    /// The algorithm; MD5 when the server named none.
    pub algorithm: Algorithm,
    /// The `algorithm` token exactly as the server spelled it; echoed in
    /// the response because some servers compare it byte-wise.
    pub algorithm_token: Option<String>,
    /// The qop values we understand, in the server's order; empty when the
    /// server sent no `qop` (RFC 2069 compatibility mode).
    pub qop: Vec<Qop>,
    /// `domain` URIs (space-separated in the challenge).
    pub domain: Vec<String>,
    /// `userhash=true` (RFC 7616 §3.4.4). Parsed, but we always send the
    /// plain username, which the RFC allows servers to accept.
    pub userhash: bool,
}

/// One `name=value` of an auth-param list.
struct Param {
    name: String,
    value: String,
}

/// Parses one header value holding one Digest challenge.
///
/// Parameters may come in any order and case; unknown ones are ignored.
pub fn parse_challenge(value: &str) -> Result<Challenge, AuthError> {
    let value = value.trim();
    let scheme_end = value
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(value.len());
    let (scheme, rest) = value.split_at(scheme_end);
    if scheme.is_empty() {
        return Err(AuthError::Empty);
    }
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(AuthError::UnsupportedScheme(scheme.to_string()));
    }
    let params = parse_params(rest)?;
    build(params)
}

fn build(params: Vec<Param>) -> Result<Challenge, AuthError> {
    let mut realm = None;
    let mut nonce = None;
    let mut opaque = None;
    let mut stale = None;
    let mut algorithm = None;
    let mut qop = None;
    let mut domain = None;
    let mut userhash = None;
    for p in params {
        let slot = match p.name.to_ascii_lowercase().as_str() {
            "realm" => &mut realm,
            "nonce" => &mut nonce,
            "opaque" => &mut opaque,
            "stale" => &mut stale,
            "algorithm" => &mut algorithm,
            "qop" => &mut qop,
            "domain" => &mut domain,
            "userhash" => &mut userhash,
            _ => continue,
        };
        if slot.is_some() {
            return Err(AuthError::DuplicateParameter(p.name.to_ascii_lowercase()));
        }
        *slot = Some(p.value);
    }
    let realm = realm.ok_or(AuthError::MissingParameter("realm"))?;
    let nonce = nonce.ok_or(AuthError::MissingParameter("nonce"))?;
    let alg = match &algorithm {
        None => Algorithm::Md5,
        Some(t) => Algorithm::from_token(t.trim())
            .ok_or_else(|| AuthError::UnsupportedAlgorithm(t.clone()))?,
    };
    let qop = match qop {
        None => Vec::new(),
        Some(list) => {
            let known: Vec<Qop> = list
                .split(',')
                .filter_map(|t| match t.trim().to_ascii_lowercase().as_str() {
                    "auth" => Some(Qop::Auth),
                    "auth-int" => Some(Qop::AuthInt),
                    _ => None,
                })
                .collect();
            if known.is_empty() {
                return Err(AuthError::UnsupportedQop(list));
            }
            known
        }
    };
    Ok(Challenge {
        realm,
        nonce,
        opaque,
        stale: stale.is_some_and(|s| s.trim().eq_ignore_ascii_case("true")),
        algorithm: alg,
        algorithm_token: algorithm.map(|t| t.trim().to_string()),
        qop,
        domain: domain
            .map(|d| d.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
        userhash: userhash.is_some_and(|s| s.trim().eq_ignore_ascii_case("true")),
    })
}

/// Splits `a=b, c="d, e"` into parameters, unescaping quoted strings.
fn parse_params(input: &str) -> Result<Vec<Param>, AuthError> {
    let mut out = Vec::new();
    let mut rest = input.trim_start();
    while !rest.is_empty() {
        // Tolerate empty list elements (`a=b,,c=d`), allowed by RFC 7235's #rule.
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
            continue;
        }
        let name_end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let (name, after) = rest.split_at(name_end);
        if name.is_empty() || !name.chars().all(is_token_char) {
            return Err(AuthError::Malformed(format!(
                "expected a parameter name at `{}`",
                excerpt(rest)
            )));
        }
        let after = after.trim_start();
        let Some(after) = after.strip_prefix('=') else {
            return Err(AuthError::Malformed(format!(
                "parameter `{name}` has no value"
            )));
        };
        let after = after.trim_start();
        let (value, after) = if let Some(q) = after.strip_prefix('"') {
            read_quoted(q).ok_or_else(|| {
                AuthError::Malformed(format!("unterminated quoted value of `{name}`"))
            })?
        } else {
            let end = after
                .find(|c: char| c == ',' || c.is_ascii_whitespace())
                .unwrap_or(after.len());
            let (v, a) = after.split_at(end);
            if v.is_empty() {
                return Err(AuthError::Malformed(format!(
                    "parameter `{name}` has an empty value"
                )));
            }
            (v.to_string(), a)
        };
        out.push(Param {
            name: name.to_string(),
            value,
        });
        rest = after.trim_start();
        if !rest.is_empty() {
            match rest.strip_prefix(',') {
                Some(r) => rest = r.trim_start(),
                None => {
                    return Err(AuthError::Malformed(format!(
                        "expected `,` after `{name}` at `{}`",
                        excerpt(rest)
                    )))
                }
            }
        }
    }
    Ok(out)
}

/// Splits a header value that holds several challenges (RFC 7235 §4.1
/// allows `Digest a=b, Digest c=d` in one value, and a proxy may join
/// repeated headers that way) into one slice per challenge.
pub fn split_challenges(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_quote = false;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        if in_quote {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_quote = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_quote = true,
            ',' if starts_new_challenge(value.get(i + 1..).unwrap_or("")) => {
                out.push(value.get(start..i).unwrap_or("").trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value.get(start..).unwrap_or("").trim());
    out.retain(|s| !s.is_empty());
    out
}

/// After a top-level comma: `scheme` then a parameter name (or the end)
/// starts a challenge; `name=` continues the current one.
fn starts_new_challenge(rest: &str) -> bool {
    let rest = rest.trim_start();
    let token_end = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
    if token_end == 0 {
        return false;
    }
    let after = rest.get(token_end..).unwrap_or("");
    if after.is_empty() {
        return true;
    }
    if !after.starts_with(|c: char| c.is_ascii_whitespace()) {
        return false;
    }
    let next = after.trim_start();
    next.is_empty() || next.starts_with(is_token_char)
}

/// Reads a quoted-string body after its opening quote; returns the
/// unescaped value and what follows the closing quote.
fn read_quoted(s: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, s.get(i + 1..).unwrap_or(""))),
            '\\' => value.push(chars.next()?.1),
            _ => value.push(c),
        }
    }
    None
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// The start of the offending text, for error messages (bounded so a
/// hostile header cannot blow up a log line).
fn excerpt(s: &str) -> String {
    s.chars().take(24).collect()
}

/// Writes `s` as a quoted-string, escaping `"` and `\`.
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kamailio_style() {
        let c = parse_challenge(
            r#"Digest realm="127.0.0.1", nonce="Z0k1Y2VhZmQ4ZjA=", qop="auth", algorithm=MD5"#,
        )
        .unwrap();
        assert_eq!(c.realm, "127.0.0.1");
        assert_eq!(c.nonce, "Z0k1Y2VhZmQ4ZjA=");
        assert_eq!(c.qop, vec![Qop::Auth]);
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert_eq!(c.algorithm_token.as_deref(), Some("MD5"));
        assert!(!c.stale && c.opaque.is_none());
    }

    #[test]
    fn multi_qop_sha256_any_order_and_case() {
        let c = parse_challenge(
            "digest QOP=\"auth-int, auth,foo\",algorithm=SHA-256 ,Stale=TRUE,\
             realm=\"a \\\"b\\\" c\", opaque=\"xyz\", nonce=\"n1\", \
             domain=\"sip:a.example sip:b.example\", userhash=true, charset=UTF-8",
        )
        .unwrap();
        assert_eq!(c.qop, vec![Qop::AuthInt, Qop::Auth]);
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert!(c.stale && c.userhash);
        assert_eq!(c.realm, "a \"b\" c");
        assert_eq!(c.opaque.as_deref(), Some("xyz"));
        assert_eq!(c.domain, vec!["sip:a.example", "sip:b.example"]);
    }

    #[test]
    fn all_algorithm_tokens() {
        for (t, a) in [
            ("MD5-sess", Algorithm::Md5Sess),
            ("SHA-256-sess", Algorithm::Sha256Sess),
            ("SHA-512-256", Algorithm::Sha512_256),
            ("\"SHA-512-256-sess\"", Algorithm::Sha512_256Sess),
        ] {
            let c = parse_challenge(&format!("Digest realm=r, nonce=n, algorithm={t}")).unwrap();
            assert_eq!(c.algorithm, a);
        }
    }

    #[test]
    fn precise_errors() {
        let e = |s: &str| parse_challenge(s).unwrap_err();
        assert!(matches!(e(""), AuthError::Empty));
        assert!(matches!(e("Basic realm=\"x\""), AuthError::UnsupportedScheme(s) if s == "Basic"));
        assert!(matches!(
            e("Digest nonce=\"n\""),
            AuthError::MissingParameter("realm")
        ));
        assert!(matches!(
            e("Digest realm=\"r\""),
            AuthError::MissingParameter("nonce")
        ));
        assert!(matches!(
            e("Digest realm=r, nonce=n, algorithm=SHA-1"),
            AuthError::UnsupportedAlgorithm(a) if a == "SHA-1"
        ));
        assert!(matches!(
            e("Digest realm=r, nonce=n, qop=\"auth-conf\""),
            AuthError::UnsupportedQop(_)
        ));
        assert!(matches!(
            e("Digest realm=r, realm=s, nonce=n"),
            AuthError::DuplicateParameter(p) if p == "realm"
        ));
        assert!(matches!(
            e("Digest realm=\"r, nonce=n"),
            AuthError::Malformed(_)
        ));
        assert!(matches!(e("Digest realm"), AuthError::Malformed(_)));
        assert!(matches!(
            e("Digest realm=r nonce=n"),
            AuthError::Malformed(_)
        ));
        assert!(matches!(e("Digest =x"), AuthError::Malformed(_)));
    }

    #[test]
    fn splits_joined_challenges() {
        let v = r#"Digest realm="a, Digest b", nonce=n1, qop = "auth", Digest realm=r2, nonce=n2,Basic realm=x"#;
        assert_eq!(
            split_challenges(v),
            [
                r#"Digest realm="a, Digest b", nonce=n1, qop = "auth""#,
                "Digest realm=r2, nonce=n2",
                "Basic realm=x"
            ]
        );
        assert_eq!(
            split_challenges("Digest realm=r, nonce=n"),
            ["Digest realm=r, nonce=n"]
        );
        assert!(split_challenges(" , ").len() <= 1);
    }

    #[test]
    fn quoting_round_trips() {
        let c = parse_challenge(&format!("Digest realm={}, nonce=n", quote("a\\\"b"))).unwrap();
        assert_eq!(c.realm, "a\\\"b");
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics(s in ".{0,200}") {
            let _ = parse_challenge(&s);
            let _ = parse_challenge(&format!("Digest {s}"));
        }

        #[test]
        fn arbitrary_param_soup_never_panics(
            parts in proptest::collection::vec("[a-zA-Z\"\\\\=, -]{0,12}", 0..12)
        ) {
            let v = format!("Digest {}", parts.join(""));
            let _ = parse_challenge(&v);
            for c in split_challenges(&v) {
                let _ = parse_challenge(c);
            }
        }
    }
}
