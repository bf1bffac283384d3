//! The `--config` file, read before the real parse so that its values
//! become the options' defaults, and the source a bad value is named by.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// The default values of option `id` in `command` (the file's, once
/// [`with_file_defaults`] has set them).
pub(super) fn default_of(command: &clap::Command, id: &str) -> Vec<OsString> {
    command
        .get_arguments()
        .find(|a| a.get_id() == id)
        .map(|a| a.get_default_values().iter().map(OsString::from).collect())
        .unwrap_or_default()
}

/// A bad value says where it came from when that was not the command line:
/// `invalid value 'abc' for '--history <N>' … (from WSCHAT_HISTORY)`, or
/// the key of the `--config` file, so that an operator looks in the right
/// place.
pub(super) fn name_the_source(
    e: clap::Error,
    command: &mut clap::Command,
    args: &[OsString],
) -> clap::Error {
    if !matches!(
        e.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return e;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return e;
    };
    let long = arg
        .trim_start_matches('-')
        .split([' ', '=', '<'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let flag = format!("--{long}");
    let on_command_line = args.iter().skip(1).any(|a| {
        a.to_str()
            .is_some_and(|a| a == flag || a.starts_with(&format!("{flag}=")))
    });
    if on_command_line {
        return e;
    }
    let env = command
        .get_arguments()
        .find(|a| a.get_long() == Some(long.as_str()))
        .and_then(|a| a.get_env())
        .map(|v| v.to_string_lossy().into_owned());
    let source = match env {
        Some(var) if std::env::var_os(&var).is_some() => format!("from the environment: {var}"),
        _ => match config_file(args) {
            Some(file) => format!("from {}, key {long:?}", file.display()),
            None => return e,
        },
    };
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    let message = first.strip_prefix("error: ").unwrap_or(first);
    command.error(e.kind(), format!("{message} ({source})"))
}

/// The `--config` file named on the command line, or else by `WSCHAT_CONFIG`.
/// Found before the real parse, which needs the file's values as defaults.
pub(super) fn config_file(args: &[OsString]) -> Option<PathBuf> {
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return rest.next().map(PathBuf::from);
        }
        if let Some(path) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("WSCHAT_CONFIG").map(PathBuf::from)
}

/// Makes each value of the TOML file `path` the default of its option, so
/// that clap's own order (flag, then environment, then default) gives the
/// file its place below both.
pub(super) fn with_file_defaults(
    mut command: clap::Command,
    path: &Path,
) -> Result<clap::Command, clap::Error> {
    let fail = |command: &mut clap::Command, kind, why: String| {
        Err(command.error(kind, format!("{}: {why}", path.display())))
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return fail(&mut command, ErrorKind::Io, e.to_string()),
    };
    let table: toml::Table = match toml::from_str(&text) {
        Ok(table) => table,
        Err(e) => return fail(&mut command, ErrorKind::InvalidValue, e.to_string()),
    };
    for (key, value) in table {
        let long = key.replace('_', "-");
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()) && long != "config")
            .map(|a| {
                (
                    a.get_id().clone(),
                    matches!(a.get_action(), clap::ArgAction::Append),
                )
            });
        let Some((id, many)) = arg else {
            return fail(
                &mut command,
                ErrorKind::UnknownArgument,
                format!("unknown option {key:?}"),
            );
        };
        let values = match (value, many) {
            (toml::Value::Array(items), true) => items.into_iter().map(scalar).collect(),
            (value, _) => vec![scalar(value)],
        };
        let Some(values) = values.into_iter().collect::<Option<Vec<String>>>() else {
            let why = format!("{key}: expected a string, a number or (for allow-origin) a list");
            return fail(&mut command, ErrorKind::InvalidValue, why);
        };
        command = command.mut_arg(id, |a| a.default_values(values));
    }
    Ok(command)
}

/// A TOML value as the text an option would be given on the command line.
pub(super) fn scalar(value: toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}
