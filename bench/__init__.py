"""Benchmarks: gongmo's figure next to a raw baseline measured in the same run."""

from __future__ import annotations

from typing import Any


def synthetic_applicants(n: int) -> list[dict[str, Any]]:
    """n local governments (codes 10000 up; one in four writes in English)."""
    from gongmo.workflow.core.config import Kind  # here: `python -m bench.sink` starts without the config machinery

    return [
        {
            "code": f"{10000 + i}",
            "name": f"시험시{i}",
            "kind": Kind.CITY.value,
            "population": 100_000,
            "contact_name": "담당자",
            "email": f"lg{i}@bench.example",
            "language": "ko" if i % 4 else "en",
        }
        for i in range(n)
    ]
