//! The environment as the command line sees it: every setting is a flag and
//! its variable; an empty (or blank) variable means unset and values are
//! trimmed, as before clap; and every refusal is one line that names the
//! variable and never echoes a secret.
//!
//! clap reads a variable when its `Arg` is built and takes an empty one as a
//! value, so the variables are handed to clap as flags instead (`--x=value`,
//! before the command line's own, which win): one path for the process and
//! for tests that configure a server from name/value pairs.

use std::{
    any::TypeId,
    collections::HashMap,
    ffi::{OsStr, OsString},
};

use clap::{
    Arg, ArgMatches, Command,
    builder::{PossibleValue, PossibleValuesParser, TypedValueParser},
    error::{ContextKind, ContextValue, ErrorKind},
};
use thiserror::Error;

/// A setting that could not be accepted. Its message names the variable and
/// what is allowed, and never echoes a secret's value.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: String,
    /// What is wrong and what would be accepted.
    pub problem: String,
}

impl ConfigError {
    pub(super) fn new(var: &str, problem: impl Into<String>) -> Self {
        Self {
            var: var.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Why the command line gave no settings.
#[derive(Debug)]
pub enum Stop {
    /// `--help` or `--version`: print this on stdout and exit 0.
    Display(String),
    /// A mistake in the command line itself (an unknown flag), as clap says
    /// it: print on stderr and exit 2.
    Usage(String),
    /// A setting was refused: one line, exit 2.
    Config(ConfigError),
}

impl From<ConfigError> for Stop {
    fn from(err: ConfigError) -> Self {
        Self::Config(err)
    }
}

/// Variables whose explicitly empty value is a value ("off"), not unset.
const EMPTY_IS_A_VALUE: [&str; 1] = ["OTP_METRICS_ADDR"];

/// Where the variables come from.
pub(crate) enum Vars {
    /// The process environment (the binary).
    Process,
    /// Exactly these pairs and nothing inherited (tests, `Config::from_vars`).
    Only(HashMap<String, String>),
}

/// Every setting must take a value from its variable and from a flag; both
/// positions (`otp-service --x=1 check-config`, `... check-config --x=1`).
/// `--help` shows no variable's value (it would show secrets).
pub(crate) fn settings_everywhere(command: Command) -> Command {
    command.args_override_self(true).mut_args(|arg| {
        if arg.get_env().is_some() {
            arg.global(true).hide_env_values(true)
        } else {
            arg
        }
    })
}

/// A command line parsed.
pub(crate) struct Parsed {
    pub(crate) matches: ArgMatches,
    pub(crate) command: Command,
    /// Each setting's variable, by argument id (clap forgets the variables
    /// it was told to leave unread).
    pub(crate) vars: HashMap<String, String>,
}

impl Parsed {
    /// The variable of `arg`, if it is a setting.
    pub(crate) fn var_of(&self, arg: &Arg) -> Option<&str> {
        self.vars.get(arg.get_id().as_str()).map(String::as_str)
    }
}

/// Parses `argv` with `vars`: non-blank variables become flags placed before
/// `argv`'s (so a flag wins over its variable), trimmed.
///
/// clap itself reads no variable, whichever `vars` are: a subcommand's copy
/// of a global setting would read the raw (untrimmed, maybe blank) value,
/// so `check-config` would judge a value the server never sees.
pub(crate) fn parse(command: Command, argv: Vec<OsString>, vars: Vars) -> Result<Parsed, Stop> {
    let values: HashMap<String, String> = match vars {
        Vars::Process => std::env::vars().collect(),
        Vars::Only(pairs) => pairs,
    };
    let mut injected = Vec::new();
    let mut names = HashMap::new();
    let mut unread = command.clone().mut_args(|arg| {
        let Some(var) = arg.get_env().and_then(OsStr::to_str).map(str::to_owned) else {
            return arg;
        };
        let value = values.get(&var).map(|raw| raw.trim());
        match value {
            Some(value) if !value.is_empty() || EMPTY_IS_A_VALUE.contains(&var.as_str()) => {
                if let Some(long) = arg.get_long() {
                    injected.push(OsString::from(format!("--{long}={value}")));
                }
            }
            _ => {}
        }
        names.insert(arg.get_id().to_string(), var);
        arg.env(None::<&str>)
    });
    let mut args = argv.into_iter();
    let argv: Vec<OsString> = args
        .next()
        .into_iter()
        .chain(injected)
        .chain(args)
        .collect();
    match unread.try_get_matches_from_mut(argv.clone()) {
        Ok(matches) => Ok(Parsed {
            matches,
            command: unread,
            vars: names,
        }),
        Err(err) if is_display(err.kind()) => {
            Err(Stop::Display(help_with_variables(command, argv, &err)))
        }
        Err(err) => Err(refusal(&unread, &names, err)),
    }
}

/// `--help`, `--version`: printed on stdout.
fn is_display(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    )
}

/// What `--help` prints, each setting with its `[env: VAR]`: the same
/// command line again on `command`, whose settings still name their
/// variables. clap stops at `--help` before it would read any variable, and
/// every flag before it was accepted by the first parse; `shown` is what
/// that parse printed, in case this one does not stop the same way.
fn help_with_variables(mut command: Command, argv: Vec<OsString>, shown: &clap::Error) -> String {
    match command.try_get_matches_from_mut(argv) {
        Err(err) if err.kind() == shown.kind() => err.render().to_string(),
        _ => shown.render().to_string(),
    }
}

/// A clap error as we report it: a bad value as one line naming its
/// variable (without the value, for a secret), anything else as clap says it.
fn refusal(command: &Command, names: &HashMap<String, String>, err: clap::Error) -> Stop {
    if !matches!(
        err.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return Stop::Usage(err.render().to_string());
    }
    let Some(arg) = invalid_arg(command, &err) else {
        return Stop::Usage(err.render().to_string());
    };
    let id = arg.get_id().as_str();
    let var = names.get(id).map_or(id, String::as_str);
    let valid = match err.get(ContextKind::ValidValue) {
        Some(ContextValue::Strings(valid)) if !valid.is_empty() => Some(one_of(valid)),
        _ => None,
    };
    let given = match err.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(value)) => Some(value.as_str()),
        _ => None,
    };
    let problem = match given {
        // `--x` or `--x=` alone: say what it takes, not why "" is wrong.
        None | Some("") => match valid.or_else(|| allowed_range(arg)) {
            Some(allowed) => format!("needs a value: {allowed}"),
            None => "needs a value".to_owned(),
        },
        Some(value) => {
            let why = match (valid, std::error::Error::source(&err)) {
                (Some(valid), _) => format!("must be {valid}"),
                (None, Some(source)) => {
                    let source = source.to_string();
                    in_range(&source)
                        .or_else(|| not_a_number(arg, &source))
                        .unwrap_or(source)
                }
                (None, None) => "is not a valid value".to_owned(),
            };
            if is_secret(arg) {
                why
            } else {
                format!("{why} (got `{value}`)")
            }
        }
    };
    Stop::Config(ConfigError::new(var, problem.replace('\n', " ")))
}

