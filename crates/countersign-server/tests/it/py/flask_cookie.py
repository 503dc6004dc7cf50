"""Flask session cookies and password hashes made by the real libraries, for
tests/it/e2e/flask.rs. Reads one JSON request on stdin, writes one JSON answer.

{"cookie": {"key": K, "data": {...}, "salt": S?, "age": SECONDS?}}
    the cookie Flask's own SecureCookieSessionInterface sets for `data` (signed `age`
    seconds ago, salt `S` instead of Flask's), as {"cookie": VALUE}
{"hashes": PASSWORD}
    {"scrypt": …, "pbkdf2": …, "bcrypt": …, "argon2": …}: Werkzeug's generate_password_hash
    (its default scrypt, and pbkdf2), the bcrypt package (as Flask-Bcrypt calls it) and
    argon2-cffi's PasswordHasher, each with its library's defaults
Keys come in the request on stdin, never on the command line.
"""
import json
import sys
import time

request = json.load(sys.stdin)

if "cookie" in request:
    from flask import Flask
    from flask.sessions import SecureCookieSessionInterface
    import itsdangerous.timed

    spec = request["cookie"]
    app = Flask(__name__)
    app.secret_key = spec["key"]
    interface = SecureCookieSessionInterface()
    if "salt" in spec:
        interface.salt = spec["salt"]
    age = int(spec.get("age", 0))
    real = itsdangerous.timed.TimestampSigner.get_timestamp
    itsdangerous.timed.TimestampSigner.get_timestamp = lambda self: int(time.time()) - age
    value = interface.get_signing_serializer(app).dumps(spec["data"])
    itsdangerous.timed.TimestampSigner.get_timestamp = real
    print(json.dumps({"cookie": value}))
elif "hashes" in request:
    import argon2
    import bcrypt
    from werkzeug.security import generate_password_hash

    pw = request["hashes"]
    print(json.dumps({
        "scrypt": generate_password_hash(pw),
        "pbkdf2": generate_password_hash(pw, method="pbkdf2"),
        "bcrypt": bcrypt.hashpw(pw.encode(), bcrypt.gensalt()).decode(),
        "argon2": argon2.PasswordHasher().hash(pw),
    }))
else:
    sys.exit("unknown request")
