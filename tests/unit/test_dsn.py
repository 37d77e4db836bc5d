"""Connection strings: parsing (URLs, libpq key=value) and masking. A password is never shown."""

from __future__ import annotations

import pytest

from migrator.dsn import Dsn, DsnError, mask_dsn, mask_secrets, parse_dsn, scrub

SECRET = "p@ss:w/rd?#x"


def shows_nothing_secret(dsn: Dsn, secret: str) -> None:
    for text in (dsn.masked, str(dsn), repr(dsn)):
        assert secret not in text, text


# ---- URLs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "dialect"),
    [
        ("postgresql://app@db/app", "postgres"),
        ("postgres://app@db/app", "postgres"),
        ("postgresql+psycopg://app@db/app", "postgres"),
        ("POSTGRESQL://app@db/app", "postgres"),
        ("mysql://app@db/app", "mysql"),
        ("mariadb://app@db/app", "mysql"),
        ("mysql+pymysql://app@db/app", "mysql"),
    ],
)
def test_schemes(text: str, dialect: str) -> None:
    dsn = parse_dsn(text)
    assert (dsn.dialect, dsn.host, dsn.user, dsn.database, dsn.password) == (dialect, "db", "app", "app", None)
    assert dsn.masked == text


def test_full_url() -> None:
    dsn = parse_dsn("postgresql://app:secret@db.example.com:6432/orders?sslmode=require&application_name=lint")
    assert (dsn.host, dsn.port, dsn.user, dsn.password, dsn.database) == (
        "db.example.com",
        6432,
        "app",
        "secret",
        "orders",
    )
    assert dsn.params == {"sslmode": "require", "application_name": "lint"}
    assert dsn.masked == "postgresql://app:***@db.example.com:6432/orders?sslmode=require&application_name=lint"
    assert str(dsn) == dsn.masked and repr(dsn) == f"Dsn({dsn.masked!r})"
    shows_nothing_secret(dsn, "secret")


def test_percent_encoded_password() -> None:
    dsn = parse_dsn("mysql://root:s%40cr%3At%2F%3F@127.0.0.1:3306/app")
    assert dsn.password == "s@cr:t/?"
    assert dsn.masked == "mysql://root:***@127.0.0.1:3306/app"
    shows_nothing_secret(dsn, "s%40cr")


@pytest.mark.parametrize("password", ["p@ss", "p:ss", "a:b@c", "p#ss", "p@ss/w?rd", "p@ss:w/rd?#@x", "é€💥"])
def test_unencoded_password_characters(password: str) -> None:
    """'@', ':', '/' and '?' in a password (not percent-encoded) never end it early."""
    dsn = parse_dsn(f"postgresql://app:{password}@db:5432/app")
    assert (dsn.user, dsn.password, dsn.host, dsn.port, dsn.database) == ("app", password, "db", 5432, "app")
    assert dsn.masked == "postgresql://app:***@db:5432/app"
    shows_nothing_secret(dsn, password)


def test_user_without_password_and_empty_password() -> None:
    assert parse_dsn("postgresql://app@db/app").password is None
    empty = parse_dsn("mysql://root:@127.0.0.1/app")
    assert empty.password == "" and empty.user == "root"
    assert empty.masked == "mysql://root:***@127.0.0.1/app"


def test_no_user_no_host() -> None:
    dsn = parse_dsn("postgresql:///app")
    assert (dsn.host, dsn.user, dsn.database, dsn.port) == (None, None, "app", None)
    bare = parse_dsn("postgresql://")
    assert (bare.host, bare.database) == (None, None)


