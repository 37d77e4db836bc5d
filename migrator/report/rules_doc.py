"""Rule documentation rendered from the rule files themselves (``bgmigrate rules``)."""

from __future__ import annotations

from ..lint.rule import Rule


def render_table(rules: list[Rule]) -> str:
    width = max((len(r.id) for r in rules), default=10)
    lines = [f"{'rule':<{width}}  severity  dialects         name"]
    for r in sorted(rules, key=lambda r: r.id):
        lines.append(f"{r.id:<{width}}  {r.severity:<8}  {','.join(r.dialects):<15}  {r.name}")
    lines.append(f"\n{len(rules)} rules. 'bgmigrate rules RULE' shows one with its examples.")
    return "\n".join(lines) + "\n"


def render_rule(r: Rule) -> str:
    out = [f"# {r.id}: {r.name}", "", f"severity: {r.severity}   dialects: {', '.join(r.dialects)}"]
    if r.versions:
        out.append("versions: " + ", ".join(f"{d} {v}" for d, v in r.versions.items()))
    if r.squawk:
        out.append("squawk equivalent: " + ", ".join(r.squawk))
    out += ["", "## Why", r.why.strip(), "", "## Fix", r.fix.strip()]
    for title, examples in (("Bad", r.bad), ("Good", r.good)):
        out += ["", f"## {title}"]
        for ex in examples:
            if ex.note:
                out.append(f"-- {ex.note}")
            if ex.setup:
                out.append(
                    "-- given earlier migrations:\n" + "\n".join("--   " + s for s in ex.setup.strip().splitlines())
                )
            out.append(ex.sql.strip())
            out.append("")
    if r.notes:
        out += ["## Notes", r.notes.strip()]
    return "\n".join(out) + "\n"
