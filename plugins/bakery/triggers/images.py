"""ImagesAvailableTrigger: waits, in the triggerer, until copied images are available."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from bakery.hooks.aws import BakeryEc2Hook


class ImagesAvailableTrigger(BaseTrigger):
    """`images` maps region -> AMI id; fires once all are available, or one failed, or
    the timeout passed."""

    def __init__(
        self,
        *,
        aws_conn_id: str,
        images: dict[str, str],
        timeout_seconds: float = 3600,
        poll_interval: float = 15.0,
    ) -> None:
        super().__init__()
        self.aws_conn_id = aws_conn_id
        self.images = images
        self.timeout_seconds = timeout_seconds
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "aws_conn_id": self.aws_conn_id,
                "images": self.images,
                "timeout_seconds": self.timeout_seconds,
                "poll_interval": self.poll_interval,
            },
        )

    def _state(self, region: str, image_id: str) -> str:
        hook = BakeryEc2Hook(aws_conn_id=self.aws_conn_id, region_name=region)
        found = hook.conn.describe_images(ImageIds=[image_id])["Images"]
        return found[0]["State"] if found else "missing"

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            states = {
                region: await asyncio.to_thread(self._state, region, image_id)
                for region, image_id in self.images.items()
            }
            failed = {r: s for r, s in states.items() if s in ("failed", "invalid", "missing")}
            if failed or all(state == "available" for state in states.values()):
                yield TriggerEvent(
                    {
                        "status": "failed" if failed else "available",
                        "images": self.images,
                        "states": states,
                    }
                )
                return
            if time.monotonic() > deadline:
                yield TriggerEvent({"status": "timeout", "images": self.images, "states": states})
                return
            await asyncio.sleep(self.poll_interval)
