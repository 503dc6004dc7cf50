"""An application behind forward authentication: what docs/forward-auth.md shows, and the
app the forward-auth browser test runs under gunicorn behind nginx and Caddy.

The proxy asks countersign about every request and passes on `Remote-User`,
`Remote-Groups` and `Countersign-Jwt-Assertion`. This app trusts the assertion, not the
plain headers: it verifies the JWT with PyJWT (signature, expiry, audience = this app's
own origin, issuer), so a request that reached it some other way than through the proxy
cannot claim to be anyone.

Settings (environment):
  SECRET_KEY          countersign's SECRET_KEY (the assertion is HS256 until asymmetric
                      signing keys are set; then use JWKS_URL instead)
  JWKS_URL            countersign's /.well-known/jwks.json, to verify EdDSA/ES256 assertions
  APP_ORIGIN          this app's origin as browsers reach it (http://127.0.0.1:8000): the
                      assertion's audience
  COUNTERSIGN_URL     countersign's public URL (the issuer, and where /logout is)

Run: gunicorn -w 2 -b 127.0.0.1:5000 app:app
"""
import html
import os
import urllib.parse

import jwt
from flask import Flask, jsonify, request

app = Flask(__name__)

ORIGIN = os.environ["APP_ORIGIN"].rstrip("/")
COUNTERSIGN = os.environ["COUNTERSIGN_URL"].rstrip("/")
JWKS = jwt.PyJWKClient(os.environ["JWKS_URL"]) if os.environ.get("JWKS_URL") else None
SECRET_KEY = os.environ.get("SECRET_KEY")


def identity():
    """The verified claims of the request's assertion, or None (nobody logged in, or
    an assertion that does not verify: the same to this app)."""
    token = request.headers.get("Countersign-Jwt-Assertion")
    if not token:
        return None
    if JWKS is not None:
        key, algorithms = JWKS.get_signing_key_from_jwt(token).key, ["EdDSA", "ES256"]
    else:
        key, algorithms = SECRET_KEY, ["HS256"]
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=ORIGIN,
            issuer=COUNTERSIGN,
            options={"require": ["exp", "iat", "aud", "iss", "sub"]},
        )
    except jwt.InvalidTokenError:
        return None
    # The plain header, when present, must say the same.
    if request.headers.get("Remote-User", claims["username"]) != claims["username"]:
        return None
    return claims


def page(title, body):
    logout = COUNTERSIGN + "/logout?rd=" + urllib.parse.quote(ORIGIN + "/", safe="")
    return (
        f"<!doctype html><title>{html.escape(title)}</title>"
        f"<h1>{html.escape(title)}</h1>{body}"
        f'<p><a id="logout" href="{html.escape(logout)}">Log out</a></p>'
    )


@app.get("/")
@app.get("/<path:path>")
def hello(path=""):
    claims = identity()
    if claims is None:
        return page("Hello stranger", "<p>Nobody is logged in.</p>")
    return page(
        f"Hello {claims['username']}",
        f"<p id=\"role\">role {html.escape(claims['role'])}</p>",
    )


@app.get("/admin/")
def admin():
    claims = identity()
    if claims is None or claims["role"] != "admin":
        # The proxy already refused everyone else; an app that checks again loses nothing.
        return page("Not allowed", ""), 403
    return page(f"Admin area: hello {claims['username']}", "")


@app.get("/public/whoami")
def whoami():
    """What this app was told, for the test: the plain header and the verified identity."""
    claims = identity()
    return jsonify(
        {
            "remote_user": request.headers.get("Remote-User"),
            "remote_groups": request.headers.get("Remote-Groups"),
            "verified": None if claims is None else claims["username"],
        }
    )
