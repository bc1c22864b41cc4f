//! What MicroSIP does to a number before dialling it: the account's
//! `dialPlan` and `dialingPrefix` (research/microsip.md §1.6).
//!
//! - `dialPlan`: rules separated by `|`, the whole optionally in `( )`.
//!   In a rule `x`/`X` is one digit, `[...]` one character of a class
//!   (`[2-9]`, `[*#]`), `.` repeats the element before it (zero or more
//!   times), `<match:replace>` matches `match` literally and writes
//!   `replace` instead (either may be empty), anything else is itself.
//!   The first rule that matches the whole number gives what is dialled;
//!   a number that matches no rule is **not dialled**. `T`/`S` (timeouts
//!   in other phones' dial plans) are ignored.
//! - `dialingPrefix`: prepended to PSTN-looking numbers (digits, `*`,
//!   `#`, an optional leading `+`) longer than 3 digits; a leading `+` is
//!   dropped first. It is stripped again from numbers written to the call
//!   log ([`Dialing::strip_prefix`]).
//!
//! Order (UNCONFIRMED in the research): the plan first, then the prefix,
//! so a plan sees what the user typed. URIs and names are left alone.
//! Spaces, dashes, dots and parentheses pasted into a number are removed.

use thiserror::Error;

use crate::config::Account;

/// Why a number is not dialled.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DialError {
    /// No rule of the account's dial plan matches.
    #[error("{number:?} matches no rule of the dial plan {plan:?}: not dialled")]
    NoMatch {
        /// The number.
        number: String,
        /// The account's `dialPlan`.
        plan: String,
    },
}

/// One element of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Element {
    /// A character matching itself.
    Literal(char),
    /// `x`: any digit.
    Digit,
    /// `[...]`: inclusive ranges.
    Class(Vec<(char, char)>),
    /// `<match:replace>`.
    Rewrite(String, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    element: Element,
    /// Followed by `.`: zero or more times.
    repeat: bool,
}

/// A parsed `dialPlan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialPlan {
    text: String,
    rules: Vec<Vec<Item>>,
}

impl DialPlan {
    /// Parses a `dialPlan` value; `None` when it is empty (no plan: every
    /// number is dialled as typed).
    pub fn parse(text: &str) -> Option<DialPlan> {
        let trimmed = text.trim();
        let inner = trimmed
            .strip_prefix('(')
            .and_then(|t| t.strip_suffix(')'))
            .unwrap_or(trimmed);
        let rules: Vec<Vec<Item>> = inner
            .split('|')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(parse_rule)
            .collect();
        (!rules.is_empty()).then(|| DialPlan {
            text: trimmed.to_owned(),
            rules,
        })
    }

    /// What the first matching rule makes of `number`.
    pub fn apply(&self, number: &str) -> Result<String, DialError> {
        let input: Vec<char> = number.chars().collect();
        self.rules
            .iter()
            .find_map(|rule| match_from(rule, &input, String::new()))
            .ok_or_else(|| DialError::NoMatch {
                number: number.to_owned(),
                plan: self.text.clone(),
            })
    }
}

fn parse_rule(rule: &str) -> Vec<Item> {
    let mut items: Vec<Item> = Vec::new();
    let mut chars = rule.chars().peekable();
    while let Some(c) = chars.next() {
        let element = match c {
            '.' => {
                if let Some(last) = items.last_mut() {
                    last.repeat = !matches!(last.element, Element::Rewrite(..));
                }
                continue;
            }
            'x' | 'X' => Element::Digit,
            'T' | 'S' | ' ' => continue,
            '[' => {
                let mut body = Vec::new();
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    body.push(c);
                }
                let mut ranges = Vec::new();
                let mut i = 0;
                while i < body.len() {
                    if i + 2 < body.len() && body[i + 1] == '-' {
                        ranges.push((body[i], body[i + 2]));
                        i += 3;
                    } else {
                        ranges.push((body[i], body[i]));
                        i += 1;
                    }
                }
                Element::Class(ranges)
            }
            '<' => {
                let mut body = String::new();
                for c in chars.by_ref() {
                    if c == '>' {
                        break;
                    }
                    body.push(c);
                }
                let (from, to) = body.split_once(':').unwrap_or((body.as_str(), ""));
                Element::Rewrite(from.to_owned(), to.to_owned())
            }
            other => Element::Literal(other),
        };
        items.push(Item {
            element,
            repeat: false,
        });
    }
    items
}

/// One step of `element` at the start of `input`: how many characters it
/// takes and what it writes.
fn step(element: &Element, input: &[char]) -> Option<(usize, String)> {
    match element {
        Element::Literal(c) => (input.first() == Some(c)).then(|| (1, c.to_string())),
        Element::Digit => input
            .first()
            .filter(|c| c.is_ascii_digit())
            .map(|c| (1, c.to_string())),
        Element::Class(ranges) => input
            .first()
            .filter(|c| ranges.iter().any(|(lo, hi)| (lo..=hi).contains(c)))
            .map(|c| (1, c.to_string())),
        Element::Rewrite(from, to) => {
            let from: Vec<char> = from.chars().collect();
            input.starts_with(&from).then(|| (from.len(), to.clone()))
        }
    }
}