def test_socket_directory_and_ipv6() -> None:
    sock = parse_dsn("postgresql:///app?host=/var/run/postgresql")
    assert (sock.host, sock.database, sock.params) == ("/var/run/postgresql", "app", {})
    encoded = parse_dsn("postgresql://%2Fvar%2Frun%2Fpostgresql/app")
    assert encoded.host == "/var/run/postgresql"
    v6 = parse_dsn("postgresql://app@[::1]:5433/app")
    assert (v6.host, v6.port) == ("::1", 5433)
    mysql = parse_dsn("mysql://root@localhost/app?unix_socket=/run/mysqld/mysqld.sock")
    assert mysql.params == {"unix_socket": "/run/mysqld/mysqld.sock"}


def test_multi_host_postgres() -> None:
    dsn = parse_dsn("postgresql://app:pw@h1:5432,h2:5433/app?target_session_attrs=read-write")
    assert dsn.host == "h1,h2" and dsn.port is None
    assert dsn.params == {"port": "5432,5433", "target_session_attrs": "read-write"}
    assert dsn.masked == "postgresql://app:***@h1:5432,h2:5433/app?target_session_attrs=read-write"


def test_password_in_query() -> None:
    dsn = parse_dsn("postgresql://app@db/app?password=hunter2&sslmode=disable")
    assert dsn.password == "hunter2" and "password" not in dsn.params
    assert dsn.masked == "postgresql://app@db/app?password=***&sslmode=disable"
    shows_nothing_secret(dsn, "hunter2")
    # both given: the user information wins, both are masked
    both = parse_dsn("postgresql://app:one@db/app?password=two")
    assert both.password == "one"
    assert both.masked == "postgresql://app:***@db/app?password=***"


def test_dbname_in_query() -> None:
    assert parse_dsn("postgresql://db/?dbname=orders").database == "orders"


def test_at_sign_in_query_without_credentials() -> None:
    dsn = parse_dsn("postgresql://db/app?application_name=me@laptop")
    assert (dsn.host, dsn.user, dsn.database) == ("db", None, "app")
    assert dsn.params == {"application_name": "me@laptop"}


def test_secrets_lists_every_secret() -> None:
    dsn = parse_dsn("postgresql://app:pw1@db/app?sslpassword=pw2")
    assert sorted(dsn.secrets) == ["pw1", "pw2"]
    assert dsn.masked == "postgresql://app:***@db/app?sslpassword=***"


# ---- libpq key=value ---------------------------------------------------------------------------------


def test_libpq_key_value() -> None:
    dsn = parse_dsn("host=db port=5432 user=app password=secret dbname=orders sslmode=require")
    assert (dsn.dialect, dsn.scheme, dsn.host, dsn.port, dsn.user, dsn.password, dsn.database) == (
        "postgres",
        None,
        "db",
        5432,
        "app",
        "secret",
        "orders",
    )
    assert dsn.params == {"sslmode": "require"}
    assert dsn.masked == "host=db port=5432 user=app password=*** dbname=orders sslmode=require"
    shows_nothing_secret(dsn, "secret")


def test_libpq_quoting_and_escapes() -> None:
    dsn = parse_dsn(r"host = db  password = 'it\'s a \\ secret'  dbname='my db'")
    assert dsn.password == "it's a \\ secret"
    assert dsn.database == "my db"
    assert dsn.masked == "host=db password=*** dbname='my db'"
    unquoted = parse_dsn(r"password=a\ b user=x")
    assert unquoted.password == "a b" and unquoted.user == "x"


