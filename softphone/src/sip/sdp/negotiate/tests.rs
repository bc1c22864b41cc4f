use std::net::{IpAddr, SocketAddr};

use super::*;
use crate::sip::sdp::{codecs_from_microsip, FakeMedia, MediaCall, MediaEngine};

fn local(ids: &str, order: CodecOrder) -> LocalMedia {
    let ids: Vec<&str> = ids.split_whitespace().collect();
    let (codecs, skipped) = codecs_from_microsip(&ids, false);
    assert!(skipped.is_empty());
    LocalMedia {
        address: "192.0.2.1".parse().unwrap(),
        port: 40000,
        codecs,
        telephone_event: Some(101),
        ptime: Some(20),
        answer_order: order,
        srtp: SrtpMode::Off,
    }
}

fn session(ids: &str) -> SdpSession {
    SdpSession::new(local(ids, CodecOrder::Ours), 1000)
}

fn parse(s: &str) -> SessionDescription {
    SessionDescription::parse(s).unwrap()
}

const ASTERISK: &str = "v=0\r\no=- 1234 1234 IN IP4 198.51.100.7\r\ns=Asterisk\r\n\
c=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 10000 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\na=ptime:20\r\na=maxptime:150\r\na=sendrecv\r\n";

fn audio(sdp: &SessionDescription) -> &MediaDescription {
    sdp.media.iter().find(|m| m.port != 0).unwrap()
}

