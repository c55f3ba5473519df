"""Unit tests for the parse-time catalog summary and its cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import bakery.catalog
from bakery import catalog_summary
from bakery.catalog import CatalogError, load_catalog
from bakery.catalog_summary import CatalogSummary, cache_dir, load_catalog_summary
from tests.catalog_files import write_cleanup_script


class ValidationCounter:
    """Wraps bakery.catalog.load_catalog to count full validations."""

    def __init__(self) -> None:
        self.calls = 0
        self.after: Any = None  # called with the path after each validation

    def __call__(self, path: Path | None = None) -> bakery.catalog.Catalog:
        self.calls += 1
        try:
            return load_catalog(path)
        finally:
            if self.after is not None:
                self.after(path)


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> ValidationCounter:
    counter = ValidationCounter()
    monkeypatch.setattr(bakery.catalog, "load_catalog", counter)
    return counter


@pytest.fixture
def summary_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(path))
    return path


@pytest.fixture
def include(tmp_path: Path) -> Path:
    """A catalog folder with one template, linux.pkr.hcl, under packer/."""
    folder = tmp_path / "include"
    (folder / "packer").mkdir(parents=True)
    (folder / "packer" / "linux.pkr.hcl").write_text('source "amazon-ebs" "linux" {}\n')
    write_cleanup_script(folder)
    return folder


def image_entry(name: str, regions: list[str], **overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name,
        "owners": ["web-team"],
        "template": "packer/linux.pkr.hcl",
        "targets": {
            "aws": {"regions": regions, "source": {"ami_id": "ami-0123456789abcdef0"}},
        },
    }
    entry.update(overrides)
    return entry


def write_catalog(folder: Path, images: list[dict[str, Any]] | None = None) -> Path:
    document = {
        "defaults": {"targets": {"aws": {"connection_id": "aws_bakery"}}},
        "images": images
        or [
            image_entry("web", ["us-east-1", "eu-west-1"]),
            image_entry("api", ["eu-west-1"]),
        ],
    }
    path = folder / "catalog.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def cache_files(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.is_dir() else []


def catalog_error(path: Path) -> str:
    with pytest.raises(CatalogError) as caught:
        load_catalog_summary(path)
    return str(caught.value)


# --- the summary --------------------------------------------------------------------------


def test_the_summary_holds_what_the_dags_need_at_parse_time(
    include: Path, summary_cache: Path, validations: ValidationCounter
) -> None:
    path = write_catalog(
        include,
        [
            image_entry("web", ["us-east-1", "eu-west-1"]),
            image_entry(
                "api",
                ["eu-west-1", "ap-south-1"],
                targets={
                    "aws": {
                        "regions": ["eu-west-1", "ap-south-1"],
                        "source": {"ami_id": "ami-0123456789abcdef0"},
                        "connection_id": "aws_other",
                    }
                },
            ),
        ],
    )

    summary = load_catalog_summary(path)

    assert summary == CatalogSummary(
        image_names=("web", "api"),  # catalog order, as the trigger form lists them
        regions=("ap-south-1", "eu-west-1", "us-east-1"),
        locations=(
            ("aws_bakery", "eu-west-1"),
            ("aws_bakery", "us-east-1"),
            ("aws_other", "ap-south-1"),
            ("aws_other", "eu-west-1"),
        ),
        assets=("x-bakery://aws/api", "x-bakery://aws/web"),
        template_paths=(
            str(include / "packer" / "linux.pkr.hcl"),
            str(include / "scripts" / "cleanup.sh"),
        ),
    )
    assert summary == CatalogSummary.from_catalog(load_catalog(path))


def test_without_a_path_the_summary_is_of_the_configured_catalog(
    include: Path, summary_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_catalog(include)
    monkeypatch.setenv("BAKERY_CATALOG", str(path))

    assert load_catalog_summary().image_names == ("web", "api")


# --- caching ------------------------------------------------------------------------------


def test_a_valid_catalog_is_cached_and_not_validated_again(
    include: Path, summary_cache: Path, validations: ValidationCounter
) -> None:
    path = write_catalog(include)

    first = load_catalog_summary(path)
    assert validations.calls == 1
    assert len(cache_files(summary_cache)) == 1  # and no temporary file left behind

    second = load_catalog_summary(path)
    third = load_catalog_summary(path)

    assert validations.calls == 1
    assert first == second == third


def test_changing_one_byte_of_the_catalog_invalidates_the_cache(
    include: Path, summary_cache: Path, validations: ValidationCounter
) -> None:
    path = write_catalog(include)
    load_catalog_summary(path)
    content = path.read_bytes()
    path.write_bytes(content.replace(b"us-east-1", b"us-east-2", 1))

    summary = load_catalog_summary(path)

    assert validations.calls == 2
    assert summary.regions == ("eu-west-1", "us-east-2")
    load_catalog_summary(path)
    assert validations.calls == 2  # the new content is cached in turn


def test_a_bad_catalog_fails_on_every_load_and_is_never_cached(
    include: Path, summary_cache: Path, validations: ValidationCounter
) -> None:
    path = write_catalog(include, [image_entry("web", ["us-east-1", "mars-north-1"])])
    expected = str(pytest.raises(CatalogError, load_catalog, path).value)

    for _ in range(3):
        assert catalog_error(path) == expected

    assert "image 'web'" in expected and "mars-north-1" in expected
    assert validations.calls == 3
    assert cache_files(summary_cache) == []


def test_a_catalog_broken_after_it_was_cached_fails(
    include: Path, summary_cache: Path, validations: ValidationCounter
) -> None:
    path = write_catalog(include)
    load_catalog_summary(path)
    path.write_text(path.read_text() + "    freshnes_days: 14\n", encoding="utf-8")

    message = catalog_error(path)

    assert "freshnes_days" in message
    assert catalog_error(path) == message


def test_a_yaml_error_keeps_its_line_and_column(include: Path, summary_cache: Path) -> None:
    path = include / "catalog.yaml"
    path.write_text("images:\n  - name: web\n\towners: [web-team]\n", encoding="utf-8")

    message = catalog_error(path)

    assert message.startswith(f"Invalid YAML in image catalog {path} line 3, column 1: ")


def test_a_deleted_template_is_detected_with_a_warm_cache(
    include: Path, summary_cache: Path, validations: ValidationCounter
) -> None:
    path = write_catalog(include)
    load_catalog_summary(path)
    template = include / "packer" / "linux.pkr.hcl"
    template.unlink()

    message = catalog_error(path)

    assert validations.calls == 2
    assert f"field 'template': {template} does not exist" in message
    template.write_text("# back\n")
    load_catalog_summary(path)  # still valid and cached: no template check failed
    assert validations.calls == 2


def test_the_same_bytes_elsewhere_are_validated_where_they_are(
    tmp_path: Path, include: Path, summary_cache: Path, validations: ValidationCounter
) -> None:
    """Templates resolve against the catalog's folder: a copy without them must fail."""
    path = write_catalog(include)
    load_catalog_summary(path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    copy = elsewhere / "catalog.yaml"
    copy.write_bytes(path.read_bytes())

    assert "does not exist" in catalog_error(copy)
    assert load_catalog_summary(path).image_names == ("web", "api")
    assert validations.calls == 2


def test_a_new_cache_version_invalidates_the_cache(
    include: Path,
    summary_cache: Path,
    validations: ValidationCounter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_catalog(include)
    load_catalog_summary(path)
    monkeypatch.setattr(catalog_summary, "CACHE_VERSION", catalog_summary.CACHE_VERSION + 1)

    load_catalog_summary(path)

    assert validations.calls == 2


def test_changed_validation_code_invalidates_the_cache(
    tmp_path: Path,
    include: Path,
    summary_cache: Path,
    validations: ValidationCounter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The key covers the source of bakery.catalog: new rules re-check a cached catalog."""
    path = write_catalog(include)
    load_catalog_summary(path)
    code = tmp_path / "code"
    code.mkdir()
    for name in catalog_summary._KEYED_SOURCES:
        source = Path(catalog_summary.__file__).with_name(name).read_text()
        (code / name).write_text(source + ("\n# changed\n" if name == "catalog.py" else ""))
    monkeypatch.setattr(catalog_summary, "__file__", str(code / "catalog_summary.py"))

    load_catalog_summary(path)

    assert validations.calls == 2


def test_a_catalog_edited_during_validation_is_not_cached(
    include: Path, summary_cache: Path, validations: ValidationCounter
) -> None:
    path = write_catalog(include)
    original = path.read_bytes()

    def edit(_: Path | None) -> None:
        path.write_bytes(original.replace(b"us-east-1", b"us-east-2", 1))
        validations.after = None

    validations.after = edit
    load_catalog_summary(path)
    assert cache_files(summary_cache) == []

    path.write_bytes(original)  # back to the bytes first read: must still validate
    load_catalog_summary(path)

    assert validations.calls == 2


# --- a broken cache never breaks a parse --------------------------------------------------


@pytest.mark.parametrize(
    "corruption",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b"\xff\xfe\x00garbage", id="not-utf8"),
        pytest.param(b"[1, 2, 3]", id="a-list"),
        pytest.param(b'{"key": 1}', id="wrong-key-type"),
    ],
)
def test_a_corrupt_cache_file_falls_back_to_validation_and_is_rewritten(
    include: Path, summary_cache: Path, validations: ValidationCounter, corruption: bytes
) -> None:
    path = write_catalog(include)
    expected = load_catalog_summary(path)
    (cache_file,) = summary_cache.iterdir()
    cache_file.write_bytes(corruption)

    assert load_catalog_summary(path) == expected
    assert validations.calls == 2
    assert load_catalog_summary(path) == expected
    assert validations.calls == 2  # rewritten by the validating load


@pytest.mark.parametrize(
    "summary",
    [
        pytest.param(None, id="missing"),
        pytest.param({"image_names": ["web"]}, id="fields-missing"),
        pytest.param(
            {
                "image_names": ["web", 3],
                "regions": [],
                "locations": [],
                "template_paths": [],
            },
            id="not-strings",
        ),
        pytest.param(
            {
                "image_names": ["web"],
                "regions": ["us-east-1"],
                "locations": [["aws_bakery"]],
                "template_paths": [],
            },
            id="location-not-a-pair",
        ),
    ],
)
def test_a_cache_entry_with_the_right_key_but_a_bad_summary_is_ignored(
    include: Path, summary_cache: Path, validations: ValidationCounter, summary: Any
) -> None:
    path = write_catalog(include)
    expected = load_catalog_summary(path)
    (cache_file,) = summary_cache.iterdir()
    entry = json.loads(cache_file.read_text())
    cache_file.write_text(json.dumps({"key": entry["key"], "summary": summary}))

    assert load_catalog_summary(path) == expected
    assert validations.calls == 2


@pytest.mark.parametrize("where", ["a-file", "under-a-file"])
def test_an_unusable_cache_dir_still_loads_by_validating(
    tmp_path: Path,
    include: Path,
    validations: ValidationCounter,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be\n")
    # Permissions would not stop root; a file in the way stops everyone.
    target = blocker if where == "a-file" else blocker / "cache"
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(target))
    path = write_catalog(include)

    assert load_catalog_summary(path).image_names == ("web", "api")
    assert load_catalog_summary(path).image_names == ("web", "api")
    assert validations.calls == 2
    assert blocker.read_text() == "a file where the cache folder should be\n"


def test_a_failed_cache_write_leaves_no_temporary_file(
    include: Path,
    summary_cache: Path,
    validations: ValidationCounter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fail(*_: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(catalog_summary.os, "replace", fail)
    path = write_catalog(include)

    assert load_catalog_summary(path).image_names == ("web", "api")
    assert cache_files(summary_cache) == []


def test_an_unreadable_catalog_still_fails_with_the_catalog_error(
    include: Path, summary_cache: Path
) -> None:
    missing = include / "nope.yaml"

    assert catalog_error(missing).startswith(f"Cannot read image catalog {missing}: ")


# --- where the cache lives ----------------------------------------------------------------


def test_the_cache_dir_is_bakery_cache_dir_then_airflow_home_then_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("BAKERY_CACHE_DIR", str(tmp_path / "explicit"))
    assert cache_dir() == tmp_path / "explicit"

    monkeypatch.delenv("BAKERY_CACHE_DIR")
    assert cache_dir() == tmp_path / "airflow" / ".bakery-cache"

    monkeypatch.delenv("AIRFLOW_HOME")
    assert cache_dir() == tmp_path / "home" / ".cache" / "bakery"


def test_each_catalog_path_has_its_own_cache_file(
    tmp_path: Path, include: Path, summary_cache: Path
) -> None:
    other = tmp_path / "other"
    (other / "packer").mkdir(parents=True)
    (other / "packer" / "linux.pkr.hcl").write_text("# template\n")
    write_cleanup_script(other)

    load_catalog_summary(write_catalog(include))
    load_catalog_summary(write_catalog(other, [image_entry("db", ["us-west-2"])]))

    assert len(cache_files(summary_cache)) == 2
    assert load_catalog_summary(include / "catalog.yaml").image_names == ("web", "api")
    assert load_catalog_summary(other / "catalog.yaml").image_names == ("db",)
