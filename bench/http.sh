#!/usr/bin/env bash
# HTTP load benchmark, loopback only, bounded in time. Measures in ONE run on this machine:
#   bare     GET /healthz on axum with no layer at all (the machine's HTTP ceiling: what any
#            server could reach here; crates/countersign-server/examples/bare_axum.rs)
#   plain    GET /healthz on countersign (no auth: the server's own ceiling)
#   bearer   GET /protected with a bearer token
#   session  GET /protected with a session cookie (SQLite session store)
#   flask    GET /protected on the seeds' Flask app (PyJWT, gunicorn, 2 workers)
#   flood    bearer /protected while 32 clients log in with passwords (argon2id)
#   redis    session /protected, sessions in Redis (users in PostgreSQL), with the default 1 s
#            hot-path cache and with --cache-ttl 0 (every request reads Redis)
#   pg       session /protected, users and sessions in PostgreSQL, cache on and off
#   2x       two instances sharing PostgreSQL and Redis, one wrk per instance at once (half
#            the connections each), summed, against one instance with all of them
#   revoke   revocation propagation: a token used on instance B (so B caches it), revoked
#            on A, B polled every 1 ms until it refuses; p50/p99 in ms over
#            BENCH_PROPAGATION_ROUNDS (default 100) revocations, sessions in Redis (pub/sub)
#            and in PostgreSQL (LISTEN/NOTIFY), both with the default 1 s cache
#   attack   logins of another account (4 clients, right password) alone, then while 64
#            clients guess one account's password as fast as they can: logins/s and p99
#            latency of the other account side by side, and how many argon2 checks the
#            guesses got (the store's throttle admits 5 per window before any hashing)
#   forward  forward auth, on an instance trusting 127.0.0.1 as its proxy: GET /auth/request
#            with a session cookie against GET /healthz on the same instance (interleaved
#            rounds); then nginx serving a static location with `auth_request` to it against
#            the same location with no auth (interleaved rounds): the ratio and the latency
#            auth adds per request; and, as the ceiling of that ratio on this machine, the
#            same auth_request to a null auth server (a second nginx answering every
#            subrequest 200 with a Remote-User header and no work at all)
# and prints each as requests/s and as a ratio. Usage: bash bench/http.sh [seconds] [connections]
# Needs wrk (installed from Debian's packages if missing) and the Python venv (scripts/pyenv.sh).
# The scale-out rows need PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432/test;
# a database is created for the run and dropped after) and Redis (BENCH_REDIS, default
# redis://127.0.0.1:6379/0; a key prefix for the run, deleted after); without them they are
# skipped with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."

DUR="${1:-${BENCH_SECONDS:-10}}"
CONNS="${2:-${BENCH_CONNECTIONS:-32}}"
[ "$DUR" -le 60 ] || { echo "at most 60 s per run" >&2; exit 2; }

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
PY="$(bash scripts/pyenv.sh)"
PYBIN="$(dirname "$PY")"
cargo build --release -q -p countersign-server --bin countersign --example bare_axum
BIN=target/release/countersign
BARE_BIN=target/release/examples/bare_axum

WORK="$(mktemp -d)"
PIDS=()
PG_ADMIN="${BENCH_PG:-postgres://postgres@127.0.0.1:5432/test}"
REDIS_URL="${BENCH_REDIS:-redis://127.0.0.1:6379/0}"
RUN_ID="$(date +%s)_$$"
PG_DB="cs_bench_$RUN_ID"
REDIS_PREFIX="countersign-bench:$RUN_ID:"
PG_CREATED=""
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$PG_CREATED" ]; then
    psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  if command -v redis-cli >/dev/null; then
    redis-cli -u "$REDIS_URL" --scan --pattern "${REDIS_PREFIX}*" 2>/dev/null \
      | xargs -r -n 500 redis-cli -u "$REDIS_URL" UNLINK >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

SECRET_KEY="$("$BIN" keygen)"
export SECRET_KEY

# countersign on a free port; the log line says which.
"$BIN" serve --addr 127.0.0.1:0 --data-dir "$WORK/data" --insecure-cookies --log-format pretty \
  >"$WORK/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  ADDR="$(grep -oE 'listening on http://[0-9.:]+' "$WORK/server.log" | head -1 | sed 's#listening on http://##')" || true
  [ -n "${ADDR:-}" ] && break
  sleep 0.1
