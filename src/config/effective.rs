//! The settings in force, one line each, secrets redacted: what
//! `otp-service check-config` prints.

use std::fmt;

use clap::parser::ValueSource;

use super::env::{Parsed, is_secret};

/// One setting as it is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Effective {
    var: String,
    /// The value, `None` when unset; a secret's is never kept.
    value: Option<String>,
    secret: bool,
    /// Whether the value is the built-in default.
    default: bool,
}

/// Every setting of a parsed command line, in `--help` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveSettings(Vec<Effective>);

impl EffectiveSettings {
    /// The settings of a parsed command line.
    pub(crate) fn new(parsed: &Parsed) -> Self {
        let matches = &parsed.matches;
        let settings = parsed
            .command
            .get_arguments()
            .filter(|arg| !arg.is_hide_set())
            .filter_map(|arg| {
                let var = parsed.var_of(arg)?.to_owned();
                let id = arg.get_id().as_str();
                let default = matches.value_source(id) == Some(ValueSource::DefaultValue);
                // A built-in default is no secret.
                let secret = is_secret(arg) && !default;
                let value = matches.get_raw(id).map(|values| {
                    if secret {
                        return String::new();
                    }
                    values
                        .map(|value| value.to_string_lossy())
                        .collect::<Vec<_>>()
                        .join(",")
                });
                Some(Effective {
                    var,
                    value,
                    secret,
                    default,
                })
            })
            .collect();
        Self(settings)
    }
}

impl fmt::Display for EffectiveSettings {
    /// `VAR=value`, ` (default)` after a built-in default; a secret that is
    /// set shows as `<redacted>`, an unset setting as `(unset)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for setting in &self.0 {
            match (&setting.value, setting.secret) {
                (None, _) => writeln!(f, "{} (unset)", setting.var)?,
                (Some(_), true) => writeln!(f, "{}=<redacted>", setting.var)?,
                (Some(value), false) if setting.default => {
                    writeln!(f, "{}={value} (default)", setting.var)?
                }
                (Some(value), false) => writeln!(f, "{}={value}", setting.var)?,
            }
        }
        Ok(())
    }
}
