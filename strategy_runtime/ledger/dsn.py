"""The ledger's PostgreSQL DSN: read once, by PostgreSQL's URI rules, and never shown.

``DsnParts.parse(text, source)`` reads a connection URI, as libpq does ("Connection URIs" in
PostgreSQL's documentation)::

    postgresql://[USER[:PASSWORD]@][HOST[:PORT][,HOST[:PORT]...]][/DATABASE][?NAME=VALUE[&NAME=VALUE...]]

into its parts, percent-decoded: hosts (names, IPv4, ``[IPv6]``, or a socket directory), ports,
user, password, database and the parameters the ledger takes (``sslmode``, ``passfile``, …).
The driver gets them apart (``connect_arguments``), so nothing parses the DSN again. What may be
shown of it is ``host:port/database`` (``str``); ``redact`` masks the password (and a client
key's ``sslpassword``), as written or percent-encoded, in any text.

A DSN it cannot read whole is refused (``InvalidDsn``, a ``LedgerError``) with a message that
says which part is wrong and what to write instead, and holds nothing of the DSN: a URI parser
that cuts a password short turns the rest of it into a port, a host name to resolve, a database
or a parameter, and every one of those ends up in a log line. That is what a ``/``, ``?``, ``#``,
``@`` or a stray ``%`` does in a password, so those must be percent-encoded (``%2F %3F %23 %40
%25``); ``:``, ``[``, ``]`` and spaces cannot end the user information and are read as they are,
as libpq reads them. Keyword/value connection strings (``host=… password=…``) are refused too.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote_to_bytes, urlencode

from livestrat.api.runtime_config import ENV_LEDGER_DSN, host_and_port
from strategy_runtime.ledger.errors import LedgerError

SCHEMES = ("postgresql://", "postgres://")
DEFAULT_PORT = 5432
FORM = "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
TARGET_SESSION_ATTRS = ("any", "primary", "standby", "prefer-standby", "read-write", "read-only")
# The query parameters the ledger takes (libpq's names, those asyncpg implements).
PARAMETERS = frozenset(
    {
        "host",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "sslmode",
        "sslcert",
        "sslkey",
        "sslrootcert",
        "sslcrl",
        "sslpassword",
        "sslnegotiation",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "target_session_attrs",
        "krbsrvname",
        "gsslib",
    }
)
SECRET_PARAMETERS = ("password", "sslpassword")
# Parameters asyncpg takes as arguments of their own (parameter -> argument); it reads the others
# (the TLS files, sslnegotiation, the TLS versions) only from a DSN, so they go to it in one that
# holds nothing else.
ARGUMENTS = {"passfile": "passfile", "sslmode": "ssl", "target_session_attrs": "target_session_attrs"}
ARGUMENTS |= {"krbsrvname": "krbsrvname", "gsslib": "gsslib"}

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_HOST_NAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9._-]*[A-Za-z0-9_])?")
_PORT = re.compile(r"[0-9]{1,5}")


class InvalidDsn(LedgerError):
    """A DSN that cannot be read whole: the message says what is wrong and holds nothing of the DSN."""


class _Malformed(Exception):
    """What is wrong, in words that hold nothing of the DSN (``parse`` says whose DSN)."""


@dataclass(frozen=True)
class DsnParts:
    """A PostgreSQL DSN in parts. ``str``: ``host:port/database``, all that may be shown of it."""

    hosts: tuple[str, ...]  # empty: the driver's default (PGHOST, then the usual socket directories)
    ports: tuple[int, ...]  # one per host; without hosts, at most one for the default host
    user: str | None
    database: str | None
    password: str | None = field(repr=False)
    parameters: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # the others, decoded
    secrets: tuple[str, ...] = field(default=(), repr=False)  # every written form of every secret

    @classmethod
    def parse(cls, dsn: str, source: str = ENV_LEDGER_DSN) -> DsnParts:
        """The parts of ``dsn`` (surrounding whitespace aside), or InvalidDsn naming ``source`` and the part."""
        try:
            return _parse(dsn.strip())
        except _Malformed as problem:
            raise InvalidDsn(f"the ledger DSN in {source} {problem}") from None

    @property
    def address(self) -> str:
        if not self.hosts:
            return f"localhost:{self.ports[0] if self.ports else DEFAULT_PORT}"
        return ",".join(host_and_port(host, port) for host, port in zip(self.hosts, self.ports, strict=True))

    def connect_arguments(self) -> dict[str, Any]:
        """asyncpg's ``connect``/``create_pool`` arguments: every part apart, nothing left to parse but
        the TLS parameters asyncpg takes from a DSN only (in one that holds nothing else)."""
        arguments: dict[str, Any] = {"user": self.user, "password": self.password, "database": self.database}
        if self.hosts:
            arguments |= {"host": list(self.hosts), "port": list(self.ports)}
        elif self.ports:
            arguments["port"] = self.ports[0]
        others = dict(self.parameters)
        for parameter, argument in ARGUMENTS.items():
            arguments[argument] = others.pop(parameter, None)
        if others:
            arguments["dsn"] = "postgresql://?" + urlencode(others, quote_via=quote)
        return {name: value for name, value in arguments.items() if value is not None}

    def redact(self, text: str) -> str:
        """``text`` with every secret of the DSN (as written, decoded or percent-encoded) masked."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def __str__(self) -> str:
        return f"{self.address}/{self.database or self.user or 'postgres'}"


