"""The crash harness's short form (tests/chaos.py; the long form is `python -m tests.chaos`).

Real `gongmo daemon` processes on the real clock, SIGKILLed a few times and restarted, against a
database of a few hundred applications whose calendar falls during the test, and a real aiosmtpd
server that answers 421/451 to a share of connections and messages, 550 to some recipients, and
goes away for a stretch. Every invariant of the harness must hold: each deadline fired once and in
calendar order, `gongmo audit verify` clean, every notice the audit log calls for in the outbox
once, every deliverable one received, every refused one dead with its 550, nothing stuck, and each
duplicate a message caught in flight by a kill. About a minute per backend.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos import Options, run

pytestmark = pytest.mark.chaos

BACKENDS = [
    pytest.param("sqlite", 1, id="sqlite-1-daemon"),
    pytest.param("postgres", 3, id="postgres-3-daemons", marks=pytest.mark.postgres),
]


@pytest.mark.parametrize(("backend", "daemons"), BACKENDS)
def test_sigkilled_daemons_and_smtp_faults_lose_nothing(
    backend: str, daemons: int, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = str(request.getfixturevalue("pg_schema_url")) if backend == "postgres" else None
    options = Options(
        db=backend,
        daemons=daemons,
        kills=4,
        apps=300,
        database_url=url,
        workdir=tmp_path / "chaos",
        drain_timeout=90.0,
        verbose=False,
    ).all_faults()
    result = run(options)
    print(result.report())
    assert len(result.kills) == options.kills, result.report()
    failed = [f"{c.name}: {c.detail}" for c in result.checks if not c.ok]
    assert not failed, "\n".join(failed) + "\n\n" + result.report()