#[test]
fn offer_round_trips() {
    let mut s = session("opus/48000/2 PCMU/8000/1 PCMA/8000/1 G722/16000/1");
    let offer = s.create_offer();
    let text = offer.to_string();
    assert_eq!(
        text,
        "v=0\r\no=- 1000 1000 IN IP4 192.0.2.1\r\ns=msipphone\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 96 0 8 9 101 97\r\n\
         a=rtpmap:96 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n\
         a=rtpmap:97 telephone-event/48000\r\na=fmtp:97 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    );
    assert_eq!(parse(&text), offer);
}

#[test]
fn answers_asterisk_in_our_order_echoing_te() {
    let mut s = session("PCMU/8000/1 PCMA/8000/1");
    let (answer, neg) = s.answer_offer(&parse(ASTERISK)).unwrap();
    let m = audio(&answer);
    assert_eq!(m.formats, ["0", "8", "101"]);
    assert_eq!(m.fmtp(101), Some("0-16"));
    assert_eq!(m.direction(), Some(Direction::SendRecv));
    assert_eq!(neg.send_codec.pt, 0);
    assert_eq!(neg.send_codec.codec.encoding, "PCMU");
    assert_eq!(
        neg.send_telephone_event,
        Some(TelephoneEvent {
            pt: 101,
            clock_rate: 8000
        })
    );
    assert_eq!(
        neg.remote,
        "198.51.100.7:10000".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(neg.ptime, Some(20));
    assert_eq!(neg.direction, Direction::SendRecv);
}

#[test]
fn codec_order_follows_force_codec() {
    let offer = parse(ASTERISK);
    let ids = "PCMA/8000/1 PCMU/8000/1";
    let mut ours = SdpSession::new(local(ids, CodecOrder::from_force_codec(true)), 1);
    let (a, n) = ours.answer_offer(&offer).unwrap();
    assert_eq!(audio(&a).formats, ["8", "0", "101"]);
    assert_eq!(n.send_codec.pt, 8);
    let mut theirs = SdpSession::new(local(ids, CodecOrder::from_force_codec(false)), 1);
    let (a, n) = theirs.answer_offer(&offer).unwrap();
    assert_eq!(audio(&a).formats, ["0", "8", "101"]);
    assert_eq!(n.send_codec.pt, 0);
}

#[test]
fn dynamic_te_and_opus_numbers_are_the_offerers() {
    let offer = parse(
        "v=0\no=- 1 1 IN IP4 203.0.113.9\ns=-\nc=IN IP4 203.0.113.9\nt=0 0\n\
         m=audio 5004 RTP/AVP 111 0 126 110\na=rtpmap:111 opus/48000/2\na=fmtp:111 useinbandfec=1\n\
         a=rtpmap:126 telephone-event/8000\na=rtpmap:110 telephone-event/48000\n",
    );
    let mut s = session("opus/48000/2 PCMU/8000/1");
    let (a, n) = s.answer_offer(&offer).unwrap();
    assert_eq!(audio(&a).formats, ["111", "0", "126", "110"]);
    assert_eq!(n.send_codec.pt, 111);
    assert_eq!(n.send_codec.remote_fmtp.as_deref(), Some("useinbandfec=1"));
    assert_eq!(n.send_telephone_event.map(|e| e.pt), Some(110));
}

#[test]
fn only_g729_is_not_acceptable() {
    let offer = parse(
        &ASTERISK
            .replace("0 8 101", "18")
            .replace("a=rtpmap:0", "a=x:0"),
    );
    let e = session("PCMU/8000/1 PCMA/8000/1")
        .answer_offer(&offer)
        .unwrap_err();
    assert_eq!(e.sip_status(), 488);
    assert!(
        e.to_string()
            .contains("no codec in common (offered: G729/8000)"),
        "{e}"
    );
}

#[test]
fn video_is_rejected_and_order_kept() {
    let offer = parse(
        "v=0\r\no=- 5 5 IN IP4 203.0.113.9\r\ns=-\r\nc=IN IP4 203.0.113.9\r\nt=0 0\r\n\
         m=video 6000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
         m=audio 6002 RTP/AVP 0\r\n",
    );
    let mut s = session("PCMU/8000/1");
    let (a, _) = s.answer_offer(&offer).unwrap();
    assert_eq!(a.media.len(), 2);
    assert_eq!((a.media[0].media.as_str(), a.media[0].port), ("video", 0));
    assert_eq!(a.media[0].formats, ["96"]);
    assert_eq!(
        (a.media[1].media.as_str(), a.media[1].port),
        ("audio", 40000)
    );
    // A later re-offer of ours must keep both m-lines in place.
    let re = s.create_offer();
    assert_eq!(re.media.len(), 2);
    assert_eq!((re.media[0].port, re.media[1].port), (0, 40000));
}

#[test]
fn savp_only_offer_is_refused() {
    let offer = parse(&ASTERISK.replace("RTP/AVP", "RTP/SAVP"));
    let e = session("PCMU/8000/1").answer_offer(&offer).unwrap_err();
    assert!(matches!(e, SdpError::NotAcceptable(ref r) if r.contains("RTP/SAVP")));
}

#[test]
fn remote_hold_sendonly_is_answered_recvonly() {
    let mut s = session("PCMU/8000/1");
    s.answer_offer(&parse(ASTERISK)).unwrap();
    let hold = parse(&ASTERISK.replace("a=sendrecv", "a=sendonly"));
    let (a, n) = s.answer_offer(&hold).unwrap();
    assert_eq!(audio(&a).direction(), Some(Direction::RecvOnly));
    assert_eq!(n.direction, Direction::RecvOnly);
    assert!(s.is_remote_hold());
    // Holding back while held by the peer offers inactive.
    s.set_hold(true);
    let o = s.create_offer();
    assert_eq!(o.media[0].direction(), Some(Direction::Inactive));
}

#[test]
fn legacy_hold_address_is_recognised() {
    let mut s = session("PCMU/8000/1");
    let offer = parse(&ASTERISK.replace("c=IN IP4 198.51.100.7", "c=IN IP4 0.0.0.0"));
    let (a, n) = s.answer_offer(&offer).unwrap();
    assert!(s.is_remote_hold());
    assert_eq!(n.direction, Direction::RecvOnly);
    assert_eq!(audio(&a).direction(), Some(Direction::RecvOnly));
    assert!(n.remote.ip().is_unspecified());
}

#[test]
fn hold_and_resume_bump_the_version() {
    let mut s = session("PCMU/8000/1 PCMA/8000/1");
    let first = s.create_offer();
    assert_eq!(first.origin.as_ref().unwrap().session_version, "1000");
    let answer = parse(&ASTERISK.replace("0 8 101", "8 101"));
    let n = s.process_answer(&answer).unwrap();
    assert_eq!(n.send_codec.pt, 8);
    assert_eq!(n.receive_codecs.len(), 1);

    s.set_hold(true);
    let hold = s.create_offer();
    assert_eq!(hold.media[0].direction(), Some(Direction::SendOnly));
    assert_eq!(hold.origin.as_ref().unwrap().session_version, "1001");
    let held = parse(&ASTERISK.replace("a=sendrecv", "a=recvonly"));
    assert_eq!(
        s.process_answer(&held).unwrap().direction,
        Direction::SendOnly
    );

    s.set_hold(false);
    let resume = s.create_offer();
    assert_eq!(resume.media[0].direction(), Some(Direction::SendRecv));
    assert_eq!(s.version(), 1002);
    s.rollback_offer();
    // An unchanged re-offer (session refresh) keeps the version.
    s.create_offer();
    assert_eq!(s.version(), 1002);
}

#[test]
fn answer_with_other_dynamic_number() {
    let mut s = session("opus/48000/2 PCMU/8000/1");
    s.create_offer();
    let answer = parse(
        "v=0\nc=IN IP4 203.0.113.9\nm=audio 7000 RTP/AVP 111 100\n\
         a=rtpmap:111 OPUS/48000/2\na=rtpmap:100 telephone-event/48000\n",
    );
    let n = s.process_answer(&answer).unwrap();
    assert_eq!(n.send_codec.pt, 111);
    assert_eq!(
        n.receive_codecs.iter().map(|p| p.pt).collect::<Vec<_>>(),
        [96]
    );
    assert_eq!(n.send_telephone_event.map(|e| e.pt), Some(100));
    assert_eq!(
        n.receive_telephone_events,
        [TelephoneEvent {
            pt: 97,
            clock_rate: 48000
        }]
    );
}

#[test]
fn answer_errors() {
    let mut s = session("PCMU/8000/1");
    assert_eq!(
        s.process_answer(&parse(ASTERISK)),
        Err(SdpError::NoOfferPending)
    );
    s.create_offer();
    let rejected = parse(&ASTERISK.replace("m=audio 10000", "m=audio 0"));
    assert!(matches!(
        s.process_answer(&rejected),
        Err(SdpError::NotAcceptable(_))
    ));
    s.create_offer();
    assert_eq!(
        s.answer_offer(&parse(ASTERISK)).unwrap_err(),
        SdpError::Glare
    );
    assert_eq!(SdpError::Glare.sip_status(), 491);
    let two = parse(&format!("{ASTERISK}m=video 0 RTP/AVP 96\r\n"));
    assert!(matches!(
        s.process_answer(&two),
        Err(SdpError::BadAnswer(_))
    ));
}

#[test]
fn lf_only_offer_is_answered() {
    let mut s = session("PCMA/8000/1");
    let (a, n) = s
        .answer_offer(&parse(&ASTERISK.replace("\r\n", "\n")))
        .unwrap();
    assert_eq!(n.send_codec.pt, 8);
    assert!(a.to_string().contains("m=audio 40000 RTP/AVP 8 101\r\n"));
}

#[test]
fn drives_fake_media() {
    let mut engine = FakeMedia::new();
    let rtp = engine.allocate().unwrap();
    let mut lm = local("PCMU/8000/1", CodecOrder::Ours);
    lm.port = rtp.port;
    lm.address = rtp.address;
    lm.codecs.retain(|c| engine.supports(c));
    let mut s = SdpSession::new(lm, 7);
    let (_, n) = s.answer_offer(&parse(ASTERISK)).unwrap();
    engine.start(rtp.handle, &n).unwrap();
    engine.stop(rtp.handle);
    assert!(engine.live().is_empty());
    assert!(
        matches!(&engine.calls[1], MediaCall::Start(h, m) if *h == rtp.handle && m.local_port == 40000)
    );
    assert!(engine.update(rtp.handle, &n).is_err());
    assert_eq!(s.local().address, IpAddr::from([127, 0, 0, 1]));
}

fn srtp_session(mode: SrtpMode) -> SdpSession {
    let mut local = local("PCMU/8000/1", CodecOrder::Ours);
    local.srtp = mode;
    SdpSession::new(local, 1000)
}

fn crypto_of(m: &MediaDescription) -> Vec<&str> {
    m.attributes
        .iter()
        .filter(|a| a.name == "crypto")
        .filter_map(|a| a.value.as_deref())
        .collect()
}

#[test]
fn srtp_offers_follow_the_mode() {
    let offer = srtp_session(SrtpMode::Off).create_offer();
    assert_eq!(audio(&offer).proto, "RTP/AVP");
    assert!(crypto_of(audio(&offer)).is_empty());
    let offer = srtp_session(SrtpMode::Optional).create_offer();
    assert_eq!(audio(&offer).proto, "RTP/AVP");
    let lines = crypto_of(audio(&offer));
    assert_eq!(lines.len(), 1);
    assert!(lines[0].starts_with("1 AES_CM_128_HMAC_SHA1_80 inline:"));
    let offer = srtp_session(SrtpMode::Mandatory).create_offer();
    assert_eq!(audio(&offer).proto, "RTP/SAVP");
    assert_eq!(crypto_of(audio(&offer)).len(), 1);
}

#[test]
fn srtp_offer_and_answer_exchange_keys() {
    let mut alice = srtp_session(SrtpMode::Mandatory);
    let mut bob = srtp_session(SrtpMode::Optional);
    let offer = alice.create_offer();
    let (answer, bob_media) = bob.answer_offer(&parse(&offer.to_string())).unwrap();
    assert_eq!(audio(&answer).proto, "RTP/SAVP");
    let lines = crypto_of(audio(&answer));
    assert!(lines[0].starts_with("1 AES_CM_128_HMAC_SHA1_80 inline:"));
    let alice_media = alice.process_answer(&parse(&answer.to_string())).unwrap();
    let (a, b) = (alice_media.srtp.unwrap(), bob_media.srtp.unwrap());
    assert_eq!(a.local, b.remote);
    assert_eq!(a.remote, b.local);
    assert_ne!(a.local, a.remote);
}

#[test]
fn srtp_answer_picks_a_supported_suite() {
    let key =
        crate::media::srtp::SrtpKey::generate(crate::media::srtp::SrtpSuite::AesCm128HmacSha1_32)
            .unwrap();
    let offer = ASTERISK.replace("RTP/AVP", "RTP/SAVP").replace(
        "a=sendrecv\r\n",
        &format!(
            "a=sendrecv\r\na=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:AAAA\r\n\
             a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{}\r\n",
            key.inline()
        ),
    );
    let (answer, media) = srtp_session(SrtpMode::Optional)
        .answer_offer(&parse(&offer))
        .unwrap();
    assert!(crypto_of(audio(&answer))[0].starts_with("2 AES_CM_128_HMAC_SHA1_32 inline:"));
    assert_eq!(media.srtp.unwrap().remote, key);
}

#[test]
fn srtp_mismatches_are_refused_with_488() {
    let savp = ASTERISK.replace("RTP/AVP", "RTP/SAVP");
    let err = srtp_session(SrtpMode::Off)
        .answer_offer(&parse(&savp))
        .unwrap_err();
    assert_eq!(err.sip_status(), 488);
    let err = srtp_session(SrtpMode::Mandatory)
        .answer_offer(&parse(ASTERISK))
        .unwrap_err();
    assert_eq!(err.sip_status(), 488);
    // Optional SRTP takes a plain offer as it is.
    let (_, media) = srtp_session(SrtpMode::Optional)
        .answer_offer(&parse(ASTERISK))
        .unwrap();
    assert!(media.srtp.is_none());
    // A mandatory offer answered without a key fails.
    let mut s = srtp_session(SrtpMode::Mandatory);
    s.create_offer();
    let plain = ASTERISK.replace("RTP/AVP", "RTP/SAVP");
    assert_eq!(
        s.process_answer(&parse(&plain)).unwrap_err().sip_status(),
        488
    );
}
