"""Passwords are masked in every form a warehouse address takes, alone or inside a message."""

import logging

import pytest

from pipeline.redaction import RedactingFilter, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://u:secret@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@h/db?password=secret", "postgresql://u@h/db?password=***"),
        ("postgresql://u@h/db?PASSWORD=secret", "postgresql://u@h/db?PASSWORD=***"),
        (
            "postgresql://u@h/db?sslmode=require&password=secret&application_name=x",
            "postgresql://u@h/db?sslmode=require&password=***&application_name=x",
        ),
        ("host=h user=u password=secret dbname=d", "host=h user=u password=*** dbname=d"),
        ("host=h user=u password='se cret' dbname=d", "host=h user=u password=*** dbname=d"),
        (r"host=h password='it\'s se cret' dbname=d", "host=h password=*** dbname=d"),
        ("host=h password = secret dbname=d", "host=h password = *** dbname=d"),
        ("host=h passwd=secret", "host=h passwd=***"),
        ("sslpassword=secret host=h", "sslpassword=*** host=h"),
        (
            "postgres://u:secret@h:5432/db?sslmode=require",
            "postgres://u:***@h:5432/db?sslmode=require",
        ),
        ("postgresql://:p@ss@h/db", "postgresql://:***@h/db"),
    ],
)
def test_each_form_is_masked(text, expected):
    assert redact(text) == expected


def test_airflow_extra_json_is_masked_plain_and_percent_encoded():
    plain = 'postgres://u:secret@h:5432/db?__extra__={"password": "secret", "sslmode": "require"}'
    encoded = (
        "postgres://u:secret@h:5432/db?__extra__="
        "%7B%22password%22%3A+%22secret%22%2C+%22sslmode%22%3A+%22require%22%7D"
    )
    for uri in (plain, encoded):
        masked = redact(uri)
        assert "secret" not in masked
        assert masked.startswith("postgres://u:***@h:5432/db?__extra__=")
        assert "sslmode" in masked and "require" in masked


def test_a_dsn_inside_an_error_message_is_masked():
    message = (
        'connection to server at "h" (10.0.0.1), port 5432 failed: FATAL:  password '
        'authentication failed for user "u" (dsn: postgresql://u:hunter2@h/db?password=hunter2'
        " ; host=h user=u password='hunter 2')"
    )
    masked = redact(message)
    assert "hunter" not in masked
    assert 'password authentication failed for user "u"' in masked
    assert "postgresql://u:***@h/db?password=***" in masked


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://u@h:5432/db",
        "postgresql://h:5432/db?sslmode=require",
        "host=h user=u dbname=d",
        'FATAL:  password authentication failed for user "u"',
        "",
    ],
)
def test_text_without_a_password_is_unchanged(text):
    assert redact(text) == text


def test_user_and_host_stay_visible():
    masked = redact("postgresql://scorer:secret@warehouse.internal:5432/prod?password=secret")
    assert "scorer" in masked and "warehouse.internal:5432/prod" in masked
    assert "secret" not in masked


def test_redacting_twice_changes_nothing_more():
    once = redact("postgresql://u:secret@h/db host=h password='a b'")
    assert redact(once) == once
    # an error built from a redacted URL, then redacted again as a whole (the CLI does)
    message = f"cannot connect ({redact('postgresql://u@h/db?password=secret')}): refused"
    assert redact(message) == "cannot connect (postgresql://u@h/db?password=***): refused"


def test_filter_masks_a_real_log_record_message_and_traceback():
    logger = logging.getLogger("test_redact")
    handler_records = []

    class Keep(logging.Handler):
        def emit(self, record):
            handler_records.append(self.format(record))

    handler = Keep()
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("cannot reach %s, %s", "postgresql://u:secret@h/db", "password=secret")
        try:
            raise RuntimeError("invalid dsn: host=h password=secret")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True

    assert handler_records[0] == "cannot reach postgresql://u:***@h/db, password=***"
    assert "secret" not in handler_records[1]
    assert "RuntimeError: invalid dsn: host=h password=***" in handler_records[1]
