"""Unit tests for the image catalog: loading, validation messages, defaults, fan-out."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bakery.catalog import (
    BakeTarget,
    Catalog,
    CatalogError,
    Cloud,
    Image,
    load_catalog,
)
from tests.catalog_files import write_cleanup_script

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CATALOG = REPO_ROOT / "include" / "catalog.yaml"

Mutation = Callable[[dict[str, Any]], None]


# --- helpers ------------------------------------------------------------------------------


@pytest.fixture
def template(tmp_path: Path) -> Path:
    path = tmp_path / "packer" / "linux.pkr.hcl"
    path.parent.mkdir()
    path.write_text('source "amazon-ebs" "linux" {}\n')
    write_cleanup_script(tmp_path)
    return path


def image_entry(name: str = "web", **overrides: Any) -> dict[str, Any]:
    """A valid image entry; its template is relative to the catalog's folder."""
    entry: dict[str, Any] = {
        "name": name,
        "owners": ["web-team"],
        "template": "packer/linux.pkr.hcl",
        "targets": {
            "aws": {
                "regions": ["us-east-1", "eu-west-1"],
                "source": {"name": "debian-12-amd64-*", "owners": ["136693071363"]},
            }
        },
    }
    entry.update(overrides)
    return entry


def write_catalog(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def write_text_catalog(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    return path


def load_error(path: Path) -> str:
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    return str(caught.value)


def problem_lines(message: str) -> list[str]:
    return [line for line in message.splitlines() if line.startswith("  - ")]


def assert_single_problem(message: str, path: Path, image: str, field: str) -> str:
    """The message names the file, then exactly one problem naming image and field."""
    assert message.splitlines()[0] == f"Invalid image catalog {path}:"
    problems = problem_lines(message)
    assert len(problems) == 1, message
    assert problems[0].startswith(f"  - {image}, field '{field}': "), message
    return problems[0]


# --- the shipped catalog ------------------------------------------------------------------


def test_shipped_catalog_loads_with_the_expected_bake_targets() -> None:
    catalog = load_catalog(SHIPPED_CATALOG)

    assert [target.label for target in catalog.bake_targets()] == [
        "web/aws/us-east-1",
        "web/aws/eu-west-1",
        "base/aws/us-east-1",
        "base/aws/eu-west-1",
    ]


def test_shipped_catalog_merges_its_defaults_into_the_web_image() -> None:
    web = load_catalog(SHIPPED_CATALOG).image("web")

    assert web.owners == ("web-team",)  # the image's owners win over the default
    assert web.channel == "stable"
    assert web.freshness_days == 30
    assert (web.retention.keep_promoted, web.retention.keep_younger_than_days) == (3, 7)
    assert web.retention.failed_grace_days == 2
    assert web.targets.aws is not None
    assert web.targets.aws.connection_id == "aws_bakery"
    assert web.targets.aws.subnet_tags == {"bakery-build": "true"}
    assert web.targets.aws.source.name == "debian-12-amd64-*"
    assert web.targets.aws.source.owners == ("136693071363",)
    assert [check.name for check in web.smoke.checks] == [
        "homepage",
        "nginx running",
        "index page on disk",
        "identity from user-data",
    ]


def test_shipped_catalog_template_and_variable_files_exist() -> None:
    catalog = load_catalog(SHIPPED_CATALOG)
    web = catalog.image("web")

    assert catalog.include_dir == SHIPPED_CATALOG.parent
    assert catalog.template_path(web).is_file()
    assert (catalog.include_dir / str(web.variables["provision_script"])).is_file()


def test_load_catalog_without_a_path_reads_the_configured_catalog(
    tmp_path: Path, template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_catalog(tmp_path, {"images": [image_entry("api")]})
    monkeypatch.setenv("BAKERY_CATALOG", str(path))

    catalog = load_catalog()

    assert catalog.source_path == path
    assert [image.name for image in catalog.images] == ["api"]


# --- one bad field in one image -----------------------------------------------------------


def _set(*keys: str | int, value: Any) -> Mutation:
    def mutate(entry: dict[str, Any]) -> None:
        node: Any = entry
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return mutate


def _delete(*keys: str) -> Mutation:
    def mutate(entry: dict[str, Any]) -> None:
        node: Any = entry
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return mutate


def _smoke(*checks: dict[str, Any]) -> Mutation:
    return _set("smoke", value={"checks": list(checks)})


BAD_IMAGE_FIELDS: list[Any] = [
    pytest.param(
        _set("targets", "aws", "regions", value=["US-East-1"]),
        "targets.aws.regions.0",
        ["should match pattern", "(got 'US-East-1')"],
        id="bad-region-string",
    ),
    pytest.param(
        _set("targets", "aws", "regions", value=["us-east-1", "useast-2"]),
        "targets.aws.regions.1",
        ["(got 'useast-2')"],
        id="bad-second-region",
    ),
    pytest.param(
        _set("targets", "aws", "regions", value=["us-east-1", "eu-west-1", "us-east-1"]),
        "targets.aws.regions",
        ["regions listed twice: us-east-1"],
        id="duplicate-region",
    ),
    pytest.param(
        _set("targets", "aws", "regions", value=[]),
        "targets.aws.regions",
        ["list at least one"],
        id="no-regions",
    ),
    pytest.param(
        _set("targets", "aws", "instance_typ", value="t3.small"),
        "targets.aws.instance_typ",
        ["Extra inputs are not permitted", "(got 't3.small')"],
        id="typo-key-in-target",
    ),
    pytest.param(
        _set("freshnes_days", value=14),
        "freshnes_days",
        ["Extra inputs are not permitted"],
        id="typo-key-in-image",
    ),
    pytest.param(
        _set("targets", "gcp", value={"regions": ["us-east1"]}),
        "targets.gcp",
        ["Extra inputs are not permitted"],
        id="unknown-cloud",
    ),
    pytest.param(
        _delete("owners"),
        "owners",
        ["Field required"],
        id="missing-owners",
    ),
    pytest.param(
        _set("owners", value=[]),
        "owners",
        ["list at least one"],
        id="empty-owners",
    ),
    pytest.param(
        _set("owners", value=[1234]),
        "owners.0",
        ["Input should be a valid string", "(got 1234)"],
        id="owner-not-a-string",
    ),
    pytest.param(
        _set("targets", "aws", "source", value={"name": "debian-*", "owners": [136693071363]}),
        "targets.aws.source.owners.0",
        ["Input should be a valid string", "(got 136693071363)"],
        id="unquoted-account-id",
    ),
    pytest.param(
        _delete("template"),
        "template",
        ["Field required"],
        id="missing-template",
    ),
    pytest.param(
        _delete("targets", "aws", "source"),
        "targets.aws.source",
        ["Field required"],
        id="missing-source",
    ),
    pytest.param(
        _set("retention", value={"keep_younger_than_days": -1}),
        "retention.keep_younger_than_days",
        ["greater than or equal to 0", "(got -1)"],
        id="negative-retention-days",
    ),
    pytest.param(
        _set("retention", value={"keep_promoted": 0}),
        "retention.keep_promoted",
        ["greater than or equal to 1", "(got 0)"],
        id="zero-promoted-kept",
    ),
    pytest.param(
        _set("freshness_days", value=-5),
        "freshness_days",
        ["greater than or equal to 1", "(got -5)"],
        id="negative-freshness",
    ),
    pytest.param(
        _smoke({"name": "disk", "file": "/srv/index.html", "service": "nginx"}),
        "smoke.checks.0",
        ["exactly one of http, command, file or service", "(got file, service)"],
        id="smoke-check-with-two-kinds",
    ),
    pytest.param(
        _smoke({"name": "nginx", "service": "nginx"}, {"name": "nothing"}),
        "smoke.checks.1",
        ["exactly one of http, command, file or service", "(got none)"],
        id="smoke-check-with-no-kind",
    ),
    pytest.param(
        _smoke({"name": "home", "http": {"port": 70000}}),
        "smoke.checks.0.http.port",
        ["less than or equal to 65535", "(got 70000)"],
        id="smoke-http-port-out-of-range",
    ),
    pytest.param(
        _set("targets", "aws", "source", value={"ami_id": "ami-0abc", "name": "debian-*"}),
        "targets.aws.source",
        ["set either ami_id or name (with owners), not both or neither"],
        id="source-with-ami-id-and-name",
    ),
    pytest.param(
        _set("targets", "aws", "source", value={"owners": ["136693071363"]}),
        "targets.aws.source",
        ["set either ami_id or name (with owners), not both or neither"],
        id="source-with-neither",
    ),
    pytest.param(
        _set("targets", "aws", "source", value={"name": "debian-12-*"}),
        "targets.aws.source",
        ["a name filter needs owners"],
        id="name-filter-without-owners",
    ),
    pytest.param(
        _set("targets", "aws", "source", value={"ami_id": "ami-XYZ"}),
        "targets.aws.source.ami_id",
        ["should match pattern", "(got 'ami-XYZ')"],
        id="malformed-ami-id",
    ),
    pytest.param(
        _set("targets", "aws", "ssh_interface", value="public-ip"),
        "targets.aws.ssh_interface",
        ["'public_ip'", "(got 'public-ip')"],
        id="unknown-ssh-interface",
    ),
    pytest.param(
        _set("targets", value={}),
        "targets",
        ["targets must name at least one cloud (aws, azure, vsphere)"],
        id="no-cloud-target",
    ),
    pytest.param(
        _set("variables", value={"provision-script": "scripts/web.sh"}),
        "variables",
        ["not valid Packer variable names: provision-script"],
        id="bad-variable-name",
    ),
    pytest.param(
        _set("channel", value="Beta"),
        "channel",
        ["should match pattern", "(got 'Beta')"],
        id="bad-channel",
    ),
]


@pytest.mark.parametrize(("mutate", "field", "fragments"), BAD_IMAGE_FIELDS)
def test_a_bad_field_fails_with_one_error_naming_file_image_and_field(
    tmp_path: Path, template: Path, mutate: Mutation, field: str, fragments: list[str]
) -> None:
    entry = image_entry("web")
    mutate(entry)
    path = write_catalog(tmp_path, {"images": [image_entry("base"), entry]})

    problem = assert_single_problem(load_error(path), path, "image 'web'", field)

    for fragment in fragments:
        assert fragment in problem


def test_an_invalid_image_name_is_named_as_written(tmp_path: Path, template: Path) -> None:
    path = write_catalog(tmp_path, {"images": [image_entry("Web_Server")]})

    problem = assert_single_problem(load_error(path), path, "image 'Web_Server'", "name")

    assert "(got 'Web_Server')" in problem


def test_an_image_without_a_name_is_named_by_its_position(tmp_path: Path, template: Path) -> None:
    nameless = image_entry()
    del nameless["name"]
    path = write_catalog(tmp_path, {"images": [image_entry("web"), nameless]})

    problem = assert_single_problem(load_error(path), path, "image #2", "name")

    assert "Field required" in problem


def test_an_image_entry_that_is_not_a_mapping_is_named_by_its_position(
    tmp_path: Path, template: Path
) -> None:
    path = write_catalog(tmp_path, {"images": [image_entry("web"), "api"]})

    problem = assert_single_problem(load_error(path), path, "image #2", "(the image itself)")

    assert "valid dictionary" in problem
    assert "(got 'api')" in problem


def test_problems_in_several_images_are_reported_together(tmp_path: Path, template: Path) -> None:
    web = image_entry("web", freshness_days=0)
    api = image_entry("api")
    api["targets"]["aws"]["regions"] = ["mars-1"]
    path = write_catalog(tmp_path, {"images": [web, api]})

    problems = problem_lines(load_error(path))

    assert len(problems) == 2
    assert problems[0].startswith("  - image 'web', field 'freshness_days': ")
    assert problems[1].startswith("  - image 'api', field 'targets.aws.regions.0': ")


def test_a_bad_default_is_reported_against_the_image_it_reaches(
    tmp_path: Path, template: Path
) -> None:
    document = {
        "defaults": {"retention": {"keep_promotd": 3}},
        "images": [image_entry("web")],
    }
    path = write_catalog(tmp_path, document)

    problem = assert_single_problem(load_error(path), path, "image 'web'", "retention.keep_promotd")

    assert "Extra inputs are not permitted" in problem


# --- problems across images, files and the document --------------------------------------


def test_duplicate_image_names_fail_naming_the_image_and_its_entries(
    tmp_path: Path, template: Path
) -> None:
    images = [image_entry("web"), image_entry("api"), image_entry("web")]
    path = write_catalog(tmp_path, {"images": images})

    message = load_error(path)

    assert message.splitlines()[0] == f"Invalid image catalog {path}:"
    assert problem_lines(message) == [
        "  - field 'images': image 'web' is listed 2 times (entries #1, #3)"
    ]


def test_a_missing_template_file_fails_naming_image_field_and_resolved_path(
    tmp_path: Path, template: Path
) -> None:
    entry = image_entry("web", template="packer/missing.pkr.hcl")
    path = write_catalog(tmp_path, {"images": [image_entry("base"), entry]})

    problem = assert_single_problem(load_error(path), path, "image 'web'", "template")

    assert problem.endswith(f"{tmp_path / 'packer' / 'missing.pkr.hcl'} does not exist")


def test_a_template_that_is_a_directory_is_reported_missing(tmp_path: Path, template: Path) -> None:
    path = write_catalog(tmp_path, {"images": [image_entry("web", template="packer")]})

    problem = assert_single_problem(load_error(path), path, "image 'web'", "template")

    assert "does not exist" in problem


def test_an_absolute_template_path_is_used_as_is(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    absolute = elsewhere / "image.pkr.hcl"
    absolute.write_text("# template\n")
    catalog_dir = tmp_path / "include"
    write_cleanup_script(catalog_dir)
    entry = image_entry("web", template=str(absolute))

    catalog = load_catalog(write_catalog(catalog_dir, {"images": [entry]}))

    assert catalog.template_path(catalog.image("web")) == absolute


def test_invalid_yaml_fails_with_the_file_and_line_number(tmp_path: Path) -> None:
    path = write_text_catalog(tmp_path, "images:\n  - name: web\n\towners: [web-team]\n")

    message = load_error(path)

    assert message.startswith(f"Invalid YAML in image catalog {path} line 3, column 1: ")
    assert "cannot start any token" in message


def test_an_unclosed_flow_sequence_reports_where_parsing_failed(tmp_path: Path) -> None:
    text = "images:\n  - name: web\n    owners: [web-team\n  - name: api\n"
    path = write_text_catalog(tmp_path, text)

    message = load_error(path)

    assert message.startswith(f"Invalid YAML in image catalog {path} line 4, ")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("- name: web\n", id="list"),
        pytest.param("just a string\n", id="scalar"),
        pytest.param("", id="empty-file"),
    ],
)
def test_a_top_level_that_is_not_a_mapping_fails(tmp_path: Path, text: str) -> None:
    path = write_text_catalog(tmp_path, text)

    assert load_error(path) == (f"Invalid image catalog {path}: the top level must be a mapping")


@pytest.mark.parametrize(
    "images",
    [
        pytest.param([], id="empty-list"),
        pytest.param(None, id="null"),
        pytest.param({"web": {}}, id="mapping"),
    ],
)
def test_images_must_be_a_non_empty_list(tmp_path: Path, images: Any) -> None:
    path = write_catalog(tmp_path, {"images": images})

    assert load_error(path) == (f"Invalid image catalog {path}: 'images' must be a non-empty list")


def test_a_catalog_without_images_fails(tmp_path: Path) -> None:
    path = write_catalog(tmp_path, {"defaults": {"owners": ["platform-team"]}})

    assert "'images' must be a non-empty list" in load_error(path)


def test_an_unknown_top_level_key_fails_naming_it(tmp_path: Path, template: Path) -> None:
    path = write_catalog(tmp_path, {"image": [], "images": [image_entry()], "default": {}})

    assert load_error(path) == (
        f"Invalid image catalog {path}: unknown top-level key(s) default, image"
        " (expected defaults, images)"
    )


def test_a_non_string_top_level_key_is_reported_not_crashed_on(
    tmp_path: Path, template: Path
) -> None:
    # YAML 1.1 reads a bare `on:` as the boolean true.
    path = write_text_catalog(tmp_path, "on: push\nimages: []\n")

    message = load_error(path)

    assert message == (
        f"Invalid image catalog {path}: unknown top-level key(s) True (expected defaults, images)"
    )


def test_defaults_that_are_not_a_mapping_fail(tmp_path: Path, template: Path) -> None:
    path = write_catalog(tmp_path, {"defaults": ["owners"], "images": [image_entry()]})

    assert load_error(path) == f"Invalid image catalog {path}: 'defaults' must be a mapping"


def test_cloud_defaults_for_an_unknown_cloud_fail(tmp_path: Path, template: Path) -> None:
    document = {
        "defaults": {"targets": {"asw": {"instance_type": "t3.small"}}},
        "images": [image_entry()],
    }
    path = write_catalog(tmp_path, document)

    assert load_error(path) == (
        f"Invalid image catalog {path}: field 'defaults.targets':"
        " unknown cloud(s) asw (expected aws, azure, vsphere)"
    )


@pytest.mark.parametrize(
    ("targets", "field"),
    [
        pytest.param(["aws"], "defaults.targets", id="targets-is-a-list"),
        pytest.param({"aws": ["t3.small"]}, "defaults.targets.aws", id="cloud-is-a-list"),
    ],
)
def test_cloud_defaults_must_be_mappings(
    tmp_path: Path, template: Path, targets: Any, field: str
) -> None:
    path = write_catalog(tmp_path, {"defaults": {"targets": targets}, "images": [image_entry()]})

    message = load_error(path)

    assert message.startswith(f"Invalid image catalog {path}: field '{field}' must be a mapping")


def test_a_catalog_file_that_does_not_exist_fails_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"

    assert load_error(path) == (f"Cannot read image catalog {path}: No such file or directory")


# --- defaults -----------------------------------------------------------------------------


def load_with_defaults(tmp_path: Path, defaults: dict[str, Any], *images: Any) -> Catalog:
    return load_catalog(write_catalog(tmp_path, {"defaults": defaults, "images": list(images)}))


def test_defaults_fill_fields_an_image_leaves_out(tmp_path: Path, template: Path) -> None:
    catalog = load_with_defaults(
        tmp_path, {"freshness_days": 14, "channel": "beta"}, image_entry("web")
    )

    web = catalog.image("web")
    assert (web.freshness_days, web.channel) == (14, "beta")


def test_an_image_setting_wins_over_the_default(tmp_path: Path, template: Path) -> None:
    catalog = load_with_defaults(
        tmp_path,
        {"freshness_days": 14, "owners": ["platform-team"]},
        image_entry("web", freshness_days=3),
        image_entry("api", owners=["api-team"]),
    )

    assert catalog.image("web").freshness_days == 3
    assert catalog.image("web").owners == ("web-team",)
    assert catalog.image("api").freshness_days == 14
    assert catalog.image("api").owners == ("api-team",)


def test_defaults_supply_required_fields(tmp_path: Path, template: Path) -> None:
    entry = image_entry("web")
    del entry["owners"]

    catalog = load_with_defaults(tmp_path, {"owners": ["platform-team"]}, entry)

    assert catalog.image("web").owners == ("platform-team",)


def test_nested_defaults_merge_key_by_key(tmp_path: Path, template: Path) -> None:
    defaults = {
        "retention": {"keep_promoted": 5, "keep_younger_than_days": 10},
        "variables": {"region_hint": "us", "debug": False},
    }
    entry = image_entry(
        "web",
        retention={"keep_younger_than_days": 1},
        variables={"debug": True, "provision_script": "scripts/web.sh"},
    )

    web = load_with_defaults(tmp_path, defaults, entry).image("web")

    assert web.retention.keep_promoted == 5
    assert web.retention.keep_younger_than_days == 1
    assert web.retention.failed_grace_days == 2  # the model's own default
    assert dict(web.variables) == {
        "region_hint": "us",
        "debug": True,
        "provision_script": "scripts/web.sh",
    }


def test_cloud_defaults_apply_to_images_naming_that_cloud(tmp_path: Path, template: Path) -> None:
    defaults = {
        "targets": {
            "aws": {
                "connection_id": "aws_bakery",
                "instance_type": "t3.micro",
                "subnet_tags": {"bakery-build": "true"},
            }
        }
    }
    web = image_entry("web")
    web["targets"]["aws"]["instance_type"] = "c7g.large"
    web["targets"]["aws"]["subnet_tags"] = {"team": "web"}

    aws = load_with_defaults(tmp_path, defaults, web).image("web").targets.aws

    assert aws is not None
    assert aws.connection_id == "aws_bakery"
    assert aws.instance_type == "c7g.large"
    assert aws.subnet_tags == {"bakery-build": "true", "team": "web"}
    assert aws.regions == ("us-east-1", "eu-west-1")


def test_cloud_defaults_do_not_add_a_cloud_to_an_image_without_it(
    tmp_path: Path, template: Path
) -> None:
    defaults = {"targets": {"aws": {"regions": ["us-east-1"], "source": {"ami_id": "ami-0abc"}}}}
    path = write_catalog(
        tmp_path, {"defaults": defaults, "images": [image_entry("web", targets={})]}
    )

    problem = assert_single_problem(load_error(path), path, "image 'web'", "targets")

    assert "targets must name at least one cloud" in problem


def test_cloud_defaults_can_complete_an_images_cloud_settings(
    tmp_path: Path, template: Path
) -> None:
    defaults = {"targets": {"aws": {"source": {"ami_id": "ami-0abc"}}}}
    entry = image_entry("web", targets={"aws": {"regions": ["eu-central-1"]}})

    aws = load_with_defaults(tmp_path, defaults, entry).image("web").targets.aws

    assert aws is not None
    assert aws.source.ami_id == "ami-0abc"
    assert aws.regions == ("eu-central-1",)


def test_defaults_do_not_leak_between_images(tmp_path: Path, template: Path) -> None:
    defaults = {"retention": {"keep_promoted": 4}}
    catalog = load_with_defaults(
        tmp_path,
        defaults,
        image_entry("web", retention={"keep_promoted": 9}),
        image_entry("api"),
    )

    assert catalog.image("web").retention.keep_promoted == 9
    assert catalog.image("api").retention.keep_promoted == 4


# --- the bake fan-out ---------------------------------------------------------------------


@pytest.fixture
def catalog(tmp_path: Path, template: Path) -> Catalog:
    api = image_entry("api")
    api["targets"]["aws"]["regions"] = ["eu-west-1", "ap-southeast-2"]
    return load_catalog(write_catalog(tmp_path, {"images": [image_entry("web"), api]}))


def labels(targets: list[BakeTarget]) -> list[str]:
    return [target.label for target in targets]


def test_bake_targets_without_filters_is_every_image_cloud_and_region(catalog: Catalog) -> None:
    assert labels(catalog.bake_targets()) == [
        "web/aws/us-east-1",
        "web/aws/eu-west-1",
        "api/aws/eu-west-1",
        "api/aws/ap-southeast-2",
    ]


def test_bake_targets_narrowed_by_image(catalog: Catalog) -> None:
    assert labels(catalog.bake_targets(images=["api"])) == [
        "api/aws/eu-west-1",
        "api/aws/ap-southeast-2",
    ]


def test_bake_targets_narrowed_by_cloud(catalog: Catalog) -> None:
    assert labels(catalog.bake_targets(clouds=["aws"])) == labels(catalog.bake_targets())


def test_bake_targets_narrowed_by_region(catalog: Catalog) -> None:
    assert labels(catalog.bake_targets(regions=["eu-west-1"])) == [
        "web/aws/eu-west-1",
        "api/aws/eu-west-1",
    ]


def test_bake_targets_filters_combine(catalog: Catalog) -> None:
    targets = catalog.bake_targets(images=["web"], clouds=["aws"], regions=["eu-west-1"])

    assert labels(targets) == ["web/aws/eu-west-1"]


def test_bake_targets_filters_may_be_one_shot_iterables(catalog: Catalog) -> None:
    targets = catalog.bake_targets(
        images=(name for name in ["web", "api"]),
        regions=(region for region in ["eu-west-1", "ap-southeast-2"]),
    )

    assert labels(targets) == [
        "web/aws/eu-west-1",
        "api/aws/eu-west-1",
        "api/aws/ap-southeast-2",
    ]


def test_bake_targets_with_an_empty_filter_is_empty(catalog: Catalog) -> None:
    assert catalog.bake_targets(images=[]) == []


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param(
            {"images": ["web", "wbe", "db"]},
            "unknown image(s) db, wbe; the catalog has api, web",
            id="image",
        ),
        pytest.param(
            {"clouds": ["gcp"]},
            "unknown cloud(s) gcp; the catalog has aws, azure, vsphere",
            id="cloud",
        ),
        pytest.param(
            {"regions": ["us-west-2"]},
            "unknown region(s) us-west-2; the catalog has ap-southeast-2, eu-west-1, us-east-1",
            id="region",
        ),
    ],
)
def test_bake_targets_rejects_unknown_names(
    catalog: Catalog, filters: dict[str, list[str]], expected: str
) -> None:
    with pytest.raises(CatalogError) as caught:
        catalog.bake_targets(**filters)

    assert str(caught.value) == expected


