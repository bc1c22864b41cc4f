//! Proves the SIP peers harness (tests/src/peers.rs) with peers only:
//! kamailio challenges and registers sipp, sipp calls baresip, baresip
//! calls sipp, two baresips call each other through kamailio. No msipphone
//! yet: these fail when a peer or the harness misbehaves.
#![cfg(unix)]

use e2e::peers::{
    group_alive, udp_request, Baresip, BaresipConfig, DigestAlgorithm, Kamailio, KamailioOptions,
    Sipp, SippTransport, AUTO_ANSWER,
};
use std::time::Duration;

const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn sipp_registers_with_kamailio_md5_digest() {
    let kamailio = Kamailio::start();
    assert_eq!(kamailio.algorithm(), DigestAlgorithm::Md5);
    let pid = kamailio.pid();
    for transport in [SippTransport::Udp, SippTransport::Tcp] {
        Sipp::scenario("register.xml")
            .remote(kamailio.addr())
            .service("alice")
            .auth("alice", Kamailio::PASSWORD)
            .transport(transport)
            .timeout(Duration::from_secs(5))
            .run()
            .assert_success(&format!("REGISTER alice/secret over {transport:?}"));
    }
    // A wrong password must be refused (401 again or 403), never 200.
    let refused = Sipp::scenario("register_refused.xml")
        .remote(kamailio.addr())
        .service("alice")
        .auth("alice", "wrong")
        .timeout(Duration::from_secs(5))
        .run();
    refused.assert_success("REGISTER alice/wrong (must be refused)");
    assert!(
        !refused.messages.contains("SIP/2.0 200"),
        "a wrong password was accepted:\n{refused}"
    );
    // And the refusal scenario must fail when the password is right,
    // or it would prove nothing.
    Sipp::scenario("register_refused.xml")
        .remote(kamailio.addr())
        .service("alice")
        .auth("alice", Kamailio::PASSWORD)
        .timeout(Duration::from_secs(5))
        .run()
        .assert_code(1, "register_refused.xml with the right password");
    assert!(
        kamailio.log().contains("REQ REGISTER"),
        "kamailio logged no REGISTER:\n{}",
        kamailio.log_tail()
    );
    drop(kamailio);
    assert!(!group_alive(pid), "kamailio's processes outlived it");
}

#[test]
fn kamailio_challenges_with_sha256_when_asked() {
    let kamailio = Kamailio::start_with(KamailioOptions {
        algorithm: DigestAlgorithm::Sha256,
    });
    let port = kamailio.port();
    let response = udp_request(
        kamailio.addr(),
        &format!(
            "REGISTER sip:127.0.0.1:{port} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {{local}};branch=z9hG4bK-sha256\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:carol@127.0.0.1>;tag=sha\r\n\
             To: <sip:carol@127.0.0.1>\r\n\
             Call-ID: sha256-{port}@127.0.0.1\r\n\
             CSeq: 1 REGISTER\r\n\
             Contact: <sip:carol@{{local}}>\r\n\
             Content-Length: 0\r\n\r\n"
        ),
        Duration::from_secs(5),
    );
    assert!(
        response.starts_with("SIP/2.0 401"),
        "expected a 401 challenge, got:\n{response}"
    );
    assert!(
        response.contains("algorithm=SHA-256") && response.contains("qop=\"auth\""),
        "expected a SHA-256 qop=auth challenge, got:\n{response}"
    );
}

#[test]
fn sipp_calls_baresip_which_answers() {
    let mut bob = Baresip::start(AUTO_ANSWER);
    let pid = bob.pid();
    let outcome = Sipp::call(bob.addr(), "bob", Duration::from_millis(500));
    outcome.assert_success("INVITE/ACK/BYE to baresip");
    assert!(
        outcome.messages.contains("SIP/2.0 200"),
        "no 200 in sipp's trace:\n{outcome}"
    );
    let established = bob.wait_event("CALL_ESTABLISHED", EVENT_TIMEOUT);
    assert_eq!(established["direction"], "incoming", "{established}");
    let closed = bob.wait_event("CALL_CLOSED", EVENT_TIMEOUT);
    assert_eq!(established["id"], closed["id"], "{closed}");
    drop(bob);
    assert!(!group_alive(pid), "baresip outlived its helper");
}

#[test]
fn baresip_calls_sipp_uas() {
    let uas = Sipp::uas();
    let mut alice = Baresip::start("");
    alice.dial(&uas.uri("service"));
    let established = alice.wait_event("CALL_ESTABLISHED", EVENT_TIMEOUT);
    assert_eq!(established["direction"], "outgoing", "{established}");
    alice.hangup();
    alice.wait_event("CALL_CLOSED", EVENT_TIMEOUT);
    uas.wait()
        .assert_success("the built-in UAS answering baresip");
}

#[test]
fn baresips_call_each_other_through_kamailio() {
    let kamailio = Kamailio::start();
    let mut bob = Baresip::start_with(BaresipConfig {
        aor: kamailio.aor("bob"),
        options: format!("{};{AUTO_ANSWER}", kamailio.baresip_options("udp")),
        ..BaresipConfig::default()
    });
    let mut alice = Baresip::start_with(BaresipConfig {
        aor: kamailio.aor("alice"),
        options: kamailio.baresip_options("tcp"),
        ..BaresipConfig::default()
    });
    bob.wait_registered(EVENT_TIMEOUT);
    alice.wait_registered(EVENT_TIMEOUT);

    alice.dial(&kamailio.aor("bob"));
    alice.wait_event("CALL_ESTABLISHED", EVENT_TIMEOUT);
    bob.wait_event("CALL_ESTABLISHED", EVENT_TIMEOUT);
    alice.hold();
    alice.resume();
    alice.hangup();
    alice.wait_event("CALL_CLOSED", EVENT_TIMEOUT);
    bob.wait_event("CALL_CLOSED", EVENT_TIMEOUT);
    assert!(
        kamailio
            .log()
            .contains(&format!("REQ INVITE {}", kamailio.aor("bob"))),
        "the call did not go through kamailio:\n{}",
        kamailio.log_tail()
    );
}

#[test]
fn baresip_sends_a_message_to_sipp() {
    let sipp = Sipp::scenario("recv_message.xml")
        .timeout(Duration::from_secs(5))
        .spawn();
    let target = sipp.uri("inbox");
    let mut alice = Baresip::start_with(BaresipConfig {
        contacts: vec!["sip:nobody@127.0.0.1:9".into(), target.clone()],
        ..BaresipConfig::default()
    });
    alice.send_message(&target, "hello sipp");
    let outcome = sipp.wait();
    outcome.assert_success("receiving baresip's MESSAGE");
    assert!(
        outcome.messages.contains("hello sipp"),
        "the MESSAGE body is not in sipp's trace:\n{outcome}"
    );
}
