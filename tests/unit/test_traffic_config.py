"""[tool.bgmigrate.traffic / gates / hooks / release]: read, validated, overridden by flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.config import ConfigError, build_settings
from migrator.traffic.config import load_traffic_settings, parse_steps
from migrator.traffic.release import ReleaseFlow
from migrator.traffic.router import Split, TrafficError

PYPROJECT = """
[tool.bgmigrate]
dialect = "postgres"

[tool.bgmigrate.traffic]
router = "cloudrun"
target = "shop"
blue = "shop-00041-abc"
green = "shop-00042-def"
project = "my-project"
region = "europe-west1"
steps = [5, 25, 100]
interval = "30s"
timeout = "2min"

[tool.bgmigrate.gates]
probe_url = "https://green---shop.a.run.app/health"
probe_successes = 5
router_health = true
max_error_ratio = 0.02
error_window = "10min"

[tool.bgmigrate.hooks]
deploy_green = "gcloud run deploy shop --no-traffic --tag green"
decommission_blue = "true"

[tool.bgmigrate.release]
soak = "10min"
blue_application_name = "shop@blue"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(text)
    return path


def test_a_full_configuration(tmp_path: Path) -> None:
    settings = load_traffic_settings(_write(tmp_path, PYPROJECT))
    router = settings.router
    assert router is not None
    assert (router.kind, router.target, router.blue, router.green) == (
        "cloudrun",
        "shop",
        "shop-00041-abc",
        "shop-00042-def",
    )
    assert (router.project, router.region, router.timeout_s) == ("my-project", "europe-west1", 120.0)
    assert settings.steps == [5, 25, 100] and settings.interval == 30.0
    gates = settings.gates
    assert (gates.probe_successes, gates.router_health, gates.max_error_ratio, gates.error_window) == (
        5,
        True,
        0.02,
        600,
    )
    assert settings.hooks.deploy_green.startswith("gcloud run deploy") and settings.hooks.verify is None
    assert settings.soak == 600 and settings.blue_application_name == "shop@blue"
    # the lint settings of the same file still load: the sub-tables are not lint settings
    assert build_settings(config=tmp_path / "pyproject.toml").dialect == "postgres"


def test_flags_win_and_router_specific_keys_pass_through(tmp_path: Path) -> None:
    path = _write(tmp_path, PYPROJECT.replace('region = "europe-west1"', 'region = "europe-west1"\nnamespace = "prod"'))
    settings = load_traffic_settings(path, router="local", target="http://127.0.0.1:9000", steps="50,100", interval="0")
    assert settings.router is not None and settings.router.kind == "local"
    assert settings.router.target == "http://127.0.0.1:9000" and settings.router.blue == "shop-00041-abc"
    assert settings.router.options == {"namespace": "prod"}
    assert settings.steps == [50, 100] and settings.interval == 0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('router = "cloudrun"', 'router = "heroku"'), "unknown router 'heroku'"),
        (("steps = [5, 25, 100]", "steps = [50, 25, 100]"), "steps must increase"),
        (("steps = [5, 25, 100]", "steps = [5, 25]"), "end at 100"),
        (('interval = "30s"', 'interval = "soon"'), "not a duration"),
        (("max_error_ratio = 0.02", "max_error_ratio = 2"), "from 0 to 1"),
        (("probe_successes = 5", "probe_sucesses = 5"), "unknown key(s) in [tool.bgmigrate.gates]: probe_sucesses"),
        (('soak = "10min"', 'soak = "10min"\nsoke = 1'), "unknown key(s) in [tool.bgmigrate.release]: soke"),
        (('target = "shop"', "target = 7"), "target must be a non-empty string"),
    ],
)
def test_bad_configuration_is_one_clear_error(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        load_traffic_settings(_write(tmp_path, PYPROJECT.replace(*edit)))


def test_steps_from_the_command_line() -> None:
    assert parse_steps("10, 50,100") == [10, 50, 100]
    with pytest.raises(ConfigError, match="whole percents"):
        parse_steps("10,half,100")


def test_no_router_configured_is_none(tmp_path: Path) -> None:
    assert load_traffic_settings(_write(tmp_path, "[tool.bgmigrate]\n")).router is None


def test_splits_always_sum_to_100() -> None:
    assert str(Split.green_percent(30)) == "blue 70% / green 30%"
    with pytest.raises(TrafficError, match="sum to 100"):
        Split(blue=60, green=60)
    with pytest.raises(TrafficError, match="whole percent"):
        Split(blue=-10, green=110)


class _Rel:
    def __init__(self, **values: object) -> None:
        defaults = dict(
            name="r", status="expanded", deployed_at=None, verified_at=None, switched_at=None, soaked_at=None,
            decommissioned_at=None,
        )  # fmt: skip
        self.__dict__.update({**defaults, **values})


def test_the_release_flow_resumes_at_the_first_stage_not_done() -> None:
    nxt = ReleaseFlow.next_stage
    assert nxt(None) == "expand"
    assert nxt(_Rel(status="expanding")) == "expand"  # type: ignore[arg-type]
    assert nxt(_Rel()) == "deploy-green"  # type: ignore[arg-type]
    assert nxt(_Rel(deployed_at=1)) == "verify"  # type: ignore[arg-type]
    assert nxt(_Rel(deployed_at=1, verified_at=1)) == "switch"  # type: ignore[arg-type]
    assert nxt(_Rel(deployed_at=1, verified_at=1, switched_at=1)) == "soak"  # type: ignore[arg-type]
    assert nxt(_Rel(deployed_at=1, verified_at=1, switched_at=1, soaked_at=1)) == "decommission-blue"  # type: ignore[arg-type]
    assert nxt(_Rel(decommissioned_at=1, switched_at=1)) == "contract"  # type: ignore[arg-type]
    assert nxt(_Rel(status="contracting")) == "contract"  # type: ignore[arg-type]
    assert nxt(_Rel(status="contracted")) is None  # type: ignore[arg-type]
