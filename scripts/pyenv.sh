#!/usr/bin/env bash
# Creates (once) the Python venv the interop tests use, with PyJWT (and `cryptography`, for
# EdDSA and ES256), the seeds' stack (Flask, requests, gunicorn, bcrypt, argon2-cffi),
# schemathesis (the OpenAPI conformance test) and pyotp (TOTP codes computed apart from the
# server's own code), and prints the path of its python.
# Idempotent: a venv that already has them all is reused as is, one missing a package is
# completed in place.
#
#   COUNTERSIGN_PYTHON="$(bash scripts/pyenv.sh)" cargo test -p countersign
set -euo pipefail
cd "$(dirname "$0")/.."

venv="target/pyenv"
python="$venv/bin/python"
host_python="${PYTHON:-python3}"

if ! "$python" -c 'import jwt, cryptography, flask, requests, gunicorn, schemathesis, bcrypt, argon2, pyotp' >/dev/null 2>&1; then
  # A venv whose python runs is completed in place (tests may be using it); a broken one is
  # made anew.
  if ! "$python" -c '' >/dev/null 2>&1; then
    rm -rf "$venv"
    mkdir -p target
    "$host_python" -m venv "$venv" >&2
  fi
  "$python" -m pip install --quiet --disable-pip-version-check 'pyjwt[crypto]' flask requests gunicorn 'schemathesis>=4,<5' bcrypt argon2-cffi pyotp >&2
  "$python" -c 'import jwt, cryptography, flask, requests, gunicorn, schemathesis, bcrypt, argon2, pyotp' >&2
fi

echo "$(pwd)/$python"
