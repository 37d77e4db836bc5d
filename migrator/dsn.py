"""Database connection strings: parsing, and masking so that a password is never shown.

Accepted forms:

- URLs: ``postgresql://``, ``postgres://``, ``mysql://``, ``mariadb://``, also with a SQLAlchemy
  driver suffix (``postgresql+psycopg://``, ``mysql+pymysql://``). Components are
  percent-decoded. A password may hold ``@``, ``:``, ``/`` or ``?`` (percent-encoded or not:
  the user information ends at the last ``@`` before the host).
- libpq ``key=value`` strings (PostgreSQL): ``host=db port=5432 user=app password='s e cret' dbname=app``.

:class:`Dsn` never shows its password: ``str()``, ``repr()`` and :attr:`Dsn.masked` replace it by
``***``. :func:`mask_secrets` masks passwords in free text (driver error messages, logs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

MASK = "***"

_SCHEMES = {"postgresql": "postgres", "postgres": "postgres", "mysql": "mysql", "mariadb": "mysql"}
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$", re.DOTALL)
_LIBPQ_KEYS = {  # libpq connection parameters (PostgreSQL 16) accepted in key=value strings
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "require_auth",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "sslmode",
    "requiressl",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcertmode",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
    "sslnegotiation",
}
# Parameter names whose values are secrets (masked like the password).
_SECRET_KEYS = {"password", "sslpassword", "passwd", "pwd"}


class DsnError(ValueError):
    """A connection string that cannot be read. The message is one line and never holds a password."""


@dataclass(frozen=True, eq=False, repr=False)
class Dsn:
    """A parsed connection string. ``password`` is never part of ``str()``/``repr()``."""

    dialect: str  # "postgres" | "mysql"
    scheme: str | None  # URL scheme as written (lower-case), None for a libpq key=value string
    host: str | None = None  # may be a comma-separated list (libpq multi-host)
    port: int | None = None  # None when absent or when several ports are given (see params["port"])
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    database: str | None = None
    params: dict[str, str] = field(default_factory=dict)  # query parameters / other libpq keys
    masked: str = ""  # the connection string as written, every secret replaced by ***

    def __repr__(self) -> str:
        return f"Dsn({self.masked!r})"

    def __str__(self) -> str:
        return self.masked

    @property
    def secrets(self) -> list[str]:
        """The secret values this DSN holds (for scrubbing text that might echo them)."""
        out = [self.password] if self.password else []
        out += [v for k, v in self.params.items() if k.lower() in _SECRET_KEYS and v]
        return out

    def scrub(self, text: str) -> str:
        """``text`` with this DSN's secrets, and anything that looks like a password, masked."""
        return scrub(mask_secrets(text), self.secrets)


def parse_dsn(text: str) -> Dsn:
    """Parse a PostgreSQL or MySQL/MariaDB connection string; :class:`DsnError` when it is not one."""
    if not isinstance(text, str) or not text.strip():
        raise DsnError("empty connection string: expected postgresql://, mysql:// or a libpq 'key=value' string")
    text = text.strip()
    m = _URL.match(text)
    if m:
        return _parse_url(text, m.group("scheme"), m.group("rest"))
    if "=" in text:
        return _parse_libpq(text)
    raise DsnError(  # the text itself is not echoed: it may be a secret passed by mistake
        "not a connection string: expected postgresql://user@host/db, mysql://user@host/db or a libpq "
        "'host=... dbname=...' string"
    )


# ---- URLs --------------------------------------------------------------------------------------------


def _split_userinfo(rest: str) -> int | None:
    """Index of the ``@`` that ends the user information of ``rest`` (after ``scheme://``), if any.

    The last ``@`` of the string, so that a password holding an unencoded ``@``, ``:``, ``/`` or ``?``
    is never cut short (and then shown); an ``@`` in a query value must be percent-encoded (``%40``).
    Not user information when the part before ``:`` holds ``/``, ``?`` or ``#`` (``host/db?x=a@b``).
    """
    at = rest.rfind("@")
    if at < 0:
        return None
    user = rest[:at].split(":", 1)[0]
    if any(ch in user for ch in "/?#"):
        return None
    return at


