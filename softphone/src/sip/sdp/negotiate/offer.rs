//! Our offers and the answers to them (RFC 3264 §5, §7, §8).

use super::crypto::{crypto_lines, is_savp, SrtpKeys, SrtpMode};
use super::{
    pick_event, rejected, remote_direction, remote_endpoint, remote_formats, Layout,
    NegotiatedMedia, PayloadCodec, PendingOffer, SdpSession, TelephoneEvent,
};
use crate::sip::sdp::model::{MediaDescription, SessionDescription};
use crate::sip::sdp::SdpError;

impl SdpSession {
    /// Payload numbers for our offer: static ones where RFC 3551 has them,
    /// then 96.. for the rest, telephone-event at the configured number for
    /// 8000 Hz and further dynamic numbers for other codec clocks.
    fn offer_payloads(&self) -> (Vec<PayloadCodec>, Vec<TelephoneEvent>) {
        let mut used: Vec<u8> = self
            .local
            .codecs
            .iter()
            .filter_map(|c| c.static_pt)
            .collect();
        used.extend(self.local.telephone_event);
        let mut next = 96u8;
        let mut alloc = |used: &mut Vec<u8>| -> Option<u8> {
            while next <= 127 {
                let pt = next;
                next += 1;
                if !used.contains(&pt) {
                    used.push(pt);
                    return Some(pt);
                }
            }
            None
        };
        let mut payloads = Vec::new();
        for codec in &self.local.codecs {
            let pt = match codec.static_pt {
                Some(pt) => Some(pt),
                None => alloc(&mut used),
            };
            if let Some(pt) = pt {
                payloads.push(PayloadCodec {
                    pt,
                    codec: codec.clone(),
                    remote_fmtp: None,
                });
            }
        }
        let mut events = Vec::new();
        if let Some(base) = self.local.telephone_event {
            let mut clocks: Vec<u32> = Vec::new();
            for p in &payloads {
                if !clocks.contains(&p.codec.clock_rate) {
                    clocks.push(p.codec.clock_rate);
                }
            }
            // 8000 Hz gets the configured number: it is the one every
            // PBX understands.
            clocks.sort_by_key(|c| *c != 8000);
            for (i, clock_rate) in clocks.into_iter().enumerate() {
                let pt = if i == 0 { Some(base) } else { alloc(&mut used) };
                if let Some(pt) = pt {
                    events.push(TelephoneEvent { pt, clock_rate });
                }
            }
        }
        (payloads, events)
    }

    /// Our offer (initial INVITE, or re-INVITE for hold/resume/refresh).
    /// Call [`SdpSession::process_answer`] with the answer.
    pub fn create_offer(&mut self) -> SessionDescription {
        let (payloads, events) = self.offer_payloads();
        let direction = self.desired_direction();
        // Mandatory SRTP offers the secure profile; optional offers plain
        // AVP with a crypto line, which MicroSIP/PJSIP and baresip accept.
        let crypto = match self.local.srtp {
            SrtpMode::Off => None,
            SrtpMode::Optional | SrtpMode::Mandatory => {
                self.srtp_key(crate::media::srtp::SrtpSuite::AesCm128HmacSha1_80)
            }
        };
        let proto = if self.local.srtp == SrtpMode::Mandatory {
            "RTP/SAVP"
        } else {
            "RTP/AVP"
        };
        let audio = self.audio_section(
            &payloads,
            &events,
            direction,
            proto,
            crypto.as_ref().map(|k| (1, k)),
        );
        let (media, audio_index) = match &self.layout {
            Some(l) => {
                let mut lines: Vec<MediaDescription> = l.lines.iter().map(rejected).collect();
                if let Some(slot) = lines.get_mut(l.audio_index) {
                    *slot = audio;
                }
                (lines, l.audio_index)
            }
            None => (vec![audio], 0),
        };
        self.layout = Some(Layout {
            lines: media.clone(),
            audio_index,
        });
        self.pending = Some(PendingOffer {
            m_count: media.len(),
            payloads,
            events,
            direction,
            crypto,
        });
        self.finish(media)
    }

