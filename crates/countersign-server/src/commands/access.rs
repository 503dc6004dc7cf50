//! `countersign access check --url URL [--method M] [--user NAME | --role ROLE]`: which
//! rule of the settings file decides a request, and the verdict, so that an operator can
//! try a rule before deploying it. The URL is read exactly as `/auth/request` reads
//! `X-Original-URL` (the same parser and path normalization).
//!
//! Status 0 when the request would be let through, 1 when it would be refused (401 or
//! 403), 2 for a bad URL, rule or settings file.

use std::process::ExitCode;

use super::admin::{Admin, Hashing};
use super::negative;
use crate::Context;
use crate::access::{AccessRules, Asker, Verdict};
use crate::cli::AccessCheckArgs;
use crate::server::forward::Original;
use crate::settings;

/// Print the matching rule and the verdict.
///
/// # Errors
/// A settings file that cannot be read, a bad rule, a URL that is not an absolute
/// `http(s)` URL, or a storage error looking up `--user`.
pub fn check(args: &AccessCheckArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let rules =
        settings::access_check_rules(&args.storage, args.default_policy.as_deref(), ctx.env)?;
    let original = Original::parse(&args.method, &args.url).map_err(|_| {
        anyhow::anyhow!(
            "--url {:?} --method {:?}: expected an absolute http or https URL without user \
             info, and a method name",
            args.url,
            args.method
        )
    })?;

    let (who, role) = match (&args.user, &args.role) {
        (Some(name), _) => {
            let admin = Admin::open(&args.storage, ctx, Hashing::None)?;
            let user = admin.user(name);
            admin.close();
            let Some(user) = user? else {
                return negative(ctx, format_args!("no such user: {name}"));
            };
            let role = user.role.as_str().to_owned();
            let how = if args.mfa {
                ", with a second factor"
            } else {
                ""
            };
            (format!("{} (role {role}{how})", user.username), Some(role))
        }
        (None, Some(role)) => {
            let how = if args.mfa {
                ", with a second factor"
            } else {
                ""
            };
            (format!("a user with role {role}{how}"), Some(role.clone()))
        }
        (None, None) => ("someone not logged in".to_owned(), None),
    };

    let (rule, policy) = rules.policy_for(&original.as_request());
    let asker = role.as_deref().map(|role| Asker {
        role,
        mfa: args.mfa,
    });
    let verdict = AccessRules::verdict(policy, asker);
    let out = &mut *ctx.stdout;
    writeln!(
        out,
        "request: {} {} (host {}, port {}, path {})",
        original.method, original.url, original.host, original.port, original.path
    )?;
    match rule {
        Some(rule) => writeln!(out, "rule:    {}: {rule}", rule.label())?,
        None => writeln!(
            out,
            "rule:    none of the {} rules matched: default_policy = \"{policy}\"",
            rules.rules().len()
        )?,
    }
    writeln!(out, "as:      {who}")?;
    let (word, code) = match verdict {
        Verdict::Allow => ("allowed (200)", ExitCode::SUCCESS),
        Verdict::Unauthenticated => (
            "login required (401; a browser is sent to the login page)",
            ExitCode::from(crate::EXIT_NEGATIVE),
        ),
        Verdict::Forbidden => ("forbidden (403)", ExitCode::from(crate::EXIT_NEGATIVE)),
        Verdict::SecondFactor => (
            "second factor required (403 mfa_required; ask again with --mfa)",
            ExitCode::from(crate::EXIT_NEGATIVE),
        ),
    };
    writeln!(out, "verdict: {word}")?;
    Ok(code)
}
