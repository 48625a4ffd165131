"""`gongmo results publish`: a track's final results as files to publish (stages/results.py).

Registered on the shared CLI app (cli/shared.py) when workflow.cli imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gongmo.workflow.cli import output
from gongmo.workflow.cli.shared import ChangedJson, app, state
from gongmo.workflow.stages import results

results_app = typer.Typer(help="The published results of a track.", no_args_is_help=True)
app.add_typer(results_app, name="results")


@results_app.command("publish")
def publish(
    track: str,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="The folder to write to (created); default ./results/TRACK/."),
    ] = None,
    as_json: ChangedJson = False,
) -> None:
    """Write TRACK's results (CSV, JSON and an HTML page) after the office released them."""
    done = results.publish(state.app(), track, out)
    r = done.results
    used = f"{r.slots_used} of {r.track.slots} slots, national {r.national_used_krw:,} of"
    used += f" {r.track.funding.budget_national_krw:,} won"
    output.done(
        as_json,
        {
            "track": track,
            "files": [str(p) for p in done.files],
            "listed": len(r.listed),
            "cutoff": r.cutoff,
            "slots": {"used": r.slots_used, "of": r.track.slots},
            "national_budget_krw": {"used": r.national_used_krw, "of": r.track.funding.budget_national_krw},
            "counts": r.counts,
            "anchor": {"digest": r.anchor_digest, "rows": r.anchor_rows, "at": r.summary()["anchor_at"]},
            "verify": r.verify,
        },
        *[f"wrote {p}" for p in done.files],
        f"{track}: {len(r.listed)} applications listed; cutoff {r.cutoff or '-'}; {used}",
        f"audit anchor {r.anchor_digest} ({r.anchor_rows} rows): verify with `{r.verify}`",
    )
