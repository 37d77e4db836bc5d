"""Statement splitting: quotes, comments, bodies, spans."""

from __future__ import annotations

from migrator.sql.split import split_statements


def sqls(text: str, dialect: str = "postgres") -> list[str]:
    return [s.sql for s in split_statements(text, dialect)]


def test_simple_split_and_spans():
    text = "SELECT 1;\n  ALTER TABLE t\n    ADD COLUMN c int;\n"
    st = split_statements(text)
    assert [s.sql for s in st] == ["SELECT 1", "ALTER TABLE t\n    ADD COLUMN c int"]
    assert (st[0].line, st[0].column, st[0].end_line, st[0].end_column) == (1, 1, 1, 9)
    assert (st[1].line, st[1].column, st[1].end_line, st[1].end_column) == (2, 3, 3, 21)


def test_dollar_quoted_bodies_keep_semicolons():
    text = (
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; SELECT 2; $$ LANGUAGE sql;\n"
        "CREATE FUNCTION g() RETURNS int AS $body$\nBEGIN\n  RETURN 1; -- $$ inside\nEND;\n"
        "$body$ LANGUAGE plpgsql;\n"
        "SELECT 3;"
    )
    out = sqls(text)
    assert len(out) == 3
    assert out[1].endswith("$body$ LANGUAGE plpgsql")
    assert out[2] == "SELECT 3"


def test_dollar_sign_in_identifier_and_parameters_is_not_a_quote():
    assert sqls("SELECT a$b FROM t WHERE x = $1; SELECT 2;") == ["SELECT a$b FROM t WHERE x = $1", "SELECT 2"]


def test_nested_block_comments_postgres():
    text = "/* outer /* inner ; */ still ; comment */ SELECT 1; SELECT 2;"
    out = split_statements(text)
    assert [s.sql for s in out] == ["SELECT 1", "SELECT 2"]
    assert out[0].comments[0].text.endswith("comment */")


def test_mysql_block_comments_do_not_nest():
    assert sqls("/* a /* b */ SELECT 1; SELECT 2;", "mysql") == ["SELECT 1", "SELECT 2"]


def test_strings_and_escapes():
    assert sqls("SELECT 'a;''b'; SELECT E'x\\';y'; SELECT \"we;ird\";") == [
        "SELECT 'a;''b'",
        "SELECT E'x\\';y'",
        'SELECT "we;ird"',
    ]
    assert sqls("SELECT 'a\\';b'; SELECT `x;y`; # c;\nSELECT 2;", "mysql") == [
        "SELECT 'a\\';b'",
        "SELECT `x;y`",
        "SELECT 2",
    ]


def test_begin_commit_blocks_are_statements():
    assert sqls("BEGIN;\nALTER TABLE t ADD c int;\nCOMMIT;") == ["BEGIN", "ALTER TABLE t ADD c int", "COMMIT"]


def test_begin_atomic_body():
    text = (
        "CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n"
        "  SELECT CASE WHEN a > 0 THEN 1 ELSE 2 END;\nEND;\nSELECT 2;"
    )
    out = sqls(text)
    assert len(out) == 2 and out[0].endswith("END") and out[1] == "SELECT 2"


def test_comments_before_statement_are_attached_not_in_span():
    text = "-- first\n-- bgmigrate: ignore[x] y\nSELECT 1;\n\n/* c */\nSELECT 2"
    st = split_statements(text)
    assert st[0].line == 3 and [c.line for c in st[0].comments] == [1, 2]
    assert st[1].line == 6 and st[1].sql == "SELECT 2" and st[1].comments[0].text == "/* c */"


def test_trailing_comment_inside_statement_is_excluded_from_sql():
    st = split_statements("SELECT 1 -- note\n;")
    assert st[0].sql == "SELECT 1"


def test_mysql_delimiter_directive():
    text = (
        "DELIMITER //\nCREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = 1; END//\n"
        "DELIMITER ;\nSELECT 1;"
    )
    out = sqls(text, "mysql")
    assert out == ["CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = 1; END", "SELECT 1"]


def test_psql_meta_command_is_its_own_statement():
    st = split_statements("\\set ON_ERROR_STOP on\nSELECT 1;")
    assert st[0].meta_command and st[0].sql == "\\set ON_ERROR_STOP on"
    assert st[1].sql == "SELECT 1" and st[1].line == 2


def test_unicode_columns_count_characters():
    st = split_statements("SELECT 'é'; SELECT 2;")
    assert st[1].column == 13


def test_empty_and_comment_only_input():
    assert split_statements("") == []
    assert split_statements("-- nothing here\n/* at all */\n") == []
    assert sqls(";;SELECT 1;;") == ["SELECT 1"]


def test_unterminated_last_statement():
    st = split_statements("SELECT 1;\nSELECT 2  \n")
    assert st[-1].sql == "SELECT 2" and st[-1].end_line == 2 and st[-1].end_column == 8
