"""Promote checks the approve task's answer itself (see bakery.operators._target)."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from bakery.operators._target import skip_if_rejected

LABEL = "web/aws/us-east-1"


@pytest.mark.parametrize(
    "approval",
    [
        None,  # a promote task with no approve task before it
        {"chosen_options": ["Approve"], "approved_by": "catalog policy"},
        {"chosen_options": ["Approve"], "params_input": {}, "responded_by_user": {"id": "1"}},
    ],
)
def test_an_approval_lets_the_promotion_run(approval: dict[str, Any] | None) -> None:
    skip_if_rejected(approval, LABEL)


@pytest.mark.parametrize(
    "approval",
    [{"chosen_options": ["Reject"]}, {"chosen_options": []}, {}],
)
def test_anything_but_approve_skips_the_promotion(approval: dict[str, Any]) -> None:
    with pytest.raises(AirflowSkipException, match=f"{LABEL}: promotion not approved"):
        skip_if_rejected(approval, LABEL)