done
[ -n "${ADDR:-}" ] || { cat "$WORK/server.log"; echo "server did not start" >&2; exit 1; }
BASE="http://$ADDR"

# The bare axum baseline on a free port.
"$BARE_BIN" >"$WORK/bare.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  BARE_ADDR="$(grep -oE 'listening on http://[0-9.:]+' "$WORK/bare.log" | head -1 | sed 's#listening on http://##')" || true
  [ -n "${BARE_ADDR:-}" ] && break
  sleep 0.1
done
[ -n "${BARE_ADDR:-}" ] || { cat "$WORK/bare.log"; echo "bare axum did not start" >&2; exit 1; }

PASSWORD="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s' "$PASSWORD" | "$BIN" user add bench --role user --password-stdin --data-dir "$WORK/data" >/dev/null

TOKEN="$(curl -sf "$BASE/api/token" -H 'Content-Type: application/json' \
  -d "{\"username\":\"bench\",\"password\":\"$PASSWORD\"}" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"

# Session: the login form with its CSRF token, then the session cookie from the jar.
JAR="$WORK/jar"
CSRF="$(curl -sf -c "$JAR" "$BASE/login" | grep -oE 'name="csrf_token" value="[^"]+"' | head -1 | sed 's/.*value="//; s/"$//')"
curl -sf -o /dev/null -b "$JAR" -c "$JAR" "$BASE/login" \
  --data-urlencode "username=bench" --data-urlencode "password=$PASSWORD" --data-urlencode "csrf_token=$CSRF"
COOKIE="$(awk '$6 == "countersign" || $6 == "__Host-countersign" { print $6 "=" $7 }' "$JAR" | tail -1)"
[ -n "$COOKIE" ] || { echo "session login failed" >&2; exit 1; }
curl -sf -H "Authorization: Bearer $TOKEN" "$BASE/protected" >/dev/null
curl -sf -H "Cookie: $COOKIE" "$BASE/protected" >/dev/null

# The seeds' Flask app under gunicorn, 2 workers, same key; a PyJWT token for it.
FLASK_PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
(cd bench && exec "$PYBIN/gunicorn" -w 2 -b "127.0.0.1:$FLASK_PORT" --log-level warning flask_app:app) &
PIDS+=($!)
FLASK_TOKEN="$("$PY" -c 'import jwt,os,time; print(jwt.encode({"username":"bench","role":"user","exp":int(time.time())+3600}, os.environ["SECRET_KEY"], algorithm="HS256"))')"
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$FLASK_PORT/plain" && break; sleep 0.1; done

rps() { # url [header…]
  local out url="$1" h=()
  shift
  for header in "$@"; do h+=(-H "$header"); done
  out="$(wrk -t1 -c"$CONNS" -d"${DUR}s" "${h[@]}" "$url")"
  note_errors "$url" "$out"
  echo "$out" | awk '/Requests\/sec/ { print $2 }'
}

# rps_lat URL [header…]: "requests/s mean-latency-µs" of one wrk run.
rps_lat() {
  local out url="$1" h=()
  shift
  for header in "$@"; do h+=(-H "$header"); done
  out="$(wrk -t1 -c"$CONNS" -d"${DUR}s" "${h[@]}" "$url")"
  note_errors "$url" "$out"
  echo "$out" | awk '
    /Requests\/sec/ { r = $2 }
    /^ +Latency/ { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
                   l = v * (u == "s" ? 1e6 : u == "ms" ? 1e3 : 1) }
    END { print r, l }'
}

# Non-2xx answers are not hidden and do not abort the run: each row's count is printed
# under the table (wrk counts them in requests/s, so a row with many is not comparable).
note_errors() { # label wrk-output
  local bad total
  bad="$(echo "$2" | awk '/Non-2xx/ { print $5 }')"
  total="$(echo "$2" | awk '/requests in/ { print $1 }')"
  if [ -n "$bad" ]; then echo "$1: $bad of $total answers were not 2xx" >>"$WORK/errors"; fi
}

echo "warming up…" >&2
wrk -t1 -c"$CONNS" -d2s "$BASE/healthz" >/dev/null
# The rows the targets compare are interleaved: ROUNDS rounds of plain, bearer, session and
# bare axum, ROUND_SECONDS each, so a change in the machine's load hits all of them alike.
# Each row reports its median; each ratio is the median of the per-round ratios.
ROUNDS="${BENCH_ROUNDS:-5}"
ROUND_SECONDS="${BENCH_ROUND_SECONDS:-4}"
: >"$WORK/rounds"
for round in $(seq "$ROUNDS"); do
  p="$(DUR=$ROUND_SECONDS rps "$BASE/healthz")"
  b="$(DUR=$ROUND_SECONDS rps "$BASE/protected" "Authorization: Bearer $TOKEN")"
  s="$(DUR=$ROUND_SECONDS rps "$BASE/protected" "Cookie: $COOKIE")"
  a="$(DUR=$ROUND_SECONDS rps "http://$BARE_ADDR/healthz")"
  echo "$p $b $s $a" >>"$WORK/rounds"
  echo "round $round: plain $p, bearer $b, session $s, bare axum $a" >&2
done
read -r PLAIN BEARER SESSION BARE BEARER_R SESSION_R PLAIN_BARE_R < <("$PY" - "$WORK/rounds" <<'PYEOF'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
med = lambda xs: statistics.median(xs)
p, b, s, a = (med([r[i] for r in rows]) for i in range(4))
ratio = lambda i, j: med([r[i] / r[j] for r in rows])
print(f"{p:.2f} {b:.2f} {s:.2f} {a:.2f} {ratio(1, 0):.2f} {ratio(2, 0):.2f} {ratio(0, 3):.2f}")
PYEOF
)
FLASK="$(rps "http://127.0.0.1:$FLASK_PORT/protected" "Authorization: Bearer $FLASK_TOKEN")"

# Login flood: 32 clients posting passwords for the whole window, bearer load alongside.
cat >"$WORK/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"bench","password":"$PASSWORD"}'
LUA
wrk -t1 -c32 -d"$((DUR + 2))s" -s "$WORK/login.lua" "$BASE/api/token" >"$WORK/flood.out" 2>&1 &
FLOOD_PID=$!
sleep 1
FLOODED="$(rps "$BASE/protected" "Authorization: Bearer $TOKEN")"
wait "$FLOOD_PID" || true
LOGINS="$(awk '/Requests\/sec/ { print $2 }' "$WORK/flood.out")"
note_errors "POST /api/token during the flood (503: hashing queue full, by design)" "$(cat "$WORK/flood.out")"

# ----- scale-out: PostgreSQL and Redis -----

# start_cs NAME ARGS...: start `countersign serve` on a free port; sets ADDR_<NAME>.
start_cs() {
  local name="$1" addr=""
  shift
  "$BIN" serve --addr 127.0.0.1:0 --insecure-cookies --log-format pretty "$@" \
    >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 200); do
    addr="$(grep -oE 'listening on http://[0-9.:]+' "$WORK/$name.log" | head -1 | sed 's#listening on http://##')" || true
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || { cat "$WORK/$name.log"; echo "server $name did not start" >&2; exit 1; }
  printf -v "ADDR_$name" '%s' "$addr"
}

# session_cookie BASE: log in through the form, print the cookie.
session_cookie() {
  local jar="$WORK/jar.$RANDOM" csrf
  csrf="$(curl -sf -c "$jar" "$1/login" | grep -oE 'name="csrf_token" value="[^"]+"' | head -1 | sed 's/.*value="//; s/"$//')"
  curl -sf -o /dev/null -b "$jar" -c "$jar" "$1/login" \
    --data-urlencode "username=bench" --data-urlencode "password=$PASSWORD" --data-urlencode "csrf_token=$csrf"
  awk '$6 == "countersign" || $6 == "__Host-countersign" { print $6 "=" $7 }' "$jar" | tail -1
}

SCALE_SKIP=""
if ! command -v psql >/dev/null; then
  SCALE_SKIP="psql is not installed"
elif ! psql -q "$PG_ADMIN" -c "CREATE DATABASE $PG_DB" >/dev/null 2>"$WORK/pg.err"; then
  SCALE_SKIP="PostgreSQL at ${PG_ADMIN%%@*}@… cannot create a database: $(head -1 "$WORK/pg.err")"
elif ! command -v redis-cli >/dev/null || ! redis-cli -u "$REDIS_URL" PING >/dev/null 2>&1; then
  PG_CREATED=1
  SCALE_SKIP="Redis at ${REDIS_URL##*@} does not answer"
else
  PG_CREATED=1
fi

REDIS=""; REDIS_NC=""; PGS=""; PGS_NC=""; ONE2=""; TWO=""; PROP_R=""; PROP_P=""
if [ -z "$SCALE_SKIP" ]; then
  # The database URL with the run's database instead of the admin one.
  PG_URL="$("$PY" -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$PG_ADMIN" "$PG_DB")"
  printf '%s' "$PASSWORD" | "$BIN" user add bench --role user --password-stdin --database-url "$PG_URL" >/dev/null
  DATA_S="$WORK/scale-data"
  ON_REDIS=(--data-dir "$DATA_S" --database-url "$PG_URL" --session-store "$REDIS_URL" --redis-prefix "$REDIS_PREFIX")
  start_cs R1 "${ON_REDIS[@]}"
  start_cs R2 "${ON_REDIS[@]}"
  start_cs RNC "${ON_REDIS[@]}" --cache-ttl 0
  start_cs P --data-dir "$DATA_S" --database-url "$PG_URL"
  start_cs PNC --data-dir "$DATA_S" --database-url "$PG_URL" --cache-ttl 0
  R_COOKIE="$(session_cookie "http://$ADDR_R1")"
  P_COOKIE="$(session_cookie "http://$ADDR_P")"
  [ -n "$R_COOKIE" ] && [ -n "$P_COOKIE" ] || { echo "scale-out session login failed" >&2; exit 1; }
  # The Redis session made on R1 works on R2 and RNC, the PostgreSQL one on PNC.
  for a in "$ADDR_R2" "$ADDR_RNC"; do curl -sf -H "Cookie: $R_COOKIE" "http://$a/protected" >/dev/null; done
  curl -sf -H "Cookie: $P_COOKIE" "http://$ADDR_PNC/protected" >/dev/null

  # The Redis session row interleaved with /healthz on the same instance (the hot path's
  # cost, which push invalidation must not raise): medians of ROUNDS rounds.
  : >"$WORK/redis-rounds"
  for round in $(seq "$ROUNDS"); do
    h="$(DUR=$ROUND_SECONDS rps "http://$ADDR_R1/healthz")"
    r="$(DUR=$ROUND_SECONDS rps "http://$ADDR_R1/protected" "Cookie: $R_COOKIE")"
    echo "$h $r" >>"$WORK/redis-rounds"
    echo "redis round $round: healthz $h, session /protected $r" >&2
  done
  read -r REDIS REDIS_R < <("$PY" - "$WORK/redis-rounds" <<'PYEOF'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
print(f"{statistics.median(r[1] for r in rows):.2f} {statistics.median(r[1] / r[0] for r in rows):.2f}")
PYEOF
)
  REDIS_NC="$(rps "http://$ADDR_RNC/protected" "Cookie: $R_COOKIE")"
  PGS="$(rps "http://$ADDR_P/protected" "Cookie: $P_COOKIE")"
  PGS_NC="$(rps "http://$ADDR_PNC/protected" "Cookie: $P_COOKIE")"

  # Two instances behind one client (round-robin by hand): two wrk processes at once, half
  # the connections each, requests/s summed. The baseline is the same two wrk processes
  # both aimed at one instance, so the client side is identical and only the number of
  # servers changes (one wrk thread alone can be the limit on a small machine).
  HALF=$(( (CONNS + 1) / 2 ))
  pair() { # url1 url2: two wrk at once, the summed requests/s
    wrk -t1 -c"$HALF" -d"${DUR}s" -H "Cookie: $R_COOKIE" "$1" >"$WORK/pair1.out" 2>&1 &
    local w1=$!
    wrk -t1 -c"$HALF" -d"${DUR}s" -H "Cookie: $R_COOKIE" "$2" >"$WORK/pair2.out" 2>&1 &
    local w2=$!
    wait "$w1" "$w2"
    note_errors "$1 (pair)" "$(cat "$WORK/pair1.out")"
    note_errors "$2 (pair)" "$(cat "$WORK/pair2.out")"
    awk '/Requests\/sec/ { s += $2 } END { printf "%.2f", s }' "$WORK/pair1.out" "$WORK/pair2.out"
  }
  ONE2="$(pair "http://$ADDR_R1/protected" "http://$ADDR_R1/protected")"
  TWO="$(pair "http://$ADDR_R1/protected" "http://$ADDR_R2/protected")"

  # Revocation propagation, A → B: a token used on B, revoked on A, B polled until it
  # refuses. Keep-alive connections; the time runs from A's answer to the revocation.
  start_cs P2 --data-dir "$DATA_S" --database-url "$PG_URL"
  cat >"$WORK/propagate.py" <<'PYEOF'
import http.client, json, sys, time, urllib.parse
a, b, user, password, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
def connect(base):
    u = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=10)