def test_bake_target_label_is_image_cloud_region() -> None:
    target = BakeTarget(image="web", cloud=Cloud.AWS, region="us-east-1")

    assert target.label == "web/aws/us-east-1"


def test_bake_target_round_trips_through_json_for_task_mapping(catalog: Catalog) -> None:
    target = catalog.bake_targets(images=["api"], regions=["ap-southeast-2"])[0]

    dumped = target.model_dump(mode="json")

    assert dumped == {"image": "api", "cloud": "aws", "region": "ap-southeast-2"}
    assert BakeTarget.model_validate(dumped) == target


# --- lookups ------------------------------------------------------------------------------


def test_image_lookup_by_name(catalog: Catalog) -> None:
    assert catalog.image("api").name == "api"


def test_image_lookup_of_an_unknown_name_fails_naming_it_and_the_file(
    catalog: Catalog,
) -> None:
    with pytest.raises(CatalogError) as caught:
        catalog.image("db")

    assert str(caught.value) == f"image 'db' is not in the catalog {catalog.source_path}"


def test_templates_resolve_against_the_catalog_folder(
    catalog: Catalog, tmp_path: Path, template: Path
) -> None:
    assert catalog.include_dir == tmp_path
    assert catalog.template_path(catalog.image("web")) == template


def test_a_catalog_not_loaded_from_a_file_has_no_include_dir() -> None:
    raw = copy.deepcopy(image_entry("web"))
    catalog = Catalog(images=(Image.model_validate(raw),))

    with pytest.raises(CatalogError, match="not loaded from a file"):
        _ = catalog.include_dir


