"""Catalog `vsphere` targets: datacenters are the fan-out's regions; errors name the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bakery.catalog import BakeTarget, CatalogError, Cloud, load_catalog

VSPHERE = {
    "datacenters": ["DC0", "DC1"],
    "source_template": "templates/debian-12",
    "cluster": "DC0_C0",
    "datastore": "LocalDS_0",
}


def write_catalog(folder: Path, vsphere: dict[str, object], *, template: bool = True) -> Path:
    (folder / "scripts").mkdir(exist_ok=True)
    (folder / "scripts" / "cleanup.sh").write_text("#!/bin/sh\n")
    if template:
        (folder / "packer").mkdir()
        (folder / "packer" / "vsphere-clone.pkr.hcl").write_text("# template\n")
    path = folder / "catalog.yaml"
    document = {
        "defaults": {"targets": {"vsphere": {"connection_id": "vsphere_bakery"}}},
        "images": [
            {
                "name": "web",
                "owners": ["web-team"],
                "template": "packer/vsphere-clone.pkr.hcl",
                "targets": {"vsphere": vsphere},
            }
        ],
    }
    path.write_text(yaml.safe_dump(document))
    return path


def test_datacenters_fan_out_like_regions(tmp_path: Path) -> None:
    catalog = load_catalog(write_catalog(tmp_path, VSPHERE))

    target = catalog.image("web").targets.vsphere
    assert target is not None
    assert target.connection_id == "vsphere_bakery"  # from defaults.targets.vsphere
    assert target.template == "packer/vsphere-clone.pkr.hcl"
    assert catalog.bake_targets() == [
        BakeTarget(image="web", cloud=Cloud.VSPHERE, region="DC0"),
        BakeTarget(image="web", cloud=Cloud.VSPHERE, region="DC1"),
    ]
    assert catalog.bake_targets(clouds=["vsphere"], regions=["DC1"])[0].label == "web/vsphere/DC1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"datacenters": ["DC0", "DC0"]},
            "field 'targets.vsphere.datacenters': datacenters listed twice: DC0",
        ),
        ({"datacenters": []}, "field 'targets.vsphere.datacenters': list at least one"),
        ({"cluster": None}, "field 'targets.vsphere.cluster'"),
        ({"datastor": "typo"}, "field 'targets.vsphere.datastor': Extra inputs are not permitted"),
    ],
)
def test_bad_vsphere_fields_are_named(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    vsphere = {**VSPHERE, **change}
    with pytest.raises(CatalogError) as raised:
        load_catalog(write_catalog(tmp_path, {k: v for k, v in vsphere.items() if v is not None}))
    assert str(tmp_path / "catalog.yaml") in str(raised.value)
    assert "image 'web'" in str(raised.value)
    assert message in str(raised.value)


def test_a_missing_vsphere_template_is_named(tmp_path: Path) -> None:
    (tmp_path / "packer").mkdir()
    (tmp_path / "packer" / "vsphere-clone.pkr.hcl").write_text("# template\n")
    path = write_catalog(tmp_path, {**VSPHERE, "template": "packer/nope.pkr.hcl"}, template=False)

    with pytest.raises(CatalogError, match=r"field 'targets.vsphere.template': .*nope.pkr.hcl"):
        load_catalog(path)