ca, cb = connect(a), connect(b)
def ask(c, method, path, body=None, headers=None):
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    return r.status, r.read()
JSON = {"Content-Type": "application/json"}
times = []
for _ in range(n):
    status, body = ask(ca, "POST", "/api/token", json.dumps({"username": user, "password": password}), JSON)
    assert status == 200, (status, body)
    token = json.loads(body)["access_token"]
    bearer = {"Authorization": "Bearer " + token}
    assert ask(cb, "GET", "/protected", headers=bearer)[0] == 200
    assert ask(ca, "POST", "/api/token/revoke", json.dumps({"token": token}), JSON)[0] == 200
    start = time.perf_counter()
    while True:
        status, _ = ask(cb, "GET", "/protected", headers=bearer)
        if status == 401:
            break
        assert status == 200, status
        if time.perf_counter() - start > 5:
            sys.exit("B still accepted a revoked token after 5 s")
        time.sleep(0.001)
    times.append((time.perf_counter() - start) * 1000)
times.sort()
print(f"{times[len(times) // 2]:.2f} {times[min(len(times) - 1, len(times) * 99 // 100)]:.2f}")
PYEOF
  PROP_ROUNDS="${BENCH_PROPAGATION_ROUNDS:-100}"
  PROP_R="$("$PY" "$WORK/propagate.py" "http://$ADDR_R1" "http://$ADDR_R2" bench "$PASSWORD" "$PROP_ROUNDS")"
  PROP_P="$("$PY" "$WORK/propagate.py" "http://$ADDR_P" "http://$ADDR_P2" bench "$PASSWORD" "$PROP_ROUNDS")"