def _parse_url(text: str, scheme_text: str, rest: str) -> Dsn:
    scheme = scheme_text.lower()
    base = scheme.split("+", 1)[0]
    dialect = _SCHEMES.get(base)
    if dialect is None:
        raise DsnError(
            f"unsupported connection string scheme {scheme_text!r}: expected postgresql://, postgres://, "
            "mysql:// or mariadb://"
        )
    at = _split_userinfo(rest)
    user = password = None
    userinfo_masked = ""
    if at is not None:
        userinfo, rest_after = rest[:at], rest[at + 1 :]
        if ":" in userinfo:
            raw_user, raw_password = userinfo.split(":", 1)
            password = unquote(raw_password)
            userinfo_masked = f"{raw_user}:{MASK}@"
        else:
            raw_user = userinfo
            userinfo_masked = f"{raw_user}@"
        user = unquote(raw_user) or None
    else:
        rest_after = rest
    if any(ch.isspace() for ch in rest_after):
        raise DsnError(
            f"connection string {scheme_text}://{userinfo_masked}... holds whitespace: percent-encode it (%20)"
        )
    # rest_after: hostlist [/database] [?query] [#fragment]
    fragment_at = rest_after.find("#")
    if fragment_at >= 0:
        rest_after = rest_after[:fragment_at]
    query = ""
    if "?" in rest_after:
        rest_after, query = rest_after.split("?", 1)
    netloc, slash, path = rest_after.partition("/")
    hosts, ports = _parse_hostlist(netloc, scheme_text, userinfo_masked)
    params: dict[str, str] = {}
    masked_query: list[str] = []
    for item in query.split("&") if query else []:
        if not item:
            continue
        key, sep, value = item.partition("=")
        key_text = unquote(key)
        if not sep:
            raise DsnError(f"connection string parameter {key_text!r} has no value (expected {key_text}=...)")
        params[key_text] = unquote(value)
        masked_query.append(f"{key}={MASK}" if key_text.lower() in _SECRET_KEYS else mask_secrets(item))
    if "password" in params and password is None:
        password = params.pop("password")
    database = unquote(path) if path else None
    if "dbname" in params and dialect == "postgres":
        database = params.pop("dbname")
    host = ",".join(hosts) if any(hosts) else None
    if "host" in params and dialect == "postgres":  # ?host=/var/run/postgresql (a socket directory)
        host = params.pop("host")
    port: int | None = None
    given_ports = [p for p in ports if p]
    if "port" in params:
        given_ports = params["port"].split(",")
    if len(given_ports) == 1:
        port = _port(given_ports[0])
        params.pop("port", None)
    elif len(given_ports) > 1:
        if dialect == "mysql":
            raise DsnError("a mysql:// connection string takes one host and port")
        for p in given_ports:
            _port(p)
        params["port"] = ",".join(given_ports)
    if dialect == "mysql":
        if len(hosts) > 1:
            raise DsnError("a mysql:// connection string takes one host and port")
        if database and "/" in database:
            raise DsnError(f"a MySQL database name cannot hold '/': {database!r}")
    masked = f"{scheme_text}://{userinfo_masked}{netloc}"
    if slash:
        masked += f"/{path}"
    if masked_query:
        masked += "?" + "&".join(masked_query)
    return Dsn(dialect, scheme, host, port, user, password, database, params, masked)


def _port(text: str) -> int:
    text = text.strip()
    if not text.isdigit():  # never echoed: a malformed "user:password" without "@" ends up here
        raise DsnError("invalid port in connection string: not a number (percent-encode '@' or '/' in a password)")
    if not 0 < int(text) < 65536:
        raise DsnError(f"invalid port {text} in connection string: out of range")
    return int(text)


