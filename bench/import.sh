#!/usr/bin/env bash
# `countersign user import` of a Flask app's users: time and peak memory, measured in ONE
# run on this machine for N and N/10 users (default N = 100000), so the memory column shows
# whether it grows with the file (it must not: the import is streamed, one batch at a time,
# into one transaction). Hashes are real Werkzeug scrypt/pbkdf2, bcrypt and argon2-cffi
# hashes (made once by the Python venv, scripts/pyenv.sh), repeated under distinct names:
# an import checks formats and cost caps but never runs the hash, so their cost does not
# matter here. SQLite in a temporary data directory; PostgreSQL too when BENCH_PG (default
# postgres://postgres@127.0.0.1:5432/test) answers (a database is made for the run and
# dropped after).
#
# Usage: bash bench/import.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."

N="${1:-100000}"
[ "$N" -ge 10 ] && [ "$N" -le 1000000 ] || { echo "N must be 10 to 1000000" >&2; exit 2; }
PY="$(bash scripts/pyenv.sh)"
cargo build --release -q -p countersign-server --bin countersign
BIN="$(realpath "${CARGO_TARGET_DIR:-target}")/release/countersign"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# One CSV per size, as a Flask app's users table exports it (quoted hashes: argon2's
# parameters have commas).
"$PY" - "$WORK" "$N" <<'PYEOF'
import csv, sys
import argon2, bcrypt
from werkzeug.security import generate_password_hash
work, n = sys.argv[1], int(sys.argv[2])
pw = "correct horse battery staple"
hashes = [
    generate_password_hash(pw),
    generate_password_hash(pw, method="pbkdf2"),
    bcrypt.hashpw(pw.encode(), bcrypt.gensalt()).decode(),
    argon2.PasswordHasher().hash(pw),
]
for size in (n // 10, n):
    with open(f"{work}/users-{size}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "username", "email", "password_hash", "role"])
        for i in range(size):
            w.writerow([i + 1, f"user{i}", f"user{i}@example.org", hashes[i % 4], "user"])
PYEOF

measure() { # label size database-args...
  local label="$1" size="$2"
  shift 2
  local out
  out="$( { /usr/bin/time -f '%e %M' "$BIN" user import "$WORK/users-$size.csv" "$@" >/dev/null; } 2>&1 | tail -n 1)"
  local secs="${out% *}" kib="${out#* }"
  printf '%-10s %9s users  %7.2f s  %8.0f users/s  peak RSS %6.1f MiB\n' \
    "$label" "$size" "$secs" "$(echo "$size / $secs" | bc -l)" "$(echo "$kib / 1024" | bc -l)"
}

command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
echo "import of Flask users ($(nproc) cores):"
for size in $((N / 10)) "$N"; do
  rm -rf "$WORK/data-$size"
  measure sqlite "$size" --data-dir "$WORK/data-$size"
done

PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432/test}"
if command -v psql >/dev/null && psql "$PG" -qc 'select 1' >/dev/null 2>&1; then
  db="cs_import_$$"
  psql "$PG" -qc "create database $db" >/dev/null
  base="${PG%/*}"
  for size in $((N / 10)) "$N"; do
    psql "$base/$db" -qc 'drop table if exists users, sessions, refresh_tokens, refresh_families, jti_denylist, issued_before, throttle, _sqlx_migrations cascade' >/dev/null 2>&1 || true
    measure postgres "$size" --database-url "$base/$db"
  done
  psql "$PG" -qc "drop database $db" >/dev/null
else
  echo "postgres   skipped: $PG does not answer (set BENCH_PG)"
fi
