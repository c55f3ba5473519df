"""Choice lists for the bake DAG's trigger form, shared instead of copied.

Airflow deep-copies the DAG's params into every task it creates, so at every parse of the
bake DAG a 500-image catalog's names (a Param's `enum` and `examples`) were copied once
per task: about 40% of the parse. Nothing changes them after the parse, so a deep copy
can be the same list. DAG serialization writes them as plain JSON lists.
"""

from __future__ import annotations

from typing import Any


class SharedChoices(list[str]):
    """A list whose deep copies are itself. Only for values nothing mutates."""

    def __deepcopy__(self, memo: dict[int, Any]) -> SharedChoices:
        return self
