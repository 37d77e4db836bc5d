"""Load the rule catalog: one Python file per rule in ``rules/``.

In a source checkout the catalog is the top-level ``rules/`` directory; an
installed wheel carries it as ``migrator/_rules``.
"""

from __future__ import annotations

import hashlib
import importlib.util
from functools import lru_cache
from pathlib import Path

from .rule import SEVERITIES, Rule


class CatalogError(Exception):
    pass


def rules_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_rules", here.parent / "rules"):
        if candidate.is_dir():
            return candidate
    raise CatalogError(f"rule catalog not found next to {here}")


def _load_file(path: Path) -> Rule:
    spec = importlib.util.spec_from_file_location(f"bgmigrate_rules.{path.stem}", path)
    if spec is None or spec.loader is None:
        raise CatalogError(f"cannot load rule file {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rule = getattr(module, "RULE", None)
    if not isinstance(rule, Rule):
        raise CatalogError(f"{path.name}: no RULE = Rule(...) defined")
    if rule.severity not in SEVERITIES:
        raise CatalogError(f"{path.name}: severity must be one of {SEVERITIES}")
    if rule.scope != "engine" and rule.func is None:
        raise CatalogError(f"{path.name}: no function decorated with @RULE.check")
    rule.path = str(path)
    return rule


@lru_cache(maxsize=1)
def load_rules() -> tuple[Rule, ...]:
    directory = rules_dir()
    rules = [_load_file(p) for p in sorted(directory.glob("*.py")) if not p.name.startswith("_")]
    seen: dict[str, str] = {}
    for r in rules:
        if r.id in seen:
            raise CatalogError(f"rule id {r.id} is defined twice ({seen[r.id]}, {r.path})")
        seen[r.id] = r.path
    return tuple(rules)


@lru_cache(maxsize=1)
def catalog_fingerprint() -> str:
    """Identity of every rule file (name, size, mtime): part of cache keys, so editing a rule
    invalidates cached results."""
    h = hashlib.sha256()
    for p in sorted(rules_dir().glob("*.py")):
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def rule_ids() -> set[str]:
    """Ids of the catalog's rules, from the file names (one rule per file, named after it)."""
    return {p.stem.replace("_", "-") for p in rules_dir().glob("*.py") if not p.name.startswith("_")}


def rules_by_id() -> dict[str, Rule]:
    return {r.id: r for r in load_rules()}
