"""A test client logged in as one of the conftest users, for the web (HTML) tests."""

from __future__ import annotations

from tests.conftest import PASSWORD


def client_for(app, name: str):
    client = app.test_client()
    response = client.post("/login", data={"username": name, "password": PASSWORD})
    assert response.status_code == 302, f"{name} could not log in"
    return client
