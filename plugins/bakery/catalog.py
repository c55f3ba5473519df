"""The image catalog: which golden images exist, where they are baked and how they are kept.

The catalog is YAML validated by pydantic models. A bad catalog fails with one
`CatalogError` that names the file, the image and the field, so that a typo breaks the
DAG import with a message an on-call engineer can act on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bakery.constants import catalog_path

IMAGE_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
AWS_REGION_PATTERN = r"^[a-z]{2}(-gov)?-[a-z]+-\d$"
AZURE_LOCATION_PATTERN = r"^[a-z][a-z0-9]{2,39}$"
AZURE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"
VARIABLE_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENV_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]*$"
DEFAULT_CLEANUP_SCRIPT = "scripts/cleanup.sh"
# Per-instance identity that first boot writes: never a finding, whatever the image.
DEFAULT_HYGIENE_ALLOW = ("/etc/ssh/ssh_host_*_key",)
# Airflow connection ids: what `airflow connections add` accepts without quoting.
CONNECTION_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,250}$"


def _at_least_one(items: tuple[Any, ...]) -> tuple[Any, ...]:
    # Not Field(min_length=1): pydantic counts only the items that validated, so one bad
    # entry in a one-item list would also be reported as an empty list.
    if not items:
        raise ValueError("list at least one")
    return items


class Cloud(StrEnum):
    AWS = "aws"
    AZURE = "azure"
    VSPHERE = "vsphere"


class CatalogError(ValueError):
    """The catalog file cannot be read or does not validate."""


class _Model(BaseModel):
    # Unknown keys are typos far more often than intent: reject them by name.
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetentionPolicy(_Model):
    """What prune keeps. Promoted-current and in-use images are always kept."""

    keep_promoted: int = Field(default=3, ge=1)
    keep_younger_than_days: int = Field(default=7, ge=0)
    failed_grace_days: int = Field(default=2, ge=0)


class AlertPolicy(_Model):
    """Who hears about this image's failures, and when its failures count as broken."""

    # Airflow connection ids (SMTP, webhook or AWS SNS); empty sends to the default channel.
    channels: tuple[Annotated[str, Field(pattern=CONNECTION_ID_PATTERN)], ...] = ()
    # Failed on this many consecutive bake runs: reported broken rather than failing again.
    broken_after_failures: int = Field(default=3, ge=1)


class HttpCheck(_Model):
    port: int = Field(default=80, ge=1, le=65535)
    path: str = "/"
    scheme: Literal["http", "https"] = "http"
    expect_status: int = Field(default=200, ge=100, le=599)
    expect_body: str | None = None


class CommandCheck(_Model):
    run: str = Field(min_length=1)
    expect_exit_code: int = 0
    expect_output: str | None = None


class SmokeCheck(_Model):
    """One smoke check; exactly one of http, command, file or service is set."""

    name: str = Field(min_length=1)
    http: HttpCheck | None = None
    command: CommandCheck | None = None
    file: str | None = None
    service: str | None = None

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> SmokeCheck:
        kinds = [k for k in ("http", "command", "file", "service") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "a smoke check needs exactly one of http, command, file or service"
                f" (got {', '.join(kinds) or 'none'})"
            )
        return self


class SmokeTest(_Model):
    timeout_seconds: int = Field(default=600, ge=10)
    # Services may still be starting when SSH first answers; failing checks are retried
    # for this long before they count.
    settle_seconds: int = Field(default=60, ge=0)
    checks: tuple[SmokeCheck, ...] = ()
    # cloud-init user-data for the smoke instance (a file under include/), so checks can
    # prove that identity injected at boot takes effect.
    user_data: str | None = Field(default=None, min_length=1)


class Hygiene(_Model):
    """The hygiene scan every smoke test runs before an image may be promoted."""

    # Shell globs of paths exempt from the private-key and access-key rules.
    allow_paths: tuple[Annotated[str, Field(pattern=r"^/")], ...] = ()
    # Where the platform runs no cloud-init (templates customised another way).
    expect_cloud_init: bool = True

    @property
    def allowed(self) -> tuple[str, ...]:
        return DEFAULT_HYGIENE_ALLOW + self.allow_paths


class SecretInput(_Model):
    """A secret a provisioner needs (a package feed token, say), read from an Airflow
    connection at bake time and handed to Packer only through its environment."""

    env: str = Field(pattern=ENV_NAME_PATTERN)
    connection: str = Field(min_length=1)
    field: Literal["password", "login", "extra"] = "password"
    # For field `extra`: the key in the connection's extra JSON.
    key: str | None = None

    @model_validator(mode="after")
    def _key_with_extra(self) -> SecretInput:
        if (self.field == "extra") != (self.key is not None):
            raise ValueError("set key exactly when field is extra")
        return self


