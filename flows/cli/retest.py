"""`dco retest …`: evaluate re-tests now instead of waiting for the hourly run.

Wiring: the ``retest`` entry of ``AREAS`` in flows/cli/__init__.py. Runs the task function the
``run-due-retests`` deployment runs (no Prefect server needed); `dco followup retests` lists them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from dcoflow.flows.cli.output import console, handle_errors, print_json, table

app = typer.Typer(help="Re-tests: evaluate due ones now against the evidence recorded since.", no_args_is_help=True)


@app.command("run")
@handle_errors
def run(
    retest_id: Annotated[str | None, typer.Argument(help="One re-test (retest-…); every due one when omitted.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Evaluate due re-tests (or one): verify or reopen their actions, or say which techniques still need evidence."""
    from dcoflow.tasks.follow_up.retests import run_due_retests_batch

    report = run_due_retests_batch(retest_id)
    if as_json:
        print_json(report)
        return
    if not report:
        console.print("no re-test is due")
        return
    table("Re-tests", ["re-test", "status", "waiting for evidence on", "changed"],
          [(r["retest"], r["status"], ", ".join(r.get("waiting_for", [])),
            ", ".join(f"{k}: {v}" for k, v in r.get("changed", {}).items())) for r in report])
