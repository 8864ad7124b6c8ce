"""What AWS CLI v1 lacks, checked against AWS CLI v2's documented behaviour.

v2's user guide shows `--output yaml` as block YAML with keys sorted, two-space indents,
list items at their key's indentation and timestamp-like strings quoted; `yaml-input`
skeletons list the members in model order with `# [REQUIRED] <first doc sentence>`
comments; `--cli-input-json` with `--cli-input-yaml` is a parameter error (exit 252).
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from typing import Any

from monitor.awscompat import command


def _target(world: Any) -> list[str]:
    return [
        "--endpoint-url",
        world.endpoint,
        "--distribution-id",
        world.distribution_id,
        "--id",
        world.invalidation_id,
    ]


def test_yaml_output_is_v2_block_yaml_of_the_same_response(world: Any, ours: Any) -> None:
    as_json = ours("get-invalidation", _target(world))
    created = json.loads(as_json.stdout)["Invalidation"]["CreateTime"]
    result = ours("get-invalidation", [*_target(world), "--output", "yaml"])
    assert result.rc == 0, result.stderr
    assert result.stdout.decode() == (
        "Invalidation:\n"
        f"  CreateTime: '{created}'\n"
        f"  Id: {world.invalidation_id}\n"
        "  InvalidationBatch:\n"
        "    CallerReference: cli-example\n"
        "    Paths:\n"
        "      Items:\n"
        "      - /index.html\n"
        "      - /img/*\n"
        "      Quantity: 2\n"
        "  Status: COMPLETED\n"
    )


def test_yaml_input_skeleton_lists_members_with_required_comments(ours: Any, world: Any) -> None:
    result = ours("get-invalidation", ["--generate-cli-skeleton", "yaml-input"])
    assert result.rc == 0
    assert result.stdout.decode() == (
        "DistributionId: '' # [REQUIRED] The distribution's ID.\n"
        "Id: '' # [REQUIRED] The identifier for the invalidation request, "
        "for example, IDFDVBD632BHDS5.\n"
    )
    tenant = ours(
        "get-invalidation-for-distribution-tenant", ["--generate-cli-skeleton", "yaml-input"]
    )
    assert tenant.stdout.decode().startswith("DistributionTenantId: '' # [REQUIRED]")


def test_cli_input_yaml_string_and_file_with_command_line_override(world: Any, ours: Any) -> None:
    expected = ours("get-invalidation", _target(world))
    assert expected.rc == 0
    document = f"DistributionId: {world.distribution_id}\nId: {world.invalidation_id}\n"
    from_string = ours(
        "get-invalidation", ["--endpoint-url", world.endpoint, "--cli-input-yaml", document]
    )
    assert (from_string.rc, from_string.stdout) == (0, expected.stdout)

    path = world.workdir / "in.yaml"
    path.write_text(f"DistributionId: {world.distribution_id}\nId: NOPE\n")
    overridden = ours(
        "get-invalidation",
        [
            "--endpoint-url",
            world.endpoint,
            "--cli-input-yaml",
            f"file://{path}",
            "--id",
            world.invalidation_id,
        ],
    )
    assert (overridden.rc, overridden.stdout) == (0, expected.stdout)
    from_file = ours(
        "get-invalidation", ["--endpoint-url", world.endpoint, "--cli-input-yaml", f"file://{path}"]
    )
    assert from_file.rc == 255
    assert b"(NoSuchInvalidation)" in from_file.stderr


def test_both_input_documents_is_a_parameter_error(world: Any, ours: Any) -> None:
    result = ours(
        "get-invalidation",
        ["--endpoint-url", world.endpoint, "--cli-input-json", "{}", "--cli-input-yaml", "{}"],
    )
    assert (result.rc, result.stdout) == (252, b"")
    assert result.stderr == b"\nOnly one --cli-input- parameter may be specified.\n"


def test_invalid_yaml_input_is_a_parameter_error(world: Any, ours: Any) -> None:
    result = ours("get-invalidation", ["--cli-input-yaml", "a: [unclosed"])
    assert result.rc == 252
    assert result.stderr == b"\nError parsing parameter 'cli-input-yaml': Invalid YAML received.\n"
    listed = ours("get-invalidation", ["--cli-input-yaml", "- a\n- b\n"])
    assert listed.rc == 252
    assert b"Invalid type: expecting map, received <class 'list'>" in listed.stderr


def test_debug_log_never_shows_credentials(world: Any, ours: Any) -> None:
    secret = "wJalrXUtnFEMIdebugSECRETvalue"
    result = ours(
        "get-invalidation",
        [*_target(world), "--debug"],
        AWS_ACCESS_KEY_ID="AKIADEBUGLEAKCHECK01",
        AWS_SECRET_ACCESS_KEY=secret,
        AWS_SESSION_TOKEN="debug-session-token-value",
    )
    assert result.rc == 0
    assert b"Sending http request" in result.stderr
    for value in (b"AKIADEBUGLEAKCHECK01", secret.encode(), b"debug-session-token-value"):
        assert value not in result.stderr
        assert value not in result.stdout


def test_main_takes_the_arguments_after_the_command_name() -> None:
    # monitor/cli/__init__.py calls main(argv) in-process with everything after "get-invalidation".
    captured = io.StringIO()
    with redirect_stdout(captured):
        status = command.main(["--generate-cli-skeleton", "input"])
    assert status == 0
    assert json.loads(captured.getvalue()) == {"DistributionId": "", "Id": ""}