    /// Applies the answer to our pending offer.
    pub fn process_answer(
        &mut self,
        answer: &SessionDescription,
    ) -> Result<NegotiatedMedia, SdpError> {
        let offer = self.pending.take().ok_or(SdpError::NoOfferPending)?;
        let audio_index = self.layout.as_ref().map_or(0, |l| l.audio_index);
        if answer.media.len() != offer.m_count {
            return Err(SdpError::BadAnswer(format!(
                "{} m-lines answer an offer of {}",
                answer.media.len(),
                offer.m_count
            )));
        }
        let m = answer
            .media
            .get(audio_index)
            .ok_or_else(|| SdpError::BadAnswer("audio m-line missing".to_string()))?;
        if !m.media.eq_ignore_ascii_case("audio") {
            return Err(SdpError::BadAnswer(format!(
                "m-line {} is `{}`, not audio",
                audio_index + 1,
                m.media
            )));
        }
        if m.port == 0 {
            return Err(SdpError::NotAcceptable(
                "the answer rejected the audio stream".to_string(),
            ));
        }
        let remote = remote_endpoint(answer, m).map_err(SdpError::NotAcceptable)?;
        let srtp = self.answer_srtp(offer.crypto.as_ref(), m)?;
        let formats = remote_formats(m);
        let send_codec = formats
            .iter()
            .filter(|f| !f.is_telephone_event())
            .find_map(|f| {
                let ours = offer.payloads.iter().find(|p| {
                    p.codec
                        .matches(&f.codec.encoding, f.codec.clock_rate, f.codec.channels)
                })?;
                Some(PayloadCodec {
                    pt: f.pt,
                    codec: ours.codec.clone(),
                    remote_fmtp: f.fmtp.clone(),
                })
            })
            .ok_or_else(|| {
                SdpError::NotAcceptable("the answer holds no codec we offered".to_string())
            })?;
        let receive_codecs: Vec<PayloadCodec> = offer
            .payloads
            .iter()
            .filter_map(|p| {
                let f = formats.iter().find(|f| {
                    p.codec
                        .matches(&f.codec.encoding, f.codec.clock_rate, f.codec.channels)
                })?;
                Some(PayloadCodec {
                    remote_fmtp: f.fmtp.clone(),
                    ..p.clone()
                })
            })
            .collect();
        let remote_events: Vec<TelephoneEvent> = formats
            .iter()
            .filter(|f| f.is_telephone_event())
            .map(|f| TelephoneEvent {
                pt: f.pt,
                clock_rate: f.codec.clock_rate,
            })
            .collect();
        let receive_telephone_events = offer
            .events
            .iter()
            .filter(|e| remote_events.iter().any(|r| r.clock_rate == e.clock_rate))
            .copied()
            .collect();
        let send_telephone_event = if offer.events.is_empty() {
            None
        } else {
            pick_event(&remote_events, send_codec.codec.clock_rate)
        };
        let direction = remote_direction(answer, m)
            .reverse()
            .intersect(offer.direction);
        Ok(NegotiatedMedia {
            local_port: self.local.port,
            remote,
            send_codec,
            receive_codecs,
            send_telephone_event,
            receive_telephone_events,
            direction,
            ptime: m.ptime(),
            srtp,
        })
    }

    /// The SRTP keys from the answer's `a=crypto`, matched to the suite we
    /// offered; plain RTP is refused under `SRTP=mandatory`.
    fn answer_srtp(
        &self,
        offered: Option<&crate::media::srtp::SrtpKey>,
        m: &crate::sip::sdp::model::MediaDescription,
    ) -> Result<Option<SrtpKeys>, SdpError> {
        let answered = crypto_lines(m).into_iter().next();
        match (offered, answered) {
            (Some(local), Some(remote)) if remote.key.suite == local.suite => Ok(Some(SrtpKeys {
                local: local.clone(),
                remote: remote.key,
            })),
            // A key answering an offer without one is ignored, as PJSIP
            // does, unless the profile itself is secure.
            (None, Some(_)) if !is_savp(m) => Ok(None),
            (_, Some(_)) => Err(SdpError::NotAcceptable(
                "the answer's a=crypto does not match our offer".to_string(),
            )),
            (_, None) if self.local.srtp == SrtpMode::Mandatory || is_savp(m) => Err(
                SdpError::NotAcceptable("SRTP is mandatory but the answer has no key".to_string()),
            ),
            (_, None) => Ok(None),
        }
    }
}
