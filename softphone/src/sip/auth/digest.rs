//! The digest computation (RFC 2617 §3.2.2, RFC 7616 §3.4) and the
//! Authorization value it goes into.

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

use super::challenge::{quote, Algorithm, Challenge, Qop};

/// The parts of the request that enter the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestRequest<'a> {
    /// The method, e.g. `REGISTER` (for ACK/CANCEL: the INVITE's method
    /// rules of RFC 3261 §22.1 are the caller's business).
    pub method: &'a str,
    /// The Request-URI exactly as it appears in the request line.
    pub uri: &'a str,
    /// The message body; hashed only for `qop=auth-int`.
    pub body: &'a [u8],
}

/// Everything a single response computation needs besides the challenge.
#[derive(Debug, Clone, Copy)]
pub struct ResponseInput<'a> {
    /// The user name sent in `username=` (MicroSIP's authID, else username).
    pub username: &'a str,
    /// The password.
    pub password: &'a str,
    /// The request being authorised.
    pub request: DigestRequest<'a>,
    /// The nonce count (ignored when the challenge has no qop).
    pub nc: u32,
    /// The client nonce (ignored when the challenge has no qop and the
    /// algorithm is not `-sess`).
    pub cnonce: &'a str,
}

fn hash(alg: Algorithm, data: &[u8]) -> String {
    match alg {
        Algorithm::Md5 | Algorithm::Md5Sess => hex::encode(Md5::digest(data)),
        Algorithm::Sha256 | Algorithm::Sha256Sess => hex::encode(Sha256::digest(data)),
        Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => hex::encode(Sha512_256::digest(data)),
    }
}

/// The qop we answer with: `auth` when offered because it does not depend
/// on the body (a proxy may rewrite it), else `auth-int`, else none.
pub fn chosen_qop(challenge: &Challenge) -> Option<Qop> {
    if challenge.qop.contains(&Qop::Auth) {
        Some(Qop::Auth)
    } else {
        challenge.qop.first().copied()
    }
}

/// Computes the `response=` hex digest.
pub fn compute_response(challenge: &Challenge, input: &ResponseInput<'_>) -> String {
    let alg = challenge.algorithm;
    let mut ha1 = hash(
        alg,
        format!("{}:{}:{}", input.username, challenge.realm, input.password).as_bytes(),
    );
    if alg.is_session() {
        ha1 = hash(
            alg,
            format!("{ha1}:{}:{}", challenge.nonce, input.cnonce).as_bytes(),
        );
    }
    let qop = chosen_qop(challenge);
    let ha2 = match qop {
        Some(Qop::AuthInt) => hash(
            alg,
            format!(
                "{}:{}:{}",
                input.request.method,
                input.request.uri,
                hash(alg, input.request.body)
            )
            .as_bytes(),
        ),
        _ => hash(
            alg,
            format!("{}:{}", input.request.method, input.request.uri).as_bytes(),
        ),
    };
    let data = match qop {
        Some(q) => format!(
            "{ha1}:{}:{:08x}:{}:{}:{ha2}",
            challenge.nonce,
            input.nc,
            input.cnonce,
            q.token()
        ),
        None => format!("{ha1}:{}:{ha2}", challenge.nonce),
    };
    hash(alg, data.as_bytes())
}

