"""The ``metricbatch`` command line (also ``python -m metricbatch``). Each verb lives in metricbatch/cli/."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from metricbatch.exceptions import ConfigurationError, FunctionInitError

logger = logging.getLogger(__name__)

# Modules that only an extra installs (pyproject.toml [project.optional-dependencies]) -> that extra. A verb that
# needs one of them, run from a plain `pip install metricbatch`, says which extra to install instead of a traceback.
EXTRA_MODULES = {"moto": "local", "werkzeug": "local", "aws_lambda_powertools": "local"}

# Verb modules; each has register(subparsers) that sets the parser's ``func(args) -> int``.
COMMAND_MODULES = (
    "metricbatch.cli.demo",
    "metricbatch.cli.local",
    "metricbatch.cli.send",
    "metricbatch.cli.poll",
    "metricbatch.cli.plan",
    "metricbatch.cli.savings",
    "metricbatch.cli.dlq",
    "metricbatch.cli.dashboard",
)


def build_parser() -> argparse.ArgumentParser:
    from metricbatch import __version__

    parser = argparse.ArgumentParser(
        prog="metricbatch", description="Cheap, safe custom CloudWatch metrics: SQS-batched PutMetricData."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    parser.add_argument("--version", action="version", version=f"metricbatch {__version__}")
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to run; `metricbatch COMMAND --help` tells more"
    )
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

    from metricbatch.aws.session import no_region_message
    from metricbatch.cli.arguments import REGION_FLAG

    verb = f"metricbatch {args.command}"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:
        module = (exc.name or "").partition(".")[0]
        extra = EXTRA_MODULES.get(module)
        if extra is None:
            raise
        logger.debug("missing extra", exc_info=True)
        print(f"{verb}: needs {module}, which is not installed: pip install 'metricbatch[{extra}]'", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `metricbatch plan ... | head`
        return 0
    # One line instead of a traceback (-v logs the traceback too): a setting to fix, or what AWS answered.
    except (ConfigurationError, FunctionInitError, NoRegionError) as exc:
        logger.debug("configuration error", exc_info=True)
        message = no_region_message(REGION_FLAG) if isinstance(exc, NoRegionError) else str(exc)
        print(f"{verb}: {message}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        logger.debug("AWS error", exc_info=True)
        print(f"{verb}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
