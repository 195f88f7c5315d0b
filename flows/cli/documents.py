"""`dco doc …` — decision documents: the DCO plan as a five-paragraph order (DOCX and PDF), the executive
deck (PPTX) and the executive and technical briefs as PDF, with charts.

Wiring: the ``doc`` entry of ``AREAS`` in flows/cli/__init__.py. python-docx, python-pptx, matplotlib and
WeasyPrint are imported inside the commands that use them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dcoflow.flows.cli.output import console, handle_errors, print_json

app = typer.Typer(help="Decision documents: the plan as an operation order, the executive deck, PDF briefs.",
                  no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
AttackOpt = Annotated[str | None, typer.Option("--attack", help="ATT&CK bundle file, URL or TAXII.")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Folder (default: DCO_OUTPUT_DIR/<dco>).")]


def _root(out: Path | None) -> Path | None:
    """The folder under which a DCO's own folder is made when --out is not given (DCO_OUTPUT_DIR)."""
    if out is not None:
        return None
    from dcoflow.core.settings import get_settings

    return get_settings().output_dir


def _show(files: dict[str, str], as_json: bool) -> None:
    if as_json:
        print_json(files)
        return
    for path in files.values():
        console.print(f"  {path}")


@app.command("plan")
@handle_errors
def plan_doc(
    dco: Annotated[str, typer.Argument(help="DCO id or name.")],
    out: OutOpt = None,
    attack_source: AttackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the DCO plan as a five-paragraph operation order with annexes (DOCX and PDF)."""
    from dcoflow.tasks.reporting.documents.plan_order import write_plan_order

    result = write_plan_order(dco, out, attack_source, output_root=_root(out))
    if as_json:
        print_json(result)
        return
    console.print(f"[bold]{result['dco']}[/] plan version {result['version']}")
    for path in result["files"].values():
        console.print(f"  {path}")


@app.command("brief")
@handle_errors
def brief_docs(
    dco: Annotated[str, typer.Argument(help="DCO id or name.")],
    out: OutOpt = None,
    attack_source: AttackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the executive deck (PPTX) and the executive and technical briefs as PDF, with charts."""
    from dcoflow.tasks.reporting.documents.products import write_documents

    _show(write_documents(dco, out, attack_source, kinds=("briefs",), output_root=_root(out)), as_json)


@app.command("all")
@handle_errors
def all_docs(
    dco: Annotated[str, typer.Argument(help="DCO id or name.")],
    out: OutOpt = None,
    attack_source: AttackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write every decision document: the plan order, the executive deck and the PDF briefs."""
    from dcoflow.tasks.reporting.documents.products import write_documents

    _show(write_documents(dco, out, attack_source, output_root=_root(out)), as_json)