class AwsSourceImage(_Model):
    """The base AMI: a fixed id, or the newest image matching a name pattern and owners."""

    ami_id: str | None = Field(default=None, pattern=r"^ami-[0-9a-f]+$")
    name: str | None = None
    owners: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _id_or_filter(self) -> AwsSourceImage:
        if (self.ami_id is None) == (self.name is None):
            raise ValueError("set either ami_id or name (with owners), not both or neither")
        if self.name is not None and not self.owners:
            raise ValueError("a name filter needs owners, or any account could publish the AMI")
        return self


class AwsTarget(_Model):
    """Where and how an image is baked on AWS."""

    regions: Annotated[
        tuple[Annotated[str, Field(pattern=AWS_REGION_PATTERN)], ...],
        AfterValidator(_at_least_one),
    ]
    source: AwsSourceImage
    connection_id: str = "aws_default"
    instance_type: str = "t3.micro"
    ssh_username: str = "admin"
    ssh_interface: Literal["public_ip", "private_ip", "public_dns", "private_dns"] = "private_ip"
    subnet_tags: Mapping[str, str] = Field(default_factory=dict)
    volume_size_gb: int = Field(default=8, ge=1)
    # After promotion the image is copied to these regions and promoted there too.
    copy_to_regions: tuple[Annotated[str, Field(pattern=AWS_REGION_PATTERN)], ...] = ()

    @field_validator("regions")
    @classmethod
    def _unique_regions(cls, regions: tuple[str, ...]) -> tuple[str, ...]:
        duplicates = sorted({r for r in regions if regions.count(r) > 1})
        if duplicates:
            raise ValueError(f"regions listed twice: {', '.join(duplicates)}")
        return regions

    @model_validator(mode="after")
    def _copies_go_elsewhere(self) -> AwsTarget:
        baked_there = sorted(set(self.copy_to_regions) & set(self.regions))
        if baked_there:
            raise ValueError(
                f"copy_to_regions lists {', '.join(baked_there)}, already baked in directly"
            )
        return self


class AzureSourceImage(_Model):
    """The base image: a managed image's resource id, or a Marketplace image."""

    image_id: str | None = Field(
        default=None,
        pattern=r"(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/images/[^/]+$",
    )
    publisher: str | None = None
    offer: str | None = None
    sku: str | None = None
    version: str = "latest"

    @model_validator(mode="after")
    def _id_or_marketplace(self) -> AzureSourceImage:
        marketplace = (self.publisher, self.offer, self.sku)
        if (self.image_id is None) == (None in marketplace):
            raise ValueError("set either image_id, or publisher, offer and sku (not both)")
        return self


class AzureTarget(_Model):
    """Where and how an image is baked on Azure: Compute Gallery image versions (each with
    the managed image Packer makes) in `locations`, replicated to `replica_regions`."""

    locations: Annotated[
        tuple[Annotated[str, Field(pattern=AZURE_LOCATION_PATTERN)], ...],
        AfterValidator(_at_least_one),
    ]
    source: AzureSourceImage
    connection_id: str = "azure_bakery"
    # Empty: the connection's subscription.
    subscription_id: str | None = Field(default=None, pattern=r"^[0-9a-fA-F-]{36}$")
    resource_group: str = Field(pattern=r"^[-\w._()]{1,90}$")
    gallery: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._]{0,79}$")
    # Empty: the catalog image's name.
    image_definition: str | None = Field(default=None, pattern=AZURE_NAME_PATTERN)
    template: str = "packer/azure-linux.pkr.hcl"
    replica_regions: tuple[Annotated[str, Field(pattern=AZURE_LOCATION_PATTERN)], ...] = ()
    replica_count: int = Field(default=1, ge=1, le=100)
    vm_size: str = "Standard_B1s"
    ssh_username: str = "azureuser"
    ssh_interface: Literal["private_ip", "public_ip"] = "private_ip"
    # The subnet smoke-test VMs (and Packer's builder VM) join.
    subnet_id: str = Field(pattern=r"^/subscriptions/.+/subnets/[^/]+$")
    # latest: the promoted version is the gallery's latest (the others are excluded from
    # latest); tag: only the bakery:channel tag moves, for consumers that resolve by tag.
    promotion: Literal["latest", "tag"] = "latest"
    # Superseded versions get an end-of-life date this many days after they are replaced.
    end_of_life_days: int = Field(default=30, ge=0)
    # packer: bake with Packer's azure-arm builder. register-source: publish the source
    # managed image unchanged as a new version, without Packer or the provisioning script
    # (for the sandbox, whose ARM server Packer 1.6.6 cannot reach).
    bake: Literal["packer", "register-source"] = "packer"

    @model_validator(mode="after")
    def _register_needs_a_managed_source(self) -> AzureTarget:
        if self.bake == "register-source" and self.source.image_id is None:
            raise ValueError("bake: register-source needs source.image_id (a managed image)")
        return self

    @property
    def regions(self) -> tuple[str, ...]:
        """The fan-out's regions are Azure locations."""
        return self.locations

    @field_validator("locations")
    @classmethod
    def _unique_locations(cls, locations: tuple[str, ...]) -> tuple[str, ...]:
        duplicates = sorted({r for r in locations if locations.count(r) > 1})
        if duplicates:
            raise ValueError(f"locations listed twice: {', '.join(duplicates)}")
        return locations


