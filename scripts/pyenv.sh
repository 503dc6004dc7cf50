#!/usr/bin/env bash
# Creates (once) the Python venv the interop tests use, with PyJWT and the seeds' stack
# (Flask, requests, gunicorn), and prints the path of its python. Idempotent: a venv that
# already has PyJWT is reused as is.
#
#   COUNTERSIGN_PYTHON="$(bash scripts/pyenv.sh)" cargo test -p countersign
set -euo pipefail
cd "$(dirname "$0")/.."

venv="target/pyenv"
python="$venv/bin/python"
host_python="${PYTHON:-python3}"

if ! "$python" -c 'import jwt, flask, requests, gunicorn' >/dev/null 2>&1; then
  rm -rf "$venv"
  mkdir -p target
  "$host_python" -m venv "$venv" >&2
  "$python" -m pip install --quiet --disable-pip-version-check pyjwt flask requests gunicorn >&2
  "$python" -c 'import jwt, flask, requests, gunicorn' >&2
fi

echo "$(pwd)/$python"
