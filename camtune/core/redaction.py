"""Secrets never leave the process: one redaction rule for error messages, logs, flow parameters,
lineage and the report, and the refusal of credentials written into a URL.

Credentials reach camtune only through the environment (CAMTUNE_FRIGATE_PASSWORD /
CAMTUNE_FRIGATE_TOKEN for Frigate, the AWS credential chain for S3). A URL's userinfo
(`http://user:pass@host`) is refused where a URL enters (params, CLI arguments, the Frigate
client), and `redact` still hides any userinfo, bearer token or secret environment value that
reaches a message (e.g. a URL a server redirected to)."""
from __future__ import annotations

import logging
import os
import re
from urllib.parse import urlsplit

SECRET_ENV = ("CAMTUNE_FRIGATE_PASSWORD", "CAMTUNE_FRIGATE_TOKEN", "AWS_SECRET_ACCESS_KEY",
              "AWS_SESSION_TOKEN")
MASK = "***"
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,31}://)[^/\s?#@]*@")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+")
_SECRET_QUERY = re.compile(r"(?i)([?&](?:token|access_token|password|passwd|secret|api_key|apikey|key)=)[^&#\s]*")

CREDENTIALS_HINT = ("put no credentials in a URL: log in with --username (or ingest.frigate.username) and the "
                    "password in CAMTUNE_FRIGATE_PASSWORD, or a token in CAMTUNE_FRIGATE_TOKEN; S3 uses the AWS "
                    "credential chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, a role)")


def redact(text) -> str:
    """`text` with URL userinfo, bearer tokens, secret query values and the values of the secret
    environment variables replaced by ***."""
    s = str(text)
    s = _USERINFO.sub(lambda m: m.group(1) + MASK + "@", s)
    s = _BEARER.sub(lambda m: m.group(1) + MASK, s)
    s = _SECRET_QUERY.sub(lambda m: m.group(1) + MASK, s)
    for name in SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            s = s.replace(value, MASK)
    return s


def redact_obj(obj):
    """`redact` on every string of a JSON-like value (dict keys too)."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact_obj(k): redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_obj(v) for v in obj]
    return obj


def has_userinfo(value) -> bool:
    """A URL-like string carrying user[:password]@ before its host."""
    if not isinstance(value, str) or "@" not in value or "://" not in value:
        return False
    try:
        return urlsplit(value.strip()).username is not None or bool(_USERINFO.search(value))
    except ValueError:
        return bool(_USERINFO.search(value))


def userinfo_problem(value, what: str) -> str | None:
    """The refusal message for a URL with credentials in it (the URL shown redacted), else None."""
    if not has_userinfo(value):
        return None
    return f"{what} {redact(value)!r} has credentials in it; refused: {CREDENTIALS_HINT}"


class RedactingFilter(logging.Filter):
    """Applies `redact` to every record a handler emits (message, arguments and exception text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error path
            return True
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, ()
        if record.exc_info and record.exc_info[1] is not None:
            text = redact(str(record.exc_info[1]))
            if text != str(record.exc_info[1]):
                record.exc_text = None
                try:
                    record.exc_info[1].args = (text,)
                except (AttributeError, TypeError):
                    pass
        return True


def install_log_redaction() -> None:
    """The redacting filter on the root logger's handlers and the loggers camtune and Prefect use."""
    f = RedactingFilter()
    for name in ("", "camtune", "prefect", "prefect.flow_runs", "prefect.task_runs", "urllib3"):
        logger = logging.getLogger(name)
        if not any(isinstance(x, RedactingFilter) for x in logger.filters):
            logger.addFilter(f)
        for h in logger.handlers:
            if not any(isinstance(x, RedactingFilter) for x in h.filters):
                h.addFilter(f)
