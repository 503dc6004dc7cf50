//! The documents in `docs/` that are generated from the code, and the checks that keep the
//! hand-written ones true.
//!
//! - `docs/settings.md`: the settings table is generated from the settings' own table
//!   (`countersign_server::settings::SETTINGS`: flag, variable, file key, default, help),
//!   with the key flags from their clap definitions. [`settings_doc`] fails when the file is
//!   out of date.
//! - `docs/cli.md`: the command reference is generated from the clap definitions of every
//!   subcommand. [`cli_doc`] fails when the file is out of date.
//! - `docs/http.md`: the route table is generated from `openapi.json`; [`http_doc`] fails
//!   when it is out of date, when a route of `openapi.json` has no section in the document
//!   (or a section names a route `openapi.json` does not have), or when the router
//!   registers a route `openapi.json` does not describe (or the other way round).
//!
//! `UPDATE_DOCS=1 cargo nextest run -p countersign-server -E 'test(docs::)'` rewrites the
//! generated parts in place; the prose around them (outside the marker comments) is kept.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use clap::CommandFactory as _;
use countersign::clock::{ManualClock, UnixTime};
use countersign::keys::{KeyRing, SecretKey};
use countersign::memory::MemoryStore;
use countersign::password::HashParams;
use countersign_server::cli::Cli;
use countersign_server::server::{App, router};
use countersign_server::settings::{self, Registration, ServeConfig, Shown};
use countersign_server::{EXIT_NEGATIVE, EXIT_USAGE};
use serde_json::Value;
use tower::ServiceExt as _;

/// The repository's root (this crate is `crates/countersign-server`).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// How to regenerate `test`'s part of the docs.
fn regenerate_hint(test: &str) -> String {
    format!(
        "regenerate it with `UPDATE_DOCS=1 cargo nextest run -p countersign-server -E \
         'test({test})'` (only the part between the markers is rewritten)"
    )
}

/// The text between `<!-- BEGIN GENERATED: name … -->` and `<!-- END GENERATED: name -->`.
fn generated_span(text: &str, name: &str) -> Option<(usize, usize)> {
    let begin = format!("<!-- BEGIN GENERATED: {name}");
    let end = format!("<!-- END GENERATED: {name} -->");
    let start = text.find(&begin)?;
    let start = start + text[start..].find("-->")? + "-->".len();
    let start = start + usize::from(text[start..].starts_with('\n'));
    let stop = start + text[start..].find(&end)?;
    Some((start, stop))
}

/// Compare the generated part `name` of `docs/<file>` with `expected`; with `UPDATE_DOCS`
/// set, write it instead.
fn check_generated(file: &str, name: &str, test: &str, expected: &str) {
    let path = repo_root().join("docs").join(file);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read docs/{file}: {e}"));
    let Some((start, stop)) = generated_span(&text, name) else {
        panic!(
            "docs/{file} has no `<!-- BEGIN GENERATED: {name} -->` … \
             `<!-- END GENERATED: {name} -->` markers; put them where the generated part \
             goes, then {}",
            regenerate_hint(test)
        );
    };
    if &text[start..stop] == expected {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some_and(|v| !v.is_empty()) {
        let updated = format!("{}{expected}{}", &text[..start], &text[stop..]);
        std::fs::write(&path, updated).unwrap();
        eprintln!("docs/{file}: the generated part `{name}` was rewritten");
        return;
    }
    let first_difference = text[start..stop]
        .lines()
        .zip(expected.lines())
        .find(|(have, want)| have != want)
        .map_or_else(
            || "(one is longer than the other)".to_owned(),
            |(have, want)| format!("\n  in the file: {have}\n  generated:   {want}"),
        );
    panic!(
        "docs/{file} is out of date with the code (generated part `{name}`); {}.\n\
         First difference: {first_difference}",
        regenerate_hint(test)
    );
}

/// `|` escaped for a Markdown table cell, line breaks folded.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

// ---------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------

/// `[name: value]` taken out of a help text: (the text without it, the value).
fn take_bracket(help: &str, name: &str) -> (String, Option<String>) {
    let open = format!("[{name}: ");
    let Some(start) = help.find(&open) else {
        return (help.to_owned(), None);
    };
    let mut depth = 0usize;
    let mut stop = None;
    for (i, c) in help[start..].char_indices() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    stop = Some(start + i);
                    break;
                }
            }
            _ => {}
        }
    }
    let stop = stop.unwrap_or_else(|| panic!("unclosed `{open}` in the help text {help:?}"));
    let value = help[start + open.len()..stop].trim().to_owned();
    let rest = format!("{}{}", &help[..start], &help[stop + 1..]);
    (
        rest.split_whitespace().collect::<Vec<_>>().join(" "),
        Some(value),
    )
}

