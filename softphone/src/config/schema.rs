//! The keys MicroSIP reads, each with its type, default and length limit.
//!
//! The tables are generated together with the typed structs
//! ([`Settings`](super::Settings), [`Account`](super::Account)) by one macro,
//! so a key's name, type and default are written in exactly one place.

use super::value::{read_bool, wtoi, ValueType};

/// Windows' profile API reads most values into a 256-character buffer:
/// longer values are cut silently.
pub const DEFAULT_MAX_LEN: usize = 255;
/// Account credentials (`server`, `proxy`, `domain`, `username`,
/// `password`, `authID`, `displayName`) are read into 1040 characters.
pub const CREDENTIAL_MAX_LEN: usize = 1040;
/// `audioCodecs` is read into 511 characters.
pub const CODECS_MAX_LEN: usize = 511;

/// One key of a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    /// The key's name as MicroSIP writes it.
    pub name: &'static str,
    /// What it holds.
    pub ty: ValueType,
    /// The value MicroSIP uses when the key is absent.
    pub default: &'static str,
    /// The longest value MicroSIP reads without cutting it, in UTF-16 units.
    pub max_len: usize,
    /// What the key does, in one line.
    pub doc: &'static str,
}

/// Finds a key in a table, case-insensitively (as Windows matches keys).
pub fn find(table: &'static [KeySpec], key: &str) -> Option<&'static KeySpec> {
    table
        .iter()
        .find(|spec| spec.name.eq_ignore_ascii_case(key))
}

/// The known name closest to `key`, when one is close enough to be a typo.
pub fn suggest<'a>(key: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let key_lower = key.to_lowercase();
    let limit = match key.chars().count() {
        0..=3 => 1,
        4..=7 => 2,
        _ => 3,
    };
    names
        .into_iter()
        .map(|name| (edit_distance(&key_lower, &name.to_lowercase()), name))
        .filter(|&(d, _)| d > 0 && d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, name)| name)
}

/// Levenshtein distance over characters; names are short, so the simple
/// two-row table is plenty.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitution.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Converts a key's text into a typed field value, the way MicroSIP reads
/// it: never fails; text MicroSIP would not understand gives the default.
pub trait FromIni: Sized {
    /// `raw` is the value as read (`None` when the key is absent).
    fn from_ini(raw: Option<&str>, spec: &KeySpec) -> Self;
}

impl FromIni for bool {
    fn from_ini(raw: Option<&str>, spec: &KeySpec) -> Self {
        let rule = match spec.ty {
            ValueType::Bool(rule) => rule,
            _ => super::value::BoolRule::Wtoi,
        };
        match raw.filter(|v| !v.is_empty()) {
            Some(v) => read_bool(v, rule),
            None => read_bool(spec.default, rule),
        }
    }
}

impl FromIni for i64 {
    fn from_ini(raw: Option<&str>, spec: &KeySpec) -> Self {
        wtoi(raw.filter(|v| !v.is_empty()).unwrap_or(spec.default))
    }
}

impl FromIni for String {
    fn from_ini(raw: Option<&str>, spec: &KeySpec) -> Self {
        raw.unwrap_or(spec.default).to_owned()
    }
}

/// A setting that is a secret (a webhook key): shown masked by `Debug`
/// and when serialised (`--print-config`), read with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no secret is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "********"
        })
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "********" })
    }
}

impl FromIni for Secret {
    fn from_ini(raw: Option<&str>, spec: &KeySpec) -> Self {
        Secret(raw.unwrap_or(spec.default).to_owned())
    }
}

/// Generates a typed section struct and its key table from one list.
///
/// Each line: `field: Type = "keyName", ValueType, "default", max_len, "doc";`
macro_rules! typed_section {
    (
        $(#[$meta:meta])*
        pub struct $name:ident, table $table:ident {
            $( $field:ident : $fty:ty = $key:literal, $vt:expr, $default:literal, $max:expr, $doc:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
        pub struct $name {
            $( #[doc = $doc] #[serde(rename = $key)] pub $field: $fty, )*
        }

        #[doc = concat!("Every key of [`", stringify!($name), "`], in the order MicroSIP writes them.")]
        pub static $table: &[$crate::config::schema::KeySpec] = &[
            $( $crate::config::schema::KeySpec { name: $key, ty: $vt, default: $default, max_len: $max, doc: $doc }, )*
        ];

        impl $name {
            /// Reads every field through `get` (the value of a key, or
            /// `None` when absent); absent keys give their defaults.
            fn read_with<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Self {
                let mut specs = $table.iter();
                Self {
                    $( $field: {
                        let spec = specs.next().expect("the table has one spec per field");
                        $crate::config::schema::FromIni::from_ini(get($key), spec)
                    }, )*
                }
            }
        }
    };
}
pub(crate) use typed_section;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_only() {
        let names = ["transport", "registerRefresh", "keepAlive", "SRTP"];
        assert_eq!(suggest("transprot", names), Some("transport"));
        assert_eq!(
            suggest("keepalive", names),
            None,
            "same name, other case: not a typo"
        );
        assert_eq!(suggest("srtpp", names), Some("SRTP"));
        assert_eq!(suggest("completelyDifferent", names), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
