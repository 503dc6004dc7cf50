"""Decode tokens with the seeds' exact verifier call.

stdin: a JSON list of tokens. Environment: SECRET_KEY. stdout: a JSON list with, for each
token, {"claims": {...}} or {"error": "<PyJWT exception class>"}.
"""
import json
import os
import sys

import jwt

SECRET_KEY = os.environ["SECRET_KEY"]

results = []
for token in json.load(sys.stdin):
    try:
        # The seeds' call, verbatim.
        decoded_token = jwt.decode(token, SECRET_KEY, algorithms=["HS256"])
        results.append({"claims": decoded_token})
    except jwt.InvalidTokenError as e:
        results.append({"error": type(e).__name__})
json.dump(results, sys.stdout)
