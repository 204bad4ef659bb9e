"""The ``runnel`` command: ``run``, ``validate``, ``nodes``, ``serve``, ``worker``,
``engine``, ``migrate``, ``keys`` and ``users``."""

from __future__ import annotations

import asyncio
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from runnel.cli.catalog import catalog, catalog_table
from runnel.cli.engine import engine_command
from runnel.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, EXIT_WAITING, UsageProblem
from runnel.cli.inputs import parse_inputs
from runnel.cli.keys import keys_app
from runnel.cli.loading import check_valid, invalid_workflow, load_workflow, problem_entry
from runnel.cli.render import LiveEventPrinter, QuietSink, node_table, status_style
from runnel.cli.run import (
    RunOptions,
    allowed_hosts_from_env,
    check_decisions,
    execute_interruptible,
    summarize,
)
from runnel.cli.serve import serve
from runnel.cli.users import users_app
from runnel.cli.worker import migrate, run_worker
from runnel.engine.registry import default_registry
from runnel.engine.validation import validate

__all__ = ["app", "main"]

app = typer.Typer(
    name="runnel",
    help="runnel: self-hosted workflow automation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _package_version() -> str:
    try:
        return version("runnel")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"runnel {_package_version()}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_show_version, is_eager=True
        ),
    ] = False,
) -> None:
    """runnel: self-hosted workflow automation."""


def _fail_usage(problem: UsageProblem) -> NoReturn:
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    err.print(f"error: {problem.headline}", markup=False)
    for line in problem.lines:
        err.print(f"  - {line}", markup=False)
    raise typer.Exit(EXIT_USAGE)


def _dump(document: Any) -> None:
    typer.echo(json.dumps(document, ensure_ascii=False, indent=2))


WorkflowFile = Annotated[
    Path,
    typer.Argument(
        metavar="FILE", help="A workflow in the Flow Engine JSON format.", show_default=False
    ),
]


@app.command("run")
def run_command(
    file: WorkflowFile,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            "-i",
            metavar="KEY=VALUE",
            help="An input as key=value (the value is read as JSON when it parses). Repeatable.",
        ),
    ] = None,
    inputs_json: Annotated[
        str | None,
        typer.Option(
            "--inputs-json",
            metavar="JSON",
            help="Inputs as one JSON object (typed values accepted).",
        ),
    ] = None,
    simulate: Annotated[
        bool,
        typer.Option(
            "--simulate", help="Side-effect nodes return their pinned output or a dry run."
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of the live view.")
    ] = False,
    approve: Annotated[
        list[str] | None,
        typer.Option(
            "--approve",
            metavar="NODE_ID",
            help="Approve this approval node when it asks. Repeatable.",
        ),
    ] = None,
    reject: Annotated[
        list[str] | None,
        typer.Option(
            "--reject",
            metavar="NODE_ID",
            help="Reject this approval node when it asks. Repeatable.",
        ),
    ] = None,
) -> None:
    """Run a workflow once, in this process, and show what every node did.

    Exit codes: 0 succeeded; 1 failed or cancelled; 2 invalid workflow or bad usage;
    3 waiting for an approval not decided with --approve/--reject.
    """
    registry = default_registry()
    try:
        workflow = load_workflow(file)
        check_valid(file, workflow, registry)
        decisions = _decisions(approve or [], reject or [])
        check_decisions(workflow, registry, decisions)
        options = RunOptions(
            inputs=parse_inputs(inputs or [], inputs_json),
            simulate=simulate,
            decisions=decisions,
            allowed_hosts=allowed_hosts_from_env(),
            workflows_dir=file.parent,
        )
    except UsageProblem as problem:
        _fail_usage(problem)
    console = Console(soft_wrap=False, highlight=False)
    sink = QuietSink() if as_json else LiveEventPrinter(console)
    result = asyncio.run(execute_interruptible(workflow, registry, options, sink))
    summary = summarize(workflow, result)
    if as_json:
        _dump(summary)
    else:
        console.print(node_table(workflow, summary))
        _print_outcome(console, summary)
    raise typer.Exit(_exit_code(summary["status"]))


