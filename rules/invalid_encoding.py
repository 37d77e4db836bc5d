"""invalid-encoding: the file is binary or not UTF-8."""

from migrator.lint.rule import Example, Rule

RULE = Rule(
    id="invalid-encoding",
    name="File is not UTF-8 text",
    severity="error",
    category="syntax",
    dialects=("postgres", "mysql"),
    scope="engine",
    message="{message}",
    why="""
A migration that is not UTF-8 text cannot be read reliably: its statements would be guessed, not
linted. The file is reported and skipped; the other files are still linted.
""",
    fix="Save the file as UTF-8 (iconv -f latin1 -t utf-8), or move non-migration files out of the directory.",
    bad=[],
    notes="Bad input is a non-UTF-8 or binary file, which an Example (text) cannot hold: "
    "tests/unit/test_cli.py::test_binary_and_non_utf8_files_are_findings checks it.",
    good=[Example("SELECT 'héllo';")],
)