fi

# ----- forward auth: /auth/request, and nginx auth_request in front of a static location -----

FWD_SKIP=""
FA_DATA="$WORK/fa-data"
printf '%s' "$PASSWORD" | "$BIN" user add bench --role user --password-stdin --data-dir "$FA_DATA" >/dev/null
start_cs FA --data-dir "$FA_DATA" --trusted-proxies 127.0.0.1/32
FA_COOKIE="$(session_cookie "http://$ADDR_FA")"
FA_URL="http://$ADDR_FA"
ORIGINAL=("X-Original-URL: http://app.bench.test/static/index.html" "X-Original-Method: GET")
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $FA_COOKIE" -H "${ORIGINAL[0]}" -H "${ORIGINAL[1]}" "$FA_URL/auth/request")" = 200 ] \
  || { cat "$WORK/FA.log"; echo "forward auth: /auth/request did not answer 200" >&2; exit 1; }
NGINX_BIN="${NGINX:-/usr/sbin/nginx}"
if [ ! -x "$NGINX_BIN" ]; then
  FWD_SKIP="nginx is not installed (Debian package nginx)"
else
  NGINX_DIR="$WORK/nginx"
  mkdir -p "$NGINX_DIR/www/static" "$NGINX_DIR/www/protected"
  printf 'ok\n' | tee "$NGINX_DIR/www/static/index.html" >"$NGINX_DIR/www/protected/index.html"
  # nginx's workers run as another user: they may pass through the run's directory (not
  # list it) and read the files they serve.
  chmod o+x "$WORK" "$NGINX_DIR"
  chmod -R o+rX "$NGINX_DIR/www"
  NGINX_PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  # The start of each nginx configuration: one worker, no access log, temporary files
  # under the prefix.
  nginx_head() {
    printf '%s\n' "worker_processes 1;" "events { worker_connections 1024; }" "http {" \
      "  access_log off;" "  client_body_temp_path client_body_temp;" \
      "  proxy_temp_path proxy_temp;" "  fastcgi_temp_path fastcgi_temp;" \
      "  uwsgi_temp_path uwsgi_temp;" "  scgi_temp_path scgi_temp;"
  }
  # subrequest_location PATH UPSTREAM: the internal location auth_request asks, as in
  # docs/forward-auth/nginx.conf.
  subrequest_location() {
    cat <<NGINX
    location = $1 {
      internal;
      proxy_pass http://$2/auth/request;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URL \$scheme://\$http_host\$request_uri;
      proxy_set_header X-Original-Method \$request_method;
    }
NGINX
  }
  NULL_PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  # The null auth server: what auth_request costs when the auth server does nothing. Its
  # own nginx (one worker), so it does not share the front nginx's worker.
  NULL_DIR="$WORK/nginx-null"
  mkdir -p "$NULL_DIR"
  chmod o+x "$NULL_DIR"
  cat >"$NULL_DIR/nginx.conf" <<NGINX
