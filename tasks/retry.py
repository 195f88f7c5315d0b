"""When a Prefect task retry can help: the failure's own ``retryable`` flag decides.

Every task wrapper with ``retries=`` passes ``retry_condition_fn=retry_when_retryable``. A ``DcoError`` says
whether trying again can succeed (an unreachable server: yes; rejected credentials, a bad file, an unknown
technique: no), so a 401 from TheHive fails the run at once instead of locking the account with retries.
Other exceptions keep Prefect's default and are retried: a dropped database connection is transient, and
they are not ours to classify.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dcoflow.core.errors import DcoError

if TYPE_CHECKING:
    from prefect import Task
    from prefect.client.schemas.objects import State, TaskRun


def retry_when_retryable(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect ``retry_condition_fn``: retry unless the failure is a ``DcoError`` that is not retryable."""
    try:
        state.result()
    except DcoError as exc:
        return exc.retryable
    except Exception:
        return True
    return True
