//! The variables as read: empty means unset, and every refusal is one line
//! that names its variable.

use std::{collections::HashMap, fmt};

use thiserror::Error;

/// A setting that could not be accepted. Its message names the variable and
/// what is allowed, and never echoes a secret's value.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong and what would be accepted.
    pub problem: String,
}

impl ConfigError {
    pub(super) fn new(var: &'static str, problem: impl Into<String>) -> Self {
        Self {
            var,
            problem: problem.into(),
        }
    }
}

/// The variables being read, with empty values treated as unset (as shells and
/// container runtimes commonly pass `VAR=` for "not configured").
pub(super) struct Env(HashMap<String, String>);

impl Env {
    pub(super) fn new<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The value as given, trimmed, even when empty (for the few variables
    /// where empty means "off" rather than "unset").
    pub(super) fn raw(&self, var: &str) -> Option<&str> {
        self.0.get(var).map(|raw| raw.trim())
    }

    pub(super) fn get(&self, var: &str) -> Option<&str> {
        self.raw(var).filter(|value| !value.is_empty())
    }

    pub(super) fn parsed<T>(
        &self,
        var: &'static str,
        default: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let raw = self.get(var).unwrap_or(default);
        parse(raw).map_err(|why| ConfigError::new(var, format!("{why} (got `{raw}`)")))
    }

    pub(super) fn int_in_range<T>(
        &self,
        var: &'static str,
        default: T,
        min: T,
        max: T,
    ) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + Copy + fmt::Display,
    {
        self.parsed(var, &default.to_string(), |raw| {
            raw.parse::<T>()
                .ok()
                .filter(|value| (min..=max).contains(value))
                .ok_or_else(|| format!("must be a whole number from {min} to {max}"))
        })
    }
}
