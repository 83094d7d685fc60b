"""The `log-exporter` command: parse arguments, build the engine, call it, render the result.

Errors of ours become one line on stderr and an exit code (2 for usage and config, 1 for failed
work); a traceback only with --debug. boto3 and rich are imported inside the commands, so
`--help` stays fast.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import sys
import traceback
from datetime import date
from types import FrameType
from typing import TYPE_CHECKING

import click

from log_exporter import __version__
from log_exporter.cli.options import (
    DEFAULT_PARALLEL,
    build_engine,
    export_config,
    lane_filters,
    range_options,
    run_options,
)
from log_exporter.errors import LogExporterError

if TYPE_CHECKING:
    from log_exporter.core.config import Config
    from log_exporter.engine import RunOptions, RunReport

EPILOG_RUN = """\b
Examples:
  log-exporter run --config config.yml
  log-exporter run --config config.yml --start 2026-01-01 --end 2026-02-01
  log-exporter run --config config.yml --account prod --region eu-west-1
  log-exporter run --config config.yml --through now --settle 15m

Days are UTC days in [--start, --end). Days already archived are skipped, so the
default range means "everything not archived yet". A day (or hour) is exported once
it ended --settle ago; --through now also exports the settled part of today, up to
now minus --settle, and a later run exports the rest. Exit codes: 0 everything asked
for is archived, 1 some work failed (the summary names it), 2 bad usage or config.
"""

EPILOG_EXPORT = """\b
Examples:
  log-exporter export --group /aws/lambda/api --bucket my-archive --start 2026-11-01
  log-exporter export --group vpc-flow-logs --bucket my-archive --prefix logs \\
      --role arn:aws:iam::111111111111:role/LogExporter --external-id s3cr3t
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="log-exporter")
@click.option("--debug", is_flag=True, help="Show tracebacks; run lanes one at a time.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Format of the log lines on stderr.",
)
@click.option("-v", "--verbose", is_flag=True, help="More log lines.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings, errors and the summary.")
@click.option(
    "--profile",
    metavar="NAME",
    help="AWS profile of the credentials that run (default: AWS_PROFILE, else the default).",
)
@click.pass_context
def cli(
    ctx: click.Context,
    debug: bool,
    log_format: str,
    verbose: bool,
    quiet: bool,
    profile: str | None,
) -> None:
    """Archive CloudWatch Logs log groups of many AWS accounts into one S3 bucket (or one per region).

    One export task per log group per UTC day, incremental and exactly once.
    """
    from log_exporter.cli.render.console import setup_logging

    level = logging.DEBUG if (verbose or debug) else logging.WARNING if quiet else logging.INFO
    setup_logging(log_format, level)
    ctx.obj = {"debug": debug, "log_format": log_format, "quiet": quiet, "profile": profile}


def _execute(ctx: click.Context, config: Config, options: RunOptions, parallel: int) -> RunReport:
    from log_exporter.cli.render.console import (
        ProgressReporter,
        print_summary,
        run_reporter,
        summary_console,
    )

    debug = ctx.obj["debug"]
    reporter = run_reporter(ctx.obj["log_format"], quiet=ctx.obj["quiet"])
    engine = build_engine(
        config, tuple(options.regions), 1 if debug else parallel, reporter=reporter
    )
    if isinstance(reporter, ProgressReporter):
        with reporter:
            report = engine.run(options)
    else:
        report = engine.run(options)
    print_summary(summary_console(), report)
    return report


@cli.command(epilog=EPILOG_RUN)
@lane_filters
@range_options
@click.option(
    "--parallel",
    default=DEFAULT_PARALLEL,
    show_default=True,
    metavar="N",
    help="Lanes (account-regions) worked at once.",
)
@click.option(
    "--dry-run", is_flag=True, help="Show what the run would do (`plan`); create nothing."
)
@click.pass_context
def run(
    ctx: click.Context,
    config_path: str,
    start: date | None,
    end: date | None,
    settle: int | None,
    through: date | str | None,
    pending_timeout: int | None,
    stuck_after: int | None,
    accounts: tuple[str, ...],
    regions: tuple[str, ...],
    parallel: int,
    dry_run: bool,
) -> None:
    """Export every account and region of the config."""
    from log_exporter.core.config import load_config

    config = load_config(config_path)
    options = run_options(
        start=start,
        end=end,
        through=through,
        settle=settle,
        accounts=accounts,
        regions=regions,
        pending_timeout=pending_timeout,
        stuck_after=stuck_after,
    )
    if dry_run:
        from log_exporter.cli.ops import show_plan

        ctx.exit(show_plan(ctx, config, options))
    report = _execute(ctx, config, options, parallel)
    ctx.exit(report.exit_code)


