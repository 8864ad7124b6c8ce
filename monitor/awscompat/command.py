"""`get-invalidation`: a drop-in for `aws cloudfront get-invalidation`.

Arguments go through the same three argparse stages as in AWS CLI v1 (global options,
service, operation), because the order in which argparse hands back what it did not
recognise is visible in v1's "Unknown options" line. The operation's own options come
from the botocore model, so the distribution-tenant variant shares all of this.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from monitor.awscompat.errors import (
    PARAM_VALIDATION_RC,
    SERVICE_ERROR_RC,
    CommandError,
    CompatParser,
    ParamError,
    UnknownOptions,
    write_error,
    write_unknown_options,
)
from monitor.cli import exits

if TYPE_CHECKING:
    import botocore.session
    from botocore.model import OperationModel

SERVICE = "cloudfront"
_INPUT_OPTIONS = ("--cli-input-json", "--cli-input-yaml")
_SKELETON_OPTION = "--generate-cli-skeleton"


def main(argv: list[str]) -> int:
    return run("GetInvalidation", argv)


def run(operation_name: str, argv: list[str]) -> int:
    """Run one CloudFront operation as the AWS CLI would; returns the exit status."""
    try:
        return _run(operation_name, argv)
    except SystemExit as exc:  # argparse: usage errors (2) and --version (0)
        return exc.code if isinstance(exc.code, int) else 0
    except UnknownOptions as exc:
        write_unknown_options(exc)
        return SERVICE_ERROR_RC
    except CommandError as exc:
        write_error(str(exc))
        return exc.rc
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        return exits.INTERRUPTED
    except Exception as exc:
        return _report(exc)


def _report(exc: Exception) -> int:
    from botocore.exceptions import NoCredentialsError, NoRegionError

    # These two are v1's only errors without the leading blank line.
    if isinstance(exc, NoRegionError):
        sys.stderr.write(f'{exc} You can also configure your region by running "aws configure".\n')
    elif isinstance(exc, NoCredentialsError):
        sys.stderr.write(f'{exc}. You can configure credentials by running "aws configure".\n')
    else:
        write_error(str(exc))
    return SERVICE_ERROR_RC


def _run(operation_name: str, argv: list[str]) -> int:
    from botocore import xform_name

    from monitor.awscompat import globalopts

    cli_name = xform_name(operation_name, "-")
    options, rest = globalopts.global_parser(SERVICE, _version()).parse_known_args(
        [SERVICE, cli_name, *argv]
    )
    service_parser = CompatParser()
    service_parser.add_argument("operation", choices=[cli_name])
    _, rest = service_parser.parse_known_args(rest)

    globalopts.resolve(options)
    session = globalopts.new_session(options)
    operation = session.get_service_model(SERVICE).operation_model(operation_name)

    parser, members = _operation_parser(operation, rest)
    if rest == ["help"]:
        return _help(operation, members)
    args, leftovers = parser.parse_known_args(rest)
    if args.help == "help":
        return _help(operation, members)
    if args.help:
        leftovers.append(args.help)
    if leftovers:
        raise UnknownOptions(leftovers)

    params = _call_parameters(args, members)
    _apply_input_document(args, params)
    if args.generate_cli_skeleton in ("input", "yaml-input"):
        from monitor.awscompat import skeleton

        write = (
            skeleton.write_json_skeleton
            if args.generate_cli_skeleton == "input"
            else skeleton.write_yaml_skeleton
        )
        write(operation, sys.stdout)
        return 0
    response = _call(session, operation, params, options, stubbed=bool(args.generate_cli_skeleton))
    _display(session, operation, response, options)
    return 0


def _version() -> str:
    import platform

    import botocore

    from monitor import __version__

    return (
        f"cloudfront-invalidation-monitor/{__version__} Python/{platform.python_version()} "
        f"{platform.system()}/{platform.release()} botocore/{botocore.__version__}"
    )


def _operation_parser(
    operation: OperationModel, rest: list[str]
) -> tuple[CompatParser, dict[str, str]]:
    """The operation's parser, and its members keyed by argparse destination."""
    from botocore import xform_name

    shape = operation.input_shape
    member_names = list(shape.members) if shape is not None else []
    required = set(shape.required_members) if shape is not None else set()
    # Input documents and input skeletons stand in for the required options; an
    # output skeleton does not, since it validates the call it would make.
    relaxed = any(option in rest for option in _INPUT_OPTIONS)
    if _SKELETON_OPTION in rest:
        after = rest.index(_SKELETON_OPTION) + 1
        relaxed = relaxed or after >= len(rest) or rest[after] != "output"

    from monitor.awscompat.skeleton import SKELETON_CHOICES

    parser = CompatParser()
    members: dict[str, str] = {}
    for name in member_names:
        flag = "--" + xform_name(name, "-")
        dest = flag[2:].replace("-", "_")
        parser.add_argument(flag, dest=dest, required=name in required and not relaxed)
        members[dest] = name
    parser.add_argument("--cli-input-json")
    parser.add_argument("--cli-input-yaml")
    parser.add_argument(_SKELETON_OPTION, nargs="?", const="input", choices=list(SKELETON_CHOICES))
    parser.add_argument("help", nargs="?")
    return parser, members


