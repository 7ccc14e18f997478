"""`flask --app wsgi check`: each part of a deployment's configuration, found right or wrong
against the real thing (the database, Redis, the SMTP server, the store)."""

import socket

import pytest

from portal import create_app, deployment
from portal import storage as storage_module

from .helpers import free_port, new_key_pair

STRONG_KEY = "0123456789abcdef" * 4


def findings(app) -> dict[str, deployment.Finding]:
    with app.app_context():
        return {finding.name: finding for finding in deployment.check(app)}


def redis_answers() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        return False
    return True


@pytest.fixture
def production(app, smtp, vapid):
    app.config.update(PRODUCTION=True, SECRET_KEY=STRONG_KEY, DEBUG=False,
                      PORTAL_BASE_URL="https://portal.example.com", PORTAL_BASE_URL_GIVEN=True,
                      MAIL_DEFAULT_SENDER="portal@happytails.example")
    if redis_answers():
        app.config["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    return app


def test_a_deployment_with_everything_in_place_is_ready(production, runner):
    result = runner.invoke(args=["check"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [
        "ok    production", "ok    database", "ok    redis", "ok    storage", "ok    mail",
        "ok    web push"]
    assert "migrated (e5a7c9e1b3d6)" in result.output
    assert "answered; emails come from portal@happytails.example" in result.output
    assert lines[-1] == "Ready."


def test_each_problem_is_named_with_what_to_set(production, runner, tmp_path):
    not_a_folder = tmp_path / "uploads"
    not_a_folder.write_text("a file where the folder should be")
    production.config.update(
        SECRET_KEY="change-me-to-something-long-and-random",
        REDIS_URL=f"redis://:hunter2@127.0.0.1:{free_port()}/0",
        UPLOAD_FOLDER=not_a_folder, MAIL_PORT=free_port(),
        VAPID_PUBLIC_KEY=new_key_pair()[1],
    )
    storage_module.init_app(production)
    result = runner.invoke(args=["check"])
    assert result.exit_code == 1
    found = findings(production)
    assert not found["production"].ok and "well-known placeholder" in found["production"].said
    assert not found["redis"].ok and "does not answer" in found["redis"].said
    assert "hunter2" not in result.output and ":***@" in found["redis"].said
    assert not found["storage"].ok and "is not writable" in found["storage"].said
    assert not found["mail"].ok and "cannot be used" in found["mail"].said
    assert not found["web push"].ok
    assert "VAPID_PUBLIC_KEY does not belong to VAPID_PRIVATE_KEY" in found["web push"].said
    assert found["database"].ok
    assert "Not ready: fix what FAIL says" in result.output


def test_production_needs_https_and_a_real_sender(production):
    production.config.update(PORTAL_BASE_URL="http://portal.example.com",
                             MAIL_DEFAULT_SENDER="portal@localhost")
    found = findings(production)
    assert "production is served over https" in found["production"].said
    assert "set the address emails come from" in found["mail"].said
    production.config.update(MAIL_DEFAULT_SENDER="portal@happytails.example",
                             MAIL_USERNAME="portal", MAIL_PASSWORD=None)
    assert findings(production)["mail"].said == "set MAIL_USERNAME and MAIL_PASSWORD together"


def test_a_database_not_migrated_or_not_reachable(tmp_path):
    empty = create_app({"TESTING": True, "SECRET_KEY": "x",
                        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'new.sqlite3'}",
                        "UPLOAD_FOLDER": tmp_path / "files"})
    said = findings(empty)["database"].said
    assert "has no tables yet" in said and "run `flask --app wsgi db upgrade`" in said
    gone = create_app({
        "TESTING": True, "SECRET_KEY": "x", "UPLOAD_FOLDER": tmp_path / "files",
        "SQLALCHEMY_DATABASE_URI":
            f"postgresql+psycopg://portal:secret@127.0.0.1:{free_port()}/portal"})
    found = findings(gone)["database"]
    assert not found.ok and "cannot be reached" in found.said and "secret" not in found.said
    for app in (empty, gone):
        with app.app_context():
            from portal.extensions import db

            db.engine.dispose()


def test_a_bucket_is_written_read_back_and_emptied_again(app, bucket_storage, s3_server):
    found = findings(app)["storage"]
    assert found.ok and f"the bucket s3://{bucket_storage}/attachments" in found.said
    assert s3_server.object_names(bucket_storage) == []


def test_a_bucket_that_does_not_answer(app):
    app.config.update({"STORAGE_URL": "s3://gone/files",
                       "STORAGE_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
                       "STORAGE_ACCESS_KEY_ID": "key", "STORAGE_SECRET_ACCESS_KEY": "secret",
                       "STORAGE_TIMEOUT_SECONDS": 1})
    storage_module.init_app(app)
    found = findings(app)["storage"]
    assert not found.ok and "is not writable: the store did not answer" in found.said


def test_web_push_keys_set_by_halves(app):
    app.config.update(VAPID_PRIVATE_KEY=None, VAPID_PUBLIC_KEY=new_key_pair()[1])
    found = findings(app)["web push"]
    assert not found.ok and "set both, or neither" in found.said
