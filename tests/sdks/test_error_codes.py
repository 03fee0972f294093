"""Each SDK has an error class for every code the API answers, and no code the API lacks: a
code added to ``mailpass.errors`` fails here until the PHP and JavaScript SDKs follow."""

from __future__ import annotations

import re

from sdk_helpers import SDKS

from mailpass import errors

API_CODES = {
    error.code
    for error in vars(errors).values()
    if isinstance(error, type)
    and issubclass(error, errors.ApiError)
    and error is not errors.ApiError
}


def test_the_javascript_sdk_knows_every_code() -> None:
    source = (SDKS / "js" / "src" / "errors.js").read_text()
    table = source[source.index("export const ERROR_CLASSES") :]
    table = table[: table.index("};")]
    codes = set(re.findall(r"^\s+([A-Z_]+): \w+Error,$", table, re.MULTILINE))
    assert codes == API_CODES
    declared = (SDKS / "js" / "src" / "index.d.ts").read_text()
    for name in re.findall(r"^\s+[A-Z_]+: (\w+Error),$", table, re.MULTILINE):
        assert f"export class {name} extends" in declared, name


def test_the_php_sdk_knows_every_code() -> None:
    source = (SDKS / "php" / "src" / "Errors.php").read_text()
    table = source[source.index("public const CLASSES") : source.index("];")]
    found = dict(re.findall(r"'([A-Z_]+)' => Exception\\(\w+)::class", table))
    assert set(found) == API_CODES
    for name in found.values():
        assert (SDKS / "php" / "src" / "Exception" / f"{name}.php").is_file(), name
