"""Every rule's bad examples produce its finding; its good examples do not."""

from __future__ import annotations

import pytest

from migrator.config import Settings
from migrator.lint.catalog import load_rules
from migrator.lint.engine import lint_text

RULES = load_rules()


def _run(rule, example):
    dialect = example.dialect or rule.dialects[0]
    settings = Settings(dialect=dialect, target_version=example.version, cache=False, **example.settings)
    history = [example.setup] if example.setup else None
    return lint_text(example.sql, settings, name="example.sql", history=history)


def _cases(kind):
    for rule in RULES:
        for i, example in enumerate(getattr(rule, kind)):
            yield pytest.param(rule, example, id=f"{rule.id}-{kind}-{i}")


@pytest.mark.parametrize(("rule", "example"), list(_cases("bad")))
def test_bad_example_is_reported(rule, example):
    result = _run(rule, example)
    hits = [f for f in result.findings if f.rule == rule.id]
    seen = [(f.rule, f.message) for f in result.findings]
    assert hits, f"{rule.id} did not fire on:\n{example.sql}\nfindings: {seen}"
    for f in hits:
        assert f.severity == rule.severity
        assert "?" not in f.message.split(), f"unfilled placeholder in message: {f.message}"
        assert "internal error" not in f.message


@pytest.mark.parametrize(("rule", "example"), list(_cases("good")))
def test_good_example_is_clean(rule, example):
    result = _run(rule, example)
    hits = [f for f in result.findings if f.rule == rule.id]
    assert not hits, f"{rule.id} fired on a good example:\n{example.sql}\n{[f.message for f in hits]}"


def test_every_rule_documents_itself():
    for rule in RULES:
        assert rule.id and rule.name and rule.why.strip() and rule.fix.strip(), rule.id
        assert rule.bad or rule.notes, f"{rule.id} has no bad example, nor notes saying where it is tested"
        assert rule.good, f"{rule.id} has no good example"
        file_id = rule.path.rsplit("/", 1)[-1][:-3].replace("_", "-")
        assert file_id == rule.id, f"{rule.path} defines {rule.id}: one rule per file, named after it"
