//! The command line: `otp-service` serves, `otp-service check-config` checks
//! the settings and the store without serving; `--help` lists every setting
//! with its variable, default and range, `--version` prints the version.
//! Every setting is a flag and its environment variable (`src/config/`).

mod check_config;
#[cfg(test)]
mod settings_table;

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{self, Config, EffectiveSettings, Settings, Stop, Vars};

pub use check_config::check_config;

/// A gRPC service that sends SMS one-time passwords and verifies them.
///
/// Every setting is a flag or its environment variable (a flag wins); an
/// empty variable counts as unset.
#[derive(Debug, Parser)]
#[command(name = "otp-service", version)]
pub struct Cli {
    /// What to do; without one, serve.
    #[command(subcommand)]
    pub action: Option<Action>,
    #[command(flatten)]
    settings: Settings,
}

/// What the binary does besides serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Action {
    /// Check the settings, their files and the store, then exit
    ///
    /// Prints the settings in force (secrets redacted) and the caps, and
    /// exits 0; or prints one line naming what is wrong and exits 2.
    CheckConfig,
}

/// A command line read: what to do, with settings that passed every check.
#[derive(Debug)]
pub struct Invocation {
    /// What to do; `None`: serve.
    pub action: Option<Action>,
    /// The settings, checked.
    pub config: Config,
    /// The settings as given, for `check-config` to print.
    pub effective: EffectiveSettings,
}

impl Cli {
    /// The clap command: every setting global, so it may follow the action.
    pub fn definition() -> clap::Command {
        config::settings_everywhere(Self::command())
    }

    /// Reads this process's arguments and environment.
    pub fn from_process() -> Result<Invocation, Stop> {
        Self::read(std::env::args_os().collect(), Vars::Process)
    }

    /// Reads `argv` with exactly `vars` as the environment (tests).
    pub fn from_args_and_vars<I, K, V>(argv: &[&str], vars: I) -> Result<Invocation, Stop>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars = vars.into_iter().map(|(k, v)| (k.into(), v.into()));
        Self::read(
            argv.iter().map(OsString::from).collect(),
            Vars::Only(vars.collect()),
        )
    }

    fn read(argv: Vec<OsString>, vars: Vars) -> Result<Invocation, Stop> {
        let parsed = config::parse(Self::definition(), argv, vars)?;
        let cli =
            Self::from_arg_matches(&parsed.matches).map_err(|err| Stop::Usage(err.to_string()))?;
        let effective = EffectiveSettings::new(&parsed);
        let config = Config::from_settings(&cli.settings)?;
        Ok(Invocation {
            action: cli.action,
            config,
            effective,
        })
    }
}
