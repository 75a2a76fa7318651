"""`hwnas spaces`, `hwnas space sample`, `hwnas space show`: look at what can be searched."""

from __future__ import annotations

import json
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from hwnas import space as spaces
from hwnas.cli._common import JsonOpt, SeedOpt, out, read_json_arg

group = typer.Typer(help="Look at search spaces and architectures.", no_args_is_help=True)

SpaceArg = Annotated[str, typer.Argument(help="Space name (see `hwnas spaces`).")]
WidthOpt = Annotated[float | None, typer.Option("--width-mult", help="ofa-mbv3 width multiplier (1.0 or 1.2).")]


def register(app: typer.Typer) -> None:
    app.command("spaces")(list_spaces)
    app.add_typer(group, name="space")


def list_spaces() -> None:
    """List the registered search spaces and their sizes."""
    table = Table("space", "architectures", "operators")
    for name in spaces.list_spaces():
        sp = spaces.create(name)
        table.add_row(name, f"{sp.size:.3g}", str(len(sp.all_operators())))
    out.print(table)


@group.command("sample")
def sample(
    name: SpaceArg,
    n: Annotated[int, typer.Option("-n", min=1, max=100_000, help="How many archs.")] = 5,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
    width_mult: WidthOpt = None,
) -> None:
    """Sample random architectures from a space."""
    from hwnas.workflows.space import make_space

    sp = make_space(name, width_mult)
    archs = sp.sample(np.random.default_rng(seed), n)
    if as_json:
        out.print_json(json.dumps([a.to_dict() for a in archs]))
        return
    table = Table("key", "MMACs", "Mparams")
    for a in archs:
        table.add_row(a.key, f"{sp.flops(a):.1f}", f"{sp.params(a):.3f}")
    out.print(table)


@group.command("show")
def show(
    arch: Annotated[str, typer.Argument(help="Arch JSON file, inline JSON, an arch key, or - for stdin.")],
    name: Annotated[str | None, typer.Option("--space", help="Space name; default: whichever accepts it.")] = None,
    width_mult: WidthOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show an architecture's key, FLOPs, params and operators."""
    data = read_json_arg(arch)
    from hwnas.workflows.space import identify_archs

    found = identify_archs(data if isinstance(data, list) else [data], name, width_mult)
    results = [(sp, a, sp.operators(a)) for sp, a in found]
    if as_json:
        out.print_json(json.dumps([
            {"space": sp.name, "key": a.key, "arch": a.to_dict(), "flops_m": sp.flops(a), "params_m": sp.params(a),
             "operators": [op.key for op in ops]} for sp, a, ops in results]))
        return
    for sp, a, ops in results:
        out.print(f"[bold]{sp.name}[/bold] {a.key}  {sp.flops(a):.1f} MMACs  {sp.params(a):.3f} M params")
        table = Table("#", "operator")
        table.columns[1].overflow = "fold"
        for i, op in enumerate(ops):
            table.add_row(str(i), op.key)
        out.print(table)
