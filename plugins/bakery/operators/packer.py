"""PackerBuildOperator: bake one image for one cloud and region with real Packer."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Context

from bakery.links import ImageConsoleLink
from bakery.operators._cloud import CloudOperationsMixin

# DAG files import this module at parse time, so the catalog's pydantic models, the AWS
# hook (boto3) and the Packer runner are imported in the methods that use them.
if TYPE_CHECKING:
    from bakery.catalog import AwsTarget, BakeTarget, Catalog, Image
    from bakery.hooks.aws import BakeryEc2Hook
    from bakery.packer import PackerRunner

# Packer needs little of the worker's environment; passing all of it would hand every
# secret the worker holds to a third-party binary and its plugins.
INHERITED_ENV = ("PATH", "HOME", "TMPDIR", "LANG", "SSL_CERT_FILE", "HTTPS_PROXY", "NO_PROXY")
SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


class PackerBuildOperator(CloudOperationsMixin, BaseOperator):
    """Run `packer build` for one catalog image in one cloud and region.

    Returns the new image's id and bake id. A retry of the same DAG run adopts the image
    an earlier try already made instead of baking a duplicate.
    """

    operator_extra_links = (ImageConsoleLink(),)
    template_fields: Sequence[str] = ("target",)
    ui_color = "#f2d6a2"

    def __init__(
        self,
        *,
        target: dict[str, str],
        catalog_path: str | None = None,
        packer_binary: str = "packer",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.target = target
        self.catalog_path = catalog_path
        self.packer_binary = packer_binary
        self._runner: PackerRunner | None = None

    def execute(self, context: Context) -> dict[str, str]:
        from bakery.bake import bake_id
        from bakery.catalog import BakeTarget, Cloud, load_catalog
        from bakery.hooks.aws import BakeryEc2Hook

        target = BakeTarget.model_validate(self.target)
        context["bake_label"] = target.label  # type: ignore[typeddict-unknown-key]
        catalog = load_catalog(Path(self.catalog_path) if self.catalog_path else None)
        image = catalog.image(target.image)
        dag_run_id = context["run_id"]
        bake = bake_id(dag_id=self.dag_id, run_id=dag_run_id, target=target)
        if target.cloud is not Cloud.AWS:
            return self._execute_adapter(catalog, image, target, bake, dag_run_id)
        aws = image.targets.aws
        assert aws is not None  # guaranteed by BakeTarget coming from this catalog
        hook = BakeryEc2Hook(aws_conn_id=aws.connection_id, region_name=target.region)

        adopted = hook.find_baked_image(bake)
        if adopted is not None:
            self.log.info(
                "%s: adopting %s made by an earlier try of bake %s",
                target.label,
                adopted["ImageId"],
                bake,
            )
            return self._result(target, bake, adopted["ImageId"], adopted=True)

        work_dir = Path(tempfile.mkdtemp(prefix=f"bakery-{bake}-"))
        try:
            image_id = self._bake(
                catalog,
                image,
                aws,
                hook,
                target,
                bake,
                dag_run_id,
                work_dir,
                force=self._forced(context),
            )
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
        return self._result(target, bake, image_id, adopted=False)

    @staticmethod
    def _forced(context: Context) -> bool:
        """The weekly run always bakes: packages are patched under an unchanged template
        and base image, and picking those patches up is the point of the schedule. Only
        manual runs skip what has not changed, unless their `force` param is set."""
        dag_run = context.get("dag_run")
        if dag_run is not None and dag_run.run_type == "scheduled":
            return True
        return bool((context.get("params") or {}).get("force", False))

    def _bake(
        self,
        catalog: Catalog,
        image: Image,
        aws: AwsTarget,
        hook: BakeryEc2Hook,
        target: BakeTarget,
        bake: str,
        dag_run_id: str,
        work_dir: Path,
        *,
        force: bool,
    ) -> str:
        from bakery.bake import (
            artifact_name,
            aws_packer_variables,
            bake_tags,
            image_variables,
            template_hash,
            write_var_file,
        )

        template = catalog.template_path(image)
        variables = image_variables(image, catalog.include_dir)
        source = hook.resolve_source_image(aws.source)
        digest = template_hash(template, variables)
        if not force:
            self._skip_if_unchanged(hook, image, target, digest, source.image_id)
        name = artifact_name(image, started=datetime.now(UTC), bake=bake)
        self.log.info(
            "%s: baking %s from %s (%s), template hash %s, bake %s",
            target.label,
            name,
            source.image_id,
            source.name,
            digest,
            bake,
        )
        manifest = work_dir / "manifest.json"
        var_file = write_var_file(
            work_dir / "bake.pkrvars.json",
            aws_packer_variables(
                variables=variables,
                aws=aws,
                region=target.region,
                ami_name=name,
                source_ami_id=source.image_id,
                subnet_id=hook.find_subnet(aws.subnet_tags) if aws.subnet_tags else "",
                ec2_endpoint=hook.endpoint_url or "",
                manifest_path=manifest,
                tags=bake_tags(
                    image=image,
                    bake=bake,
                    source_image_id=source.image_id,
                    template_digest=digest,
                    dag_run_id=dag_run_id,
                ),
            ),
        )
        credentials = hook.packer_environment()
        self._runner = self._new_runner(
            image,
            work_dir,
            cloud_env=credentials,
            cloud_secrets=[credentials[k] for k in SECRET_ENV if credentials.get(k)],
        )
        self._runner.validate(template, var_file=var_file)
        result = self._runner.build(template, var_file=var_file, manifest_path=manifest)
        for artifact in result.artifacts:
            if artifact.region in (None, target.region):
                self.log.info(
                    "%s: baked %s in %.0f s",
                    target.label,
                    artifact.image_id,
                    result.duration_seconds,
                )
                return artifact.image_id
        raise RuntimeError(
            f"{target.label}: Packer reported no image for {target.region}: {result.artifacts}"
        )

    def _skip_if_unchanged(
        self, hook: BakeryEc2Hook, image: Image, target: BakeTarget, digest: str, source_id: str
    ) -> None:
        """Skip this target (and its smoke test, promotion and prune) when its current
        image already is what this bake would make; the `force` param bakes anyway."""
        from airflow.sdk.exceptions import AirflowSkipException

        from bakery.audit import parse_time
        from bakery.bake import unchanged_reason
        from bakery.constants import TAG_CHANNEL, TAG_IMAGE
        from bakery.freshness import age_in_days

        current = max(
            hook.iter_managed_images(
                extra_filters={TAG_IMAGE: image.name, TAG_CHANNEL: image.channel}
            ),
            key=lambda found: found["CreationDate"],
            default=None,
        )
        if current is None:
            return  # nothing promoted yet: bake
        reason = unchanged_reason(
            current_tags={tag["Key"]: tag["Value"] for tag in current.get("Tags", [])},
            current_age_days=age_in_days(parse_time(current["CreationDate"]), datetime.now(UTC)),
            template_digest=digest,
            source_image_id=source_id,
            freshness_days=image.freshness_days,
        )
        if reason is not None:
            raise AirflowSkipException(
                f"{target.label}: not baked: {current['ImageId']} is current and {reason}."
                " Trigger with force to bake anyway."
            )

    def _execute_adapter(
        self, catalog: Catalog, image: Image, target: BakeTarget, bake: str, dag_run_id: str
    ) -> dict[str, str]:
        """Every cloud but AWS: through its adapter (bakery.clouds)."""
        from bakery.bake import artifact_name, bake_tags, image_variables, template_hash
        from bakery.clouds.registry import adapter_for
        from bakery.operators._target import CloudTaskTarget

        adapter: Any = adapter_for(
            image, target.cloud, target.region, catalog_dir=catalog.include_dir
        )
        adopted = adapter.find_baked_image(bake)
        if adopted is not None:
            self.log.info("%s: adopting %s made by an earlier try", target.label, adopted.image_id)
            return self._result(target, bake, adopted.image_id, adopted=True)
        cloud_target = getattr(image.targets, target.cloud.value)
        name = artifact_name(image, started=datetime.now(UTC), bake=bake)
        template = catalog.include_dir / cloud_target.template
        # An adapter that resolves its base image itself names it (vSphere: the base
        # template's managed object id).
        source_of = getattr(adapter, "source_image_id", None)
        source = source_of() if source_of else cloud_target.source.image_id or "/".join(
            filter(None, (cloud_target.source.publisher, cloud_target.source.offer,
                          cloud_target.source.sku))
        )  # fmt: skip
        tags = bake_tags(
            image=image,
            bake=bake,
            source_image_id=source,
            template_digest=template_hash(template, image_variables(image, catalog.include_dir)),
            dag_run_id=dag_run_id,
        )
        if getattr(cloud_target, "bake", "packer") == "register-source":
            return self._register_source(adapter, catalog, image, target, bake, name, tags)
        work_dir = Path(tempfile.mkdtemp(prefix=f"bakery-{bake}-"))
        try:
            inputs = adapter.packer_inputs(
                image=image,
                location=target.region,
                bake_id=bake,
                artifact_name=name,
                tags=tags,
                work_dir=work_dir,
            )
            artifact = self._run_packer(inputs, image, target, work_dir)
            # Packer's artifact may not be what bakery tracks (Azure: the managed image,
            # where bakery tracks the gallery version published from it).
            published = getattr(adapter, "published_image_id", None)
            image_id = published(inputs.variables, artifact) if published else artifact
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
        found = CloudTaskTarget(target=target, image=image, catalog=catalog)
        return self.wait_for_operations(
            adapter, found, self._result(target, bake, image_id, adopted=False)
        )

    def _register_source(
        self,
        adapter: Any,
        catalog: Catalog,
        image: Image,
        target: BakeTarget,
        bake: str,
        name: str,
        tags: dict[str, str],
    ) -> dict[str, str]:
        """The catalog's `bake: register-source`: publish the source image unchanged as a
        new version, without Packer. For the sandbox, whose ARM server Packer 1.6.6 cannot
        reach; the provisioning script does NOT run."""
        from bakery.clouds.azure_gallery import version_name
        from bakery.operators._target import CloudTaskTarget

        cloud_target = getattr(image.targets, target.cloud.value)
        version = version_name(datetime.now(UTC), adapter.version_names())
        self.log.warning(
            "%s: NOT running Packer: the catalog sets bake: register-source, so %s is"
            " published unchanged as version %s (the provisioning script does not run)",
            target.label,
            cloud_target.source.image_id,
            version,
        )
        image_id = adapter.register_version(
            source_image_id=cloud_target.source.image_id,
            version=version,
            tags={**tags, "Name": name},
        )
        found = CloudTaskTarget(target=target, image=image, catalog=catalog)
        return self.wait_for_operations(
            adapter, found, self._result(target, bake, image_id, adopted=False)
        )

    def _new_runner(
        self,
        image: Image,
        work_dir: Path,
        *,
        cloud_env: Mapping[str, str],
        cloud_secrets: Iterable[str],
    ) -> PackerRunner:
        """Packer with the worker's harmless environment, the cloud's credentials and the
        image's secret inputs; every secret masked in what it logs."""
        from bakery.packer import PackerRunner
        from bakery.secret_inputs import packer_secret_environment, resolve_secret_inputs

        secret_inputs = resolve_secret_inputs(image.secrets)
        env = {key: os.environ[key] for key in INHERITED_ENV if key in os.environ}
        env.setdefault("HOME", str(work_dir))
        return PackerRunner(
            packer_binary=self.packer_binary,
            working_dir=work_dir,
            env={**env, **cloud_env, **packer_secret_environment(secret_inputs)},
            timeout_seconds=image.build_timeout_minutes * 60,
            logger=self.log,
            secrets=[*cloud_secrets, *secret_inputs.values()],
        )

    def _run_packer(self, inputs: Any, image: Image, target: BakeTarget, work_dir: Path) -> str:
        from bakery.bake import write_var_file

        var_file = write_var_file(work_dir / "bake.pkrvars.json", inputs.variables)
        self._runner = self._new_runner(
            image, work_dir, cloud_env=inputs.env, cloud_secrets=inputs.secrets
        )
        self._runner.validate(inputs.template, var_file=var_file)
        result = self._runner.build(
            inputs.template, var_file=var_file, manifest_path=work_dir / "manifest.json"
        )
        if not result.artifacts:
            raise RuntimeError(f"{target.label}: Packer reported no image")
        self.log.info("%s: Packer made %s", target.label, result.artifacts[0].image_id)
        return result.artifacts[0].image_id

    @staticmethod
    def _result(target: BakeTarget, bake: str, image_id: str, *, adopted: bool) -> dict[str, str]:
        return {
            "image": target.image,
            "cloud": target.cloud.value,
            "region": target.region,
            "image_id": image_id,
            "bake_id": bake,
            "adopted": str(adopted).lower(),
        }

    def on_kill(self) -> None:
        # Packer tears down its builder instance, key pair and security group only when
        # signalled the right way; the runner knows how and waits for it to finish.
        if self._runner is not None:
            self._runner.cancel(wait=True)