def test_catalog_models_are_frozen(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="frozen"):
        catalog.image("web").freshness_days = 1  # type: ignore[misc]


# --- hygiene: clean-up, secret inputs, smoke user-data ------------------------------------


def test_every_image_gets_the_shared_cleanup_script_unless_it_names_its_own(
    tmp_path: Path, template: Path
) -> None:
    write_cleanup_script(tmp_path)
    (tmp_path / "scripts" / "strict-cleanup.sh").write_text("#!/bin/sh\n")
    own = image_entry("api", cleanup_script="scripts/strict-cleanup.sh")
    catalog = load_catalog(write_catalog(tmp_path, {"images": [image_entry("web"), own]}))

    assert catalog.image("web").cleanup_script == "scripts/cleanup.sh"
    assert catalog.image("api").cleanup_script == "scripts/strict-cleanup.sh"


@pytest.mark.parametrize(
    ("field", "overrides", "relative"),
    [
        ("cleanup_script", {"cleanup_script": "scripts/gone.sh"}, "scripts/gone.sh"),
        (
            "smoke.user_data",
            {"smoke": {"user_data": "cloud-init/gone.yaml"}},
            "cloud-init/gone.yaml",
        ),
    ],
)
def test_a_missing_referenced_file_fails_naming_its_field(
    tmp_path: Path, template: Path, field: str, overrides: dict[str, Any], relative: str
) -> None:
    path = write_catalog(tmp_path, {"images": [image_entry("web", **overrides)]})

    problem = assert_single_problem(load_error(path), path, "image 'web'", field)

    assert problem.endswith(f"{tmp_path / relative} does not exist")


