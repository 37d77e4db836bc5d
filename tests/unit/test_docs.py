"""The reference pages and the examples that are not code: generated pages are current, the pipeline
examples parse, name only real bgmigrate commands and flags, and their configuration loads; the
docker-compose file has what the README promises.

The pipelines' bgmigrate commands are run for real in tests/integration/test_demo_pipelines.py.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PIPELINES = ROOT / "examples" / "pipelines"


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


# ---- generated pages -----------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["rules.md", "recipes.md"])
def test_generated_page_is_current(page: str) -> None:
    generate = _generator()
    expected = generate.PAGES[page]()
    current = (ROOT / "docs" / page).read_text(encoding="utf-8")
    assert current == expected, f"docs/{page} is stale: run python docs/generate.py"


def test_rules_page_has_every_rule_and_recipes_page_every_recipe() -> None:
    from migrator.lint.catalog import load_rules
    from migrator.plan.recipes import all_recipes

    rules = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    for rule in load_rules():
        assert f"\n## {rule.id}\n" in rules
    recipes = (ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")
    for recipe in all_recipes():
        assert f"\n## {recipe.name.replace('_', '-')}\n" in recipes
        assert f"`{type(recipe).__name__}`" in recipes


def test_generator_check_mode(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "generate.py"), "--check"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    generate = _generator()
    (tmp_path / "rules.md").write_text("old\n")
    (tmp_path / "recipes.md").write_text(generate.render_recipes())
    assert generate.stale(tmp_path) == ["rules.md"]


# ---- the pipeline examples -----------------------------------------------------------------------------


def _cli() -> Any:
    import typer

    from migrator.cli import app

    return typer.main.get_command(app)


def _options(command: Any) -> set[str]:
    names = {"--help"}
    for param in command.params:
        names.update(o for o in [*param.opts, *param.secondary_opts] if o.startswith("-"))
    return names


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def _list_commands(node: Any) -> list[list[str]]:
    """Commands given as lists: Cloud Build ``entrypoint`` + ``args``, Skaffold ``command`` + ``args``."""
    found: list[list[str]] = []
    if isinstance(node, dict):
        head = node.get("entrypoint") or node.get("command")
        if isinstance(head, list) and len(head) == 1:
            head = head[0]
        if isinstance(head, str) and Path(head).name == "bgmigrate":
            found.append(["bgmigrate", *[str(a) for a in node.get("args", [])]])
        for value in node.values():
            found += _list_commands(value)
    elif isinstance(node, list):
        for value in node:
            found += _list_commands(value)
    return found


def _text_commands(text: str) -> list[list[str]]:
    """``bgmigrate ...`` invocations in shell text (continuations joined, split at ;, &&, ||, |)."""
    text = text.replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        for segment in re.split(r"&&|\|\||;|\|", line):
            try:
                words = shlex.split(segment, comments=True)
            except ValueError:
                continue
            for i, word in enumerate(words):
                if Path(word).name == "bgmigrate" and i + 1 < len(words):
                    found.append(["bgmigrate", *words[i + 1 :]])
                    break
    return found


def _commands(path: Path) -> list[list[str]]:
    docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    listed = [c for d in docs for c in _list_commands(d)]
    texts = [c for d in docs for s in _strings(d) for c in _text_commands(s)]
    return listed + texts


def _check(command: list[str]) -> str:
    """Fail unless ``bgmigrate SUB --flags...`` is a real command with real flags; the subcommand."""
    cli = _cli()
    assert command[0] == "bgmigrate" and len(command) > 1, command
    sub = cli.commands.get(command[1])
    assert sub is not None, f"no bgmigrate command {command[1]!r}: {shlex.join(command)}"
    known = _options(sub)
    for word in command[2:]:
        if word.startswith("-") and not re.fullmatch(r"-?\d+(\.\d+)?", word):
            flag = word.split("=", 1)[0]
            assert flag in known, f"bgmigrate {command[1]} has no option {flag}: {shlex.join(command)}"
    return command[1]


PIPELINE_FILES = sorted(p for p in PIPELINES.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def test_every_pipeline_file_is_checked() -> None:
    names = {str(p.relative_to(PIPELINES)) for p in PIPELINE_FILES}
    assert {
        "cloudbuild.yaml",
        "github-actions.yml",
        ".pre-commit-config.yaml",
        "clouddeploy/skaffold.yaml",
        "clouddeploy/clouddeploy.yaml",
    } <= names


@pytest.mark.parametrize("path", PIPELINE_FILES, ids=lambda p: str(p.relative_to(PIPELINES)))
def test_pipeline_file_parses_and_uses_real_commands(path: Path) -> None:
    docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    assert docs and all(d for d in docs)
    for command in _commands(path):
        _check(command)


def test_cloud_build_runs_the_release_in_order() -> None:
    build = yaml.safe_load((PIPELINES / "cloudbuild.yaml").read_text())
    ids = [s["id"] for s in build["steps"]]
    assert ids.index("expand") < ids.index("deploy-green") < ids.index("switch") < ids.index("contract")
    subs = [_check(c) for c in _commands(PIPELINES / "cloudbuild.yaml")]
    assert {"lint", "plan", "verify-plan", "expand", "switch", "mark", "contract", "status"} <= set(subs)
    deploy = next(s for s in build["steps"] if s["id"] == "deploy-green")["args"][-1]
    assert "--no-traffic" in deploy and "--tag green" in deploy


def test_cloud_build_release_config_is_written_and_loads(tmp_path: Path) -> None:
    """The deploy step's sed adds this release's revisions to bgmigrate.toml; the result must load
    with the Cloud Run router pointing at them."""
    from migrator.traffic.config import load_traffic_settings

    build = yaml.safe_load((PIPELINES / "cloudbuild.yaml").read_text())
    script = next(s for s in build["steps"] if s["id"] == "deploy-green")["args"][-1]
    sed = next(line for line in script.splitlines() if line.strip().startswith("sed "))
    sed = sed.replace("$$", "$").replace("/workspace/bgmigrate.toml", str(tmp_path / "bgmigrate.toml"))
    done = subprocess.run(
        ["bash", "-c", f"blue=shop-00041-abc; green=shop-00042-def; {sed}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    settings = load_traffic_settings(tmp_path / "bgmigrate.toml")
    router = settings.router
    assert router is not None and (router.kind, router.target, router.blue, router.green) == (
        "cloudrun",
        "shop",
        "shop-00041-abc",
        "shop-00042-def",
    )
    assert settings.steps == [10, 50, 100] and settings.gates.any
    template = load_traffic_settings(PIPELINES / "bgmigrate.toml")
    assert template.router is not None and template.router.blue is None


def test_github_actions_lints_with_annotations_and_sarif() -> None:
    workflow = yaml.safe_load((PIPELINES / "github-actions.yml").read_text())
    steps = workflow["jobs"]["lint"]["steps"]
    runs = [s.get("run", "") for s in steps]
    assert any("--format github" in r for r in runs) and any("--format sarif" in r for r in runs)
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif@"))
    assert upload["with"]["sarif_file"] == "bgmigrate.sarif"
    assert workflow["jobs"]["lint"]["permissions"]["security-events"] == "write"


def test_github_actions_commands_run(tmp_path: Path) -> None:
    """The workflow's run steps, as GitHub runs them (bash, the workflow's env, the repository root)."""
    workflow = yaml.safe_load((PIPELINES / "github-actions.yml").read_text())
    env = {**os.environ, **{k: str(v) for k, v in workflow["env"].items()}}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    steps = {s.get("name"): s for s in workflow["jobs"]["lint"]["steps"]}
    results = {}
    for name in ("lint", "lint (SARIF)", "plan"):
        script = steps[name]["run"].replace("bgmigrate.sarif", str(tmp_path / "bgmigrate.sarif"))
        script = script.replace("-o plan.json --markdown plan.md", f"-o {tmp_path}/plan.json --markdown /dev/null")
        results[name] = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    lint = results["lint"]
    assert lint.returncode == 1  # the example release is written the naive way on purpose
    assert "::error file=examples/app/migrations/0002_release.sql,line=2" in lint.stdout
    assert results["lint (SARIF)"].returncode == 0
    import json

    sarif = json.loads((tmp_path / "bgmigrate.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]
    assert results["plan"].returncode == 0 and (tmp_path / "plan.json").exists()


def test_pre_commit_config_uses_the_repository_hook() -> None:
    from pre_commit.clientlib import load_config, load_manifest

    config = load_config(str(PIPELINES / ".pre-commit-config.yaml"))
    (manifest,) = load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))
    (hook,) = config["repos"][0]["hooks"]
    assert hook["id"] == manifest["id"] == "bgmigrate-lint"
    # what pre-commit runs: the manifest's entry, the config's args (no file names: pass_filenames false)
    command = [*shlex.split(manifest["entry"]), *hook["args"]]
    assert _check(command) == "lint"
    assert re.search(hook["files"], "examples/app/migrations/0002_release.sql")
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "renaming-column" in done.stdout, done.stdout + done.stderr


def test_cloud_deploy_hooks_expand_before_and_contract_after() -> None:
    skaffold = yaml.safe_load((PIPELINES / "clouddeploy" / "skaffold.yaml").read_text())
    actions = {a["name"]: a for a in skaffold["customActions"]}
    pipeline, target = yaml.safe_load_all((PIPELINES / "clouddeploy" / "clouddeploy.yaml").read_text())
    assert pipeline["kind"] == "DeliveryPipeline" and target["kind"] == "Target"
    strategy = pipeline["serialPipeline"]["stages"][0]["strategy"]["standard"]
    (pre,) = strategy["predeploy"]["actions"]
    (post,) = strategy["postdeploy"]["actions"]
    assert target["metadata"]["name"] == pipeline["serialPipeline"]["stages"][0]["targetId"]

    def subcommands(action: dict) -> list[str]:
        return [_check(c) for c in _commands_of(action)]

    assert subcommands(actions[pre]) == ["expand"]
    assert subcommands(actions[post]) == ["contract", "mark", "mark", "contract"]


def _commands_of(node: Any) -> list[list[str]]:
    return _list_commands(node) + [c for s in _strings(node) for c in _text_commands(s)]


# ---- docker-compose -------------------------------------------------------------------------------------


def test_docker_compose_has_both_databases_with_health_checks_and_volumes() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["mysql"]["image"].startswith("mysql:8")
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
        volume = service["volumes"][0].split(":", 1)[0]
        assert volume in compose["volumes"], name
    assert "127.0.0.1:${BGMIGRATE_PG_PORT:-5432}:5432" in services["postgres"]["ports"]
    assert "127.0.0.1:${BGMIGRATE_MYSQL_PORT:-3306}:3306" in services["mysql"]["ports"]
    assert services["postgres"]["environment"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