class VsphereTarget(_Model):
    """Where and how an image is baked on vSphere: a template per bake, cloned from a
    base template in each datacenter (the fan-out's "region")."""

    datacenters: Annotated[
        tuple[Annotated[str, Field(min_length=1)], ...], AfterValidator(_at_least_one)
    ]
    # The base template every bake clones: a name, or an inventory path under the
    # datacenter's VM folder (`templates/debian-12`).
    source_template: str = Field(min_length=1)
    cluster: str = Field(min_length=1)
    datastore: str = Field(min_length=1)
    host: str | None = None  # pin the build to one host of the cluster
    resource_pool: str | None = None  # under the cluster; default its root pool
    folder: str = ""  # where templates and smoke VMs go, under the datacenter's VM folder
    network: str | None = None  # port group of the build and smoke VMs' first NIC
    connection_id: str = "vsphere_default"
    # Packer template for this cloud, relative to the catalog's folder.
    template: str = "packer/vsphere-clone.pkr.hcl"
    ssh_username: str = "admin"
    cpus: int = Field(default=1, ge=1)
    memory_mb: int = Field(default=1024, ge=256)

    @property
    def regions(self) -> tuple[str, ...]:
        """Datacenters are where vSphere images live: the fan-out's regions."""
        return self.datacenters

    @field_validator("datacenters")
    @classmethod
    def _unique_datacenters(cls, datacenters: tuple[str, ...]) -> tuple[str, ...]:
        duplicates = sorted({d for d in datacenters if datacenters.count(d) > 1})
        if duplicates:
            raise ValueError(f"datacenters listed twice: {', '.join(duplicates)}")
        return datacenters


class Targets(_Model):
    aws: AwsTarget | None = None
    azure: AzureTarget | None = None
    vsphere: VsphereTarget | None = None

    def clouds(self) -> tuple[Cloud, ...]:
        return tuple(cloud for cloud in Cloud if getattr(self, cloud.value) is not None)


class Image(_Model):
    """One golden image and everything needed to bake, test, promote and prune it."""

    name: str = Field(pattern=IMAGE_NAME_PATTERN)
    description: str = ""
    owners: Annotated[tuple[str, ...], AfterValidator(_at_least_one)]
    template: str = Field(min_length=1)
    variables: Mapping[str, str | int | bool] = Field(default_factory=dict)
    targets: Targets
    smoke: SmokeTest = SmokeTest()
    channel: str = Field(default="stable", pattern=r"^[a-z][a-z0-9-]*$")
    freshness_days: int = Field(default=30, ge=1)
    retention: RetentionPolicy = RetentionPolicy()
    # Below the reaper's two-hour limit, so the reaper never takes a live builder.
    build_timeout_minutes: int = Field(default=60, ge=1, le=110)
    # A human approves each promotion in the Airflow UI (Human-in-the-loop) when set.
    approval_required: bool = False
    # The last provisioner of every bake (a file under include/): removes the builder's
    # key, host keys, histories, caches, machine-id and cloud-init state.
    cleanup_script: str = Field(default=DEFAULT_CLEANUP_SCRIPT, min_length=1)
    hygiene: Hygiene = Hygiene()
    secrets: tuple[SecretInput, ...] = ()
    alerts: AlertPolicy = AlertPolicy()

    @field_validator("secrets")
    @classmethod
    def _unique_secret_env(cls, secrets: tuple[SecretInput, ...]) -> tuple[SecretInput, ...]:
        names = [secret.env for secret in secrets]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"secret env names listed twice: {', '.join(twice)}")
        return secrets

    @field_validator("variables")
    @classmethod
    def _variable_names(cls, variables: Mapping[str, Any]) -> Mapping[str, Any]:
        bad = [name for name in variables if not VARIABLE_NAME_PATTERN.match(name)]
        if bad:
            raise ValueError(f"not valid Packer variable names: {', '.join(sorted(bad))}")
        return variables

    @field_validator("targets")
    @classmethod
    def _has_a_target(cls, targets: Targets) -> Targets:
        if not targets.clouds():
            raise ValueError(
                f"targets must name at least one cloud ({', '.join(c.value for c in Cloud)})"
            )
        return targets