def test_libpq_no_password() -> None:
    dsn = parse_dsn("host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    assert dsn.password is None and dsn.secrets == []
    assert dsn.masked == "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


# ---- invalid input: one line, nothing secret ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("sqlite:///tmp/x.db", "unsupported connection string scheme 'sqlite'"),
        ("https://user:hunter2@example.com/", "unsupported connection string scheme 'https'"),
        ("hunter2", "not a connection string"),
        ("postgresql://app:hunter2/app", "invalid port"),  # no '@': the 'password' reads as the port
        ("postgresql://db:99999/app", "out of range"),
        ("mysql://h1,h2/app", "one host"),
        ("mysql://u@h/a/b", "cannot hold '/'"),
        ("postgresql://db/app?flag", "has no value"),
        ("postgresql://[::1/app", "unclosed '['"),
        ("postgresql://app:hunter2@db/my app", "whitespace"),
        ("host=db password=hunter2 extra", "missing '='"),
        ("host=db password=hunter2 xyz=1", "unknown connection parameter after the value of 'password'"),
        ("host=db password=hunter2 hostx=1", "unknown connection parameter after the value of 'password'"),
        ("hostname=db", "unknown connection parameter 'hostname'"),
        ("host=db password='hunter2", "unterminated"),
        ("host=db port=abc", "invalid port"),
    ],
)
def test_invalid(text: str, needle: str) -> None:
    with pytest.raises(DsnError) as info:
        parse_dsn(text)
    message = str(info.value)
    assert needle in message
    assert "hunter2" not in message and "\n" not in message


def test_unquoted_password_with_a_space_is_not_echoed() -> None:
    """libpq reads ``password=hunter 2`` as password 'hunter' and a key '2': neither is shown."""
    with pytest.raises(DsnError) as info:
        parse_dsn("host=db password=hunter two")
    assert "hunter" not in str(info.value) and "two" not in str(info.value)
    assert "password=***" in str(info.value)


# ---- masking free text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://app:hunter2@db/app", "postgresql://app:***@db/app"),
        ("could not connect: mysql://root:hunter2@127.0.0.1:3306/x failed", "mysql://root:***@127.0.0.1:3306/x"),
        ("postgresql://app:p@ss:w/rd@db/app", "postgresql://app:***@db/app"),
        ('"postgresql://app:hun\'ter2@db/app"', "postgresql://app:***@db/app"),
        ("postgresql://app@db/app", "postgresql://app@db/app"),
        ("host=db password=hunter2 dbname=x", "host=db password=*** dbname=x"),
        ("host=db password = 'hunter 2' dbname=x", "host=db password = *** dbname=x"),
        ('password="hunter 2" next', "password=*** next"),
        ("PGPASSWORD=hunter2 psql", "PGPASSWORD=*** psql"),
        ("sslpassword=hunter2", "sslpassword=***"),
        ("mysql passwd=hunter2 pwd=hunter2", "mysql passwd=*** pwd=***"),
        ("postgresql://db/app?password=hunter2&sslmode=require", "postgresql://db/app?password=***&sslmode=require"),
        ('{"user": "app", "password": "hunter2"}', '{"user": "app", "password": "***"}'),
        ("{'password': 'hunter2'}", "{'password': '***'}"),
        ("FATAL: password authentication failed for user", "FATAL: password authentication failed for user"),
        ("", ""),
    ],
)
def test_mask_secrets(text: str, expected: str) -> None:
    masked = mask_secrets(text)
    assert expected in masked
    assert "hunter" not in masked


def test_mask_dsn_parses_or_falls_back() -> None:
    assert mask_dsn("postgresql://app:hunter2@db/app") == "postgresql://app:***@db/app"
    assert mask_dsn("weird://app:hunter2@db") == "weird://app:***@db"


def test_scrub_replaces_literal_and_encoded_secrets() -> None:
    text = f"error near '{SECRET}' and 'p%40ss%3Aw%2Frd%3F%23x'"
    out = scrub(text, [SECRET])
    assert SECRET not in out and "p%40ss" not in out and out.count("***") == 2


def test_scrub_short_secret_only_where_it_stands_alone() -> None:
    assert scrub("error: x rejected for user x1", ["x"]) == "error: *** rejected for user x1"
    assert scrub("nothing", []) == "nothing"


def test_dsn_scrub_masks_dsns_and_its_own_secret() -> None:
    dsn = parse_dsn(f"postgresql://app:{SECRET}@db/app")
    out = dsn.scrub(f"server said: bad password {SECRET!r} in postgresql://other:zzz@h/x")
    assert SECRET not in out and "zzz" not in out