def _parse_hostlist(netloc: str, scheme: str, userinfo_masked: str) -> tuple[list[str], list[str]]:
    hosts: list[str] = []
    ports: list[str] = []
    if not netloc:
        return hosts, ports
    for part in netloc.split(","):
        if part.startswith("["):  # [IPv6]:port
            close = part.find("]")
            if close < 0:
                raise DsnError(f"unclosed '[' in the host of connection string {scheme}://{userinfo_masked}...")
            host, after = part[1:close], part[close + 1 :]
            if after and not after.startswith(":"):
                raise DsnError(f"unexpected text after ']' in the host of {scheme}://{userinfo_masked}...")
            port = after[1:]
        else:
            host, _, port = part.partition(":")
        hosts.append(unquote(host))
        if port:
            _port(port)
        ports.append(port)
    return hosts, ports


# ---- libpq key=value ---------------------------------------------------------------------------------


def _parse_libpq(text: str) -> Dsn:
    """libpq's ``keyword = value`` syntax: values are single-quoted (``\\'`` and ``\\\\`` escapes)
    or run to the next whitespace (backslash escapes the next character)."""
    pairs: dict[str, str] = {}
    previous: str | None = None  # the key before: text after a secret's value may be part of the secret
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        start = i
        while i < n and not text[i].isspace() and text[i] != "=":
            i += 1
        key = text[start:i]
        if previous in _SECRET_KEYS:
            shown = f"the value of {previous!r} (quote values with spaces)"
        else:
            shown = _key_shown(key)
        while i < n and text[i].isspace():
            i += 1
        if i >= n or text[i] != "=":
            raise DsnError(f"missing '=' after {shown} in connection string {_masked_libpq(pairs)!r}")
        i += 1
        while i < n and text[i].isspace():
            i += 1
        value_chars: list[str] = []
        if i < n and text[i] == "'":
            i += 1
            closed = False
            while i < n:
                ch = text[i]
                if ch == "\\" and i + 1 < n:
                    value_chars.append(text[i + 1])
                    i += 2
                    continue
                if ch == "'":
                    closed = True
                    i += 1
                    break
                value_chars.append(ch)
                i += 1
            if not closed:
                raise DsnError(f"unterminated quoted value for {_key_shown(key)} in connection string")
        else:
            while i < n and not text[i].isspace():
                ch = text[i]
                if ch == "\\" and i + 1 < n:
                    value_chars.append(text[i + 1])
                    i += 2
                    continue
                value_chars.append(ch)
                i += 1
        if key.lower() not in _LIBPQ_KEYS:
            if previous in _SECRET_KEYS:
                raise DsnError(f"unknown connection parameter after the value of {previous!r}")
            raise DsnError(f"unknown connection parameter {_key_shown(key)} (libpq key=value connection string)")
        pairs[key.lower()] = "".join(value_chars)
        previous = key.lower()
    if not pairs:
        raise DsnError("empty connection string")
    params = {k: v for k, v in pairs.items() if k not in ("host", "port", "user", "password", "dbname")}
    port: int | None = None
    raw_port = pairs.get("port")
    if raw_port:
        ports = raw_port.split(",")
        for p in ports:
            _port(p)
        if len(ports) == 1:
            port = int(ports[0])
        else:
            params["port"] = raw_port
    return Dsn(
        "postgres",
        None,
        pairs.get("host") or None,
        port,
        pairs.get("user") or None,
        pairs.get("password"),
        pairs.get("dbname") or None,
        params,
        _masked_libpq(pairs),
    )


_KEY_LIKE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


_NOT_A_KEY = (
    "not a connection string: neither a URL (postgresql://..., mysql://...) nor libpq key=value pairs "
    "(the text is not shown: it may hold a password)"
)


def _key_shown(key: str) -> str:
    """A key as error messages show it (quoted), when it looks like a parameter name; anything else may be
    a URL whose scheme is missing or mistyped (``app:secret@db/app?sslmode=require``), password and all,
    and is never echoed: :class:`DsnError` without it."""
    if _KEY_LIKE.fullmatch(key):
        return repr(key)
    raise DsnError(_NOT_A_KEY)


