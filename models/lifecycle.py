"""The DCO state machine: which transitions exist and what each one needs.

Pure rules; ``dcoflow.models.repository.operation.transition`` applies them to a stored operation and
writes the audit event, the task wrapper emits the Prefect event.
"""

from __future__ import annotations

from dcoflow.models.operation import DcoState

S = DcoState

# Forward path, plus the loops practitioners use: re-plan before approval, go back to
# conducting for more hunting or a re-test, and close (cancel) from anywhere with a reason.
TRANSITIONS: dict[DcoState, frozenset[DcoState]] = {
    S.DRAFT: frozenset({S.PLANNED, S.CLOSED}),
    S.PLANNED: frozenset({S.PLANNED, S.APPROVED, S.CLOSED}),
    S.APPROVED: frozenset({S.PLANNED, S.CONDUCTING, S.CLOSED}),
    S.CONDUCTING: frozenset({S.CONDUCTING, S.ASSESSING, S.CLOSED}),
    S.ASSESSING: frozenset({S.ASSESSING, S.CONDUCTING, S.FOLLOW_UP, S.CLOSED}),
    S.FOLLOW_UP: frozenset({S.FOLLOW_UP, S.CONDUCTING, S.ASSESSING, S.CLOSED}),
    S.CLOSED: frozenset(),
}

# What the lifecycle flow walks through, in order.
FORWARD: tuple[DcoState, ...] = (S.DRAFT, S.PLANNED, S.APPROVED, S.CONDUCTING, S.ASSESSING, S.FOLLOW_UP, S.CLOSED)


def allowed(current: DcoState, target: DcoState) -> bool:
    return target in TRANSITIONS[current]


def next_states(current: DcoState) -> list[DcoState]:
    return sorted(TRANSITIONS[current], key=FORWARD.index)