class BakeTarget(_Model):
    """One unit of the bake fan-out: an image in one cloud and region."""

    image: str
    cloud: Cloud
    region: str

    @property
    def label(self) -> str:
        return f"{self.image}/{self.cloud.value}/{self.region}"


class Catalog(_Model):
    images: tuple[Image, ...]
    source_path: Path | None = None

    @field_validator("images")
    @classmethod
    def _unique_names(cls, images: tuple[Image, ...]) -> tuple[Image, ...]:
        entries: dict[str, list[str]] = {}
        for number, image in enumerate(images, start=1):
            entries.setdefault(image.name, []).append(f"#{number}")
        duplicates = [
            f"image {name!r} is listed {len(numbers)} times (entries {', '.join(numbers)})"
            for name, numbers in entries.items()
            if len(numbers) > 1
        ]
        if duplicates:
            raise ValueError("; ".join(duplicates))
        return images

    @property
    def include_dir(self) -> Path:
        if self.source_path is None:
            raise CatalogError("the catalog was not loaded from a file; templates cannot be found")
        return self.source_path.parent

    def image(self, name: str) -> Image:
        for image in self.images:
            if image.name == name:
                return image
        raise CatalogError(f"image {name!r} is not in the catalog {self.source_path}")

    def template_path(self, image: Image) -> Path:
        return self.include_dir / image.template

    def referenced_files(self, image: Image) -> dict[str, Path]:
        """Every file an image names under include/, by the field that names it."""
        fields = {
            "template": image.template,
            "cleanup_script": image.cleanup_script,
            "smoke.user_data": image.smoke.user_data,
            "targets.azure.template": image.targets.azure.template if image.targets.azure else None,
            "targets.vsphere.template": (
                image.targets.vsphere.template if image.targets.vsphere else None
            ),
        }
        return {field: self.include_dir / name for field, name in fields.items() if name}

    def bake_targets(
        self,
        *,
        images: Iterable[str] | None = None,
        clouds: Iterable[str] | None = None,
        regions: Iterable[str] | None = None,
    ) -> list[BakeTarget]:
        """Every image x cloud x region, optionally narrowed; unknown names are errors."""
        wanted_images = self._known(images, {i.name for i in self.images}, "image")
        wanted_clouds = self._known(clouds, {c.value for c in Cloud}, "cloud")
        wanted_regions = self._known(regions, self._regions(), "region")
        result: list[BakeTarget] = []
        for image in self.images:
            if wanted_images is not None and image.name not in wanted_images:
                continue
            for cloud in image.targets.clouds():
                if wanted_clouds is not None and cloud.value not in wanted_clouds:
                    continue
                target = getattr(image.targets, cloud.value)
                for region in target.regions:
                    if wanted_regions is None or region in wanted_regions:
                        result.append(BakeTarget(image=image.name, cloud=cloud, region=region))
        return result

    def _regions(self) -> set[str]:
        return {
            region
            for image in self.images
            for cloud in image.targets.clouds()
            for region in getattr(image.targets, cloud.value).regions
        }

    @staticmethod
    def _known(names: Iterable[str] | None, known: set[str], kind: str) -> set[str] | None:
        if names is None:
            return None
        wanted = set(names)
        unknown = sorted(wanted - known)
        if unknown:
            raise CatalogError(
                f"unknown {kind}(s) {', '.join(unknown)};"
                f" the catalog has {', '.join(sorted(known))}"
            )
        return wanted


def _merge(defaults: Mapping[str, Any], image: Mapping[str, Any]) -> dict[str, Any]:
    """Image settings win over defaults; nested mappings merge key by key."""
    merged: dict[str, Any] = dict(defaults)
    for key, value in image.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _apply_defaults(defaults: Mapping[str, Any], raw_image: Any) -> Any:
    """Merge image-level defaults, and cloud defaults only into the clouds an image names."""
    if not isinstance(raw_image, Mapping):
        return raw_image
    target_defaults = defaults.get("targets") or {}
    image = _merge({k: v for k, v in defaults.items() if k != "targets"}, raw_image)
    targets = image.get("targets")
    if isinstance(targets, Mapping) and isinstance(target_defaults, Mapping):
        image["targets"] = {
            cloud: _merge(target_defaults.get(cloud) or {}, settings)
            if isinstance(settings, Mapping)
            else settings
            for cloud, settings in targets.items()
        }
    return image