@pytest.mark.parametrize(
    ("secret", "field", "message"),
    [
        ({"env": "feed-token", "connection": "feed"}, "secrets.0.env", "should match pattern"),
        ({"env": "TOKEN", "connection": "feed", "field": "extra"}, "secrets.0", "set key"),
        ({"env": "TOKEN", "connection": "feed", "key": "token"}, "secrets.0", "set key"),
        ({"env": "TOKEN", "connection": "feed", "field": "host"}, "secrets.0.field", "Input"),
    ],
)
def test_bad_secret_inputs_fail_naming_the_field(
    tmp_path: Path, template: Path, secret: dict[str, str], field: str, message: str
) -> None:
    path = write_catalog(tmp_path, {"images": [image_entry("web", secrets=[secret])]})

    problem = assert_single_problem(load_error(path), path, "image 'web'", field)

    assert message in problem


def test_a_secret_env_name_listed_twice_is_an_error(tmp_path: Path, template: Path) -> None:
    twice = [{"env": "TOKEN", "connection": "a"}, {"env": "TOKEN", "connection": "b"}]
    path = write_catalog(tmp_path, {"images": [image_entry("web", secrets=twice)]})

    problem = assert_single_problem(load_error(path), path, "image 'web'", "secrets")

    assert "TOKEN" in problem


def test_hygiene_allow_paths_add_to_the_host_key_default(tmp_path: Path, template: Path) -> None:
    entry = image_entry("web", hygiene={"allow_paths": ["/opt/vendor/*.pem"]})
    catalog = load_catalog(write_catalog(tmp_path, {"images": [entry]}))

    assert catalog.image("web").hygiene.allowed == ("/etc/ssh/ssh_host_*_key", "/opt/vendor/*.pem")


def test_a_relative_allow_path_is_an_error(tmp_path: Path, template: Path) -> None:
    entry = image_entry("web", hygiene={"allow_paths": ["opt/vendor/*.pem"]})
    path = write_catalog(tmp_path, {"images": [entry]})

    assert_single_problem(load_error(path), path, "image 'web'", "hygiene.allow_paths.0")