def _parse(text: str) -> DsnParts:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise _Malformed("holds a control character (a line break inside it?): percent-encode it (%0A)")
    scheme = next((s for s in SCHEMES if text.startswith(s)), None)
    if scheme is None:
        raise _Malformed(
            f"is not a PostgreSQL URI: it must start with postgresql:// (or postgres://), as in {FORM}; "
            "keyword=value connection strings are not taken"
        )
    if "#" in text:
        raise _Malformed("has a '#', which ends a URI: percent-encode it as %23 (in a password too)")
    rest = text[len(scheme) :]
    end = min(i for i in (rest.find("/"), rest.find("?"), len(rest)) if i >= 0)
    authority, after = rest[:end], rest[end:]
    if "@" in after:
        raise _Malformed(
            "has an '@' after its host: a '/' or '?' in the user name or password ends the host early; "
            "percent-encode them as %2F and %3F (and an '@' as %40, in the database or a parameter too)"
        )
    if authority.count("@") > 1:
        raise _Malformed(
            "has more than one '@' before its host: percent-encode an '@' in the user name or password as %40"
        )
    userinfo, _, hostlist = authority.rpartition("@")
    raw_user, colon, raw_password = userinfo.partition(":")
    user = _decode(raw_user, "its user name") or None
    password = (_decode(raw_password, "its password") or None) if colon else None
    written = {"password": raw_password} if password else {}
    hosts, ports = _hosts(hostlist, decode=True) if hostlist else ((), ())
    path, _, query = after.partition("?")
    database = _decode(path[1:], "its database") or None
    parameters = _parameters(query, written)

    def once(name: str, given: str | None, where: str) -> str | None:
        if name not in parameters:
            return given
        if given is not None:
            raise _Malformed(f"gives its {where} twice, before the host and as ?{name}=: give it once")
        return parameters.pop(name) or None

    password = once("password", password, "password")
    user = once("user", user, "user name")
    database = once("dbname", database, "database")
    if "host" in parameters or "port" in parameters:
        if hosts:
            raise _Malformed("gives its hosts twice, before the path and as ?host= or ?port=: give them once")
        hosts, ports = _hosts(parameters.pop("host", ""), decode=False, ports=parameters.pop("port", None))
    _check_choice(parameters, "sslmode", SSL_MODES)
    _check_choice(parameters, "target_session_attrs", TARGET_SESSION_ATTRS)
    secrets = {password, parameters.get("sslpassword"), *written.values()}
    forms = {form for s in secrets if s for form in (s, quote(s, safe=""), quote(s))}
    return DsnParts(
        hosts=hosts,
        ports=ports,
        user=user,
        database=database,
        password=password,
        parameters=tuple(parameters.items()),
        secrets=tuple(sorted(forms, key=len, reverse=True)),
    )


def _decode(text: str, part: str) -> str:
    if _BAD_ESCAPE.search(text):
        raise _Malformed(f"has a '%' in {part} that is not followed by two hex digits: percent-encode a '%' as %25")
    try:
        value = unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise _Malformed(f"has {part} that is not UTF-8 once percent-decoded") from None
    if "\x00" in value:
        raise _Malformed(f"has %00 in {part}, which PostgreSQL cannot take")
    return value