/// One row of the settings reference: a flag of `serve`.
#[derive(Debug)]
struct Setting {
    id: String,
    flag: String,
    env: Option<String>,
    file: Option<String>,
    default: String,
    help: String,
    used_by: String,
}

/// A flag as written in the docs: `--name <VALUE>`, `--name <a|b>`, or `--name`.
fn flag_usage(arg: &clap::Arg) -> String {
    let long = arg.get_long().unwrap_or_default();
    if !arg.get_action().takes_values() {
        return format!("--{long}");
    }
    let values: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_owned())
        .collect();
    let value = if values.is_empty() {
        arg.get_value_names()
            .and_then(|names| names.first())
            .map_or_else(|| arg.get_id().as_str().to_uppercase(), ToString::to_string)
    } else {
        values.join("|")
    };
    format!("--{long} <{value}>")
}

/// The leaf subcommands of `cmd`, with their full names (`user add`).
fn leaves(cmd: &clap::Command, prefix: &str) -> Vec<(String, clap::Command)> {
    let mut out = Vec::new();
    for sub in cmd.get_subcommands() {
        let name = if prefix.is_empty() {
            sub.get_name().to_owned()
        } else {
            format!("{prefix} {}", sub.get_name())
        };
        if sub.has_subcommands() {
            out.extend(leaves(sub, &name));
        } else {
            out.push((name, sub.clone()));
        }
    }
    out
}

/// Which commands take the flag `--long`: `serve`, `user …` when every `user`
/// subcommand does, else each by name.
fn used_by(root: &clap::Command, long: &str) -> String {
    let mut groups: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
    for (name, cmd) in leaves(root, "") {
        let group = name.split(' ').next().unwrap_or_default().to_owned();
        let entry = groups.entry(group).or_default();
        entry.0 += 1;
        if cmd.get_arguments().any(|a| a.get_long() == Some(long)) {
            entry.1.push(name);
        }
    }
    let order: Vec<String> = root
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    let mut out = Vec::new();
    for group in order {
        let Some((total, with)) = groups.get(&group) else {
            continue;
        };
        if with.is_empty() {
            continue;
        }
        if with.len() == *total && *total > 1 {
            out.push(format!("`{group} …`"));
        } else {
            out.extend(with.iter().map(|n| format!("`{n}`")));
        }
    }
    out.join(", ")
}

/// Every flag of `serve`, described: the settings from their table
/// ([`settings::SETTINGS`]), the key flags (read with the keys, from the environment and
/// the command line only) from their clap definitions.
fn serve_settings() -> Vec<Setting> {
    let root = Cli::command();
    let serve = root
        .find_subcommand("serve")
        .expect("the CLI has a serve subcommand");
    let mut settings = Vec::new();
    for arg in serve.get_arguments() {
        let Some(long) = arg.get_long() else {
            continue;
        };
        if matches!(long, "help" | "version") {
            continue;
        }
        let id = arg.get_id().as_str().to_owned();
        let mut flag = format!("`{}`", flag_usage(arg));
        if matches!(arg.get_action(), clap::ArgAction::Append) {
            flag.push_str(" (repeatable)");
        }
        let used_by = used_by(&root, long);
        if let Some(s) = settings::table::setting(&id) {
            let env = s.env_shown.or(s.env).map(|env| match s.value {
                settings::Value::List(_) => format!("{env}, comma-separated"),
                _ => env.to_owned(),
            });
            let file = s.file_shown.map(str::to_owned).or_else(|| {
                (!s.keys.is_empty()).then(|| {
                    s.keys
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", or ")
                })
            });
            let default = match s.default {
                Shown::Nothing if s.value == settings::Value::Switch => "off".to_owned(),
                Shown::Nothing => "none".to_owned(),
                Shown::Value(v) => format!("`{v}`"),
                Shown::Prose(p) => p.to_owned(),
            };
            settings.push(Setting {
                id,
                flag,
                env,
                file,
                default,
                help: s.doc.to_owned(),
                used_by,
            });
            continue;
        }
        // A key flag: its doc comment says the rest.
        let help = arg
            .get_long_help()
            .or_else(|| arg.get_help())
            .map(ToString::to_string)
            .unwrap_or_default();
        let (help, env) = take_bracket(&help, "env");
        let (help, default) = take_bracket(&help, "default");
        let default = default
            .or_else(|| {
                let d: Vec<String> = arg
                    .get_default_values()
                    .iter()
                    .map(|v| v.to_string_lossy().into_owned())
                    .collect();
                (!d.is_empty()).then(|| d.join(", "))
            })
            .map_or_else(
                || {
                    if arg.get_action().takes_values() {
                        "none".to_owned()
                    } else {
                        "off".to_owned()
                    }
                },
                |d| backtick_default(&d),
            );
        settings.push(Setting {
            id,
            flag,
            env,
            file: None,
            default,
            help,
            used_by,
        });
    }
    settings
}