/// `one of `a`, `b``.
fn one_of(valid: &[String]) -> String {
    let listed: Vec<String> = valid.iter().map(|v| format!("`{v}`")).collect();
    format!("one of {}", listed.join(", "))
}

/// clap's range refusal (`3 is not in 4..=10`) in our words.
fn in_range(clap_says: &str) -> Option<String> {
    let (_, range) = clap_says.split_once(" is not in ")?;
    let (min, max) = range.split_once("..=")?;
    Some(format!("must be a whole number from {min} to {max}"))
}

/// Rust's refusal of a whole number (`invalid digit found in string`), in
/// the words of the range `--help` states for the setting (`[4-10]`).
fn not_a_number(arg: &Arg, parse_error: &str) -> Option<String> {
    let refusals = [
        "invalid digit found in string",
        "number too large to fit in target type",
        "number too small to fit in target type",
    ];
    if !refusals.contains(&parse_error) {
        return None;
    }
    Some(format!("must be {}", allowed_range(arg)?))
}

/// The range `--help` states for the setting (`[4-10]`), in words: a whole
/// number unless the setting takes a fraction.
fn allowed_range(arg: &Arg) -> Option<String> {
    let help = arg.get_help()?.to_string();
    let range = help.rsplit_once('[')?.1.strip_suffix(']')?;
    let (min, max) = range.split_once('-')?;
    let kind = if arg.get_value_parser().type_id() == TypeId::of::<f64>() {
        "a number"
    } else {
        "a whole number"
    };
    Some(format!("{kind} from {min} to {max}"))
}

/// The argument a value error is about (clap names it `--long <VALUE>`, or
/// `--long[=<VALUE>]` when the value is optional).
fn invalid_arg<'a>(command: &'a Command, err: &clap::Error) -> Option<&'a Arg> {
    let Some(ContextValue::String(shown)) = err.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = shown
        .strip_prefix("--")?
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .next()
        .unwrap_or_default();
    let found = |command: &'a Command| command.get_arguments().find(|a| a.get_long() == Some(long));
    found(command).or_else(|| command.get_subcommands().find_map(found))
}

/// Spellings of yes and no a boolean setting has always taken (clap's
/// boolish values, before `--help` listed them): `true` and `false` are
/// listed, the rest are aliases, so no deployment that wrote `1` breaks.
const YES: [&str; 6] = ["true", "1", "yes", "on", "y", "t"];
const NO: [&str; 6] = ["false", "0", "no", "off", "n", "f"];

/// A yes-or-no setting: `true` or `false` (the OpenTelemetry convention for
/// `OTEL_SDK_DISABLED`) or one of their aliases, in any case; the argument
/// sets `ignore_case`.
pub(super) fn true_or_false() -> impl TypedValueParser<Value = bool> {
    PossibleValuesParser::new([
        PossibleValue::new(YES[0]).aliases(&YES[1..]),
        PossibleValue::new(NO[0]).aliases(&NO[1..]),
    ])
    .map(|value| YES.iter().any(|yes| value.eq_ignore_ascii_case(yes)))
}

/// A setting whose value is never shown: a credential (`<SECRET>` in
/// `--help`), or a provider or Redis URL (`<URL>`), which may carry one.
pub(crate) fn is_secret(arg: &Arg) -> bool {
    arg.get_value_names()
        .is_some_and(|names| names.iter().any(|name| name == "SECRET" || name == "URL"))
}
