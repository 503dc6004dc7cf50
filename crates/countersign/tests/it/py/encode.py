"""Make tokens with the seeds' exact PyJWT call.

stdin: a JSON list of {"username", "role", "key": "current" | "old", "kid": optional,
"hours": optional (default 1, may be negative)}. Environment: SECRET_KEY, and OLD_SECRET_KEY
for "old". stdout: a JSON list of tokens.
"""
import datetime
import json
import os
import sys
import warnings

import jwt

warnings.simplefilter("ignore", DeprecationWarning)  # datetime.utcnow(), as in the seeds

keys = {"current": os.environ["SECRET_KEY"], "old": os.environ.get("OLD_SECRET_KEY")}

tokens = []
for spec in json.load(sys.stdin):
    SECRET_KEY = keys[spec["key"]]
    # The seeds' payload and call, verbatim (the expiry's length is the test's choice).
    user_data = {
        "username": spec["username"],
        "role": spec["role"],
        "exp": datetime.datetime.utcnow() + datetime.timedelta(hours=spec.get("hours", 1)),
    }
    if "kid" in spec:
        token = jwt.encode(user_data, SECRET_KEY, algorithm="HS256", headers={"kid": spec["kid"]})
    else:
        token = jwt.encode(user_data, SECRET_KEY, algorithm="HS256")
    tokens.append(token)
json.dump(tokens, sys.stdout)