$(nginx_head)
  server {
    listen 127.0.0.1:$NULL_PORT;
    location / { add_header Remote-User bench; return 200; }
  }
}
NGINX
  "$NGINX_BIN" -p "$NULL_DIR" -c "$NULL_DIR/nginx.conf" -g "daemon off; pid $NULL_DIR/nginx.pid; error_log $NULL_DIR/error.log;" &
  PIDS+=($!)
  # The auth_request part of docs/forward-auth/nginx.conf, in front of files instead of an app.
  cat >"$NGINX_DIR/nginx.conf" <<NGINX
$(nginx_head)
  upstream countersign { server $ADDR_FA; keepalive 64; }
  upstream null_auth { server 127.0.0.1:$NULL_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $NGINX_DIR/www;
    location /static/ { }
    location /protected/ {
      auth_request /.countersign/request;
      auth_request_set \$countersign_user \$upstream_http_remote_user;
      add_header X-User \$countersign_user;
    }
    location /null/ {
      alias $NGINX_DIR/www/protected/;
      auth_request /.null/request;
      auth_request_set \$countersign_user \$upstream_http_remote_user;
      add_header X-User \$countersign_user;
    }
$(subrequest_location /.null/request null_auth)
$(subrequest_location /.countersign/request countersign)
  }
}
NGINX
  "$NGINX_BIN" -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" -g "daemon off; pid $NGINX_DIR/nginx.pid; error_log $NGINX_DIR/error.log;" &
  PIDS+=($!)
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$NGINX_PORT/static/index.html" && break; sleep 0.1; done
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $FA_COOKIE" "http://127.0.0.1:$NGINX_PORT/protected/index.html")" = 200 ] \
    || { cat "$NGINX_DIR/error.log"; echo "nginx with auth_request did not answer 200" >&2; exit 1; }
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$NGINX_PORT/protected/index.html")" = 401 ] \
    || { echo "nginx with auth_request let an anonymous request through" >&2; exit 1; }
  [ "$(curl -s -D - -o /dev/null "http://127.0.0.1:$NGINX_PORT/null/index.html" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-user" { print $2 }')" = bench ] \
    || { cat "$NGINX_DIR/error.log" "$NULL_DIR/error.log"; echo "nginx with auth_request to the null auth server did not answer with its user" >&2; exit 1; }
fi
: >"$WORK/fwd-rounds"
for round in $(seq "$ROUNDS"); do
  h="$(DUR=$ROUND_SECONDS rps "$FA_URL/healthz")"
  f="$(DUR=$ROUND_SECONDS rps "$FA_URL/auth/request" "Cookie: $FA_COOKIE" "${ORIGINAL[@]}")"
  if [ -z "$FWD_SKIP" ]; then
    read -r ns nsl < <(DUR=$ROUND_SECONDS rps_lat "http://127.0.0.1:$NGINX_PORT/static/index.html" "Cookie: $FA_COOKIE")
    read -r na nal < <(DUR=$ROUND_SECONDS rps_lat "http://127.0.0.1:$NGINX_PORT/protected/index.html" "Cookie: $FA_COOKIE")
    nn="$(DUR=$ROUND_SECONDS rps "http://127.0.0.1:$NGINX_PORT/null/index.html" "Cookie: $FA_COOKIE")"
  else
    ns=1; nsl=0; na=1; nal=0; nn=1
  fi
  echo "$h $f $ns $na $nsl $nal $nn" >>"$WORK/fwd-rounds"
  echo "forward round $round: healthz $h, auth/request $f, nginx static $ns (${nsl}µs), nginx auth_request $na (${nal}µs), to the null auth server $nn" >&2
done
read -r FA_HEALTH FA_AUTH FA_R NG_STATIC NG_AUTH NG_R NG_ADDED NG_COST NG_NULL NG_NULL_R NG_OF_NULL < <("$PY" - "$WORK/fwd-rounds" <<'PYEOF'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
med = statistics.median
h, f, ns, na = (med([r[i] for r in rows]) for i in range(4))
added = med([r[5] - r[4] for r in rows])
# What auth adds to each request in machine time: the difference of the time per request
# (1 / throughput) with and without it, every process sharing the same cores.
cost = med([1e6 / r[3] - 1e6 / r[2] for r in rows])
nn = med([r[6] for r in rows])
print(f"{h:.2f} {f:.2f} {med([r[1] / r[0] for r in rows]):.2f} {ns:.2f} {na:.2f} "
      f"{med([r[3] / r[2] for r in rows]):.2f} {added:.0f} {cost:.1f} "
      f"{nn:.2f} {med([r[6] / r[2] for r in rows]):.2f} {med([r[3] / r[6] for r in rows]):.2f}")
PYEOF
)

# ----- logins while 64 clients guess one account -----

# Behind a trusted proxy (127.0.0.1), so the guesser and the honest client have their own
# addresses: the attack is on one account, not on everyone behind one address.
LA_DATA="$WORK/la-data"
printf '%s' "$PASSWORD" | "$BIN" user add bench --role user --password-stdin --data-dir "$LA_DATA" >/dev/null
printf '%s' "$PASSWORD" | "$BIN" user add victim --role user --password-stdin --data-dir "$LA_DATA" >/dev/null
start_cs LA --data-dir "$LA_DATA" --trusted-proxies 127.0.0.1/32
LA_URL="http://$ADDR_LA"
cat >"$WORK/good-login.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Forwarded-For"] = "198.51.100.7"
wrk.body = '{"username":"bench","password":"$PASSWORD"}'
LUA
# Each 401 is a guess that was evaluated (hashed); 429s were refused before any hashing.
cat >"$WORK/attack.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Forwarded-For"] = "203.0.113.66"
wrk.body = '{"username":"victim","password":"not the password"}'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) hashed = 0 end
function response(status, headers, body) if status == 401 then hashed = hashed + 1 end end
function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do n = n + t:get("hashed") end
  io.write(string.format("hashed %d\n", n))
