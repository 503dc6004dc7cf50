"""PyJWT's PyJWKClient against a running countersign, and tokens PyJWT signs itself.

stdin: {"discovery": URL, "tokens": [...], "audience": str or null, "exp": N}
stdout: {
  "issuer", "jwks_uri": what the discovery document says;
  "verified": for each token, {"claims": ...} or {"error": "<PyJWT exception>"}: the key
    from PyJWKClient(jwks_uri).get_signing_key_from_jwt, algorithms pinned to EdDSA and
    ES256, the issuer (and audience, when given) checked;
  "jwks", "tokens": PyJWT's own keys (kids "py-EdDSA", "py-ES256") and tokens signed
    with them, for `countersign token verify --jwks`.
}
"""
import json
import sys
import urllib.request

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

req = json.load(sys.stdin)
with urllib.request.urlopen(req["discovery"], timeout=30) as r:
    meta = json.load(r)

client = jwt.PyJWKClient(meta["jwks_uri"])
verified = []
for token in req["tokens"]:
    try:
        key = client.get_signing_key_from_jwt(token)
        options = {"require": ["exp", "iat", "iss"]}
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["EdDSA", "ES256"],
            issuer=meta["issuer"],
            audience=req.get("audience"),
            options=options,
        )
        verified.append({"claims": claims})
    except (jwt.InvalidTokenError, jwt.PyJWKClientError) as e:
        verified.append({"error": type(e).__name__})

keys = []
tokens = []
for alg, private in [
    ("EdDSA", ed25519.Ed25519PrivateKey.generate()),
    ("ES256", ec.generate_private_key(ec.SECP256R1())),
]:
    jwk = jwt.get_algorithm_by_name(alg).to_jwk(private.public_key(), as_dict=True)
    jwk.update({"kid": "py-" + alg, "alg": alg, "use": "sig"})
    keys.append(jwk)
    payload = {"sub": "py", "username": "from_pyjwt", "exp": req["exp"]}
    tokens.append(jwt.encode(payload, private, algorithm=alg, headers={"kid": "py-" + alg}))

json.dump(
    {
        "issuer": meta["issuer"],
        "jwks_uri": meta["jwks_uri"],
        "verified": verified,
        "jwks": {"keys": keys},
        "tokens": tokens,
    },
    sys.stdout,
)
