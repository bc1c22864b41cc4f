//! Registration against a scripted registrar.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::*;
use crate::sip::auth::{compute_response, parse_challenge, DigestRequest, ResponseInput};

const CHALLENGE: &str =
    "Digest realm=\"example.com\", nonce=\"n0nce1\", algorithm=MD5, qop=\"auth\"";

fn registration_events(ua: &mut UserAgent) -> Vec<RegistrationState> {
    events(ua)
        .into_iter()
        .filter_map(|e| match e {
            UaEvent::Registration { account: 1, state } => Some(state),
            _ => None,
        })
        .collect()
}

/// The `name=value` pairs of an Authorization value, unquoted.
fn auth_params(value: &str) -> HashMap<String, String> {
    let rest = value.strip_prefix("Digest ").expect("a Digest answer");
    rest.split(',')
        .filter_map(|p| p.split_once('='))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect()
}

/// Checks the Authorization of `request` against `challenge` and the
/// password, as a registrar does.
fn verify_digest(request: &Request, challenge: &str, password: &str) {
    let params = auth_params(header(&request.headers, "Authorization"));
    let challenge = parse_challenge(challenge).expect("our challenge parses");
    let uri = request.uri.to_string();
    assert_eq!(params["uri"], uri, "digest uri is the Request-URI");
    assert_eq!(params["username"], "alice");
    assert_eq!(params["realm"], "example.com");
    assert_eq!(params["nonce"], challenge.nonce);
    assert_eq!(params["qop"], "auth");
    let nc = u32::from_str_radix(&params["nc"], 16).expect("hex nc");
    let expected = compute_response(
        &challenge,
        &ResponseInput {
            username: "alice",
            password,
            request: DigestRequest {
                method: "REGISTER",
                uri: &uri,
                body: b"",
            },
            nc,
            cnonce: &params["cnonce"],
        },
    );
    assert_eq!(params["response"], expected, "digest response");
}

fn cseq(request: &Request) -> u32 {
    headers::cseq(&request.headers).expect("CSeq").0
}

fn call_id(request: &Request) -> String {
    headers::call_id(&request.headers)
        .expect("Call-ID")
        .to_owned()
}

/// Registers `ua` (account 1) at `now`: the first REGISTER, challenged,
/// answered with `Contact;expires=<granted>`. Returns the authorised
/// REGISTER.
fn register_ok(ua: &mut UserAgent, now: Instant, granted: u32) -> Request {
    ua.register(1, now).expect("register");
    let first = request(&only(transmits(ua)));
    let challenge = format!("WWW-Authenticate: {CHALLENGE}");
    ua.handle_datagram(
        &reply(&first, 401, "Unauthorized", &[challenge]),
        Transport::Udp,
        addr(REGISTRAR),
        now,
    );
    let second = request(&only(transmits(ua)));
    let contact = format!("Contact: <sip:alice@{ALICE};transport=udp>;expires={granted}");
    ua.handle_datagram(
        &reply(&second, 200, "OK", &[contact]),
        Transport::Udp,
        addr(REGISTRAR),
        now,
    );
    second
}

