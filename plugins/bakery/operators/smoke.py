"""SmokeTestOperator: boot the new image once and prove it serves what it should."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Context

from bakery.constants import TAG_BAKE_ID, TAG_IMAGE, TAG_MANAGED, TAG_ROLE, TAG_SMOKE
from bakery.links import SmokeLogLink
from bakery.operators._cloud import CloudOperationsMixin

# DAG files import this module at parse time, so the catalog's pydantic models, the AWS
# hook (boto3), the key generator (cryptography) and the trigger are imported in the
# methods that use them.
if TYPE_CHECKING:
    from bakery.catalog import AwsTarget, BakeTarget, Image
    from bakery.hooks.aws import BakeryEc2Hook
    from bakery.smoke.hygiene import HygieneInput


class SmokeTestFailedError(RuntimeError):
    """A smoke check failed, or the instance never came up: the image is not promoted."""


class SmokeTestOperator(CloudOperationsMixin, BaseOperator):
    """Launch one instance of a freshly baked image, run its catalog checks, terminate it.

    The boot and SSH wait are deferred to SmokeTestTrigger. The instance and its one-off
    key pair are removed on pass, on fail, on timeout and when the task is killed.
    """

    operator_extra_links = (SmokeLogLink(),)
    template_fields: Sequence[str] = ("bake",)
    ui_color = "#c7e9c0"

    def __init__(
        self,
        *,
        bake: dict[str, str],
        catalog_path: str | None = None,
        reach: str | None = None,
        ssh_port: int = 22,
        poll_interval: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bake = bake
        self.catalog_path = catalog_path
        self.reach = reach
        self.ssh_port = ssh_port
        self.poll_interval = poll_interval
        self._launched: tuple[BakeryEc2Hook, str, str] | None = None
        self._launched_by_adapter: tuple[Any, str] | None = None

    def _target(self, context: Context) -> tuple[BakeTarget, Image, AwsTarget, BakeryEc2Hook]:
        from bakery.hooks.aws import BakeryEc2Hook
        from bakery.operators._target import resolve_target

        found = resolve_target(self.bake, catalog_path=self.catalog_path, context=context)
        hook = BakeryEc2Hook(aws_conn_id=found.aws.connection_id, region_name=found.target.region)
        return found.target, found.image, found.aws, hook

    def execute(self, context: Context) -> None:
        from bakery.smoke.keys import new_key_pair
        from bakery.triggers.smoke import SmokeTestTrigger

        if self.bake.get("cloud", "aws") != "aws":
            self._execute_adapter(context)
            return
        target, image, aws, hook = self._target(context)
        user_data = self._user_data(image)
        image_id, bake_id = self.bake["image_id"], self.bake["bake_id"]
        key_name = f"bakery-smoke-{bake_id}-{context['ti'].try_number}"
        keys = new_key_pair()
        # Before anything is launched: a secret that cannot be read fails the task clean.
        hygiene = self._hygiene_input(image, hook, keys.public_openssh)
        tags = {
            TAG_MANAGED: "true",
            TAG_IMAGE: target.image,
            TAG_BAKE_ID: bake_id,
            TAG_ROLE: "smoke",
            "Name": f"bakery-smoke {target.label}",
        }
        hook.import_key_pair(key_name, keys.public_openssh, tags)
        try:
            instance_id = hook.launch_instance(
                image_id=image_id,
                instance_type=aws.instance_type,
                key_name=key_name,
                subnet_id=hook.find_subnet(aws.subnet_tags) if aws.subnet_tags else None,
                tags=tags,
                user_data=user_data,
            )
        except Exception:
            hook.delete_key_pair(key_name)
            raise
        self._launched = (hook, instance_id, key_name)
        self.log.info("%s: smoke instance %s of %s launched", target.label, instance_id, image_id)
        self.defer(
            trigger=SmokeTestTrigger(
                aws_conn_id=aws.connection_id,
                region_name=target.region,
                instance_id=instance_id,
                key_name=key_name,
                ssh_user=aws.ssh_username,
                private_key=keys.private_openssh,
                checks=[check.model_dump(mode="json") for check in image.smoke.checks],
                reach=self.reach or aws.ssh_interface,
                ssh_port=self.ssh_port,
                timeout_seconds=image.smoke.timeout_seconds,
                settle_seconds=image.smoke.settle_seconds,
                poll_interval=self.poll_interval,
                hygiene=hygiene.as_dict(),
            ),
            method_name="execute_complete",
        )

    def _user_data(self, image: Image) -> str | None:
        from bakery.catalog import load_catalog

        if image.smoke.user_data is None:
            return None
        catalog = load_catalog(Path(self.catalog_path) if self.catalog_path else None)
        return (catalog.include_dir / image.smoke.user_data).read_text()

    def _hygiene_input(self, image: Image, hook: BakeryEc2Hook, launch_key: str) -> HygieneInput:
        """What the hygiene scan looks for: every secret this bake could have leaked into
        the image (its secret inputs and the cloud credentials Packer held)."""
        from bakery.operators.packer import SECRET_ENV

        credentials = hook.packer_environment()
        return self._hygiene(image, (credentials.get(key, "") for key in SECRET_ENV), launch_key)

    def _hygiene(self, image: Image, cloud_secrets: Iterable[str], launch_key: str) -> HygieneInput:
        from bakery.secret_inputs import resolve_secret_inputs
        from bakery.smoke.hygiene import HygieneInput, scannable_secrets

        secrets, too_short = scannable_secrets(
            [*resolve_secret_inputs(image.secrets).values(), *cloud_secrets]
        )
        if too_short:
            self.log.warning("%d secret value(s) are too short to search the image for", too_short)
        return HygieneInput(
            launch_key=launch_key,
            secrets=secrets,
            allow_paths=image.hygiene.allowed,
            expect_cloud_init=image.hygiene.expect_cloud_init,
        )

    def _execute_adapter(self, context: Context) -> None:
        """Every cloud but AWS: the instance comes from the cloud's adapter."""
        from bakery.operators._target import resolve_cloud_target
        from bakery.smoke.keys import new_key_pair
        from bakery.triggers.cloud import CloudSmokeTestTrigger

        found = resolve_cloud_target(self.bake, catalog_path=self.catalog_path, context=context)
        target, image = found.target, found.image
        cloud_target = getattr(image.targets, target.cloud.value)
        adapter = found.adapter()
        image_id, bake_id = self.bake["image_id"], self.bake["bake_id"]
        keys = new_key_pair()
        # Before anything is launched: a secret that cannot be read fails the task clean.
        # Each adapter names the credential values its images must never contain.
        secrets_of = getattr(adapter, "credential_secrets", None)
        hygiene = self._hygiene(image, secrets_of() if secrets_of else [], keys.public_openssh)
        instance_id = adapter.launch_smoke_instance(
            image_id,
            name=f"bakery-smoke-{bake_id}-{context['ti'].try_number}",
            public_key=keys.public_openssh,
            user_data=self._user_data(image),
            tags={
                TAG_MANAGED: "true",
                TAG_IMAGE: target.image,
                TAG_BAKE_ID: bake_id,
                TAG_ROLE: "smoke",
            },
        )
        self._launched_by_adapter = (adapter, instance_id)
        self.log.info("%s: smoke instance %s of %s launched", target.label, instance_id, image_id)
        self.defer(
            trigger=CloudSmokeTestTrigger(
                catalog_path=self.catalog_path,
                image=target.image,
                cloud=target.cloud.value,
                location=target.region,
                instance_id=instance_id,
                ssh_user=cloud_target.ssh_username,
                private_key=keys.private_openssh,
                checks=[check.model_dump(mode="json") for check in image.smoke.checks],
                ssh_port=self.ssh_port,
                timeout_seconds=image.smoke.timeout_seconds,
                settle_seconds=image.smoke.settle_seconds,
                poll_interval=self.poll_interval,
                hygiene=hygiene.as_dict(),
            ),
            method_name="execute_complete",
        )

    def _complete_adapter(self, context: Context, event: Mapping[str, Any]) -> dict[str, str]:
        from bakery.operators._target import resolve_cloud_target

        found = resolve_cloud_target(self.bake, catalog_path=self.catalog_path, context=context)
        adapter = found.adapter()
        try:
            result = self._judge(found.target, adapter.set_tags, event)
        finally:
            try:
                adapter.destroy_smoke_instance(event["instance_id"])
            except Exception:
                self.log.exception("%s: could not remove %s", found.target.label, event)
        # The smoke tag and the instance's deletion are operations too: wait for them.
        return self.wait_for_operations(adapter, found, result)

    def execute_complete(self, context: Context, event: Mapping[str, Any]) -> dict[str, str]:
        if self.bake.get("cloud", "aws") != "aws":
            return self._complete_adapter(context, event)
        target, _, _, hook = self._target(context)
        instance_id, key_name = event["instance_id"], event["key_name"]
        try:
            return self._judge(target, hook.tag_resource, event)
        finally:
            # Cleanup never hides the verdict: its own failure is logged, not raised.
            for cleanup, resource in (
                (hook.terminate_instance, instance_id),
                (hook.delete_key_pair, key_name),
            ):
                try:
                    cleanup(resource)
                except Exception:
                    self.log.exception("%s: could not remove %s", target.label, resource)

    def _judge(
        self,
        target: BakeTarget,
        tag_image: Callable[[str, Mapping[str, str]], None],
        event: Mapping[str, Any],
    ) -> dict[str, str]:
        image_id = self.bake["image_id"]
        results = event.get("results", [])
        for result in results:
            verdict = "PASS" if result["passed"] else "FAIL"
            self.log.info(
                "[%s] %s '%s': expected %s; saw %s",
                verdict,
                result["kind"],
                result["name"],
                result["expected"],
                result["seen"],
            )
        if event.get("status") == "passed":
            tag_image(image_id, {TAG_SMOKE: "passed"})
            self.log.info("%s: %s passed %d smoke checks", target.label, image_id, len(results))
            return {**self.bake, "smoke": "passed"}
        tag_image(image_id, {TAG_SMOKE: "failed"})
        failed = [r for r in results if not r["passed"]]
        if failed:
            first = failed[0]
            reason = (
                f"check '{first['name']}' ({first['kind']}) expected {first['expected']};"
                f" saw {first['seen']}"
            )
            if len(failed) > 1:
                reason += f" (and {len(failed) - 1} more failed check(s))"
        else:
            reason = str(event.get("message", "the smoke test did not complete"))
        raise SmokeTestFailedError(f"{target.label}: smoke test of {image_id} failed: {reason}")

    def on_kill(self) -> None:
        if self._launched_by_adapter is not None:
            adapter, instance_id = self._launched_by_adapter
            adapter.destroy_smoke_instance(instance_id)
        if self._launched is not None:
            hook, instance_id, key_name = self._launched
            hook.terminate_instance(instance_id)
            hook.delete_key_pair(key_name)
