//! The command line's flags for the settings, made from [`SETTINGS`]: each setting's flag,
//! value name and help (with its environment variable and default, as `--help` shows them).
//! Their values are kept as given, in [`SettingFlags`], and read by the resolver with the
//! setting's own parser, exactly as the environment and the file are.

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::table::{SETTINGS, Scope, Setting, Shown, Value};
use crate::cli::{ServeFlags, SettingFlags, StorageArgs};

/// The flag of `s`.
fn arg(s: &Setting) -> Arg {
    let mut help = s.doc.to_owned();
    if let Some(env) = s.env_shown.or(s.env) {
        help.push_str(&format!(" [env: {env}"));
        if matches!(s.value, Value::List(_)) {
            help.push_str(", comma-separated");
        }
        help.push(']');
    }
    match s.default {
        Shown::Nothing => {}
        Shown::Value(text) | Shown::Prose(text) => {
            help.push_str(&format!(" [default: {}]", text.replace('`', "")));
        }
    }
    let arg = Arg::new(s.name).long(s.flag).help(help);
    match s.value {
        Value::Switch => arg.action(ArgAction::SetTrue),
        Value::One(name) => arg
            .value_name(name)
            .action(ArgAction::Set)
            .value_parser(clap::value_parser!(String)),
        Value::List(name) => arg
            .value_name(name)
            .action(ArgAction::Append)
            .value_parser(clap::value_parser!(String)),
    }
}

/// `cmd` with the flags of the settings of `scope`.
fn augment(cmd: Command, scope: Scope) -> Command {
    SETTINGS
        .iter()
        .filter(|s| s.scope == scope)
        .fold(cmd, |cmd, s| cmd.arg(arg(s)))
}

/// The values of the flags of `scope` in `matches`.
fn read(matches: &ArgMatches, scope: Scope) -> SettingFlags {
    let mut flags = SettingFlags::default();
    for s in SETTINGS.iter().filter(|s| s.scope == scope) {
        match s.value {
            Value::Switch => {
                if matches.get_flag(s.name) {
                    flags.set(s.name, Vec::new());
                }
            }
            Value::One(_) | Value::List(_) => {
                if let Some(values) = matches.get_many::<String>(s.name) {
                    flags.set(s.name, values.cloned().collect());
                }
            }
        }
    }
    flags
}

impl clap::FromArgMatches for StorageArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(Self {
            flags: read(matches, Scope::Storage),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for StorageArgs {
    fn augment_args(cmd: Command) -> Command {
        augment(cmd, Scope::Storage)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        augment(cmd, Scope::Storage)
    }
}

impl clap::FromArgMatches for ServeFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(Self {
            flags: read(matches, Scope::Serve),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for ServeFlags {
    fn augment_args(cmd: Command) -> Command {
        augment(cmd, Scope::Serve)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        augment(cmd, Scope::Serve)
    }
}