def _describe_location(location: tuple[int | str, ...], raw_images: list[Any]) -> str:
    if len(location) >= 2 and location[0] == "images" and isinstance(location[1], int):
        index = location[1]
        entry = raw_images[index] if index < len(raw_images) else None
        name = entry.get("name") if isinstance(entry, Mapping) else None
        image = f"image {name!r}" if name else f"image #{index + 1}"
        field = ".".join(str(part) for part in location[2:]) or "(the image itself)"
        return f"{image}, field '{field}'"
    return f"field '{'.'.join(str(part) for part in location)}'"


def _format_errors(path: Path, error: ValidationError, raw_images: list[Any]) -> str:
    lines = [f"Invalid image catalog {path}:"]
    for item in error.errors():
        where = _describe_location(tuple(item["loc"]), raw_images)
        message = item["msg"].removeprefix("Value error, ")
        got = item.get("input")
        shown = "" if isinstance(got, Mapping | list) or got is None else f" (got {got!r})"
        lines.append(f"  - {where}: {message}{shown}")
    return "\n".join(lines)


def _safe_load(text: str) -> Any:
    """yaml.safe_load, through libyaml when PyYAML was built with it (several times faster
    on a large catalog). libyaml words its errors differently (and is stricter in a few
    corners), so a document it rejects is parsed again by the pure-Python loader: errors
    keep PyYAML's wording and line/column, and what PyYAML accepts still loads."""
    c_loader = getattr(yaml, "CSafeLoader", None)
    if c_loader is not None:
        try:
            return yaml.load(text, Loader=c_loader)
        except yaml.YAMLError:
            pass
    return yaml.load(text, Loader=yaml.SafeLoader)


def _read_yaml(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"Cannot read image catalog {path}: {exc.strerror}") from exc
    try:
        document = _safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise CatalogError(f"Invalid YAML in image catalog {path}{where}: {problem}") from exc
    if not isinstance(document, Mapping):
        raise CatalogError(f"Invalid image catalog {path}: the top level must be a mapping")
    return document


def _check_target_defaults(path: Path, target_defaults: Any) -> None:
    """Cloud defaults merge only into images naming that cloud, so check them up front:
    a misspelt cloud would otherwise be ignored without a word."""
    if target_defaults is None:
        return
    where = f"Invalid image catalog {path}: field 'defaults.targets"
    if not isinstance(target_defaults, Mapping):
        raise CatalogError(f"{where}' must be a mapping of cloud to settings")
    unknown = sorted(str(cloud) for cloud in set(target_defaults) - {c.value for c in Cloud})
    if unknown:
        raise CatalogError(
            f"{where}': unknown cloud(s) {', '.join(unknown)}"
            f" (expected {', '.join(c.value for c in Cloud)})"
        )
    for cloud, settings in target_defaults.items():
        if settings is not None and not isinstance(settings, Mapping):
            raise CatalogError(f"{where}.{cloud}' must be a mapping")


def load_catalog(path: Path | None = None) -> Catalog:
    """Read and validate the catalog; every problem is reported in one CatalogError."""
    path = path or catalog_path()
    document = _read_yaml(path)
    unknown = sorted(str(key) for key in set(document) - {"defaults", "images"})
    if unknown:
        raise CatalogError(
            f"Invalid image catalog {path}: unknown top-level key(s) {', '.join(unknown)}"
            " (expected defaults, images)"
        )
    defaults = document.get("defaults") or {}
    raw_images = document.get("images")
    if not isinstance(defaults, Mapping):
        raise CatalogError(f"Invalid image catalog {path}: 'defaults' must be a mapping")
    _check_target_defaults(path, defaults.get("targets"))
    if not isinstance(raw_images, list) or not raw_images:
        raise CatalogError(f"Invalid image catalog {path}: 'images' must be a non-empty list")
    merged = [_apply_defaults(defaults, raw) for raw in raw_images]
    try:
        catalog = Catalog.model_validate({"images": merged, "source_path": path})
    except ValidationError as exc:
        raise CatalogError(_format_errors(path, exc, raw_images)) from None
    missing = [
        f"  - image {image.name!r}, field {field!r}: {file} does not exist"
        for image in catalog.images
        for field, file in catalog.referenced_files(image).items()
        if not file.is_file()
    ]
    if missing:
        raise CatalogError("\n".join([f"Invalid image catalog {path}:", *missing]))
    return catalog