/// An environment variable as written in a cell: `COUNTERSIGN_X`, with any note after it.
fn env_cell(env: Option<&str>) -> String {
    let Some(env) = env else {
        return "—".to_owned();
    };
    let (name, note) = env.split_once(',').map_or((env, ""), |(n, rest)| (n, rest));
    let note = note.trim();
    if note.is_empty() {
        format!("`{}`", name.trim())
    } else {
        format!("`{}` ({note})", name.trim())
    }
}

/// The generated settings table.
fn settings_table() -> String {
    let mut out = String::from(
        "| flag | environment variable | `countersign.toml` key | default | taken by | what it does |\n\
         |---|---|---|---|---|---|\n",
    );
    for s in serve_settings() {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&s.flag),
            cell(&env_cell(s.env.as_deref())),
            cell(s.file.as_deref().unwrap_or("—")),
            cell(&s.default),
            s.used_by,
            cell(&sentence(&s.help)),
        );
    }
    out
}

/// A default as shown: a single token in backticks, prose as it is.
fn backtick_default(default: &str) -> String {
    if default.contains('`') || default.contains(' ') || default == "none" || default == "off" {
        default.to_owned()
    } else {
        format!("`{default}`")
    }
}

/// Capitalised, with a full stop.
fn sentence(text: &str) -> String {
    let text = text.trim();
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.is_empty() && !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// The environment variables named by string literals in `source`: `COUNTERSIGN_…`,
/// `SECRET_KEY…` and `SIGNING_KEY…`.
fn variables_in(source: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for prefix in ["\"COUNTERSIGN_", "\"SECRET_KEY", "\"SIGNING_KEY"] {
        for (at, _) in source.match_indices(prefix) {
            let rest = &source[at + 1..];
            let Some(len) = rest.find('"') else {
                continue;
            };
            let name = &rest[..len];
            if name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            {
                out.insert(name.to_owned());
            }
        }
    }
    out
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// `docs/settings.md`'s table is the settings' table ([`settings::SETTINGS`]) with the key
/// flags; the file's tables are described in its prose, and every variable the server
/// reads is named in it.
#[test]
fn settings_doc() {
    check_generated("settings.md", "settings", "settings_doc", &settings_table());
    let text = std::fs::read_to_string(repo_root().join("docs/settings.md")).unwrap();
    // The settings file's tables that are not one setting each.
    let undescribed: Vec<&str> = settings::SECTIONS
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| {
            ![format!("[{name}]"), format!("[[{name}]]")]
                .iter()
                .any(|written| text.contains(written.as_str()))
        })
        .collect();
    assert!(
        undescribed.is_empty(),
        "the settings file accepts the tables {undescribed:?}, which docs/settings.md does not \
         describe (naming them `[name]` or `[[name]]`)"
    );
    // The key flags' variables are read somewhere; the settings' are read by the resolver.
    let sources: Vec<String> = rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
        .into_iter()
        .map(|file| std::fs::read_to_string(file).unwrap())
        .collect();
    let unread: Vec<String> = serve_settings()
        .iter()
        .filter(|s| settings::table::setting(&s.id).is_none())
        .filter_map(|s| s.env.as_deref())
        .map(|e| {
            e.split([',', '=', ' '])
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .filter(|v| !sources.iter().any(|s| s.contains(&format!("\"{v}\""))))
        .collect();
    assert!(
        unread.is_empty(),
        "a key flag's doc comment names {unread:?} in `[env: …]`, which the code never reads"
    );
    // Every variable the server reads, settings or not, is in docs/settings.md.
    let read_anywhere: BTreeSet<String> = sources.iter().flat_map(|s| variables_in(s)).collect();
    let missing: Vec<&String> = read_anywhere
        .iter()
        .filter(|v| !text.contains(&format!("`{v}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "the server reads {missing:?}, which docs/settings.md does not mention: describe it \
         there (a setting's variable is in the generated table; others go in the prose)"
    );
}

// ---------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------

/// The generated command reference.
fn cli_reference() -> String {
    let mut root = Cli::command();
    root.build();
    let settings: BTreeSet<String> = serve_settings().into_iter().map(|s| s.id).collect();
    let mut out = String::new();
    for (name, _) in leaves(&root, "") {
        // `help` is clap's own subcommand, added by `build`.
        if name.split(' ').any(|part| part == "help") {
            continue;
        }
        let mut cmd = {
            let mut c = &mut root;
            for part in name.split(' ') {
                c = c
                    .find_subcommand_mut(part)
                    .expect("a leaf found by walking exists");
            }
            c.clone()
        };
        let about = cmd
            .get_long_about()
            .or_else(|| cmd.get_about())
            .map(ToString::to_string)
            .unwrap_or_default();
        let usage = cmd.render_usage().to_string();
        let usage = usage.trim().trim_start_matches("Usage:").trim();
        let _ = write!(
            out,
            "### `countersign {name}`\n\n{}\n\n```text\n{usage}\n```\n\n",
            sentence(&about)
        );
        let mut rows = Vec::new();
        let mut shared = Vec::new();
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            if name != "serve" && arg.get_long().is_some() && settings.contains(id) {
                shared.push(format!("`--{}`", arg.get_long().unwrap_or_default()));
                continue;
            }
            if name == "serve" && settings.contains(id) {
                continue;
            }
            let shown = if arg.is_positional() {
                let value = arg
                    .get_value_names()
                    .and_then(|n| n.first())
                    .map_or_else(|| id.to_uppercase(), ToString::to_string);
                format!("`{value}`")
            } else {
                format!("`{}`", flag_usage(arg))
            };
            let help = arg
                .get_long_help()
                .or_else(|| arg.get_help())
                .map(ToString::to_string)
                .unwrap_or_default();
            let mut what = sentence(&help);
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            if !defaults.is_empty() && !arg.is_positional() && arg.get_action().takes_values() {
                let _ = write!(what, " Default: `{}`.", defaults.join(", "));
            }
            if arg.is_required_set() && !arg.is_positional() {
                what.push_str(" Required.");
            }
            if matches!(arg.get_action(), clap::ArgAction::Append)
                && !what.to_ascii_lowercase().contains("repeatable")
            {
                what.push_str(" Repeatable.");
            }
            rows.push(format!("| {shown} | {} |", cell(&what)));
        }
        if name == "serve" {
            out.push_str(
                "Every flag of `serve` is a setting: see [settings.md](settings.md) for each \
                 one's environment variable, settings-file key and default.\n\n",
            );
            continue;
        }
        if !rows.is_empty() {
            out.push_str("| argument | what |\n|---|---|\n");
            for row in rows {
                out.push_str(&row);
                out.push('\n');
            }
            out.push('\n');
        }
        if !shared.is_empty() {
            let _ = write!(
                out,
                "Also takes these settings of `serve`: {} ([settings.md](settings.md)).\n\n",
                shared.join(", ")
            );
        }
    }
    let _ = write!(
        out,
        "### Exit status\n\n\
         | status | meaning |\n|---|---|\n\
         | `0` | success |\n\
         | `{EXIT_NEGATIVE}` | a negative answer: `token verify` of a token that does not verify |\n\
         | `{EXIT_USAGE}` | a usage or configuration error: an unknown flag, a bad value, a weak or missing key, a database that cannot be opened |\n"
    );
    out
}

/// `docs/cli.md`'s reference is the one the clap definitions make.
#[test]
fn cli_doc() {
    check_generated("cli.md", "cli", "cli_doc", &cli_reference());
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

const METHODS: &[&str] = &[
    "get", "post", "put", "delete", "patch", "head", "options", "trace",
];

fn openapi() -> Value {
    serde_json::from_str(countersign_server::server::ops::OPENAPI)
        .expect("openapi.json is valid JSON")
}

/// Every (METHOD, path) of `openapi.json`, in the document's order.
fn openapi_routes(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    let Some(paths) = doc["paths"].as_object() else {
        panic!("openapi.json has no `paths`");
    };
    for (path, item) in paths {
        for method in METHODS {
            if let Some(op) = item.get(*method) {
                out.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    out
}

/// The generated route table.
fn route_table(doc: &Value) -> String {
    let mut out = String::from("| route | what | authentication | statuses |\n|---|---|---|---|\n");
    for (method, path, op) in openapi_routes(doc) {
        let auth = match op["security"].as_array() {
            Some(schemes) if !schemes.is_empty() => {
                let names: Vec<String> = schemes
                    .iter()
                    .filter_map(|s| s.as_object())
                    .flat_map(|s| s.keys().cloned())
                    .map(|n| match n.as_str() {
                        "bearer" => "bearer token".to_owned(),
                        "session" => "session cookie".to_owned(),
                        other => other.to_owned(),
                    })
                    .collect();
                names.join(" or ")
            }
            _ => "—".to_owned(),
        };
        let statuses: Vec<String> = op["responses"]
            .as_object()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default();
        let anchor = anchor_of(&format!("{method} {path}"));
        let _ = writeln!(
            out,
            "| [`{method} {path}`](#{anchor}) | {} | {auth} | {} |",
            cell(&sentence(op["summary"].as_str().unwrap_or_default())),
            statuses.join(", "),
        );
    }
    out
}

/// The anchor GitHub-flavoured Markdown gives the heading `` ### `text` ``.
fn anchor_of(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            'A'..='Z' => Some(c.to_ascii_lowercase()),
            'a'..='z' | '0'..='9' | '-' | '_' => Some(c),
            ' ' => Some('-'),
            _ => None,
        })
        .collect()
}

/// The (METHOD, path) pairs named in backticks in the headings of `docs/http.md`.
fn documented_routes(text: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for line in text.lines().filter(|l| l.starts_with('#')) {
        for span in line.split('`').skip(1).step_by(2) {
            if let Some((method, path)) = span.split_once(' ')
                && METHODS.contains(&method.to_ascii_lowercase().as_str())
                && method.bytes().all(|b| b.is_ascii_uppercase())
                && path.starts_with('/')
            {
                out.insert((method.to_owned(), path.to_owned()));
            }
        }
    }
    out
}

/// `code` with each use of a `const NAME: &str = "/…";` of the crate (`NAME`,
/// `module::NAME`) replaced by its literal, so that routes named by a constant are seen.
fn inline_path_constants(code: &str) -> String {
    let mut constants = Vec::new();
    for file in rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src")) {
        let text = std::fs::read_to_string(file).unwrap();
        for line in text.lines() {
            let line = line.trim_start().trim_start_matches("pub ");
            let Some(rest) = line.strip_prefix("const ") else {
                continue;
            };
            let Some((name, value)) = rest.split_once(": &str = \"") else {
                continue;
            };
            if let Some(value) = value.strip_suffix("\";")
                && value.starts_with('/')
            {
                constants.push((name.trim().to_owned(), value.to_owned()));
            }
        }
    }
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut code = code.to_owned();
    for (name, value) in constants {
        let mut out = String::with_capacity(code.len());
        let mut rest = code.as_str();
        while let Some(at) = rest.find(name.as_str()) {
            let before = &rest[..at];
            let after = &rest[at + name.len()..];
            let whole = !before.ends_with(is_ident) && !after.starts_with(is_ident);
            // A use, not the definition: not followed by `:` (a type annotation).
            if whole && !after.trim_start().starts_with(':') {
                // Drop the `module::` path in front of it.
                let path_start = before
                    .trim_end_matches(|c: char| is_ident(c) || c == ':')
                    .len();
                out.push_str(&before[..path_start]);
                out.push('"');
                out.push_str(&value);
                out.push('"');
            } else {
                out.push_str(before);
                out.push_str(&name);
            }
            rest = after;
        }
        out.push_str(rest);
        code = out;
    }
    code
}

/// The routes `src/server/router.rs` registers: each `"/…"` literal with the method routers
/// (`get(`, `.post(`, …) in the same call, comments left out.
fn registered_routes() -> BTreeSet<(String, String)> {
    let source =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/server/router.rs"))
            .unwrap();
    let code: String = source
        .split("#[cfg(test)]")
        .next()
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let l = l.trim_start();
            if l.starts_with("//") { "" } else { l }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let code = inline_path_constants(&code);
    let mut out = BTreeSet::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while let Some(at) = code[i..].find("\"/") {
        let start = i + at + 1;
        let Some(len) = code[start..].find('"') else {
            break;
        };
        let path = &code[start..start + len];
        // The rest of the enclosing call or tuple.
        let mut depth = 1i32;
        let mut j = start + len + 1;
        while j < bytes.len() && depth > 0 {
            match bytes[j] {
                b'(' => depth += 1,
                b')' => depth -= 1,
                _ => {}
            }
            j += 1;
        }
        let rest = &code[start + len + 1..j];
        for method in METHODS {
            let call = format!("{method}(");
            let found = rest.match_indices(&call).any(|(k, _)| {
                k == 0
                    || !rest.as_bytes()[k - 1].is_ascii_alphanumeric()
                        && rest.as_bytes()[k - 1] != b'_'
            });
            if found {
                out.insert((method.to_uppercase(), path.to_owned()));
            }
        }
        i = start + len + 1;
    }
    out
}

fn list(routes: &BTreeSet<(String, String)>) -> String {
    routes
        .iter()
        .map(|(m, p)| format!("{m} {p}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `docs/http.md` describes exactly the routes of `openapi.json`, which describes exactly
/// the routes the router registers, each of which the router answers.
#[tokio::test]
async fn http_doc() {
    let doc = openapi();
    let in_openapi: BTreeSet<(String, String)> = openapi_routes(&doc)
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();

    let registered = registered_routes();
    assert!(
        !registered.is_empty(),
        "no route found in src/server/router.rs: the scan in tests/it/docs.rs needs updating"
    );
    let undocumented: BTreeSet<_> = registered.difference(&in_openapi).cloned().collect();
    assert!(
        undocumented.is_empty(),
        "the router (src/server/router.rs) registers routes that openapi.json does not \
         describe: {}",
        list(&undocumented)
    );
    let unrouted: BTreeSet<_> = in_openapi.difference(&registered).cloned().collect();
    assert!(
        unrouted.is_empty(),
        "openapi.json describes routes that the router (src/server/router.rs) does not \
         register: {}",
        list(&unrouted)
    );

    let path = repo_root().join("docs/http.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let documented = documented_routes(&text);
    let missing: BTreeSet<_> = in_openapi.difference(&documented).cloned().collect();
    assert!(
        missing.is_empty(),
        "docs/http.md has no section (a heading naming `METHOD /path`) for: {}",
        list(&missing)
    );
    let extra: BTreeSet<_> = documented.difference(&in_openapi).cloned().collect();
    assert!(
        extra.is_empty(),
        "docs/http.md has sections for routes openapi.json does not describe: {}",
        list(&extra)
    );

    // The router answers every route of the document with its handler, not with the
    // answer for unknown routes or wrong methods.
    let store = Arc::new(MemoryStore::new());
    let config = ServeConfig {
        registration: Registration::Open,
        hash_params: HashParams {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        },
        hash_workers: 1,
        ..ServeConfig::default()
    };
    let app = App::new(
        &config,
        KeyRing::single(SecretKey::generate(32).unwrap().0),
        store.clone(),
        store,
        Arc::new(ManualClock::new(UnixTime(1_800_000_000))),
        None,
    )
    .unwrap();
    let service = router(app);
    for (method, path) in &in_openapi {
        let uri = path.replace("{id}", "x");
        let request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(&uri)
            .body(Body::empty())
            .unwrap();
        let response = service.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let answer: Value = serde_json::from_slice(&body).unwrap_or_default();
        let fallback = (status == 404 && answer["message"] == "No such route.")
            || (status == 405 && answer["error"] == "method_not_allowed");
        assert!(
            !fallback,
            "{method} {path}: the router has no such route ({status}: {answer})"
        );
    }

    check_generated("http.md", "routes", "http_doc", &route_table(&doc));
}