def _call_parameters(args: argparse.Namespace, members: dict[str, str]) -> dict[str, Any]:
    from monitor.awscompat.skeleton import read_param_file

    params: dict[str, Any] = {}
    for dest, name in members.items():
        value = getattr(args, dest)
        if value is not None:
            option = "--" + dest.replace("_", "-")
            loaded = read_param_file(option, value)
            params[name] = value if loaded is None else loaded
    return params


def _apply_input_document(args: argparse.Namespace, params: dict[str, Any]) -> None:
    from monitor.awscompat import skeleton

    json_text, yaml_text = args.cli_input_json, args.cli_input_yaml
    if json_text is not None:
        json_text = skeleton.read_param_file("--cli-input-json", json_text) or json_text
    if yaml_text is not None:
        try:
            yaml_text = skeleton.read_param_file("--cli-input-yaml", yaml_text) or yaml_text
        except ParamError as exc:
            exc.rc = PARAM_VALIDATION_RC
            raise
    if json_text is not None and yaml_text is not None:
        raise CommandError("Only one --cli-input- parameter may be specified.", PARAM_VALIDATION_RC)
    if json_text is not None:
        skeleton.merge_input(params, skeleton.load_cli_input_json(_as_text(json_text)))
    elif yaml_text is not None:
        skeleton.merge_input(params, skeleton.load_cli_input_yaml(_as_text(yaml_text)))


def _as_text(value: str | bytes) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _call(
    session: botocore.session.Session,
    operation: OperationModel,
    params: dict[str, Any],
    options: argparse.Namespace,
    stubbed: bool,
) -> Any:
    from botocore import xform_name

    from monitor.awscompat.globalopts import new_client

    client = new_client(session, SERVICE, options)
    method = xform_name(operation.name)
    if not stubbed:
        return getattr(client, method)(**params)
    # `--generate-cli-skeleton output`: the real client validates the parameters, then a
    # stub answers with the sample output instead of the network.
    from botocore.stub import Stubber

    from monitor.awscompat.skeleton import output_sample

    with Stubber(client) as stubber:
        stubber.add_response(method, output_sample(operation))
        return getattr(client, method)(**params)


def _display(
    session: botocore.session.Session,
    operation: OperationModel,
    response: dict[str, Any],
    options: argparse.Namespace,
) -> None:
    from monitor.awscompat.output import formatter_for

    output = options.output or session.get_config_variable("output")
    write = formatter_for(output, operation.name)
    response.pop("ResponseMetadata", None)
    data: Any = response if options.query is None else options.query.search(response)
    try:
        write(data, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        pass


def _help(operation: OperationModel, members: dict[str, str]) -> int:
    from monitor.awscompat.help import render_help

    sys.stdout.write(render_help(operation, list(members.values())))
    return 0