end
LUA
wrk -t1 -c4 -d"${DUR}s" --latency -s "$WORK/good-login.lua" "$LA_URL/api/token" >"$WORK/calm.out"
note_errors "POST /api/token (other account, no attack)" "$(cat "$WORK/calm.out")"
wrk -t1 -c64 -d"$((DUR + 2))s" -s "$WORK/attack.lua" "$LA_URL/api/token" >"$WORK/attack.out" 2>&1 &
ATTACK_PID=$!
sleep 1
wrk -t1 -c4 -d"${DUR}s" --latency -s "$WORK/good-login.lua" "$LA_URL/api/token" >"$WORK/attacked.out"
wait "$ATTACK_PID" || true
note_errors "POST /api/token (other account, under attack)" "$(cat "$WORK/attacked.out")"
p99_of() { awk '/^ +99%/ { print $2 }' "$1"; }
rps_of() { awk '/Requests\/sec/ { print $2 }' "$1"; }
CALM_RPS="$(rps_of "$WORK/calm.out")"; CALM_P99="$(p99_of "$WORK/calm.out")"
HOT_RPS="$(rps_of "$WORK/attacked.out")"; HOT_P99="$(p99_of "$WORK/attacked.out")"
ATTACK_RPS="$(rps_of "$WORK/attack.out")"
GUESS_CHECKS="$(awk '/^hashed / { print $2 }' "$WORK/attack.out")"

