"""alembic-branch-discipline: an expand-branch revision holding contract work, or the reverse."""

from migrator.lint.rule import Context, Example, Hit, Rule

RULE = Rule(
    id="alembic-branch-discipline",
    name="Keep expand and contract changes on their Alembic branches",
    severity="error",
    category="compat",
    dialects=("postgres", "mysql"),
    scope="statement",
    existing_tables_only=False,
    message="revision {revision} is on the {branch} branch but this statement is {phase}: {reason}",
    why="""
Projects that keep two Alembic branches labelled expand and contract (the OpenStack Neutron
practice) run `alembic upgrade expand@head` before the new version is deployed and
`alembic upgrade contract@head` after the old one is gone. A contract or breaking change on the
expand branch runs while blue is still live and breaks it; an expand change on the contract branch
runs only after green was deployed, which green may need earlier. Migrate (data) and neutral
statements may sit on either branch.
""",
    fix="""
Move the statement to a revision on the {right} branch (alembic revision --head {right}@head ...),
or split a breaking change into its expand and contract halves.
""",
    bad=[],
    notes="Needs a revision's branch labels, which plain SQL cannot carry: its bad cases are the "
    "Alembic projects in fixtures/alembic/expand_contract, checked by tests/unit/test_alembic_lint.py.",
    good=[Example("ALTER TABLE accounts ADD COLUMN note text;", note="a plain SQL file belongs to no branch")],
)

_ALLOWED = {
    "expand": {"expand", "migrate", "neutral"},
    "contract": {"contract", "migrate", "neutral"},
}


@RULE.check
def check(ctx: Context):
    source = ctx.source
    branches = [b for b in (source.branches if source is not None else ()) if b in _ALLOWED]
    if len(branches) != 1:
        return None
    branch = branches[0]
    phase = ctx.statement_phase
    if phase in _ALLOWED[branch]:
        return None
    right = "contract" if branch == "expand" else "expand"
    if phase == "breaking":
        right = "expand and contract"
    return Hit(
        fields={
            "revision": source.revision or source.display,
            "branch": branch,
            "phase": phase,
            "reason": ctx.reason or "",
            "right": right,
        }
    )
