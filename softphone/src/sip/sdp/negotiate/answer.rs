//! Answering a remote offer (RFC 3264 §6).

use super::crypto::{crypto_lines, is_savp, SrtpKeys, SrtpMode};
use super::{
    is_rtp_avp, pick_event, rejected, remote_direction, remote_endpoint, remote_formats,
    CodecOrder, Layout, NegotiatedMedia, PayloadCodec, SdpSession, TelephoneEvent,
};
use crate::sip::sdp::model::{MediaDescription, SessionDescription};
use crate::sip::sdp::SdpError;

/// Our `a=crypto` (offer's tag, our key) and the negotiated keys.
type CryptoAnswer = (Option<(u32, crate::media::srtp::SrtpKey)>, Option<SrtpKeys>);

/// The audio stream we accept, before it is written.
struct Accepted {
    index: usize,
    proto: String,
    crypto: Option<(u32, crate::media::srtp::SrtpKey)>,
    payloads: Vec<PayloadCodec>,
    events: Vec<TelephoneEvent>,
    negotiated: NegotiatedMedia,
}

impl SdpSession {
    /// Answers a remote offer (INVITE, re-INVITE, UPDATE, or the 2xx of
    /// an INVITE we sent without SDP).
    ///
    /// The answer keeps the offer's m-lines in count and order; the first
    /// usable `RTP/AVP` audio stream is accepted and every other m-line is
    /// rejected with port 0. Payload numbers are the offerer's. Errors:
    /// [`SdpError::NotAcceptable`] (reply 488) when no audio stream can be
    /// accepted; [`SdpError::Glare`] (reply 491) while our own offer is
    /// pending.
    pub fn answer_offer(
        &mut self,
        offer: &SessionDescription,
    ) -> Result<(SessionDescription, NegotiatedMedia), SdpError> {
        if self.pending.is_some() {
            return Err(SdpError::Glare);
        }
        let mut accepted = None;
        let mut reason = "the offer has no audio stream".to_string();
        for (index, m) in offer.media.iter().enumerate() {
            if !m.media.eq_ignore_ascii_case("audio") || m.port == 0 {
                continue;
            }
            match self.accept_audio(offer, index, m) {
                Ok(a) => {
                    accepted = Some(a);
                    break;
                }
                Err(r) => reason = r,
            }
        }
        let accepted = accepted.ok_or(SdpError::NotAcceptable(reason))?;
        let audio = self.audio_section(
            &accepted.payloads,
            &accepted.events,
            accepted.negotiated.direction,
            &accepted.proto,
            accepted.crypto.as_ref().map(|(tag, key)| (*tag, key)),
        );
        let media: Vec<MediaDescription> = offer
            .media
            .iter()
            .enumerate()
            .map(|(i, m)| {
                if i == accepted.index {
                    audio.clone()
                } else {
                    rejected(m)
                }
            })
            .collect();
        self.layout = Some(Layout {
            lines: media.clone(),
            audio_index: accepted.index,
        });
        let sdp = self.finish(media);
        Ok((sdp, accepted.negotiated))
    }