#[test]
fn registers_with_digest_and_refreshes_before_expiry() {
    let mut ua = agent(ALICE, vec![account(1, "alice", "secret")]);
    let t0 = Instant::now();
    ua.register(1, t0).expect("register");
    let sent = only(transmits(&mut ua));
    assert_eq!(sent.destination, addr(REGISTRAR));
    assert_eq!(sent.transport, Transport::Udp);
    let first = request(&sent);
    assert_eq!(first.method, rsip::Method::Register);
    assert_eq!(first.uri.to_string(), "sip:192.0.2.10:5060");
    assert_eq!(
        headers::from(&first.headers).expect("From").uri,
        "sip:alice@example.com"
    );
    assert!(headers::from(&first.headers).expect("From").tag().is_some());
    assert_eq!(
        headers::to(&first.headers).expect("To").uri,
        "sip:alice@example.com"
    );
    let contact = &headers::contacts(&first.headers).expect("Contact")[0];
    assert_eq!(contact.uri, format!("sip:alice@{ALICE};transport=udp"));
    assert_eq!(contact.expires(), Some(300));
    assert_eq!(header(&first.headers, "Expires"), "300");
    assert_eq!(header(&first.headers, "Max-Forwards"), "70");
    assert_eq!(header(&first.headers, "User-Agent"), "msipphone-test");
    assert!(!has_header(&first.headers, "Route"), "no proxy, no Route");
    assert!(!has_header(&first.headers, "Authorization"));
    let via = headers::top_via(&first.headers).expect("Via");
    assert_eq!(via.rport(), Some(None), "rport asked for");
    assert_eq!(via.sent_by_key(), ALICE);
    assert_eq!(
        registration_events(&mut ua),
        vec![RegistrationState::Registering]
    );

    let challenge = format!("WWW-Authenticate: {CHALLENGE}");
    ua.handle_datagram(
        &reply(&first, 401, "Unauthorized", &[challenge]),
        Transport::Udp,
        addr(REGISTRAR),
        t0,
    );
    let second = request(&only(transmits(&mut ua)));
    assert_eq!(cseq(&second), cseq(&first) + 1);
    assert_eq!(call_id(&second), call_id(&first));
    assert_ne!(
        headers::top_via(&second.headers).expect("Via").branch(),
        via.branch(),
        "a new transaction"
    );
    verify_digest(&second, CHALLENGE, "secret");

    // The registrar lists another device's binding first.
    let bindings = format!(
        "Contact: <sip:alice@203.0.113.7:5062>;expires=3600, <sip:alice@{ALICE};transport=UDP>;expires=60"
    );
    ua.handle_datagram(
        &reply(&second, 200, "OK", &[bindings, "Expires: 3600".into()]),
        Transport::Udp,
        addr(REGISTRAR),
        t0,
    );
    assert_eq!(
        registration_events(&mut ua),
        vec![RegistrationState::Registered { expires: 60 }]
    );
    assert_eq!(
        ua.registration(1),
        Some(&RegistrationState::Registered { expires: 60 })
    );

    let sent = run_until(&mut ua, t0 + Duration::from_secs(60));
    let branches: std::collections::HashSet<String> = sent
        .iter()
        .filter_map(|(_, t)| {
            headers::top_via(&request(t).headers)
                .ok()?
                .branch()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        branches.len(),
        1,
        "exactly one refresh (plus its retransmissions)"
    );
    let (at, refresh) = &sent[0];
    assert!(*at < t0 + Duration::from_secs(60) - REFRESH_MARGIN + Duration::from_millis(1));
    assert!(*at >= t0 + Duration::from_secs(30), "not absurdly early");
    let refresh = request(refresh);
    assert_eq!(cseq(&refresh), cseq(&second) + 1);
    assert_eq!(call_id(&refresh), call_id(&first));
    assert_eq!(
        headers::from(&refresh.headers).expect("From").tag(),
        headers::from(&first.headers).expect("From").tag()
    );
    // Pre-authorised from the cached challenge, next nonce count.
    verify_digest(&refresh, CHALLENGE, "secret");
    let nc = &auth_params(header(&refresh.headers, "Authorization"))["nc"];
    assert_eq!(nc, "00000002");
    assert!(
        registration_events(&mut ua).is_empty(),
        "a refresh is not news"
    );
}

#[test]
fn wrong_password_fails_and_retries_later() {
    let mut ua = agent(ALICE, vec![account(1, "alice", "wrong")]);
    let t0 = Instant::now();
    ua.register(1, t0).expect("register");
    let first = request(&only(transmits(&mut ua)));
    let challenge = format!("WWW-Authenticate: {CHALLENGE}");
    ua.handle_datagram(
        &reply(&first, 401, "Unauthorized", &[challenge]),
        Transport::Udp,
        addr(REGISTRAR),
        t0,
    );
    let second = request(&only(transmits(&mut ua)));
    // Asterisk-style: a fresh nonce, but for a retry it means "wrong".
    let again = "WWW-Authenticate: Digest realm=\"example.com\", nonce=\"n0nce2\", qop=\"auth\"";
    ua.handle_datagram(
        &reply(&second, 401, "Unauthorized", &[again.into()]),
        Transport::Udp,
        addr(REGISTRAR),
        t0,
    );
    assert!(transmits(&mut ua).is_empty(), "no immediate retry");
    let states = registration_events(&mut ua);
    match states.as_slice() {
        [RegistrationState::Registering, RegistrationState::Failed { code: 401, reason }] => {
            assert!(reason.contains("wrong password"), "{reason}");
        }
        other => panic!("unexpected states {other:?}"),
    }
    let sent = run_until(
        &mut ua,
        t0 + RETRY_WRONG_PASSWORD - Duration::from_millis(1),
    );
    assert!(sent.is_empty(), "nothing before the back-off");
    let sent = run_until(&mut ua, t0 + RETRY_WRONG_PASSWORD);
    assert_eq!(sent.len(), 1);
    let retry = request(&sent[0].1);
    assert_eq!(retry.method, rsip::Method::Register);
    assert_eq!(call_id(&retry), call_id(&first));
    assert!(cseq(&retry) > cseq(&second));
}

#[test]
fn interval_too_brief_retries_with_min_expires() {
    let mut ua = agent(ALICE, vec![account(1, "alice", "secret")]);
    let t0 = Instant::now();
    ua.register(1, t0).expect("register");
    let first = request(&only(transmits(&mut ua)));
    ua.handle_datagram(
        &reply(
            &first,
            423,
            "Interval Too Brief",
            &["Min-Expires: 600".into()],
        ),
        Transport::Udp,
        addr(REGISTRAR),
        t0,
    );
    let second = request(&only(transmits(&mut ua)));
    assert_eq!(header(&second.headers, "Expires"), "600");
    assert_eq!(
        headers::contacts(&second.headers).expect("Contact")[0].expires(),
        Some(600)
    );
    assert_eq!(cseq(&second), cseq(&first) + 1);
    // No Contact in the answer: the Expires header rules.
    ua.handle_datagram(
        &reply(&second, 200, "OK", &["Expires: 600".into()]),
        Transport::Udp,
        addr(REGISTRAR),
        t0,
    );
    assert_eq!(
        registration_events(&mut ua),
        vec![
            RegistrationState::Registering,
            RegistrationState::Registered { expires: 600 }
        ]
    );
    // A 423 that does not raise the interval is a failure, not a loop.
    let refresh = run_until(&mut ua, t0 + Duration::from_secs(540));
    let refresh = request(&refresh.first().expect("a refresh").1);
    ua.handle_datagram(
        &reply(
            &refresh,
            423,
            "Interval Too Brief",
            &["Min-Expires: 300".into()],
        ),
        Transport::Udp,
        addr(REGISTRAR),
        t0 + Duration::from_secs(540),
    );
    assert!(transmits(&mut ua).is_empty());
    assert!(matches!(
        registration_events(&mut ua).as_slice(),
        [RegistrationState::Failed { code: 423, .. }]
    ));
}

#[test]
fn silent_registrar_fails_with_408_and_backs_off() {
    let mut ua = agent(ALICE, vec![account(1, "alice", "secret")]);
    let t0 = Instant::now();
    ua.register(1, t0).expect("register");
    let first = request(&only(transmits(&mut ua)));
    let timer_f = Duration::from_millis(500) * 64;
    let sent = run_until(&mut ua, t0 + timer_f);
    assert!(sent.len() >= 5, "UDP retransmissions: {}", sent.len());
    assert!(sent.iter().all(|(_, t)| request(t).uri == first.uri));
    assert_eq!(
        registration_events(&mut ua),
        vec![
            RegistrationState::Registering,
            RegistrationState::Failed {
                code: 408,
                reason: "Request Timeout".into()
            }
        ]
    );
    let failed_at = t0 + timer_f;
    assert!(run_until(&mut ua, failed_at + RETRY_FIRST - Duration::from_millis(1)).is_empty());
    let retry = run_until(&mut ua, failed_at + RETRY_FIRST);
    assert_eq!(retry.len(), 1);
    assert!(cseq(&request(&retry[0].1)) > cseq(&first));
    // The second failure waits twice as long.
    let second_failed = failed_at + RETRY_FIRST + timer_f;
    run_until(&mut ua, second_failed);
    assert!(run_until(
        &mut ua,
        second_failed + RETRY_FIRST * 2 - Duration::from_millis(1)
    )
    .is_empty());
    assert_eq!(run_until(&mut ua, second_failed + RETRY_FIRST * 2).len(), 1);
}

#[test]
fn shutdown_unregisters_and_reaches_idle() {
    let mut ua = agent(ALICE, vec![account(1, "alice", "secret")]);
    let t0 = Instant::now();
    let registered = register_ok(&mut ua, t0, 60);
    events(&mut ua);
    assert!(!ua.is_idle(), "not idle before shutdown");
    let t1 = t0 + Duration::from_secs(10);
    ua.shutdown(t1);
    let bye = request(&only(transmits(&mut ua)));
    assert_eq!(header(&bye.headers, "Expires"), "0");
    assert_eq!(
        headers::contacts(&bye.headers).expect("Contact")[0].expires(),
        Some(0)
    );
    assert_eq!(call_id(&bye), call_id(&registered));
    assert!(cseq(&bye) > cseq(&registered));
    verify_digest(&bye, CHALLENGE, "secret");
    assert!(!ua.is_idle(), "waiting for the registrar");
    assert_eq!(ua.register(1, t1), Err(UaError::ShuttingDown));
    ua.handle_datagram(
        &reply(&bye, 200, "OK", &[]),
        Transport::Udp,
        addr(REGISTRAR),
        t1,
    );
    assert_eq!(
        registration_events(&mut ua),
        vec![RegistrationState::Unregistered]
    );
    assert!(ua.is_idle());
    // Nothing is refreshed any more.
    assert!(run_until(&mut ua, t1 + Duration::from_secs(3600)).is_empty());
}

#[test]
fn unregister_timeout_still_ends_unregistered() {
    let mut ua = agent(ALICE, vec![account(1, "alice", "secret")]);
    let t0 = Instant::now();
    register_ok(&mut ua, t0, 60);
    events(&mut ua);
    ua.unregister(1, t0).expect("unregister");
    assert_eq!(transmits(&mut ua).len(), 1);
    run_until(&mut ua, t0 + Duration::from_secs(40));
    assert_eq!(
        registration_events(&mut ua),
        vec![RegistrationState::Unregistered]
    );
    assert!(run_until(&mut ua, t0 + Duration::from_secs(3600)).is_empty());
}

#[test]
fn proxy_route_public_address_and_keep_alive() {
    let mut alice = account(1, "alice", "secret");
    alice.proxy = HostPort::parse("proxy.example.com:5080");
    alice.public_addr = Some("203.0.113.5:6060".into());
    alice.keep_alive = Some(Duration::from_secs(15));
    let mut ua = agent(ALICE, vec![alice]);
    let t0 = Instant::now();
    ua.register(1, t0).expect("register");
    let first = request(&only(transmits(&mut ua)));
    assert_eq!(
        header(&first.headers, "Route"),
        "<sip:proxy.example.com:5080;lr>"
    );
    assert_eq!(
        headers::contacts(&first.headers).expect("Contact")[0].uri,
        "sip:alice@203.0.113.5:6060;transport=udp"
    );
    assert_eq!(
        headers::top_via(&first.headers).expect("Via").sent_by_key(),
        "203.0.113.5:6060"
    );
    ua.handle_datagram(
        &reply(&first, 200, "OK", &["Expires: 3600".into()]),
        Transport::Udp,
        addr(REGISTRAR),
        t0,
    );
    let sent = run_until(&mut ua, t0 + Duration::from_secs(46));
    let keep_alives: Vec<_> = sent
        .iter()
        .filter(|(_, t)| t.bytes == KEEP_ALIVE)
        .map(|(at, t)| {
            assert_eq!(t.destination, addr(REGISTRAR));
            *at - t0
        })
        .collect();
    assert_eq!(
        keep_alives,
        vec![
            Duration::from_secs(15),
            Duration::from_secs(30),
            Duration::from_secs(45)
        ]
    );
}

#[test]
fn accounts_without_registrar_or_unknown_are_refused() {
    let mut none = account(2, "bob", "pw");
    none.registrar = None;
    let mut ua = agent(ALICE, vec![none]);
    let now = Instant::now();
    assert_eq!(ua.register(2, now), Err(UaError::NoRegistrar(2)));
    assert_eq!(ua.register(7, now), Err(UaError::UnknownAccount(7)));
    assert_eq!(ua.registration(2), Some(&RegistrationState::Unregistered));
    assert_eq!(ua.registration(7), None);
    assert!(transmits(&mut ua).is_empty());
}

#[test]
fn refresh_timing() {
    assert_eq!(
        super::super::registration::refresh_after(60),
        Duration::from_secs(54)
    );
    assert_eq!(
        super::super::registration::refresh_after(3600),
        Duration::from_secs(3240)
    );
    assert_eq!(
        super::super::registration::refresh_after(30),
        Duration::from_secs(25)
    );
    assert_eq!(
        super::super::registration::refresh_after(4),
        Duration::from_secs(2)
    );
}

#[test]
fn register_again_after_a_failure_sends_once_and_sleeps() {
    let mut ua = agent(ALICE, vec![account(1, "alice", "secret")]);
    let t0 = Instant::now();
    ua.register(1, t0).expect("register");
    let first = request(&only(transmits(&mut ua)));
    ua.handle_datagram(
        &reply(&first, 503, "Service Unavailable", &[]),
        Transport::Udp,
        addr(REGISTRAR),
        t0,
    );
    assert!(matches!(
        registration_events(&mut ua).as_slice(),
        [
            RegistrationState::Registering,
            RegistrationState::Failed { code: 503, .. }
        ]
    ));
    // The user does not wait for the back-off.
    let t1 = t0 + Duration::from_secs(1);
    ua.register(1, t1).expect("register again");
    let second = request(&only(transmits(&mut ua)));
    assert!(cseq(&second) > cseq(&first));
    // Only the REGISTER's own retransmission timer is pending, not the
    // superseded retry (which would be in the past soon and spin).
    let t2 = t0 + RETRY_FIRST + Duration::from_secs(1);
    let sent = run_until(&mut ua, t2);
    assert!(
        sent.iter()
            .all(|(_, t)| request(t).headers == second.headers),
        "only retransmissions"
    );
    ua.handle_datagram(
        &reply(&second, 200, "OK", &["Expires: 120".into()]),
        Transport::Udp,
        addr(REGISTRAR),
        t2,
    );
    assert!(ua.poll_timeout().is_some_and(|at| at > t2));
    assert_eq!(
        ua.registration(1),
        Some(&RegistrationState::Registered { expires: 120 })
    );
}
