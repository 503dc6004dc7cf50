"""The seeds' session app (the Flask example of session-based authentication), run under
gunicorn by tests/it/e2e/flask.rs beside countersign with the same SECRET_KEY.

The routes are the seed's, as written there; the one change is where the key comes from:
the environment (SECRET_KEY, and SECRET_KEY_FALLBACKS, comma-separated, Flask 3.1), where
the seed has `os.urandom(24)`, which no second server could share.
"""
import os

from flask import Flask, jsonify, redirect, request, session, url_for

app = Flask(__name__)
app.secret_key = os.environ["SECRET_KEY"]
fallbacks = os.environ.get("SECRET_KEY_FALLBACKS", "")
app.config["SECRET_KEY_FALLBACKS"] = [k for k in fallbacks.split(",") if k]


@app.route('/')
def home():
    if 'username' in session:
        return f'Logged in as {session["username"]}'
    return 'You are not logged in'


@app.route('/login', methods=['POST'])
def login():
    username = request.form['username']
    session['username'] = username  # Store the username in the session
    return redirect(url_for('home'))


@app.route('/logout')
def logout():
    session.pop('username', None)  # Remove the username from the session
    return redirect(url_for('home'))


@app.route('/protected', methods=['GET'])
def protected():
    if 'username' in session:
        return jsonify({"message": f"Hello {session['username']}, you have access to this protected route."})
    return jsonify({"message": "Unauthorized"}), 401
