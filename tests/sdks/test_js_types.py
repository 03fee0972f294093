"""The JavaScript SDK's TypeScript types (``sdks/js/src/index.d.ts``) compiled under ``tsc
--strict`` with a typed application's use of them (``sdks/js/types-test/usage.ts``), which
also holds what must not compile (``@ts-expect-error``: a send without a subject, an unknown
provider kind, a wrong option). TypeScript comes from the npm registry, into the test's own
directory."""

from __future__ import annotations

import shutil

import pytest
from sdk_helpers import SDKS, run_program

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed"),
]

TYPESCRIPT = "typescript@5"


async def test_the_types_compile_strictly_and_refuse_wrong_use(tmp_path):
    installed = await run_program(
        "npm",
        "install",
        "--no-save",
        "--no-audit",
        "--no-fund",
        "--prefix",
        str(tmp_path),
        TYPESCRIPT,
        env={"npm_config_update_notifier": "false"},
    )
    assert installed.returncode == 0, installed.explain()

    compiled = await run_program(
        str(tmp_path / "node_modules" / ".bin" / "tsc"),
        "-p",
        str(SDKS / "js" / "types-test" / "tsconfig.json"),
        env={},
    )

    assert compiled.returncode == 0, compiled.explain()
