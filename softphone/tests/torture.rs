//! RFC 4475 torture messages through `sip::wire`, and no-panic properties
//! for arbitrary and mutated input. Fixtures: `tests/fixtures/rfc4475/`
//! (provenance in its README.md).

use proptest::prelude::*;
use rsip::prelude::*;
use rsip::{Header, Method, SipMessage, StatusCode};
use softphone::sip::wire::{
    parse_datagram, parse_message, reject_response, serialize, Frame, Incoming, StreamDecoder,
    WireError,
};
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rfc4475")
        .join(format!("{name}.sip"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn message(name: &str) -> SipMessage {
    match parse_datagram(&fixture(name)) {
        Ok(Incoming::Message(message)) => message,
        other => panic!("{name}: expected a message, got {other:?}"),
    }
}

fn values(message: &SipMessage, name: &str) -> Vec<String> {
    message
        .headers()
        .iter()
        .filter_map(|h| {
            let text = h.to_string();
            let (n, v) = text.split_once(": ")?;
            n.eq_ignore_ascii_case(name).then(|| v.to_owned())
        })
        .collect()
}

fn value(message: &SipMessage, name: &str) -> String {
    let all = values(message, name);
    assert_eq!(all.len(), 1, "{name}: {all:?}");
    all.into_iter().next().unwrap_or_default()
}

/// The response owed to an invalid request fixture, with its status line.
fn rejection(name: &str) -> (WireError, String) {
    let bytes = fixture(name);
    let error = parse_datagram(&bytes).expect_err(name);
    let response = reject_response(&bytes, &error, "rej1")
        .unwrap_or_else(|| panic!("{name}: no response for {error}"));
    let text = String::from_utf8(response).expect("responses are UTF-8");
    assert_framed(text.as_bytes());
    (error, text)
}

/// Our answers echo the peer's headers, so they need not pass our own
/// validation (badvers echoes `Via: SIP/7.0/...`), but they must frame.
fn assert_framed(response: &[u8]) {
    let text = String::from_utf8_lossy(response);
    assert!(text.starts_with("SIP/2.0 "), "{text}");
    assert!(text.ends_with("\r\nContent-Length: 0\r\n\r\n"), "{text}");
    assert_eq!(text.matches("\r\n\r\n").count(), 1, "{text}");
}

// ---- RFC 4475 §3.1.1: valid messages ----

#[test]
fn wsinv_short_tortuous_invite() {
    let m = message("wsinv");
    let SipMessage::Request(req) = &m else {
        panic!("request")
    };
    assert_eq!(req.method, Method::Invite);
    assert_eq!(
        req.uri.to_string(),
        "sip:vivekg@chair-dnrc.example.com;unknownparam"
    );
    assert_eq!(value(&m, "Call-ID"), "wsinv.ndaksdj@192.0.2.1");
    assert_eq!(
        value(&m, "To"),
        "sip:vivekg@chair-dnrc.example.com;tag=1918181833n"
    );
    assert_eq!(
        value(&m, "From"),
        r#""J Rosenberg \\\"" <sip:jdrosen@example.com>;tag=98asjd8"#
    );
    assert_eq!(value(&m, "Max-Forwards"), "0068");
    assert_eq!(value(&m, "CSeq"), "0009 INVITE");
    assert_eq!(value(&m, "Subject"), "");
    assert_eq!(
        value(&m, "NewFangledHeader"),
        "newfangled value continued newfangled value"
    );
    assert_eq!(value(&m, "UnknownHeaderWithUnusualValue"), ";;,,;;,;");
    assert_eq!(
        values(&m, "Via"),
        vec![
            "SIP/2.0/UDP 192.0.2.2;branch=390skdjuw",
            "SIP/2.0/TCP spindle.example.com;branch=z9hG4bK9ikj8",
            "SIP/2.0/UDP 192.168.255.111;branch=z9hG4bK30239",
        ]
    );
    assert_eq!(
        value(&m, "Contact"),
        r#""Quoted string \"\"" <sip:jdrosen@example.com>;newparam=newvalue;secondparam;q=0.33"#
    );
    assert_eq!(
        value(&m, "Route"),
        "<sip:services.example.com;lr;unknownwith=value;unknown-no-value>"
    );
    assert_eq!(m.body().len(), 150);
    assert_eq!(
        m.via_header()
            .unwrap()
            .typed()
            .unwrap()
            .branch()
            .map(|b| b.to_string())
            .as_deref(),
        Some("390skdjuw")
    );
}

#[test]
fn intmeth_is_well_formed_and_answered_501() {
    // rsip's Method is a closed set; an extension method is a well-formed
    // request this user agent does not implement (RFC 3261 §21.5.2).
    let (error, response) = rejection("intmeth");
    assert_eq!(
        error,
        WireError::UnsupportedMethod {
            method: "!interesting-Method0123456789_*+`.%indeed'~".into()
        }
    );
    assert!(
        response.starts_with("SIP/2.0 501 Not Implemented ("),
        "{response}"
    );
}

#[test]
fn esc01_escapes_are_kept_verbatim() {
    let m = message("esc01");
    let SipMessage::Request(req) = &m else {
        panic!("request")
    };
    assert_eq!(req.uri.user(), Some("sips%3Auser%40example.com"));
    assert_eq!(value(&m, "To"), "sip:%75se%72@example.com");
    assert_eq!(value(&m, "Content-Type"), "application/sdp");
    assert_eq!(
        value(&m, "Contact"),
        "<sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>"
    );
    assert_eq!(value(&m, "Call-ID"), "esc01.239409asdfakjkn23onasd0-3234");
}

#[test]
fn escnull_escaped_nulls_are_text() {
    let m = message("escnull");
    assert_eq!(
        values(&m, "Contact"),
        vec![
            "<sip:%00@host5.example.com>",
            "<sip:%00%00@host5.example.com>"
        ]
    );
    assert_eq!(value(&m, "To"), "sip:null-%00-null@example.com");
    assert_eq!(value(&m, "Content-Length"), "0");
}

#[test]
fn esc02_escaped_method_is_not_register() {
    let (error, response) = rejection("esc02");
    assert_eq!(
        error,
        WireError::UnsupportedMethod {
            method: "RE%47IST%45R".into()
        }
    );
    assert!(response.starts_with("SIP/2.0 501 "), "{response}");
}

#[test]
fn lwsdisp_display_name_without_space() {
    let m = message("lwsdisp");
    assert_eq!(value(&m, "From"), "caller<sip:caller@example.com>;tag=323");
}

#[test]
fn longreq_long_values_and_many_vias() {
    let m = message("longreq");
    assert_eq!(values(&m, "Via").len(), 34);
    assert!(value(&m, "Call-ID").starts_with("longreq.onereallyreally"));
    assert!(value(&m, "To").starts_with("\"I have a user name of extreme"));
    assert_eq!(m.body().len(), 150);
}

#[test]
fn dblreq_trailing_request_is_ignored() {
    let m = message("dblreq");
    let SipMessage::Request(req) = &m else {
        panic!("request")
    };
    assert_eq!(req.method, Method::Register);
    assert!(req.body.is_empty());
    assert_eq!(
        value(&m, "Call-ID"),
        "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    );
}

#[test]
fn semiuri_semicolon_in_the_user_part() {
    let m = message("semiuri");
    let SipMessage::Request(req) = &m else {
        panic!("request")
    };
    assert_eq!(req.uri.user(), Some("user;par=u%40example.net"));
    assert_eq!(req.uri.host().to_string(), "example.com");
    assert_eq!(
        value(&m, "Accept"),
        "application/sdp, application/pkcs7-mime, multipart/mixed, multipart/signed, message/sip, message/sipfrag"
    );
}

#[test]
fn transports_unknown_transport_is_kept() {
    let m = message("transports");
    let vias = values(&m, "Via");
    assert_eq!(vias.len(), 5);
    assert_eq!(
        vias.get(3).map(String::as_str),
        Some("SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en")
    );
    assert_eq!(value(&m, "Call-ID"), "transports.kijh4akdnaqjkwendsasfdj");
}

#[test]
fn mpart01_binary_body_survives_parse_and_serialize() {
    let bytes = fixture("mpart01");
    let m = message("mpart01");
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(m.body().as_slice(), bytes.get(head_end..).unwrap());
    assert_eq!(m.body().len(), 553);
    let written = serialize(&m);
    assert!(written.ends_with(m.body()));
    assert_eq!(
        parse_message(&written).map(|again| again.body().clone()),
        Ok(m.body().clone())
    );
}

#[test]
fn unreason_and_noreason_responses() {
    let SipMessage::Response(unreason) = message("unreason") else {
        panic!("response")
    };
    assert_eq!(unreason.status_code, StatusCode::OK);
    assert_eq!(unreason.body.len(), 154);
    let SipMessage::Response(noreason) = message("noreason") else {
        panic!("response")
    };
    assert_eq!(noreason.status_code.code(), 100);
}

// ---- RFC 4475 §3.1.2: invalid messages ----

fn assert_400(name: &str, expected: WireError) {
    let (error, response) = rejection(name);
    assert_eq!(error, expected, "{name}");
    assert!(
        response.starts_with("SIP/2.0 400 Bad Request ("),
        "{name}: {response}"
    );
}

fn invalid_header(name: &str, reason: &'static str) -> WireError {
    WireError::InvalidHeader {
        name: name.into(),
        reason,
    }
}

#[test]
fn invalid_requests_are_answered_400_naming_the_problem() {
    assert_400(
        "badinv01",
        invalid_header("Via", "empty element in a comma-separated list"),
    );
    assert_400(
        "clerr",
        WireError::BodyTooShort {
            declared: 9999,
            available: 154,
        },
    );
    assert_400(
        "ncl",
        WireError::InvalidContentLength {
            value: "-999".into(),
        },
    );
    assert_400(
        "scalar02",
        invalid_header("CSeq", "sequence number must be below 2^31"),
    );
    assert_400(
        "quotbal",
        WireError::UnterminatedQuote { name: "To".into() },
    );
    assert_400(
        "ltgtruri",
        WireError::BadRequestUri {
            reason: "must not be enclosed in <>",
        },
    );
    let spaces = WireError::BadStartLine {
        reason: "request line must be Method SP Request-URI SP SIP-Version, single spaces",
    };
    assert_400("lwsruri", spaces.clone());
    assert_400("lwsstart", spaces.clone());
    assert_400("trws", spaces);
    assert_400(
        "escruri",
        WireError::BadRequestUri {
            reason: "header fields are not allowed in a Request-URI",
        },
    );
    assert_400("baddate", invalid_header("Date", "time zone must be GMT"));
    assert_400(
        "regbadct",
        invalid_header("Contact", "a URI with ? or , must be enclosed in <>"),
    );
    assert_400(
        "badaspec",
        invalid_header("To", "whitespace or nothing inside <>"),
    );
    assert_400(
        "baddn",
        invalid_header(
            "From",
            "display name must be quoted when it is not all tokens",
        ),
    );
    assert_400(
        "mismatch01",
        WireError::CSeqMismatch {
            method: "OPTIONS".into(),
            cseq: "INVITE".into(),
        },
    );
    assert_400(
        "mismatch02",
        WireError::CSeqMismatch {
            method: "NEWMETHOD".into(),
            cseq: "INVITE".into(),
        },
    );
}

#[test]
fn quotbal_answer_keeps_the_broken_to_untagged() {
    let (_, response) = rejection("quotbal");
    assert!(
        response.contains("\r\nTo: \"Mr. J. User <sip:j.user@example.com>\r\n"),
        "{response}"
    );
}

#[test]
fn badvers_is_answered_505() {
    let (error, response) = rejection("badvers");
    assert_eq!(
        error,
        WireError::UnsupportedVersion {
            version: "SIP/7.0".into()
        }
    );
    assert!(
        response.starts_with("SIP/2.0 505 Version Not Supported ("),
        "{response}"
    );
    assert!(response.contains("\r\nCall-ID: badvers.31417@c.example.com\r\n"));
}

#[test]
fn invalid_responses_are_dropped() {
    for (name, expected) in [
        (
            "scalarlg",
            invalid_header("CSeq", "sequence number must be below 2^31"),
        ),
        (
            "bigcode",
            WireError::BadStatusCode {
                code: "4294967301".into(),
            },
        ),
    ] {
        let bytes = fixture(name);
        let error = parse_datagram(&bytes).expect_err(name);
        assert_eq!(error, expected, "{name}");
        assert_eq!(reject_response(&bytes, &error, "t"), None, "{name}");
    }
}

// ---- RFC 4475 §3.2–§3.4: syntactically valid, judged by the application ----

#[test]
fn application_layer_messages() {
    for name in [
        "badbranch",
        "unksm2",
        "bext01",
        "invut",
        "regaut01",
        "bcast",
        "zeromf",
        "cparam01",
        "cparam02",
        "regescrt",
        "sdp01",
    ] {
        message(name);
    }
    assert_eq!(
        value(&message("regescrt"), "Contact"),
        "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>"
    );
    assert_eq!(
        value(&message("cparam01"), "Contact"),
        "sip:+19725552222@gw1.example.net;unknownparam"
    );

    // insuf lacks From, To and Call-ID; Via and CSeq still route an answer.
    assert_400("insuf", WireError::MissingHeader { name: "From" });
    assert_400("multi01", WireError::DuplicateHeader { name: "Call-ID" });
    assert_400(
        "mcl01",
        WireError::DuplicateHeader {
            name: "Content-Length",
        },
    );
    for name in ["unkscm", "novelsc"] {
        let (error, response) = rejection(name);
        assert!(
            matches!(error, WireError::UnsupportedUriScheme { .. }),
            "{name}"
        );
        assert!(
            response.starts_with("SIP/2.0 416 Unsupported URI Scheme ("),
            "{response}"
        );
    }
    // RFC 4475 §3.4.1 hopes for RFC 2543 compatibility; RFC 3261 §8.1.1
    // makes Max-Forwards mandatory and we hold requests to that.
    assert_400(
        "inv2543",
        WireError::MissingHeader {
            name: "Max-Forwards",
        },
    );
}

// ---- the same messages over a stream ----

const ALL: &[&str] = &[
    "wsinv",
    "intmeth",
    "esc01",
    "escnull",
    "esc02",
    "lwsdisp",
    "longreq",
    "dblreq",
    "semiuri",
    "transports",
    "mpart01",
    "unreason",
    "noreason",
    "badinv01",
    "clerr",
    "ncl",
    "scalar02",
    "scalarlg",
    "quotbal",
    "ltgtruri",
    "lwsruri",
    "lwsstart",
    "trws",
    "escruri",
    "baddate",
    "regbadct",
    "badaspec",
    "baddn",
    "badvers",
    "mismatch01",
    "mismatch02",
    "bigcode",
    "badbranch",
    "insuf",
    "unkscm",
    "novelsc",
    "unksm2",
    "bext01",
    "invut",
    "regaut01",
    "multi01",
    "mcl01",
    "bcast",
    "zeromf",
    "cparam01",
    "cparam02",
    "regescrt",
    "sdp01",
    "inv2543",
];

#[test]
fn every_fixture_is_present() {
    for name in ALL {
        assert!(!fixture(name).is_empty(), "{name}");
    }
}

#[test]
fn valid_messages_stream_byte_by_byte_to_the_same_result() {
    for name in [
        "wsinv",
        "esc01",
        "longreq",
        "mpart01",
        "unreason",
        "transports",
    ] {
        let bytes = fixture(name);
        let mut decoder = StreamDecoder::new();
        let mut frames = Vec::new();
        for byte in &bytes {
            decoder.push(&[*byte]).expect("push");
            while let Some(frame) = decoder.next_frame().expect(name) {
                frames.push(frame);
            }
        }
        let [Frame::Message(frame)] = frames.as_slice() else {
            panic!("{name}: {frames:?}")
        };
        assert_eq!(parse_message(frame), parse_message(&bytes), "{name}");
    }
}

#[test]
fn dblreq_over_a_stream_is_two_messages() {
    let mut decoder = StreamDecoder::new();
    decoder.push(&fixture("dblreq")).expect("push");
    let mut methods = Vec::new();
    // The INVITE's body runs 5 octets past its Content-Length; on a stream
    // those octets start a message without Content-Length, which ends the
    // connection.
    let end = loop {
        match decoder.next_frame() {
            Ok(Some(Frame::Message(bytes))) => {
                if let Ok(SipMessage::Request(req)) = parse_message(&bytes) {
                    methods.push(req.method);
                }
            }
            Ok(Some(Frame::KeepAlive(_))) => {}
            other => break other,
        }
    };
    assert_eq!(methods, vec![Method::Register, Method::Invite]);
    assert_eq!(end, Err(WireError::MissingContentLength));
}

#[test]
fn serialized_valid_messages_parse_back_identically() {
    for name in [
        "wsinv",
        "esc01",
        "escnull",
        "lwsdisp",
        "longreq",
        "semiuri",
        "transports",
        "unreason",
        "noreason",
    ] {
        let m = message(name);
        let again = parse_message(&serialize(&m));
        assert_eq!(again.as_ref(), Ok(&m), "{name}");
    }
}

#[test]
fn content_length_header_matches_the_kept_body() {
    let m = message("dblreq");
    assert!(m
        .headers()
        .iter()
        .any(|h| matches!(h, Header::ContentLength(l) if l.value() == "0")));
}

// ---- no input panics ----

fn mutate(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut bytes = base.to_vec();
    for &(at, op, byte) in edits {
        if bytes.is_empty() {
            bytes.push(byte);
            continue;
        }
        let at = at % bytes.len();
        match op % 4 {
            0 => {
                if let Some(b) = bytes.get_mut(at) {
                    *b = byte;
                }
            }
            1 => bytes.insert(at, byte),
            2 => {
                bytes.remove(at);
            }
            _ => {
                let special = [
                    b'\r', b'\n', b' ', b':', b',', b';', b'"', b'<', b'>', b'\\', 0,
                ][usize::from(byte) % 11];
                bytes.insert(at, special);
            }
        }
    }
    bytes
}

fn exercise(bytes: &[u8], chunk: usize) {
    if let Err(error) = parse_datagram(bytes) {
        let _ = error.to_string();
        if let Some(response) = reject_response(bytes, &error, "t") {
            assert_framed(&response);
        }
    } else if let Ok(Incoming::Message(m)) = parse_datagram(bytes) {
        let written = serialize(&m);
        assert_eq!(parse_message(&written).as_ref(), Ok(&m), "round trip");
    }
    let mut decoder = StreamDecoder::with_limit(4096);
    for piece in bytes.chunks(chunk.max(1)) {
        if decoder.push(piece).is_err() {
            return;
        }
        loop {
            match decoder.next_frame() {
                Ok(Some(Frame::Message(frame))) => {
                    let _ = parse_message(&frame);
                }
                Ok(Some(Frame::KeepAlive(_))) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048), chunk in 1usize..64) {
        exercise(&bytes, chunk);
    }

    #[test]
    fn mutated_torture_messages_never_panic(
        index in 0usize..ALL.len(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..12),
        chunk in 1usize..300,
    ) {
        let name = ALL.get(index).copied().unwrap_or("wsinv");
        exercise(&mutate(&fixture(name), &edits), chunk);
    }
}
