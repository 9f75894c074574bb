"""The baseline of ``bench/api_throughput.py``: a bare Flask endpoint taking and answering the same JSON as
``POST /vacancies``, with nothing behind it (no authentication, validation, database or metrics)."""

from __future__ import annotations

import uuid

from flask import Flask, jsonify, request


def create_app() -> Flask:
    app = Flask("bare")

    @app.post("/v1/tenants/<tenant>/vacancies")
    def post_vacancy(tenant: str):
        body = request.get_json()
        vacancy_id = str(uuid.uuid4())
        location = f"/v1/tenants/{tenant}/vacancies/{vacancy_id}"
        return jsonify({"id": vacancy_id, "status": "open", **body}), 201, {"Location": location}

    return app