ratio() { "$PY" -c "print(f'{float($1)/float($2):.2f}')"; }
echo
echo "countersign HTTP benchmark: ${DUR}s per row (first four: $ROUNDS interleaved rounds of ${ROUND_SECONDS}s, medians), $CONNS connections, wrk -t1, $(nproc) cores"
printf '%-34s %12s   %s\n' "route" "requests/s" "ratio"
printf '%-34s %12s   %s\n' "bare axum GET /healthz (machine)" "$BARE" "$(ratio "$BARE" "$FLASK")x flask: the most any server reaches here"
printf '%-34s %12s   %s\n' "plain GET /healthz (ceiling)" "$PLAIN" "1.00 of plain, $PLAIN_BARE_R of bare axum (median of $ROUNDS interleaved rounds)"
printf '%-34s %12s   %s\n' "bearer GET /protected" "$BEARER" "$BEARER_R of plain (median of $ROUNDS interleaved rounds)"
printf '%-34s %12s   %s\n' "session GET /protected (SQLite)" "$SESSION" "$SESSION_R of plain (median of $ROUNDS interleaved rounds)"
printf '%-34s %12s   %s\n' "flask+PyJWT /protected (2 workers)" "$FLASK" "bearer is $(ratio "$BEARER" "$FLASK")x, session is $(ratio "$SESSION" "$FLASK")x"
printf '%-34s %12s   %s\n' "bearer during 32-client login flood" "$FLOODED" "$(ratio "$FLOODED" "$BEARER") of unloaded bearer (logins/s: $LOGINS)"
if [ -n "$SCALE_SKIP" ]; then
  echo "scale-out rows skipped: $SCALE_SKIP"
