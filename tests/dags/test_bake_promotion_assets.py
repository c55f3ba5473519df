"""The bake DAG declares every promotion Asset, so the DAG processor registers them
before any promotion runs: promotions emit through an alias, and two regions promoting
the same image for the first time would otherwise both create its Asset (one of them is
failed by the API server on the unique key)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag

BAKE_DAG_ID = "golden_image_bake"


def test_promote_declares_the_asset_of_every_image_in_every_cloud(dag_bag: DagBag) -> None:
    from bakery.catalog import load_catalog
    from bakery.channels import asset_uri

    promote = dag_bag.dags[BAKE_DAG_ID].task_dict["image_lifecycle.promote"]
    expected = {asset_uri(t.cloud.value, t.image) for t in load_catalog().bake_targets()}
    assert expected, "the shipped catalog bakes something"
    assert {asset.uri for asset in promote.inlets} == expected