def _decisions(approve: list[str], reject: list[str]) -> dict[str, bool]:
    both = sorted(set(approve) & set(reject))
    if both:
        raise UsageProblem(f"both approved and rejected: {', '.join(both)}")
    return {**dict.fromkeys(approve, True), **dict.fromkeys(reject, False)}


def _print_outcome(console: Console, summary: dict[str, Any]) -> None:
    status = summary["status"]
    line = (
        f"execution {summary['execution_id']} {status}: "
        f"{summary['completed_nodes']}/{summary['total_nodes']} nodes completed"
    )
    console.print(line, style=status_style(status), markup=False, soft_wrap=True)
    if summary["error"]:
        console.print(f"error: {summary['error']}", style="red", markup=False, soft_wrap=True)
    for node_id in summary["waiting"]:
        console.print(
            f"node {node_id!r} waits for approval; run again with --approve {node_id} "
            f"or --reject {node_id}",
            style="yellow",
            markup=False,
            soft_wrap=True,
        )


def _exit_code(status: str) -> int:
    if status == "succeeded":
        return EXIT_OK
    if status == "waiting":
        return EXIT_WAITING
    return EXIT_FAILED


@app.command("validate")
def validate_command(
    file: WorkflowFile,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"valid", "problems"} as JSON.')
    ] = False,
) -> None:
    """Check a workflow without running it; list every problem (exit 2) or say it is valid."""
    registry = default_registry()
    try:
        workflow = load_workflow(file)
    except UsageProblem as problem:
        _fail_usage(problem)
    problems = validate(workflow, registry)
    if as_json:
        _dump({"valid": not problems, "problems": [problem_entry(p) for p in problems]})
    if problems:
        _fail_usage(invalid_workflow(file, problems))
    if not as_json:
        typer.echo(f"valid: {file} ({len(workflow.nodes)} nodes, {len(workflow.edges)} edges)")


@app.command("nodes")
def nodes_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the catalogue as JSON.")] = False,
) -> None:
    """List the node types this runnel knows, with their ports and config."""
    registry = default_registry()
    if as_json:
        _dump(catalog(registry))
    else:
        Console(highlight=False).print(catalog_table(registry))


@app.command("serve")
def serve_command(
    bind: Annotated[
        str | None,
        typer.Option(
            "--bind", help="HOST:PORT to listen on (default: BIND_ADDRESS or 127.0.0.1:3000)."
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Where the data lives (default: RUNNEL_DATA_DIR)."),
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option("--no-auth", help="Let requests in without credentials (loopback only)."),
    ] = False,
    no_worker: Annotated[
        bool,
        typer.Option(
            "--no-worker", help="Answer the APIs only; `runnel worker` processes run executions."
        ),
    ] = False,
) -> None:
    """Serve the APIs with the embedded worker until SIGINT or SIGTERM."""
    try:
        code = serve(bind, data_dir, no_auth, worker=not no_worker)
    except UsageProblem as problem:
        _fail_usage(problem)
    raise typer.Exit(code)


@app.command("worker")
def worker_command(
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            min=1,
            help="Executions run at once (default: RUNNEL_WORKER_CONCURRENCY or 64).",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Where the data lives (default: RUNNEL_DATA_DIR)."),
    ] = None,
) -> None:
    """Run executions (no API) against RUNNEL_DATABASE_URL until SIGINT or SIGTERM."""
    try:
        code = run_worker(data_dir, concurrency)
    except UsageProblem as problem:
        _fail_usage(problem)
    raise typer.Exit(code)


@app.command("migrate")
def migrate_command(
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Where the data lives (default: RUNNEL_DATA_DIR)."),
    ] = None,
) -> None:
    """Bring the database schema (RUNNEL_DATABASE_URL) to this version of runnel."""
    try:
        code = migrate(data_dir)
    except UsageProblem as problem:
        _fail_usage(problem)
    raise typer.Exit(code)


app.command("engine")(engine_command)
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")


def main() -> None:
    """Entry point of the ``runnel`` console script."""
    app()