def _quote_libpq(value: str) -> str:
    if value and not any(ch.isspace() or ch in "'\\" for ch in value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _masked_libpq(pairs: dict[str, str]) -> str:
    # a value may hold a password too: ``sslmode= password='x'`` gives sslmode the value "password='x'"
    # (libpq skips blanks after '=')
    return " ".join(f"{k}={MASK if k in _SECRET_KEYS else _quote_libpq(mask_secrets(v))}" for k, v in pairs.items())


# ---- masking free text -------------------------------------------------------------------------------

# ``scheme://`` and ``scheme:/`` (a URL that went through a path normalization: ``Path("postgresql://u:p@h")``)
_URL_TOKEN = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*:/{1,2})(\S+)")
_QUERY_SECRET = re.compile(r"(?i)([?&](?:ssl)?(?:password|passwd|pwd)=)[^&\s]*")
_KV_SECRET = re.compile(
    r"(?i)((?<![?&])\b[a-z_]*(?:password|passwd|pwd)\s*=\s*)('(?:[^'\\]|\\.)*'?|\"(?:[^\"\\]|\\.)*\"?|\S+)"
)
_JSON_SECRET = re.compile(
    r"(?i)([\"'][a-z_]*(?:password|passwd|pwd)[\"']\s*:\s*)(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')"
)


def _mask_url(m: re.Match[str]) -> str:
    scheme, rest = m.group(1), m.group(2)
    at = rest.rfind("@")  # conservative: everything up to the last @ may be user information
    if at >= 0:
        userinfo = rest[:at]
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            rest = f"{user}:{MASK}{rest[at:]}"
    return scheme + rest


def mask_secrets(text: str) -> str:
    """``text`` with passwords masked in anything that looks like a DSN.

    Masks ``scheme://user:password@``, ``password=...`` key/values (quoted or not, also
    ``PGPASSWORD=``, ``sslpassword=``, ``passwd=``, ``pwd=``), ``?password=`` URL parameters and
    ``"password": "..."`` JSON members.
    """
    if not text:
        return text
    text = _URL_TOKEN.sub(_mask_url, text)
    text = _QUERY_SECRET.sub(lambda m: m.group(1) + MASK, text)
    text = _JSON_SECRET.sub(lambda m: m.group(1) + m.group(2)[0] + MASK + m.group(2)[0], text)
    return _KV_SECRET.sub(lambda m: m.group(1) + MASK, text)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every occurrence of each secret (and its percent-encoded form) replaced by ***.

    Secrets shorter than 3 characters are replaced only where they stand alone (between
    non-alphanumeric characters), so that a one-letter password does not garble the message.
    """
    from urllib.parse import quote

    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        for form in dict.fromkeys([secret, quote(secret, safe=""), quote(secret)]):
            if len(form) >= 3:
                text = text.replace(form, MASK)
            else:
                text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])", MASK, text)
    return text


DSN_ENV = "BGMIGRATE_DSN"


def command_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for the user's own commands (release hooks, gate commands, router commands):
    this process's, without ``BGMIGRATE_DSN`` (the DSN and its password stay with bgmigrate), plus
    ``extra``."""
    import os

    env = {k: v for k, v in os.environ.items() if k != DSN_ENV}
    env.update(extra or {})
    return env


def mask_dsn(text: str) -> str:
    """The masked form of a connection string, or of any text when it does not parse."""
    try:
        return parse_dsn(text).masked
    except DsnError:
        # a URL that does not parse (scheme mistyped or missing too): "user:" up to the last "@" is masked
        # (a password may hold a space, a "/" or an "@")
        m = _BROKEN_URL.match(text.strip())
        if m and ":" in m.group("userinfo"):
            user = m.group("userinfo").split(":", 1)[0]
            return mask_secrets(f"{m.group('scheme') or ''}{user}:{MASK}@{m.group('rest')}")
        return mask_secrets(text)


_BROKEN_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*:?/{1,2})?(?P<userinfo>.*)@(?P<rest>[^@]*)$", re.DOTALL)


__all__ = ["MASK", "Dsn", "DsnError", "command_env", "mask_dsn", "mask_secrets", "parse_dsn", "scrub"]
