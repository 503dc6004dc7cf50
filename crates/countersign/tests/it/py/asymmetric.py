"""EdDSA and ES256 with PyJWT (and `cryptography`), both ways.

stdin: {"jwks": <our JWK Set>, "tokens": [...], "iss": ..., "aud": ..., "exp": N}.
stdout: {
  "verified": for each of our tokens, {"claims": {...}} or {"error": "<PyJWT exception>"},
    verified with the key of our JWK Set its kid names (PyJWKSet), algorithms pinned;
  "jwks": a JWK Set of two keys PyJWT made (EdDSA, ES256), kids "py-EdDSA", "py-ES256";
  "tokens": tokens PyJWT signed with them: for each algorithm one with kid, one without;
  "pems": {"EdDSA": ..., "ES256": ...}: the private keys as PKCS#8 PEM, as `cryptography`
    writes them (for the test that loads foreign key files).
}
"""
import json
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

req = json.load(sys.stdin)

ours = jwt.PyJWKSet.from_dict(req["jwks"])
verified = []
for token in req["tokens"]:
    try:
        kid = jwt.get_unverified_header(token)["kid"]
        claims = jwt.decode(
            token,
            ours[kid],
            algorithms=["EdDSA", "ES256"],
            issuer=req.get("iss"),
            audience=req.get("aud"),
        )
        verified.append({"claims": claims})
    except (jwt.InvalidTokenError, jwt.PyJWKSetError, KeyError) as e:
        verified.append({"error": type(e).__name__})

keys = []
tokens = []
pems = {}
for alg, private in [
    ("EdDSA", ed25519.Ed25519PrivateKey.generate()),
    ("ES256", ec.generate_private_key(ec.SECP256R1())),
]:
    jwk = jwt.get_algorithm_by_name(alg).to_jwk(private.public_key(), as_dict=True)
    jwk.update({"kid": "py-" + alg, "alg": alg, "use": "sig"})
    keys.append(jwk)
    payload = {"sub": "py", "username": "from_pyjwt", "exp": req["exp"]}
    tokens.append(jwt.encode(payload, private, algorithm=alg, headers={"kid": "py-" + alg}))
    tokens.append(jwt.encode(payload, private, algorithm=alg))
    pems[alg] = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()

json.dump({"verified": verified, "jwks": {"keys": keys}, "tokens": tokens, "pems": pems}, sys.stdout)