    fn accept_audio(
        &mut self,
        offer: &SessionDescription,
        index: usize,
        m: &MediaDescription,
    ) -> Result<Accepted, String> {
        if !is_rtp_avp(m) && !is_savp(m) {
            return Err(format!("audio profile `{}` is not supported", m.proto));
        }
        let (crypto, srtp) = self.accept_crypto(m)?;
        let remote = remote_endpoint(offer, m)?;
        let formats = remote_formats(m);
        let codecs = formats.iter().filter(|f| !f.is_telephone_event());
        let pair = |f: &super::RemoteFormat, ours: &crate::sip::sdp::Codec| PayloadCodec {
            pt: f.pt,
            codec: ours.clone(),
            remote_fmtp: f.fmtp.clone(),
        };
        let payloads: Vec<PayloadCodec> = match self.local.answer_order {
            CodecOrder::Offerer => codecs
                .filter_map(|f| {
                    let ours = self.local.codecs.iter().find(|c| {
                        c.matches(&f.codec.encoding, f.codec.clock_rate, f.codec.channels)
                    })?;
                    Some(pair(f, ours))
                })
                .collect(),
            CodecOrder::Ours => {
                let offered: Vec<_> = codecs.collect();
                self.local
                    .codecs
                    .iter()
                    .filter_map(|ours| {
                        let f = offered.iter().find(|f| {
                            ours.matches(&f.codec.encoding, f.codec.clock_rate, f.codec.channels)
                        })?;
                        Some(pair(f, ours))
                    })
                    .collect()
            }
        };
        let mut payloads_dedup: Vec<PayloadCodec> = Vec::with_capacity(payloads.len());
        for p in payloads {
            if !payloads_dedup.iter().any(|q| q.pt == p.pt) {
                payloads_dedup.push(p);
            }
        }
        let payloads = payloads_dedup;
        let Some(send_codec) = payloads.first().cloned() else {
            let offered: Vec<String> = formats.iter().map(|f| f.codec.rtpmap()).collect();
            return Err(format!(
                "no codec in common (offered: {})",
                offered.join(" ")
            ));
        };
        let events = if self.local.telephone_event.is_some() {
            let offered: Vec<TelephoneEvent> = formats
                .iter()
                .filter(|f| f.is_telephone_event())
                .map(|f| TelephoneEvent {
                    pt: f.pt,
                    clock_rate: f.codec.clock_rate,
                })
                .collect();
            let mut chosen: Vec<TelephoneEvent> = offered
                .iter()
                .filter(|e| payloads.iter().any(|p| p.codec.clock_rate == e.clock_rate))
                .copied()
                .collect();
            if chosen.is_empty() {
                chosen.extend(pick_event(&offered, send_codec.codec.clock_rate));
            }
            chosen
        } else {
            Vec::new()
        };
        let remote_dir = remote_direction(offer, m);
        self.remote_hold = !remote_dir.receives();
        let direction = self.desired_direction().intersect(remote_dir.reverse());
        let negotiated = NegotiatedMedia {
            local_port: self.local.port,
            remote,
            send_telephone_event: pick_event(&events, send_codec.codec.clock_rate),
            receive_telephone_events: events.clone(),
            send_codec,
            receive_codecs: payloads.clone(),
            direction,
            ptime: m.ptime(),
            srtp,
        };
        Ok(Accepted {
            index,
            proto: m.proto.clone(),
            crypto,
            payloads,
            events,
            negotiated,
        })
    }

    /// RFC 4568 §7.1.2: picks the first offered `a=crypto` line with a
    /// suite we support and answers it with our own key in that suite.
    /// `RTP/SAVP` is refused when SRTP is off, plain RTP when mandatory.
    fn accept_crypto(&mut self, m: &MediaDescription) -> Result<CryptoAnswer, String> {
        let savp = is_savp(m);
        match self.local.srtp {
            SrtpMode::Off if savp => return Err("SRTP (RTP/SAVP) is disabled".to_string()),
            // An optional crypto line on RTP/AVP is ignored when SRTP is
            // off: plain RTP is what the offerer falls back to.
            SrtpMode::Off => return Ok((None, None)),
            SrtpMode::Optional | SrtpMode::Mandatory => {}
        }
        let Some(offered) = crypto_lines(m).into_iter().next() else {
            if savp || self.local.srtp == SrtpMode::Mandatory {
                return Err("SRTP is required but no usable a=crypto was offered".to_string());
            }
            return Ok((None, None));
        };
        let local = self
            .srtp_key(offered.key.suite)
            .ok_or_else(|| "random source failed".to_string())?;
        let keys = SrtpKeys {
            local: local.clone(),
            remote: offered.key,
        };
        Ok((Some((offered.tag, local)), Some(keys)))
    }
}