@cli.command(epilog=EPILOG_EXPORT)
@click.option("--group", required=True, metavar="NAME", help="The log group to export.")
@click.option("--bucket", required=True, metavar="BUCKET", help="The archive bucket.")
@click.option("--prefix", default="logs", show_default=True, help="Key prefix in the bucket.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    metavar="ARN",
    help="Role to assume; repeat for a chain, assumed in order.",
)
@click.option("--external-id", metavar="ID", help="ExternalId for the last role.")
@click.option("--region", metavar="REGION", help="Region of the log group (default: ambient).")
@click.option(
    "--period",
    type=click.Choice(["day", "hour"]),
    default="day",
    show_default=True,
    help="One task per UTC day or hour (destination.period); must match the archive's.",
)
@range_options
@click.pass_context
def export(
    ctx: click.Context,
    group: str,
    bucket: str,
    prefix: str,
    roles: tuple[str, ...],
    external_id: str | None,
    region: str | None,
    period: str,
    start: date | None,
    end: date | None,
    settle: int | None,
    through: date | str | None,
    pending_timeout: int | None,
    stuck_after: int | None,
) -> None:
    """Export one log group of one account, with the same layout and state as `run`."""
    config = export_config(
        group=group,
        bucket=bucket,
        prefix=prefix,
        roles=roles,
        external_id=external_id,
        region=region,
        period=period,
    )
    options = run_options(
        start=start,
        end=end,
        through=through,
        settle=settle,
        regions=(region,) if region else (),
        pending_timeout=pending_timeout,
        stuck_after=stuck_after,
    )
    report = _execute(ctx, config, options, 1)
    for lane in report.lanes:
        if lane.error is None and lane.groups == 0:
            raise LogExporterError(
                f"log group {group} does not exist in {lane.account_id or lane.name} ({lane.region})"
            )
    ctx.exit(report.exit_code)


# SIGTERM (systemd, `docker stop`, `timeout`) and SIGHUP (a closed terminal) stop a run as
# Ctrl-C does: lanes stop at their next wait, record what is in flight and release their leases.
STOP_SIGNALS = {"SIGTERM": "terminated", "SIGHUP": "hangup"}


class Terminated(KeyboardInterrupt):
    """A stop signal other than Ctrl-C; handled like it (see STOP_SIGNALS)."""


def _stop_on_signals() -> list[int]:
    """Turn the first SIGTERM or SIGHUP into Terminated; later ones are ignored, so they do not
    break the clean stop under way. Returns the signals received (at most one)."""
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if not received:
            received.append(signum)
            raise Terminated(signum)

    for name in STOP_SIGNALS:
        signum = getattr(signal, name, None)  # no SIGHUP on Windows
        if signum is not None:
            with contextlib.suppress(ValueError, OSError):  # not the main thread: left as is
                signal.signal(signum, handler)
    return received


def _interrupted(received: list[int]) -> int:
    """Say why the run stopped; the exit code is 130 for Ctrl-C, else 128 + the signal."""
    if not received:
        click.echo("log-exporter: interrupted", err=True)
        return 130
    signum = received[0]
    with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
        click.echo(f"log-exporter: {STOP_SIGNALS[signal.Signals(signum).name]}", err=True)
    return 128 + signum


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one line and an exit code for every error we know about."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    received = _stop_on_signals()
    try:
        code = cli.main(args=args, prog_name="log-exporter", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.Abort:
        code = _interrupted(received)
    except click.UsageError as exc:  # bad option or argument: one line, like our own errors
        where = exc.ctx.command_path if exc.ctx else "log-exporter"
        message = exc.format_message().rstrip(".")
        click.echo(f"log-exporter: error: {message} (see {where} --help)", err=True)
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except LogExporterError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"log-exporter: error: {exc}", err=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = _interrupted(received)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        click.echo(
            f"log-exporter: unexpected error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            err=True,
        )
        code = 1
    # Nothing is left to collect: spare the interpreter's final full collection, which takes
    # ~0.15 s once botocore's models are loaded (a run's wall time is what users wait for).
    gc.freeze()
    sys.exit(code if isinstance(code, int) else 0)


# --- commands of other areas: each lives in its own module and registers itself here ---------
from log_exporter.cli.preflight import register as _register_preflight  # noqa: E402

_register_preflight(cli)
from log_exporter.cli.ops import register as _register_ops  # noqa: E402

_register_ops(cli)
from log_exporter.cli.retention import register as _register_retention  # noqa: E402

_register_retention(cli)
from log_exporter.cli.readback import register as _register_readback  # noqa: E402

_register_readback(cli)
