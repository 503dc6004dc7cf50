#!/usr/bin/env bash
# A bounded coverage-guided fuzz run of the JWT verifier and the Flask cookie reader
# (cargo-fuzz / libFuzzer).
#
#   FUZZ_SECONDS   total time budget, split evenly among the targets (default 60)
#   FUZZ_TARGETS   which targets (default "verify verify_signed flask_cookie"; also
#                  decode_unverified)
#
# Runs when it can build the targets: cargo-fuzz installed, and a nightly toolchain (or
# the stable one with RUSTC_BOOTSTRAP=1, which accepts the -Z flags cargo-fuzz passes).
# Otherwise prints "skipped: <reason>" and exits 0. A crash fails the run, and leaves its
# input in fuzz/artifacts/<target>/. Details: docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
targets=(${FUZZ_TARGETS:-verify verify_signed flask_cookie})

skip() {
  echo "fuzz: skipped: $*"
  exit 0
}

if ! cargo fuzz --version >/dev/null 2>&1; then
  # CI installs it from the registry (a fresh machine has none); elsewhere it is optional.
  if [ "${CI:-}" = "true" ]; then
    cargo install --locked --quiet cargo-fuzz || skip "cargo-fuzz could not be installed"
  else
    skip "cargo-fuzz is not installed (cargo install cargo-fuzz)"
  fi
fi

# A toolchain that takes -Z flags: nightly if rustup has it, else stable bootstrapped.
if rustup run nightly rustc --version >/dev/null 2>&1; then
  cargo_fuzz=(cargo +nightly fuzz)
  toolchain="nightly ($(rustup run nightly rustc --version))"
elif RUSTC_BOOTSTRAP=1 rustc -Z help >/dev/null 2>&1; then
  export RUSTC_BOOTSTRAP=1
  cargo_fuzz=(cargo fuzz)
  toolchain="$(rustc --version) with RUSTC_BOOTSTRAP=1"
else
  skip "no toolchain accepts -Z flags (install nightly: rustup toolchain install nightly)"
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64 | Linux-aarch64 | Darwin-*) ;;
  *) skip "libFuzzer's sanitizers are not supported on $(uname -s)-$(uname -m)" ;;
esac

per_target=$((seconds / ${#targets[@]}))
if [ "$per_target" -lt 1 ]; then
  per_target=1
fi

echo "fuzz: ${targets[*]}, ${per_target}s each, on $toolchain"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# -a: debug assertions on, so overflow and debug_assert! failures are crashes too.
if ! "${cargo_fuzz[@]}" build -a >"$log" 2>&1; then
  cat "$log"
  echo "fuzz: FAILED to build the fuzz targets with $toolchain"
  exit 1
fi

for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus" "fuzz/artifacts/$target"
  # New inputs go to fuzz/corpus (ignored by git); fuzz/seeds is only read.
  status=0
  "${cargo_fuzz[@]}" run -a "$target" "$corpus" "fuzz/seeds/$target" -- \
    -max_total_time="$per_target" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  grep -E '^(#[0-9]+ +DONE|Done |stat::number_of_executed_units)' "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$log"
    echo "fuzz: target $target FAILED (exit $status); the input is in fuzz/artifacts/$target/"
    echo "fuzz: replay: cargo +nightly fuzz run $target fuzz/artifacts/$target/<file>"
    exit 1
  fi
  echo "fuzz: target $target: no crash in ${per_target}s"
done
