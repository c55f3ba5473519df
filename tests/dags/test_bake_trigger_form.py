"""The bake DAG's trigger form: its params, their JSON schema, and what they accept."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import pytest

from tests.dags.test_dag_integrity import BAKE_DAG_ID

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag

FORM_PARAMS = ("images", "clouds", "regions", "force", "skip_promote", "prune_dry_run")


def _params(dag_bag: DagBag) -> Any:
    return dag_bag.dags[BAKE_DAG_ID].params


def test_every_field_has_a_title_markdown_description_and_section(dag_bag: DagBag) -> None:
    params = _params(dag_bag)
    assert tuple(params.keys()) == FORM_PARAMS
    for name in FORM_PARAMS:
        schema = params.get_param(name).schema
        assert schema.get("title"), name
        assert schema.get("description_md"), name
        assert schema.get("section"), name


def test_image_choices_come_from_the_catalog_as_a_multi_select(dag_bag: DagBag) -> None:
    images = _params(dag_bag).get_param("images").schema
    assert images["type"] == "array"
    assert images["items"]["enum"] == images["examples"] == ["web", "base"]
    regions = _params(dag_bag).get_param("regions").schema
    assert regions["items"]["enum"] == ["eu-west-1", "us-east-1"]


def test_a_manual_run_with_no_params_bakes_everything_with_safe_defaults(
    dag_bag: DagBag,
) -> None:

    assert copy.deepcopy(_params(dag_bag)).validate() == {
        "images": [],
        "clouds": [],
        "regions": [],
        "force": False,
        "skip_promote": False,
        "prune_dry_run": False,
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("images", ["no-such-image"]),
        ("images", ["web", "web"]),
        ("clouds", ["gcp"]),
        ("regions", ["us-east"]),
        ("force", "yes"),
        ("skip_promote", 1),
    ],
)
def test_bad_values_are_refused_naming_the_field(dag_bag: DagBag, field: str, value: Any) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    params = copy.deepcopy(_params(dag_bag))
    with pytest.raises(ParamValidationError, match=f"Invalid input for param {field}"):
        params[field] = value


def test_the_serialized_form_lists_the_catalogs_images_as_plain_json(dag_bag: DagBag) -> None:
    """The choices are shared between tasks (bakery.choices); the UI still gets lists."""
    import json

    from airflow.serialization.serialized_objects import DagSerialization

    serialized = json.loads(json.dumps(DagSerialization.to_dict(dag_bag.dags[BAKE_DAG_ID])))
    params = dict(serialized["dag"]["params"])

    def schema(name: str) -> dict[str, Any]:  # dicts are wrapped as {"__var": ..., "__type"}
        found = params[name]["schema"]["__var"]
        return {**found, "items": found["items"]["__var"]}

    images = schema("images")
    assert images["items"]["enum"] == images["examples"] == ["web", "base"]
    assert schema("regions")["items"]["enum"] == ["eu-west-1", "us-east-1"]
