#!/usr/bin/env bash
# Login latency for an argon2 user, an imported bcrypt user (cost 12) and an unknown name,
# before and after the equal-time rule across hash formats, in ONE run on this machine.
# Builds crates/countersign/benches/login_timing.rs twice (release): against this tree, and
# against the engine just before the rule (the same bench source, copied into an export of
# that commit), then runs the two alternately, RUNS times each. Each run times every case
# in interleaved rounds against its own baseline (one argon2id check on the bench thread),
# so a busy machine slows all alike; this prints, per case, the median over the runs of
# each run's median, in ms and as a ratio to the baseline.
#
# Usage: bash bench/login_timing.sh [ROUNDS per run, default 15] [RUNS, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${1:-15}"
RUNS="${2:-3}"
RULE="$(git log --format=%H -1 --grep='^Equal time across password-hash formats')"
[ -n "$RULE" ] || { echo "cannot find the commit that brought the rule" >&2; exit 2; }
TARGET="$(realpath "${CARGO_TARGET_DIR:-target}")"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

bench_exe() { # manifest-dir -> path of the built bench
  (cd "$1" && CARGO_TARGET_DIR="$TARGET" cargo build --release -q -p countersign \
    --bench login_timing --message-format=json) |
    python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="login_timing" and m.get("executable"):
        print(m["executable"])'
}

git archive "$RULE^" | tar -x -C "$WORK"
cp crates/countersign/benches/login_timing.rs "$WORK/crates/countersign/benches/"
grep -q 'name = "login_timing"' "$WORK/crates/countersign/Cargo.toml" ||
  printf '\n[[bench]]\nname = "login_timing"\nharness = false\n' >>"$WORK/crates/countersign/Cargo.toml"
BEFORE="$(bench_exe "$WORK")"
AFTER="$(bench_exe .)"

for ((i = 0; i < RUNS; i++)); do
  "$BEFORE" "$ROUNDS" | sed 's/^/before /' >>"$WORK/out"
  "$AFTER" "$ROUNDS" | sed 's/^/after  /' >>"$WORK/out"
done

python3 - "$WORK/out" "$ROUNDS" "$RUNS" "$(git rev-parse --short "$RULE^")" <<'PYEOF'
import statistics, sys
path, rounds, runs, before = sys.argv[1:]
figures = {}
for line in open(path):
    if not line.rstrip().endswith("x"):
        continue
    version, rest = line[:7].strip(), line[7:]
    case, nums = rest[:14].strip(), rest[14:].split()
    figures.setdefault((version, case), []).append((float(nums[0]), float(nums[2].rstrip("x"))))
cases = ["baseline", "argon2 ok", "argon2 wrong", "bcrypt wrong", "unknown"]
print(f"login latency, 1 hashing worker, median of {runs} runs x {rounds} interleaved rounds")
print(f"(before: {before}, the engine just before the rule; ratio: to the baseline's median in the same run)")
print(f"{'case':<14} {'before ms':>10} {'ratio':>7} {'after ms':>10} {'ratio':>7}")
for case in cases:
    row = [case]
    for version in ("before", "after"):
        xs = figures[(version, case)]
        row += [statistics.median(x[0] for x in xs), statistics.median(x[1] for x in xs)]
    print(f"{row[0]:<14} {row[1]:>10.1f} {row[2]:>6.2f}x {row[3]:>10.1f} {row[4]:>6.2f}x")
PYEOF
