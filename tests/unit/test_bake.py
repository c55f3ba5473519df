"""Unit tests for the pure bake decisions: ids, variables, template hash, tags, names."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bakery.bake import (
    artifact_name,
    bake_id,
    bake_tags,
    resolve_variables,
    template_hash,
    write_var_file,
)
from bakery.catalog import BakeTarget, Cloud, Image
from tests.catalog_files import write_cleanup_script

BAKE_ID = re.compile(r"^bk-[0-9a-f]{16}$")
HASH = re.compile(r"^[0-9a-f]{16}$")
# What EC2 accepts in an AMI name: 3-128 characters of these.
AMI_NAME = re.compile(r"^[A-Za-z0-9()\[\]./\-'@_ ]{3,128}$")

REQUIRED_TAGS = {
    "bakery:managed",
    "bakery:image",
    "bakery:bake-id",
    "bakery:source-image",
    "bakery:template-hash",
    "bakery:dag-run-id",
}


def make_image(name: str = "web", **overrides: Any) -> Image:
    raw: dict[str, Any] = {
        "name": name,
        "owners": ["web-team"],
        "template": "packer/aws-linux.pkr.hcl",
        "targets": {"aws": {"regions": ["us-east-1"], "source": {"ami_id": "ami-0abc"}}},
    }
    raw.update(overrides)
    return Image.model_validate(raw)


def target(image: str = "web", region: str = "us-east-1") -> BakeTarget:
    return BakeTarget(image=image, cloud=Cloud.AWS, region=region)


# --- bake_id ------------------------------------------------------------------------------


def test_bake_id_is_stable_for_the_same_run_and_target() -> None:
    first = bake_id(dag_id="golden_image_bake", run_id="manual__1", target=target())
    again = bake_id(dag_id="golden_image_bake", run_id="manual__1", target=target())

    assert first == again


def test_bake_id_differs_between_runs() -> None:
    one = bake_id(dag_id="golden_image_bake", run_id="manual__1", target=target())
    two = bake_id(dag_id="golden_image_bake", run_id="manual__2", target=target())

    assert one != two


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(target(region="eu-west-1"), id="region"),
        pytest.param(target(image="api"), id="image"),
    ],
)
def test_bake_id_differs_between_targets_of_one_run(other: BakeTarget) -> None:
    mine = bake_id(dag_id="golden_image_bake", run_id="manual__1", target=target())

    assert bake_id(dag_id="golden_image_bake", run_id="manual__1", target=other) != mine


def test_bake_id_differs_between_dags() -> None:
    bake = bake_id(dag_id="golden_image_bake", run_id="manual__1", target=target())
    other = bake_id(dag_id="another_dag", run_id="manual__1", target=target())

    assert bake != other


def test_bake_id_fields_do_not_run_together() -> None:
    # "a" + "bc" and "ab" + "c" must not hash alike.
    left = bake_id(dag_id="a", run_id="bc", target=target())
    right = bake_id(dag_id="ab", run_id="c", target=target())

    assert left != right


ids = st.text(min_size=1, max_size=40)
image_names = st.from_regex(r"^[a-z][a-z0-9-]{0,20}$", fullmatch=True)
regions = st.sampled_from(["us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1"])


@given(dag_id=ids, run_id=ids, image=image_names, region=regions)
def test_bake_id_is_bk_and_16_hex_and_deterministic(
    dag_id: str, run_id: str, image: str, region: str
) -> None:
    bake = bake_id(dag_id=dag_id, run_id=run_id, target=target(image, region))

    assert BAKE_ID.fullmatch(bake)
    assert bake == bake_id(dag_id=dag_id, run_id=run_id, target=target(image, region))


@given(run_ids=st.lists(ids, min_size=2, max_size=8, unique=True))
def test_bake_ids_of_distinct_runs_are_distinct(run_ids: list[str]) -> None:
    bakes = {bake_id(dag_id="golden_image_bake", run_id=run, target=target()) for run in run_ids}

    assert len(bakes) == len(run_ids)


# --- resolve_variables --------------------------------------------------------------------


@pytest.fixture
def include_dir(tmp_path: Path) -> Path:
    include = tmp_path / "include"
    (include / "scripts").mkdir(parents=True)
    (include / "scripts" / "web.sh").write_text("#!/bin/sh\napt-get install -y nginx\n")
    return include


def test_resolve_variables_makes_existing_relative_files_absolute(include_dir: Path) -> None:
    resolved = resolve_variables({"provision_script": "scripts/web.sh"}, include_dir)

    assert resolved == {"provision_script": str(include_dir / "scripts" / "web.sh")}
    assert Path(str(resolved["provision_script"])).is_absolute()


def test_resolve_variables_leaves_values_that_name_no_file(include_dir: Path) -> None:
    variables: dict[str, str | int | bool] = {
        "missing": "scripts/api.sh",
        "folder": "scripts",
        "plain": "nginx",
        "empty": "",
    }

    assert resolve_variables(variables, include_dir) == variables


def test_resolve_variables_leaves_numbers_and_booleans_with_their_types(
    include_dir: Path,
) -> None:
    resolved = resolve_variables({"disk_gb": 20, "debug": True}, include_dir)

    assert resolved == {"disk_gb": 20, "debug": True}
    assert type(resolved["disk_gb"]) is int
    assert type(resolved["debug"]) is bool


def test_resolve_variables_keeps_an_absolute_path_as_it_is(
    include_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.sh"
    outside.write_text("true\n")

    assert resolve_variables({"script": str(outside)}, include_dir) == {"script": str(outside)}


def test_resolve_variables_tolerates_values_too_long_to_be_a_path(include_dir: Path) -> None:
    long_value = "x" * 300  # one path component longer than any filesystem allows

    assert resolve_variables({"banner": long_value}, include_dir) == {"banner": long_value}


def test_resolve_variables_does_not_change_its_input(include_dir: Path) -> None:
    variables: dict[str, str | int | bool] = {"provision_script": "scripts/web.sh"}

    resolve_variables(variables, include_dir)

    assert variables == {"provision_script": "scripts/web.sh"}


# --- template_hash ------------------------------------------------------------------------


@pytest.fixture
def template(include_dir: Path) -> Path:
    path = include_dir / "packer" / "aws-linux.pkr.hcl"
    path.parent.mkdir()
    path.write_text('source "amazon-ebs" "linux" {}\n')
    write_cleanup_script(include_dir)
    return path


@pytest.fixture
def variables(include_dir: Path) -> dict[str, str | int | bool]:
    return resolve_variables(
        {"provision_script": "scripts/web.sh", "disk_gb": 20, "debug": False}, include_dir
    )


def test_template_hash_is_16_hex_and_stable(
    template: Path, variables: dict[str, str | int | bool]
) -> None:
    digest = template_hash(template, variables)

    assert HASH.fullmatch(digest)
    assert template_hash(template, variables) == digest


def test_template_hash_ignores_variable_order(
    template: Path, variables: dict[str, str | int | bool]
) -> None:
    reversed_order = dict(reversed(list(variables.items())))

    assert template_hash(template, reversed_order) == template_hash(template, variables)


def test_template_hash_changes_with_the_template(
    template: Path, variables: dict[str, str | int | bool]
) -> None:
    before = template_hash(template, variables)
    template.write_text('source "amazon-ebs" "linux" { encrypt_boot = true }\n')

    assert template_hash(template, variables) != before


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"disk_gb": 30}, id="number"),
        pytest.param({"debug": True}, id="boolean"),
        pytest.param({"extra": "value"}, id="added"),
    ],
)
def test_template_hash_changes_with_a_variable_value(
    template: Path, variables: dict[str, str | int | bool], change: dict[str, str | int | bool]
) -> None:
    assert template_hash(template, {**variables, **change}) != template_hash(template, variables)


def test_template_hash_changes_when_a_variable_is_renamed(
    template: Path, variables: dict[str, str | int | bool]
) -> None:
    renamed = {("disk_size_gb" if k == "disk_gb" else k): v for k, v in variables.items()}

    assert template_hash(template, renamed) != template_hash(template, variables)


def test_template_hash_changes_with_the_content_of_a_file_a_variable_names(
    template: Path, variables: dict[str, str | int | bool], include_dir: Path
) -> None:
    before = template_hash(template, variables)
    (include_dir / "scripts" / "web.sh").write_text("#!/bin/sh\napt-get install -y apache2\n")

    assert template_hash(template, variables) != before


def test_template_hash_ignores_files_no_variable_names(
    template: Path, variables: dict[str, str | int | bool], include_dir: Path
) -> None:
    before = template_hash(template, variables)
    (include_dir / "scripts" / "api.sh").write_text("#!/bin/sh\n")
    (include_dir / "catalog.yaml").write_text("images: []\n")

    assert template_hash(template, variables) == before


def test_template_hash_ignores_file_times(
    template: Path, variables: dict[str, str | int | bool], include_dir: Path
) -> None:
    before = template_hash(template, variables)
    script = include_dir / "scripts" / "web.sh"
    script.write_text(script.read_text())
    template.touch()

    assert template_hash(template, variables) == before


def test_template_hash_does_not_depend_on_the_template_path(
    template: Path, variables: dict[str, str | int | bool], tmp_path: Path
) -> None:
    copy = tmp_path / "copy.pkr.hcl"
    copy.write_bytes(template.read_bytes())

    assert template_hash(copy, variables) == template_hash(template, variables)


def test_template_hash_tolerates_values_too_long_to_be_a_path(template: Path) -> None:
    digest = template_hash(template, {"banner": "/" + "x" * 300})

    assert HASH.fullmatch(digest)


# --- tags, names and the var-file ---------------------------------------------------------


def test_bake_tags_carry_every_required_key_with_its_value() -> None:
    tags = bake_tags(
        image=make_image("web"),
        bake="bk-0123456789abcdef",
        source_image_id="ami-0abc",
        template_digest="fedcba9876543210",
        dag_run_id="scheduled__2026-11-22T22:00:00+00:00",
    )

    assert set(tags) == REQUIRED_TAGS
    assert tags == {
        "bakery:managed": "true",
        "bakery:image": "web",
        "bakery:bake-id": "bk-0123456789abcdef",
        "bakery:source-image": "ami-0abc",
        "bakery:template-hash": "fedcba9876543210",
        "bakery:dag-run-id": "scheduled__2026-11-22T22:00:00+00:00",
    }


STARTED = datetime(2026, 11, 22, 22, 0, 0, tzinfo=UTC)


def test_artifact_name_is_image_time_and_bake() -> None:
    name = artifact_name(make_image("web"), started=STARTED, bake="bk-3f2a9c1d77e0aa11")

    assert name == "bakery-web-20261122-220000-3f2a9c1d"


def test_artifact_names_of_two_bakes_in_the_same_second_differ() -> None:
    image = make_image("web")
    bakes = [
        bake_id(dag_id="golden_image_bake", run_id="manual__1", target=target(region=region))
        for region in ("us-east-1", "eu-west-1")
    ]

    names = {artifact_name(image, started=STARTED, bake=bake) for bake in bakes}

    assert len(names) == 2


def test_artifact_names_of_one_bake_differ_by_start_time() -> None:
    image = make_image("web")
    bake = "bk-3f2a9c1d77e0aa11"

    first = artifact_name(image, started=STARTED, bake=bake)
    retry = artifact_name(image, started=STARTED + timedelta(seconds=1), bake=bake)

    assert first != retry


@given(
    image=image_names,
    first=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2999, 1, 1)),
    later_by=st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=3650)),
    bake=st.from_regex(r"^bk-[0-9a-f]{16}$", fullmatch=True),
)
def test_artifact_names_sort_by_start_time_and_are_valid_ami_names(
    image: str, first: datetime, later_by: timedelta, bake: str
) -> None:
    earlier = artifact_name(make_image(image), started=first, bake=bake)
    later = artifact_name(make_image(image), started=first + later_by, bake=bake)

    assert earlier < later
    assert AMI_NAME.fullmatch(earlier)


def test_the_longest_image_name_still_gives_a_valid_ami_name() -> None:
    name = artifact_name(make_image("a" * 63), started=STARTED, bake="bk-3f2a9c1d77e0aa11")

    assert AMI_NAME.fullmatch(name)


def test_write_var_file_writes_sorted_json_and_returns_the_path(tmp_path: Path) -> None:
    path = tmp_path / "bake.pkrvars.json"
    variables = {"region": "us-east-1", "volume_size_gb": 8, "tags": {"bakery:managed": "true"}}

    written = write_var_file(path, variables)

    assert written == path
    assert json.loads(path.read_text()) == variables
    assert list(json.loads(path.read_text())) == ["region", "tags", "volume_size_gb"]


def test_template_hash_does_not_depend_on_where_include_dir_is_deployed(tmp_path: Path) -> None:
    hashes = []
    for deployment in ("opt/airflow/include", "home/dev/bakery/include"):
        include = tmp_path / deployment
        (include / "scripts").mkdir(parents=True)
        (include / "t.pkr.hcl").write_text("build {}\n")
        (include / "scripts" / "web.sh").write_text("apt-get install -y nginx\n")
        variables = resolve_variables({"provision_script": "scripts/web.sh"}, include)
        hashes.append(template_hash(include / "t.pkr.hcl", variables))
    assert hashes[0] == hashes[1]


def test_aws_packer_variables_fill_every_template_variable(tmp_path: Path) -> None:
    import re as regex

    from bakery.bake import aws_packer_variables
    from bakery.catalog import AwsTarget

    template = Path(__file__).resolve().parents[2] / "include/packer/aws-linux.pkr.hcl"
    declared = set(regex.findall(r'^variable "(\w+)"', template.read_text(), regex.M))
    aws = AwsTarget.model_validate({"regions": ["us-east-1"], "source": {"ami_id": "ami-0abc"}})
    values = aws_packer_variables(
        variables={"provision_script": "/x.sh", "cleanup_script": "/c.sh"},
        aws=aws,
        region="us-east-1",
        ami_name="bakery-web-1",
        source_ami_id="ami-0abc",
        subnet_id="subnet-1",
        ec2_endpoint="",
        manifest_path=tmp_path / "m.json",
        tags={"bakery:image": "web"},
    )
    # Secrets reach Packer only through its environment (PKR_VAR_secret_env), never a file.
    assert set(values) == declared - {"secret_env"}
    assert values["manifest_path"] == str(tmp_path / "m.json")
    assert values["tags"] == {"bakery:image": "web"}
