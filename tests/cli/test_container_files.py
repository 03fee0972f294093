"""The Dockerfile and compose.yaml name commands, options, settings and files that exist: each
service's command and the image's are parsed by the real CLI, each MAILPASS_ variable is a
setting, each file copied is in the repository. Where a Docker daemon answers, the image is
built and its command run too."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import click
import pytest
import yaml

from mailpass.cli import cli
from mailpass.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (continuation lines joined), as (INSTRUCTION, rest)."""
    joined = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            found.append((instruction.upper(), rest.strip()))
    return found


def parses(arguments: list[str]) -> None:
    """The arguments as `mailpass` takes them: an unknown command or option raises."""
    name, *rest = arguments
    command = cli.commands[name]
    with command.make_context(name, list(rest)):
        pass


def test_the_image_runs_mailpass_as_a_user_with_its_data_in_a_volume() -> None:
    instructions = dockerfile()
    stages = [rest for instruction, rest in instructions if instruction == "FROM"]
    assert all(stage.startswith("python:3.11-slim") for stage in stages), stages
    assert ("USER", "mailpass") in instructions
    assert ("VOLUME", '["/data"]') in instructions
    entrypoint = json.loads(dict(instructions)["ENTRYPOINT"])
    assert entrypoint == ["mailpass"]
    parses(json.loads(dict(instructions)["CMD"]))
    for instruction, rest in instructions:
        if instruction == "COPY" and not rest.startswith("--from"):
            *sources, _target = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), source
    healthcheck = dict(instructions)["HEALTHCHECK"]
    assert "http://127.0.0.1:8000/healthz" in healthcheck


def test_compose_runs_the_api_and_a_worker_on_postgresql() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"db", "api", "worker"}
    assert services["db"]["image"].startswith("postgres:")
    settings = set(Settings.model_fields)
    for name in ("api", "worker"):
        service = services[name]
        assert service["build"] == "."
        parses(service["command"])
        assert "data:/data" in service["volumes"]
        for variable in service["environment"]:
            assert variable.startswith("MAILPASS_"), variable
            assert variable.removeprefix("MAILPASS_").lower() in settings, variable
        assert service["environment"]["MAILPASS_DATABASE_URL"].startswith("postgresql://")
    assert services["worker"]["command"][0] == "worker"
    assert "--no-worker" in services["api"]["command"]


def test_a_wrong_option_would_be_caught() -> None:
    with pytest.raises(click.UsageError):
        parses(["serve", "--prot", "8000"])


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _docker_answers(), reason="no Docker daemon on this machine")
def test_the_image_builds_and_runs() -> None:
    tag = "mailpass-test:latest"
    subprocess.run(["docker", "build", "-t", tag, str(ROOT)], check=True, timeout=1200)
    version = subprocess.run(
        ["docker", "run", "--rm", tag, "--version"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "mailpass" in version.stdout
