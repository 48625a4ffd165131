"""The outbox states are declared once (outbox/states.py); the copies that must be literal agree."""

from __future__ import annotations

from typing import get_args

from gongmo.workflow.api import schemas
from gongmo.workflow.outbox import states


def test_the_groups_of_states_are_states() -> None:
    assert len(set(states.STATES)) == len(states.STATES)
    for group in (states.UNSENT, states.DUE, states.FINAL, states.RETRYABLE, states.RETRYABLE_ONE):
        assert set(group) <= set(states.STATES)
    assert set(states.DUE) <= set(states.UNSENT) and not set(states.UNSENT) & set(states.FINAL)


def test_the_api_s_retry_body_takes_the_states_the_office_retries() -> None:
    field = schemas.OutboxRetryIn.model_fields["state"]
    assert set(get_args(field.annotation)) == set(states.RETRYABLE)
