"""A notes service: every request reads the latest notes from PostgreSQL (DATABASE_URL)."""

import os

import psycopg2
from flask import Flask, jsonify

app = Flask(__name__)
DSN = os.environ["DATABASE_URL"]
TIMEOUT_MS = int(os.environ.get("STATEMENT_TIMEOUT_MS", "1000"))


@app.route("/notes")
def notes():
    try:
        with psycopg2.connect(DSN, connect_timeout=2, options=f"-c statement_timeout={TIMEOUT_MS}") as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT id, body FROM notes ORDER BY id DESC LIMIT 10")
                rows = cur.fetchall()
    except psycopg2.Error as err:
        return jsonify(error=type(err).__name__), 503
    return jsonify(notes=[{"id": i, "body": b} for i, b in rows])


@app.route("/health")
def health():
    return "ok\n"
