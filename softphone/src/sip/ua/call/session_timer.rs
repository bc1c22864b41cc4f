//! RFC 4028 session timers: what we ask for, what was negotiated, and when
//! to refresh or give up.

use std::time::{Duration, Instant};

use rsip::Headers;

use super::build::lists;
use crate::sip::headers;

/// The Session-Expires we ask for (RFC 4028 §4 recommends 1800 s).
pub const DEFAULT_INTERVAL: u32 = 1800;
/// Our Min-SE: the RFC 4028 §4 floor of 90 s.
pub const MIN_SE: u32 = 90;

/// Which side of the transaction refreshes (`refresher=` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refresher {
    Uac,
    Uas,
}

impl Refresher {
    pub fn token(self) -> &'static str {
        match self {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        }
    }
}

/// A Session-Expires value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SessionExpires {
    pub interval: u32,
    pub refresher: Option<Refresher>,
}

/// Reads Session-Expires (or its compact `x`); unreadable counts as absent.
pub(super) fn session_expires(headers: &Headers) -> Option<SessionExpires> {
    let value = headers::raw_values(headers, "Session-Expires").next()?;
    let mut parts = value.split(';');
    let interval = parts.next()?.trim().parse().ok()?;
    let refresher = parts.find_map(|p| {
        let (name, v) = p.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("refresher") {
            return None;
        }
        match v.trim().to_ascii_lowercase().as_str() {
            "uac" => Some(Refresher::Uac),
            "uas" => Some(Refresher::Uas),
            _ => None,
        }
    });
    Some(SessionExpires {
        interval,
        refresher,
    })
}

/// Reads Min-SE.
pub(super) fn min_se(headers: &Headers) -> Option<u32> {
    headers::raw_values(headers, "Min-SE")
        .next()?
        .split(';')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The negotiated timer of a running session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SessionTimer {
    /// Seconds.
    pub interval: u32,
    /// Whether we send the refreshes.
    pub we_refresh: bool,
    /// When to refresh (we refresh) or give up (they do).
    pub deadline: Instant,
}

impl SessionTimer {
    /// Starts the timer at `now`: refresh at half the interval (§10), or
    /// expire at the interval minus min(32 s, interval/3) (§10).
    pub fn start(interval: u32, we_refresh: bool, now: Instant) -> Self {
        let secs = u64::from(interval);
        let after = if we_refresh {
            Duration::from_millis(secs * 500)
        } else {
            Duration::from_secs(secs - (secs / 3).min(32))
        };
        Self {
            interval,
            we_refresh,
            deadline: now + after,
        }
    }

    /// As the UAC of a transaction whose 2xx is `headers` (§7.2): the
    /// timer that response sets up, `None` when it has no Session-Expires.
    pub fn from_uac_2xx(headers: &Headers, now: Instant) -> Option<Self> {
        let se = session_expires(headers)?;
        let we_refresh = se.refresher != Some(Refresher::Uas);
        Some(Self::start(se.interval.max(MIN_SE), we_refresh, now))
    }
}

/// What we answer, as the UAS of an INVITE/UPDATE carrying `headers`
/// (§9): the interval and who refreshes, or `None` when the peer does not
/// do session timers at all. `Err(())` means 422 (interval below Min-SE).
pub(super) fn uas_choice(headers: &Headers) -> Result<Option<SessionExpires>, ()> {
    let supports = lists(headers, "Supported", "timer");
    match session_expires(headers) {
        Some(se) if se.interval < MIN_SE => Err(()),
        Some(se) => Ok(Some(SessionExpires {
            interval: se.interval,
            // §9: a UAS picks uac when the UAC supports timers and did not
            // choose, else itself.
            refresher: Some(se.refresher.unwrap_or(if supports {
                Refresher::Uac
            } else {
                Refresher::Uas
            })),
        })),
        None if supports => Ok(Some(SessionExpires {
            interval: DEFAULT_INTERVAL,
            refresher: Some(Refresher::Uac),
        })),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsip::Header;

    fn hdrs(list: &[(&str, &str)]) -> Headers {
        let mut h = Headers::default();
        for (n, v) in list {
            h.push(Header::Other((*n).to_owned(), (*v).to_owned()));
        }
        h
    }

    #[test]
    fn reads_session_expires_in_any_form() {
        let h = hdrs(&[("x", "600 ; Refresher = UAS")]);
        assert_eq!(
            session_expires(&h),
            Some(SessionExpires {
                interval: 600,
                refresher: Some(Refresher::Uas)
            })
        );
        assert_eq!(session_expires(&hdrs(&[("Session-Expires", "abc")])), None);
        assert_eq!(min_se(&hdrs(&[("Min-SE", "120")])), Some(120));
    }

    #[test]
    fn deadlines_follow_rfc4028_section_10() {
        let now = Instant::now();
        let t = SessionTimer::start(1800, true, now);
        assert_eq!(t.deadline - now, Duration::from_secs(900));
        let t = SessionTimer::start(1800, false, now);
        assert_eq!(t.deadline - now, Duration::from_secs(1768));
        let t = SessionTimer::start(90, false, now);
        assert_eq!(t.deadline - now, Duration::from_secs(60));
    }

    #[test]
    fn uas_choice_follows_section_9() {
        assert_eq!(uas_choice(&hdrs(&[("Session-Expires", "60")])), Err(()));
        assert_eq!(uas_choice(&hdrs(&[])), Ok(None));
        let c = uas_choice(&hdrs(&[("Supported", "timer"), ("Session-Expires", "300")]));
        assert_eq!(
            c,
            Ok(Some(SessionExpires {
                interval: 300,
                refresher: Some(Refresher::Uac)
            }))
        );
        let c = uas_choice(&hdrs(&[("Session-Expires", "300")]));
        assert_eq!(
            c.ok().flatten().and_then(|s| s.refresher),
            Some(Refresher::Uas)
        );
    }
}