/// Builds the whole `Authorization` / `Proxy-Authorization` value.
///
/// `qop`, `nc` and `cnonce` appear only when the server offered a qop
/// (RFC 2069 servers reject unknown parameters; rsipstack#22). `qop` is a
/// bare token (RFC 2617; SIPp#191 shows servers answering 400 to a quoted
/// one). `algorithm` is echoed only when the server sent it, as spelled.
pub fn authorization_value(challenge: &Challenge, input: &ResponseInput<'_>) -> String {
    let response = compute_response(challenge, input);
    let mut v = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\"",
        quote(input.username),
        quote(&challenge.realm),
        quote(&challenge.nonce),
        quote(input.request.uri),
    );
    if let Some(token) = &challenge.algorithm_token {
        v.push_str(", algorithm=");
        v.push_str(token);
    }
    let qop = chosen_qop(challenge);
    if qop.is_some() || challenge.algorithm.is_session() {
        v.push_str(", cnonce=");
        v.push_str(&quote(input.cnonce));
    }
    if let Some(opaque) = &challenge.opaque {
        v.push_str(", opaque=");
        v.push_str(&quote(opaque));
    }
    if let Some(q) = qop {
        v.push_str(&format!(", qop={}, nc={:08x}", q.token(), input.nc));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::super::challenge::parse_challenge;
    use super::*;

    fn get(uri: &str) -> DigestRequest<'_> {
        DigestRequest {
            method: "GET",
            uri,
            body: b"",
        }
    }

    #[test]
    fn rfc2617_section_3_5() {
        let c = parse_challenge(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        let input = ResponseInput {
            username: "Mufasa",
            password: "Circle Of Life",
            request: get("/dir/index.html"),
            nc: 1,
            cnonce: "0a4f113b",
        };
        assert_eq!(
            compute_response(&c, &input),
            "6629fae49393a05397450978507c4ef1"
        );
        assert_eq!(
            authorization_value(&c, &input),
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             response=\"6629fae49393a05397450978507c4ef1\", cnonce=\"0a4f113b\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\", qop=auth, nc=00000001"
        );
    }

    fn rfc7616(alg: &str) -> (Challenge, ResponseInput<'static>) {
        let c = parse_challenge(&format!(
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={alg}, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
        ))
        .unwrap();
        let input = ResponseInput {
            username: "Mufasa",
            password: "Circle of Life",
            request: get("/dir/index.html"),
            nc: 1,
            cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        };
        (c, input)
    }

    #[test]
    fn rfc7616_section_3_9_1_md5() {
        let (c, input) = rfc7616("MD5");
        assert_eq!(
            compute_response(&c, &input),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
        assert!(authorization_value(&c, &input).contains(", algorithm=MD5,"));
    }

    #[test]
    fn rfc7616_section_3_9_1_sha256() {
        let (c, input) = rfc7616("SHA-256");
        assert_eq!(
            compute_response(&c, &input),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert!(authorization_value(&c, &input).contains(", algorithm=SHA-256,"));
    }

    fn md5(s: &str) -> String {
        hex::encode(Md5::digest(s.as_bytes()))
    }

    #[test]
    fn rfc2069_without_qop() {
        let c = parse_challenge(
            r#"Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093""#,
        )
        .unwrap();
        let input = ResponseInput {
            username: "Mufasa",
            password: "CircleOfLife",
            request: get("/dir/index.html"),
            nc: 7,
            cnonce: "ignored",
        };
        let ha1 = md5("Mufasa:testrealm@host.com:CircleOfLife");
        let ha2 = md5("GET:/dir/index.html");
        let expected = md5(&format!("{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:{ha2}"));
        // RFC 2069 §2.4's example (password `CircleOfLife`) prints a wrong
        // response; this is the value its erratum corrects it to.
        assert_eq!(expected, "1949323746fe6a43ef61f9606e7febea");
        assert_eq!(compute_response(&c, &input), expected);
        let v = authorization_value(&c, &input);
        assert!(!v.contains("qop") && !v.contains("nc=") && !v.contains("cnonce"));
        assert!(
            !v.contains("algorithm"),
            "not echoed when the server sent none"
        );
    }

    #[test]
    fn md5_sess_with_auth_int() {
        let c = parse_challenge(
            r#"Digest realm="sip.example", nonce="abc", qop="auth-int", algorithm=MD5-sess"#,
        )
        .unwrap();
        let body = b"v=0\r\n";
        let input = ResponseInput {
            username: "alice",
            password: "secret",
            request: DigestRequest {
                method: "INVITE",
                uri: "sip:bob@sip.example",
                body,
            },
            nc: 0x1a,
            cnonce: "cn",
        };
        let ha1 = md5(&format!("{}:abc:cn", md5("alice:sip.example:secret")));
        let ha2 = md5(&format!(
            "INVITE:sip:bob@sip.example:{}",
            hex::encode(Md5::digest(body))
        ));
        let expected = md5(&format!("{ha1}:abc:0000001a:cn:auth-int:{ha2}"));
        assert_eq!(compute_response(&c, &input), expected);
        let v = authorization_value(&c, &input);
        assert!(v.ends_with(", qop=auth-int, nc=0000001a"), "{v}");
        assert!(v.contains("algorithm=MD5-sess"));
    }

    #[test]
    fn sha512_256_sess() {
        let c = parse_challenge("Digest realm=r, nonce=n, qop=auth, algorithm=SHA-512-256-sess")
            .unwrap();
        let input = ResponseInput {
            username: "u",
            password: "p",
            request: get("sip:x"),
            nc: 1,
            cnonce: "c",
        };
        let h = |s: String| hex::encode(Sha512_256::digest(s.as_bytes()));
        let ha1 = h(format!("{}:n:c", h("u:r:p".into())));
        let ha2 = h("GET:sip:x".into());
        let expected = h(format!("{ha1}:n:00000001:c:auth:{ha2}"));
        assert_eq!(compute_response(&c, &input), expected);
        assert_eq!(expected.len(), 64);
    }
}