def _parameters(query: str, written: dict[str, str]) -> dict[str, str]:
    """The query's parameters, decoded (the secret ones also as written, into ``written``)."""
    parameters: dict[str, str] = {}
    for number, item in enumerate((item for item in query.split("&") if item), 1):
        name, equals, raw = item.partition("=")
        if not equals:
            raise _Malformed(
                f"has a parameter (number {number}) without '=': write NAME=VALUE, and percent-encode an '&' or "
                "'=' inside a value (%26, %3D)"
            )
        if name not in PARAMETERS:  # never echoed: it may be a piece of a password that held an '&'
            raise _Malformed(
                f"has a parameter (number {number}) the ledger does not take: it takes {_listed(PARAMETERS)}"
            )
        if name in parameters:
            raise _Malformed(f"gives the parameter {name} twice: give it once")
        parameters[name] = _decode(raw, f"the parameter {name}")
        if name in SECRET_PARAMETERS:
            written[name] = raw
    return parameters


def _hosts(text: str, *, decode: bool, ports: str | None = None) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Hosts and their ports from a host list (``ports``: the ``port`` parameter, one for all or one each)."""
    specs = text.split(",") if text else []
    defaults = [_port(p, "in the parameter port") for p in ports.split(",")] if ports else []
    if specs and len(defaults) not in (0, 1, len(specs)):
        raise _Malformed("gives a number of ports (?port=) that is neither one nor one per host")
    hosts, numbers = [], []
    for number, spec in enumerate(specs, 1):
        name = "its host" if len(specs) == 1 else f"host {number} of {len(specs)}"
        host, port_text = _host(spec, name, decode)
        hosts.append(host)
        default = defaults[0 if len(defaults) == 1 else number - 1] if defaults else DEFAULT_PORT
        numbers.append(_port(port_text, f"in {name}") if port_text else default)
    if not specs:
        numbers = defaults[:1]
    return tuple(hosts), tuple(numbers)


def _host(spec: str, name: str, decode: bool) -> tuple[str, str]:
    """(host, port as written) of one host of a host list."""
    if not spec:
        raise _Malformed(f"has {name} empty: remove the extra ',' or give a host")
    if spec.startswith("["):
        close = spec.find("]")
        tail = spec[close + 1 :] if close > 0 else ""
        if close < 0 or (tail and not tail.startswith(":")):
            raise _Malformed(
                f"has a '[' in {name} that no ']' closes (or with more than :PORT after it): write an IPv6 address "
                "as [ADDRESS] or [ADDRESS]:PORT, for example [::1]:5432"
            )
        address = _decode(spec[1:close], name) if decode else spec[1:close]
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            raise _Malformed(
                f"has {name} in brackets but not an IPv6 address: brackets are for IPv6 addresses only"
            ) from None
        return address, tail[1:]
    host, _, port_text = spec.partition(":")
    if ":" in port_text:
        raise _Malformed(f"has more than one ':' in {name}: write an IPv6 address in brackets, for example [::1]:5432")
    host = _decode(host, name) if decode else host
    if not (host.startswith("/") or _HOST_NAME.fullmatch(host)) or "[" in spec or "]" in spec:
        raise _Malformed(
            f"has {name} malformed: a host is a name, an IP address, an IPv6 address in brackets or a socket "
            "directory (percent-encoded before the path: %2Fvar%2Frun%2Fpostgresql)"
        )
    return host, port_text


def _port(text: str, where: str) -> int:
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise _Malformed(
            f"has a port {where} that is not a number from 1 to 65535 (a user name and password go before an "
            f"'@': {FORM})"
        )
    return int(text)


def _check_choice(parameters: dict[str, str], name: str, allowed: tuple[str, ...]) -> None:
    if name in parameters and parameters[name] not in allowed:
        raise _Malformed(f"has a {name} parameter that is not one of {_listed(allowed)}")


def _listed(names: frozenset[str] | tuple[str, ...]) -> str:
    return ", ".join(sorted(names) if isinstance(names, frozenset) else names)
