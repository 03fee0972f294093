"""The C programs the bench drives: ``smtp-sink``, ``smtp-source`` and ``postfix`` (Debian's
``postfix`` package) and ``wrk``. Installed with apt-get when missing, without leaving a system
Postfix running: the package is preselected as "No configuration", so it installs the programs,
writes no /etc/postfix/main.cf and starts nothing on port 25."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass

from bench.processes import BenchError, run_checked

__all__ = ["Tools", "ensure_tools", "system_mta_listening"]

PROGRAM_PACKAGES = {
    "smtp-sink": "postfix",
    "smtp-source": "postfix",
    "postfix": "postfix",
    "postconf": "postfix",
    "wrk": "wrk",
}
# Where Debian puts them; /usr/sbin is often missing from a non-root PATH.
SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
)
POSTFIX_PRESELECTION = "postfix postfix/main_mailer_type select No configuration\n"
APT_LOCK_TIMEOUT = 600  # seconds to wait for another apt-get (another engineer's install)
APT_TIMEOUT = 1800.0  # seconds for update plus install on a slow mirror
SMTP_PORT = 25


@dataclass(frozen=True)
class Tools:
    smtp_sink: str
    smtp_source: str
    postfix: str
    postconf: str
    wrk: str


def _find(program: str) -> str | None:
    return shutil.which(program, path=SEARCH_PATH)


def _install(packages: list[str]) -> None:
    if os.geteuid() != 0 or _find("apt-get") is None:
        raise BenchError(
            f"missing {', '.join(packages)}: install them (Debian: apt-get install "
            f"{' '.join(packages)}) or run the bench as root on Debian to have it done"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(
        ["debconf-set-selections"],  # noqa: S607  # found on PATH, as apt-get is
        input=POSTFIX_PRESELECTION,
        text=True,
        check=True,
        env=env,
    )
    lock = f"DPkg::Lock::Timeout={APT_LOCK_TIMEOUT}"
    run_checked(["apt-get", "-o", lock, "update", "-q"], env=env, timeout=APT_TIMEOUT)
    run_checked(
        ["apt-get", "-o", lock, "install", "-y", "-q", "--no-install-recommends", *packages],
        env=env,
        timeout=APT_TIMEOUT,
    )


def ensure_tools(*, install: bool = True) -> Tools:
    """The programs' paths, installing their packages first when one is missing."""
    missing = sorted(
        {package for program, package in PROGRAM_PACKAGES.items() if not _find(program)}
    )
    if missing:
        if not install:
            raise BenchError(f"missing packages: {', '.join(missing)}")
        _install(missing)
    paths = {program: _find(program) for program in PROGRAM_PACKAGES}
    absent = [program for program, path in paths.items() if path is None]
    if absent:
        raise BenchError(f"still missing after installing: {', '.join(absent)}")
    return Tools(
        smtp_sink=str(paths["smtp-sink"]),
        smtp_source=str(paths["smtp-source"]),
        postfix=str(paths["postfix"]),
        postconf=str(paths["postconf"]),
        wrk=str(paths["wrk"]),
    )


def system_mta_listening() -> bool:
    """Whether something (a system Postfix, say) listens on port 25. The bench never talks to
    it, but it would share the machine, so the report mentions it."""
    try:
        with socket.create_connection(("127.0.0.1", SMTP_PORT), 0.5):
            return True
    except OSError:
        return False
