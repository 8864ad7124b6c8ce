"""Our `get-invalidation` against the real AWS CLI v1, byte for byte.

Both run as subprocesses with the same arguments, the same isolated environment and the
same moto endpoint; stdout, stderr and the exit status must be identical. All pairs run
once, in parallel threads, since each AWS CLI start costs about half a second.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

# name -> (command, arguments); {E}, {D}, {I}, {W} are the endpoint, distribution id,
# invalidation id and working directory; {ROUNDED_UP} and the others of WIDE_PATHS, the
# IDs of those invalidations.
GET = "get-invalidation"
TENANT = "get-invalidation-for-distribution-tenant"
TARGET = ["--endpoint-url", "{E}", "--distribution-id", "{D}", "--id", "{I}"]
CASES: dict[str, tuple[str, list[str]]] = {
    "json": (GET, TARGET),
    "text": (GET, [*TARGET, "--output", "text"]),
    "table": (GET, [*TARGET, "--output", "table"]),
    "globals-first": (
        GET,
        ["--output", "text", "--endpoint-url", "{E}", "--id", "{I}", "--distribution-id", "{D}"],
    ),
    # Column widths that round() leaves one too wide, one too narrow, and a table wider
    # than the terminal (conftest.WIDE_PATHS).
    "table-rounded-up": (GET, [*TARGET[:-1], "{ROUNDED_UP}", "--output", "table"]),
    "table-rounded-down": (GET, [*TARGET[:-1], "{ROUNDED_DOWN}", "--output", "table"]),
    "table-on-its-side": (GET, [*TARGET[:-1], "{ON_ITS_SIDE}", "--output", "table"]),
    "query-json": (GET, [*TARGET, "--query", "Invalidation.Status"]),
    "query-text-list": (
        GET,
        [*TARGET, "--query", "Invalidation.InvalidationBatch.Paths.Items", "--output", "text"],
    ),
    "query-table-list": (
        GET,
        [*TARGET, "--query", "Invalidation.[Id,Status]", "--output", "table"],
    ),
    "query-text-struct": (
        GET,
        [*TARGET, "--query", "Invalidation.InvalidationBatch", "--output", "text"],
    ),
    "query-missing": (GET, [*TARGET, "--query", "Invalidation.Nope"]),
    "query-missing-text": (GET, [*TARGET, "--query", "Invalidation.Nope", "--output", "text"]),
    "query-bad": (GET, [*TARGET, "--query", "["]),
    "input-json-string": (
        GET,
        ["--endpoint-url", "{E}", "--cli-input-json", '{{"DistributionId": "{D}", "Id": "{I}"}}'],
    ),
    "input-json-file": (
        GET,
        ["--endpoint-url", "{E}", "--cli-input-json", "file://{W}/in.json", "--output", "table"],
    ),
    "input-json-overridden": (
        GET,
        ["--endpoint-url", "{E}", "--cli-input-json", "file://{W}/in.json", "--id", "NOPE"],
    ),
    "input-json-invalid": (GET, ["--endpoint-url", "{E}", "--cli-input-json", "{{bad"]),
    "input-json-missing-file": (
        GET,
        ["--endpoint-url", "{E}", "--cli-input-json", "file://{W}/absent.json"],
    ),
    "input-json-unknown-key": (
        GET,
        [
            "--endpoint-url",
            "{E}",
            "--cli-input-json",
            '{{"Foo": 1}}',
            "--id",
            "x",
            "--distribution-id",
            "y",
        ],
    ),
    "input-json-not-object": (GET, ["--endpoint-url", "{E}", "--cli-input-json", "[1]"]),
    "skeleton": (GET, ["--generate-cli-skeleton"]),
    "skeleton-input": (GET, ["--generate-cli-skeleton", "input", "--id", "x"]),
    "skeleton-output": (
        GET,
        ["--generate-cli-skeleton", "output", "--id", "x", "--distribution-id", "y"],
    ),
    "skeleton-output-table": (
        GET,
        [
            "--generate-cli-skeleton",
            "output",
            "--id",
            "x",
            "--distribution-id",
            "y",
            "--output",
            "table",
        ],
    ),
    "skeleton-output-needs-ids": (GET, ["--generate-cli-skeleton", "output", "--id", "x"]),
    "no-such-invalidation": (
        GET,
        ["--endpoint-url", "{E}", "--distribution-id", "{D}", "--id", "NOPE"],
    ),
    "no-such-distribution": (
        GET,
        ["--endpoint-url", "{E}", "--distribution-id", "NOPE", "--id", "{I}"],
    ),
    "missing-id": (GET, ["--endpoint-url", "{E}", "--distribution-id", "{D}"]),
    "missing-both": (GET, ["--endpoint-url", "{E}"]),
    "unknown-option": (GET, [*TARGET, "--bogus", "x", "y"]),
    "output-without-value": (GET, [*TARGET, "--output"]),
    "id-from-missing-file": (
        GET,
        ["--endpoint-url", "{E}", "--distribution-id", "{D}", "--id", "file://{W}/absent"],
    ),
    "unknown-profile": (GET, [*TARGET, "--profile", "nope"]),
    "bad-timeout": (GET, [*TARGET, "--cli-read-timeout", "abc"]),
    "tenant-skeleton": (TENANT, ["--generate-cli-skeleton"]),
    "tenant-skeleton-output": (
        TENANT,
        ["--generate-cli-skeleton", "output", "--distribution-tenant-id", "dt", "--id", "x"],
    ),
    "tenant-missing-option": (TENANT, ["--endpoint-url", "{E}", "--id", "x"]),
    "tenant-call": (
        TENANT,
        ["--endpoint-url", "{E}", "--distribution-tenant-id", "dt", "--id", "{I}"],
    ),
}


def _expand(args: list[str], world: Any) -> list[str]:
    values = {
        "E": world.endpoint,
        "D": world.distribution_id,
        "I": world.invalidation_id,
        "W": world.workdir,
        **world.wide,
    }
    return [arg.format(**values) for arg in args]


@pytest.fixture(scope="module")
def compared(world: Any, ours: Any, aws: Any) -> dict[str, tuple[Any, Any]]:
    document = {"DistributionId": world.distribution_id, "Id": world.invalidation_id}
    (world.workdir / "in.json").write_text(json.dumps(document))

    def both(name: str) -> tuple[Any, Any]:
        command, args = CASES[name]
        argv = _expand(args, world)
        return ours(command, argv), aws(command, argv)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(CASES, pool.map(both, CASES), strict=True))


@pytest.mark.parametrize("name", list(CASES))
def test_same_bytes_and_status_as_aws_cli(name: str, compared: dict[str, tuple[Any, Any]]) -> None:
    mine, theirs = compared[name]
    assert mine.stderr.decode() == theirs.stderr.decode()
    assert mine.stdout.decode() == theirs.stdout.decode()
    assert mine.rc == theirs.rc


def test_comparisons_exercise_both_success_and_failure(
    compared: dict[str, tuple[Any, Any]],
) -> None:
    # Guards against a broken fixture making every pair "equal" by failing identically.
    statuses = {theirs.rc for _, theirs in compared.values()}
    assert {0, 2, 255} <= statuses
    assert b"COMPLETED" in compared["json"][1].stdout
