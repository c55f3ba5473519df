"""SharedChoices: the trigger form's choice lists, shared by deep copies (bakery.choices)."""

from __future__ import annotations

import copy
import json

from bakery.choices import SharedChoices


def test_a_deep_copy_is_the_same_list_and_it_stays_a_plain_json_list() -> None:
    names = SharedChoices(["web", "base"])
    schema = {"items": {"enum": names}, "examples": names}
    copied = copy.deepcopy(schema)
    assert copied["items"]["enum"] is names and copied["examples"] is names
    assert copied is not schema
    assert json.loads(json.dumps(copied)) == {
        "items": {"enum": ["web", "base"]},
        "examples": ["web", "base"],
    }
