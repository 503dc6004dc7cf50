"""The seeds' JWT app, as the baseline for bench/http.sh.

The token_required decorator and /protected are the seeds' code (with functools.wraps so
Flask can register more than one decorated view); /plain is the same app's plain route.
Run under gunicorn with 2 workers, as the benchmark does.
"""
import functools
import os

import jwt
from flask import Flask, jsonify, request

app = Flask(__name__)
SECRET_KEY = os.environ["SECRET_KEY"]


def token_required(f):
    @functools.wraps(f)
    def decorator(*args, **kwargs):
        token = request.headers.get("Authorization")
        if not token:
            return jsonify({"message": "Token is missing!"}), 401
        try:
            token = token.split(" ")[1]
            decoded = jwt.decode(token, SECRET_KEY, algorithms=["HS256"])
            request.user = decoded
        except jwt.ExpiredSignatureError:
            return jsonify({"message": "Token has expired!"}), 403
        except jwt.InvalidTokenError:
            return jsonify({"message": "Invalid token!"}), 403
        return f(*args, **kwargs)

    return decorator


@app.route("/protected", methods=["GET"])
@token_required
def protected():
    return jsonify(
        {"message": f"Hello {request.user['username']}, you have access to this protected route."}
    )


@app.route("/plain", methods=["GET"])
def plain():
    return jsonify({"status": "ok"})