/// Backtracking match of `rule` against the whole of `input`.
fn match_from(rule: &[Item], input: &[char], out: String) -> Option<String> {
    let Some((item, rest)) = rule.split_first() else {
        return input.is_empty().then_some(out);
    };
    if item.repeat {
        // Greedy, giving characters back when the rest does not match.
        let mut taken = vec![(0usize, String::new())];
        let mut at = 0;
        while let Some((n, text)) = step(&item.element, &input[at..]).filter(|(n, _)| *n > 0) {
            at += n;
            let written = format!("{}{text}", taken.last().map_or("", |t| t.1.as_str()));
            taken.push((at, written));
        }
        return taken
            .into_iter()
            .rev()
            .find_map(|(at, written)| match_from(rest, &input[at..], format!("{out}{written}")));
    }
    let (n, text) = step(&item.element, input)?;
    match_from(rest, &input[n..], out + &text)
}

/// An account's dialling rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dialing {
    /// `dialingPrefix`.
    pub prefix: String,
    /// `dialPlan`, when set.
    pub plan: Option<DialPlan>,
}

impl Dialing {
    /// The rules of `[AccountN]`.
    pub fn from_account(account: &Account) -> Self {
        Self {
            prefix: account.keys.dialing_prefix.trim().to_owned(),
            plan: DialPlan::parse(&account.keys.dial_plan),
        }
    }

    /// What to dial for what the user typed: URIs and names unchanged,
    /// numbers through the plan and the prefix.
    pub fn apply(&self, typed: &str) -> Result<String, DialError> {
        let Some(number) = as_number(typed) else {
            return Ok(typed.to_owned());
        };
        let number = match &self.plan {
            Some(plan) => plan.apply(&number)?,
            None => number,
        };
        let digits = number.chars().filter(char::is_ascii_digit).count();
        if self.prefix.is_empty() || digits <= 3 {
            return Ok(number);
        }
        let bare = number.strip_prefix('+').unwrap_or(&number);
        Ok(format!("{}{bare}", self.prefix))
    }

    /// A number as the call log shows it: the prefix taken off again.
    pub fn strip_prefix<'a>(&self, number: &'a str) -> &'a str {
        if self.prefix.is_empty() {
            return number;
        }
        number
            .strip_prefix(self.prefix.as_str())
            .filter(|rest| !rest.is_empty())
            .unwrap_or(number)
    }
}

/// What to dial on `account` for `typed`: its [`Dialing`] applied, or
/// `typed` itself for an account without rules.
pub fn for_account(
    rules: &std::collections::HashMap<u32, Dialing>,
    account: u32,
    typed: &str,
) -> Result<String, DialError> {
    rules
        .get(&account)
        .map_or_else(|| Ok(typed.to_owned()), |d| d.apply(typed))
}

/// `typed` as a PSTN-looking number (formatting removed), or `None` for a
/// URI or a name.
fn as_number(typed: &str) -> Option<String> {
    let cleaned: String = typed
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    let body = cleaned.strip_prefix('+').unwrap_or(&cleaned);
    let numeric = !body.is_empty()
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || c == '*' || c == '#');
    numeric.then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialing(prefix: &str, plan: &str) -> Dialing {
        Dialing {
            prefix: prefix.to_owned(),
            plan: DialPlan::parse(plan),
        }
    }

    #[test]
    fn the_prefix_goes_before_numbers_longer_than_three_digits() {
        let d = dialing("9", "");
        assert_eq!(d.apply("5551234").as_deref(), Ok("95551234"));
        assert_eq!(d.apply("+7 (999) 123-45-67").as_deref(), Ok("979991234567"));
        assert_eq!(d.apply("101").as_deref(), Ok("101"), "extensions stay");
        assert_eq!(
            d.apply("sip:bob@example.com").as_deref(),
            Ok("sip:bob@example.com")
        );
        assert_eq!(d.apply("bob").as_deref(), Ok("bob"));
        assert_eq!(d.strip_prefix("95551234"), "5551234");
        assert_eq!(d.strip_prefix("101"), "101");
        assert_eq!(dialing("", "").apply("5551234").as_deref(), Ok("5551234"));
    }

    #[test]
    fn the_dial_plan_rewrites_and_refuses() {
        let d = dialing("", "(<8:+7>xxxxxxxxxx|[1-4]xx|<:00>1x.|*xx#)");
        assert_eq!(d.apply("89991234567").as_deref(), Ok("+79991234567"));
        assert_eq!(d.apply("101").as_deref(), Ok("101"));
        assert_eq!(
            d.apply("1").as_deref(),
            Ok("001"),
            "x. takes zero digits too"
        );
        assert_eq!(d.apply("1234567").as_deref(), Ok("001234567"));
        assert_eq!(d.apply("*72#").as_deref(), Ok("*72#"));
        assert_eq!(
            d.apply("555"),
            Err(DialError::NoMatch {
                number: "555".into(),
                plan: "(<8:+7>xxxxxxxxxx|[1-4]xx|<:00>1x.|*xx#)".into()
            })
        );
        assert!(d.apply("8999123456").is_err(), "one digit short");
        assert_eq!(
            d.apply("sip:555@pbx").as_deref(),
            Ok("sip:555@pbx"),
            "URIs are not numbers"
        );
    }

    #[test]
    fn greedy_repeats_give_back_what_the_rest_needs() {
        let d = dialing("", "x.<#:>");
        assert_eq!(d.apply("123#").as_deref(), Ok("123"));
        let d = dialing("", "0x.5");
        assert_eq!(d.apply("01235").as_deref(), Ok("01235"));
        assert!(d.apply("0123").is_err());
    }

    #[test]
    fn plan_then_prefix() {
        let d = dialing("0", "<8:+7>x.");
        assert_eq!(d.apply("89991234567").as_deref(), Ok("079991234567"));
        assert_eq!(DialPlan::parse("  "), None);
    }
}
