//! docs/configuration.md is generated from the command line's own
//! definition, and this test fails when the two differ. To regenerate it
//! after changing a flag:
//!
//!     KEDASTRAL_WRITE_DOCS=1 cargo test -p kedastral --test it docs::
use clap::CommandFactory;
use kedastral::cli::Cli;

use crate::support;

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// One table per command: flag, environment variable, default, description.
fn reference() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         Every flag of every `kedastral` command, with the environment variable that sets it and its\n\
         default. Flags override environment variables; a workload in a `--config` file takes the\n\
         same settings as keys (see [Workloads](operators.md#workloads)). This file is generated from\n\
         the command line's definition and checked against it by the tests\n\
         (`KEDASTRAL_WRITE_DOCS=1 cargo test -p kedastral --test it docs::` rewrites it).\n",
    );
    let cli = Cli::command();
    let global: Vec<&clap::Arg> = cli.get_arguments().filter(|a| a.is_global_set()).collect();
    for command in cli.get_subcommands() {
        let mut commands = vec![(command.get_name().to_owned(), command)];
        for sub in command.get_subcommands() {
            commands.push((format!("{} {}", command.get_name(), sub.get_name()), sub));
        }
        for (name, command) in commands {
            if command.has_subcommands() {
                continue;
            }
            let about = command
                .get_about()
                .map(|a| a.to_string())
                .unwrap_or_default();
            out.push_str(&format!("\n## `kedastral {name}`\n\n{}\n\n", cell(&about)));
            out.push_str("| flag | environment | default | |\n|---|---|---|---|\n");
            let args = command.get_arguments().chain(global.iter().copied());
            for arg in args {
                let Some(long) = arg.get_long() else {
                    // A positional argument.
                    out.push_str(&format!(
                        "| `<{}>` | | | {} |\n",
                        arg.get_id(),
                        cell(&arg.get_help().map(|h| h.to_string()).unwrap_or_default())
                    ));
                    continue;
                };
                if long == "help" || long == "version" {
                    continue;
                }
                let env = arg
                    .get_env()
                    .map(|e| format!("`{}`", e.to_string_lossy()))
                    .unwrap_or_default();
                let default: Vec<String> = arg
                    .get_default_values()
                    .iter()
                    .map(|v| v.to_string_lossy().into_owned())
                    .collect();
                let default = if default.is_empty() {
                    String::new()
                } else {
                    format!("`{}`", default.join(","))
                };
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                out.push_str(&format!(
                    "| `--{long}` | {env} | {default} | {} |\n",
                    cell(&help)
                ));
            }
        }
    }
    out
}

#[test]
fn the_configuration_reference_matches_the_command_line() {
    let path = support::workspace().join("docs/configuration.md");
    let generated = reference();
    if std::env::var_os("KEDASTRAL_WRITE_DOCS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        written == generated,
        "docs/configuration.md differs from the command line; regenerate it with \
         KEDASTRAL_WRITE_DOCS=1 cargo test -p kedastral --test it docs::"
    );
}

/// Calls `f` on every flag with a long name, with its command's name, in
/// every command and subcommand.
fn each_flag(mut f: impl FnMut(&str, &str, &clap::Arg)) {
    let cli = Cli::command();
    let mut stack: Vec<&clap::Command> = vec![&cli];
    while let Some(command) = stack.pop() {
        for arg in command.get_arguments() {
            if let Some(long) = arg.get_long() {
                f(command.get_name(), long, arg);
            }
        }
        stack.extend(command.get_subcommands());
    }
}

#[test]
fn every_flag_has_an_environment_variable() {
    let mut missing = Vec::new();
    each_flag(|command, long, arg| {
        // Repeated key=value pairs (`--param`) and one-off actions have
        // no single value for a variable to hold.
        if !["help", "version", "param", "check"].contains(&long) && arg.get_env().is_none() {
            missing.push(format!("{command} --{long}"));
        }
    });
    assert!(
        missing.is_empty(),
        "flags without an environment variable: {missing:?}"
    );
}

/// What kind of value a flag takes, as far as its variable's meaning goes.
fn value_kind(arg: &clap::Arg) -> String {
    if !arg.get_possible_values().is_empty() {
        return "a choice".into();
    }
    let parsed = format!("{:?}", arg.get_value_parser().type_id());
    let numbers = ["u16", "u32", "u64", "usize", "i64", "f64"];
    if numbers.iter().any(|n| parsed.contains(n)) {
        "a number".into()
    } else {
        "a duration, text or path".into()
    }
}

#[test]
fn an_environment_variable_means_one_thing_in_every_command() {
    use std::collections::BTreeMap;
    // Variable -> (command, flag, kind of its value) wherever it is read:
    // a choice from a list (an output format: each command lists its own),
    // a number, or anything else (durations, text, paths). A count in one
    // command and a duration in another is what this refuses.
    let mut seen: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    each_flag(|command, long, arg| {
        if let Some(env) = arg.get_env() {
            seen.entry(env.to_string_lossy().into_owned())
                .or_default()
                .push((command.to_owned(), long.to_owned(), value_kind(arg)));
        }
    });
    assert!(seen.len() > 20, "{seen:?}");
    // The kinds are told apart (`--horizon` of `forecast` is a count).
    assert!(
        seen.values()
            .flatten()
            .any(|(_, long, kind)| long == "horizon" && kind == "a number"),
        "{seen:?}"
    );
    for (env, uses) in &seen {
        let (_, long, kind) = &uses[0];
        for (command, other_long, other_kind) in &uses[1..] {
            assert!(
                other_long == long && other_kind == kind,
                "{env} is --{long} ({}) in `{}` but --{other_long} ({other_kind}) in `{command}`",
                kind,
                uses[0].0
            );
        }
    }
}