else
  printf '%-34s %12s   %s\n' "session /protected (Redis)" "$REDIS" "$(ratio "$REDIS" "$PLAIN") of plain; $REDIS_R of its own /healthz (1 s cache, push invalidation; median of $ROUNDS interleaved rounds)"
  printf '%-34s %12s   %s\n' "session /protected (Redis, no cache)" "$REDIS_NC" "$(ratio "$REDIS_NC" "$PLAIN") of plain (--cache-ttl 0)"
  printf '%-34s %12s   %s\n' "session /protected (PostgreSQL)" "$PGS" "$(ratio "$PGS" "$PLAIN") of plain (1 s cache)"
  printf '%-34s %12s   %s\n' "session /protected (PG, no cache)" "$PGS_NC" "$(ratio "$PGS_NC" "$PLAIN") of plain (--cache-ttl 0)"
  printf '%-34s %12s   %s\n' "1 instance, 2 wrk (Redis session)" "$ONE2" "$(ratio "$ONE2" "$REDIS")x the 1-wrk row: the client's share"
  printf '%-34s %12s   %s\n' "2 instances, 2 wrk (Redis session)" "$TWO" "$(ratio "$TWO" "$ONE2")x one instance ($CONNS connections in total, $(nproc) cores)"
  read -r PR50 PR99 <<<"$PROP_R"
  read -r PP50 PP99 <<<"$PROP_P"
  printf '%-34s %12s   %s\n' "revocation A→B (Redis pub/sub)" "p50 ${PR50} ms" "p99 ${PR99} ms ($PROP_ROUNDS revocations, B polled every 1 ms)"
  printf '%-34s %12s   %s\n' "revocation A→B (PG LISTEN/NOTIFY)" "p50 ${PP50} ms" "p99 ${PP99} ms ($PROP_ROUNDS revocations, B polled every 1 ms)"
fi
printf '%-34s %12s   %s\n' "logins, other account (4 clients)" "$CALM_RPS" "p99 $CALM_P99 with no attack"
printf '%-34s %12s   %s\n' "  … while 64 clients guess one" "$HOT_RPS" "p99 $HOT_P99 under attack ($ATTACK_RPS guesses/s answered, $GUESS_CHECKS of them hashed)"
printf '%-34s %12s   %s\n' "forward: GET /healthz" "$FA_HEALTH" "1.00 (its own instance, --trusted-proxies 127.0.0.1/32)"
printf '%-34s %12s   %s\n' "forward: GET /auth/request (session)" "$FA_AUTH" "$FA_R of /healthz (median of $ROUNDS interleaved rounds; goal >= 0.9)"
if [ -n "$FWD_SKIP" ]; then
  echo "nginx rows skipped: $FWD_SKIP"
else
  printf '%-34s %12s   %s\n' "nginx static, no auth" "$NG_STATIC" "1.00"
  printf '%-34s %12s   %s\n' "nginx static + auth_request" "$NG_AUTH" "$NG_R of no auth, +${NG_COST} µs of machine time and +${NG_ADDED} µs mean latency (at $CONNS connections) per request (medians of $ROUNDS rounds; goal >= 0.5)"
  printf '%-34s %12s   %s\n' "  … to a null auth server" "$NG_NULL" "$NG_NULL_R of no auth: the ceiling of the row above on this machine (nginx's own subrequest); countersign reaches $NG_OF_NULL of it"
fi
if [ -s "$WORK/errors" ]; then
  echo "non-2xx answers:"
  sed 's/^/  /' "$WORK/errors"
else
  echo "every answer was 2xx"
fi
