"""The seeds' Flask app (JWT part), driven with Flask's test client: no port, no server.

stdin: a JSON list of Authorization header values (null for none). Environment:
SECRET_KEY. stdout: a JSON list of {"status", "body"}.
"""
import json
import os
import sys

import jwt
from flask import Flask, jsonify, request

app = Flask(__name__)
app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]


# The seeds' decorator, verbatim.
def token_required(f):
    def decorator(*args, **kwargs):
        token = request.headers.get('Authorization')
        if not token:
            return jsonify({"message": "Token is missing!"}), 401

        try:
            token = token.split(" ")[1]  # Extract the token from "Bearer <token>"
            decoded = jwt.decode(token, app.config['SECRET_KEY'], algorithms=["HS256"])
            request.user = decoded
        except jwt.ExpiredSignatureError:
            return jsonify({"message": "Token has expired!"}), 403
        except jwt.InvalidTokenError:
            return jsonify({"message": "Invalid token!"}), 403

        return f(*args, **kwargs)
    return decorator


@app.route('/protected', methods=['GET'])
@token_required
def protected():
    return jsonify({"message": f"Hello {request.user['username']}, you have access to this protected route."})


client = app.test_client()
out = []
for authorization in json.load(sys.stdin):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.get("/protected", headers=headers)
    out.append({"status": response.status_code, "body": response.get_json()})
json.dump(out, sys.stdout)
