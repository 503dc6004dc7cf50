//! `countersign keys check`: each configured key's role, kid, length, capacity and
//! verdict. Never prints key material: a refused key has no kid shown either, since a kid
//! of a guessable key would let anyone confirm a guess offline.

use std::fmt::Write as _;
use std::io::Write;
use std::process::ExitCode;

use crate::Context;
use crate::cli::KeysCheckArgs;
use crate::config::{KeyConfig, KeyRole};

/// Print one line per key and give status 0 when every key is acceptable.
///
/// # Errors
/// When `SECRET_KEY` and `SECRET_KEY_FILE` are both set, any key is missing, unreadable
/// or weak (the message lists each reason and the fix, `countersign keygen`), or the
/// keys are acceptable one by one but not together (a duplicate, too many).
pub fn check(args: &KeysCheckArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let config = KeyConfig::load(ctx.env, args.keys.secret_key_file.as_deref())?;

    let mut rows = vec![[
        "ROLE".to_owned(),
        "SOURCE".to_owned(),
        "KID".to_owned(),
        "BYTES".to_owned(),
        "BITS".to_owned(),
        "VERDICT".to_owned(),
    ]];
    let mut refused = Vec::new();
    for key in config.keys() {
        let length = key.len().map_or_else(|| "-".to_owned(), |n| n.to_string());
        let (kid, bits, verdict) = match key.parse() {
            Ok(secret) => (
                secret.kid().to_string(),
                format!("{:.0}", secret.capacity_bits()),
                "ok".to_owned(),
            ),
            Err(reason) => {
                let verdict = format!("refused: {reason}");
                refused.push((key.role, key.origin.to_string(), reason));
                ("-".to_owned(), "-".to_owned(), verdict)
            }
        };
        rows.push([
            key.role.to_string(),
            key.origin.to_string(),
            kid,
            length,
            bits,
            verdict,
        ]);
    }
    write_table(ctx.stdout, &rows)?;

    if refused.is_empty() {
        config.ring()?;
        let count = rows.len() - 1;
        if count == 1 {
            writeln!(ctx.stdout, "the key is ok")?;
        } else {
            writeln!(
                ctx.stdout,
                "all {count} keys ok: the current key signs, the fallbacks only verify"
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    }

    let mut message = format!("{} of {} keys refused", refused.len(), rows.len() - 1);
    for (role, origin, reason) in &refused {
        write!(message, "\n  {role} ({origin}): {reason}")?;
    }
    let current_refused = refused.iter().any(|(role, ..)| *role == KeyRole::Current);
    let fallback_refused = refused.iter().any(|(role, ..)| *role != KeyRole::Current);
    if current_refused {
        message.push_str(
            "\nfix: generate a key with `countersign keygen` and set it as SECRET_KEY \
             (or write it to the file SECRET_KEY_FILE names)",
        );
    }
    if fallback_refused {
        message.push_str(
            "\nfix: remove each refused fallback from SECRET_KEY_FALLBACKS or its file (tokens \
             signed with a weak key cannot be trusted); new keys come from `countersign keygen`",
        );
    }
    Err(anyhow::Error::msg(message))
}

/// Columns padded to their widest cell; the last column is not padded.
fn write_table(out: &mut dyn Write, rows: &[[String; 6]]) -> std::io::Result<()> {
    let mut widths = [0usize; 6];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                let pad = widths[i] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
