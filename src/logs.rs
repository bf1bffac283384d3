//! Log macros that keep each module's log target where operators know it.
//!
//! `RUST_LOG` and `--log-level` filter by target (`wschat::dispatcher=debug`)
//! and every line prints its target. The targets are the modules' short
//! names (`wschat::router`, `wschat::dispatcher`, `wschat::store::writer`),
//! not the folders the modules live in, so a module that moves keeps its
//! target. Modules log through `use crate::logs as log;` and call
//! `log::info!(…)` as they would call the `log` crate.

use std::borrow::Cow;

pub(crate) use ::log::Level;

/// The folders and what their modules' targets say instead: a module under
/// the first is logged under the second.
const FOLDERS: &[(&str, &str)] = &[
    // The dispatcher's files by role log as the dispatcher they were part of.
    ("wschat::hub::dispatcher::fanout", "wschat::dispatcher"),
    ("wschat::hub::dispatcher::join", "wschat::dispatcher"),
    ("wschat::hub::dispatcher::keep", "wschat::dispatcher"),
    ("wschat::hub::dispatcher::messages", "wschat::dispatcher"),
    ("wschat::hub::dispatcher::replies", "wschat::dispatcher"),
    ("wschat::hub::outlet::writer", "wschat::writer"),
    ("wschat::hub::", "wschat::"),
    (
        "wschat::history::redis::commands::claims",
        "wschat::cluster::commands",
    ),
    ("wschat::history::sqlite", "wschat::store"),
    ("wschat::history::redis", "wschat::cluster"),
    ("wschat::history::", "wschat::"),
    ("wschat::http::", "wschat::"),
    ("wschat::limits::", "wschat::"),
    ("wschat::net::", "wschat::"),
    ("wschat::proto::", "wschat::"),
    ("wschat::ws::", "wschat::"),
];

/// The log target of the module at `module_path`.
pub(crate) fn target(module_path: &'static str) -> Cow<'static, str> {
    for (folder, short) in FOLDERS {
        if let Some(rest) = module_path.strip_prefix(folder) {
            return Cow::Owned(format!("{short}{rest}"));
        }
    }
    Cow::Borrowed(module_path)
}

macro_rules! log_at {
    ($d:tt $name:ident $local:ident) => {
        macro_rules! $local {
                    ($d($d arg:tt)+) => {
                        ::log::$name!(target: &*$crate::logs::target(module_path!()), $d($d arg)+)
                    };
                }
        pub(crate) use $local as $name;
    };
}

log_at!($ error log_error);
log_at!($ warn log_warn);
log_at!($ info log_info);
log_at!($ debug log_debug);
log_at!($ trace log_trace);

/// `log::log_enabled!` under the module's target.
macro_rules! log_enabled {
    ($level:expr) => {
        ::log::log_enabled!(target: &*$crate::logs::target(module_path!()), $level)
    };
}
pub(crate) use log_enabled;

#[cfg(test)]
mod tests {
    use super::target;

    #[test]
    fn moved_modules_keep_their_targets() {
        assert_eq!(target("wschat::ws::router"), "wschat::router");
        assert_eq!(target("wschat::hub::dispatcher"), "wschat::dispatcher");
        assert_eq!(
            target("wschat::hub::dispatcher::shared"),
            "wschat::dispatcher::shared"
        );
        assert_eq!(
            target("wschat::history::sqlite::writer"),
            "wschat::store::writer"
        );
        assert_eq!(target("wschat::history::sqlite"), "wschat::store");
        assert_eq!(
            target("wschat::history::redis::commands"),
            "wschat::cluster::commands"
        );
        assert_eq!(target("wschat::http::files"), "wschat::files");
        assert_eq!(target("wschat::hub::outlet::writer"), "wschat::writer");
        assert_eq!(target("wschat::hub::outlet"), "wschat::outlet");
        assert_eq!(
            target("wschat::hub::dispatcher::join"),
            "wschat::dispatcher"
        );
        assert_eq!(
            target("wschat::history::redis::commands::claims"),
            "wschat::cluster::commands"
        );
        assert_eq!(target("wschat::config"), "wschat::config");
    }
}
