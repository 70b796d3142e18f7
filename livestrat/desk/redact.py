"""Scrubbing secrets out of what the desk writes (``kubectl livestrat report``): DSN passwords, tokens, keys.

The desk never reads a Secret (its roles cannot), so a secret can only reach a report by being written somewhere
else by mistake: a DSN pasted into an annotation, a token in a log line, a password in a ConfigMap. Everything the
report writes passes through :func:`scrub` (objects: by key and by text) and :func:`scrub_text` (text); a value is
replaced by :data:`REDACTED`, never shortened (a shortened password still leaks its pieces).

What is recognised:
- a URI's password (``postgresql://user:PASSWORD@host/db``), whatever characters it holds: everything between the
  user's ``:`` and the last ``@`` of the line (an unencoded ``@``, ``/``, ``?``, ``#`` or space in a password
  would otherwise cut it short);
- libpq keyword DSNs (``password=...``, quoted or not), ``Authorization: Bearer ...``, JSON Web Tokens;
- in objects: the value of any key that names a secret (``password``, ``token``, ``apiKey``, ``dsn``, ...), and
  the ``value`` of an environment variable whose name does (``LIVESTRAT_LEDGER_DSN``, ``*_PASSWORD``, ``*_TOKEN``);
  a ``secretKeyRef`` (a Secret's name and key, no value) is kept: it says where the secret lives, not what it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "REDACTED"

# a key whose value is a secret: the key's last word (camelCase, snake_case or kebab-case split)
_SECRET_WORDS = {
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "passphrase",
    "dsn",
    "credential",
    "credentials",
    "privatekey",
    "authorization",
    "bearer",
    "cookie",
}
# environment variables whose value is a secret
_SECRET_ENV = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|DSN|API_?KEY|PASSPHRASE|CREDENTIAL|PRIVATE_?KEY)", re.I)

_URI_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s\"']*:)(?P<secret>[^\n]*)@")
_KEYWORD = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|token|secret|api[_-]?key|passphrase)\s*=\s*)"
    r"(?P<secret>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;,]+)",
    re.I,
)
_JSON_FIELD = re.compile(
    r"(?P<head>\"(?:[A-Za-z_-]*(?:password|passwd|secret|token|api[_-]?key|apikey|passphrase|dsn|credentials?))\"\s*:\s*)"
    r"(?P<secret>\"(?:[^\"\\]|\\.)*\")",
    re.I,
)
_BEARER = re.compile(r"(?P<head>\b(?:Bearer|Basic)\s+)(?P<secret>[A-Za-z0-9._~+/=%-]{8,})", re.I)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")


def scrub_text(text: str) -> str:
    text = _URI_PASSWORD.sub(lambda m: f"{m['head']}{REDACTED}@", text)
    text = _JSON_FIELD.sub(lambda m: f'{m["head"]}"{REDACTED}"', text)
    text = _KEYWORD.sub(lambda m: f"{m['head']}{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m['head']}{REDACTED}", text)
    return _JWT.sub(REDACTED, text)


def _words(key: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)
    return [w.lower() for w in re.split(r"[\s_.\-/]+", spaced) if w]


def secret_key(key: str) -> bool:
    """Whether a mapping key names a secret value (``password``, ``apiKey``, ``ledger_dsn``; not ``dsnSecret``,
    whose value is a reference)."""
    words = _words(key)
    if not words:
        return False
    joined = "".join(words[-2:])
    return words[-1] in _SECRET_WORDS or joined in _SECRET_WORDS


def scrub(value: Any) -> Any:
    """A copy of ``value`` with every secret replaced (see the module docstring)."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, list):
        return [scrub(item) for item in value]
    if isinstance(value, Mapping):
        env_name = value.get("name") if isinstance(value.get("name"), str) else None
        copied: dict[Any, Any] = {}
        for key, item in value.items():
            named = isinstance(key, str) and secret_key(key)
            secret_env = key == "value" and env_name is not None and _SECRET_ENV.search(env_name) is not None
            copied[key] = REDACTED if isinstance(item, str) and (named or secret_env) else scrub(item)
        return copied
    return value
