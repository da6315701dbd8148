"""Passwords out of every text the product writes: errors, log records, alerts, summaries."""

import logging
import re
from urllib.parse import unquote

# scheme://user:PASSWORD@host — up to the last "@" before the path, as a password may hold "@".
_URL_PASSWORD = re.compile(r"(://[^\s:/@]*:)[^\s/]+(?=@)")
# password=... (libpq key=value, URL query; also sslpassword, PGPASSWORD, passwd, pwd), quoted
# or bare; a bare value ends at whitespace or at an "&" that starts the next query parameter.
# "password": "..." is the JSON of an Airflow connection's extra, also percent-encoded (%22).
# An existing mask *** is kept as is, so that redacting twice keeps "password=***)" intact.
_KEY_PASSWORD = re.compile(
    r"""( (?:password|passwd|pwd)\s*=\s*
        | (?:"|%22)(?:password|passwd|pwd)(?:"|%22)\s*(?::|%3A)(?:\s|\+|%20)* )
        ( \*\*\*(?=[^\w*]|$)
        | '(?:[^'\\]|\\.)*(?:'|$) | "(?:[^"\\]|\\.)*(?:"|$) | %22.*?(?:(?<!%5C)%22|$)
        | (?:[^\s&]|&(?!\w+=))+ )""",
    re.IGNORECASE | re.VERBOSE,
)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` (a URL, a libpq DSN, an error quoting them...) with every password as `***`, and
    every one of `secrets` wherever it appears."""
    for secret in secrets:
        text = text.replace(secret, "***")
    text = _URL_PASSWORD.sub(r"\1***", text)
    return _KEY_PASSWORD.sub(r"\1***", text)


def secrets_in(url: str) -> tuple[str, ...]:
    """The password of a URL or DSN, as written and percent-decoded (errors may quote either)."""
    found = [m.group(0)[len(m.group(1)) :] for m in _URL_PASSWORD.finditer(url)]
    found += [m.group(2).strip("'\"") for m in _KEY_PASSWORD.finditer(url)]
    found = [f for f in found if f and f != "***"]
    return tuple(dict.fromkeys([*found, *(unquote(f) for f in found)]))


class RedactingFilter(logging.Filter):
    """Passes every record, with passwords masked in its message and traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_redaction() -> None:
    """Mask passwords in whatever the root logger's handlers write (the CLI, Airflow tasks)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
