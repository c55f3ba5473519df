"""Output handling, fed with lines captured from Packer 1.6.6."""

from __future__ import annotations

import logging
import os
import tempfile

from bakery.packer.output import MAX_LINE_BYTES, BuildOutput, OutputFollower
from bakery.packer.redaction import Redactor
from tests.unit.packer.packer_support import RecordingHandler

FAILED_PROVISIONER = """\
1795681752,,ui,say,==> web.null.x: Running local shell script: /tmp/packer-shell2299740306
1795681752,,ui,error,==> web.null.x: oops
1795681752,,ui,message,    web.null.x: about to fail
1795681752,,ui,say,==> web.null.x: Provisioning step had errors: Running the cleanup \
provisioner%!(PACKER_COMMA) if present...
1795681752,,ui,error,Build 'web.null.x' errored after 8 milliseconds 223 microseconds: Script \
exited with non-zero exit status: 3.Allowed exit codes are: [0]
1795681752,,ui,say,\\n==> Wait completed after 8 milliseconds 257 microseconds
1795681752,,error-count,1
1795681752,,ui,error,\\n==> Some builds didn't complete successfully and had errors:
1795681752,web.null.x,error,Script exited with non-zero exit status: 3.Allowed exit codes \
are: [0]
1795681752,,ui,error,--> web.null.x: Script exited with non-zero exit status: 3.Allowed exit \
codes are: [0]
1795681752,,ui,say,\\n==> Builds finished but no artifacts were created.
"""

# What an amazon-ebs builder step failure looks like: the error is reported inside the
# step, then the builder's cleanup steps run before the build is declared failed.
FAILED_BUILDER_STEP = """\
1700000000,,ui,say,==> web.amazon-ebs.golden: Launching a source AWS instance...
1700000000,,ui,say,==> web.amazon-ebs.golden: Waiting for SSH to become available...
1700000000,,ui,error,==> web.amazon-ebs.golden: Timeout waiting for SSH.
1700000000,,ui,say,==> web.amazon-ebs.golden: Terminating the source AWS instance...
1700000000,,ui,say,==> web.amazon-ebs.golden: Deleting temporary keypair...
1700000000,,ui,error,Build 'web.amazon-ebs.golden' errored after 10 minutes: Timeout waiting \
for SSH.
1700000000,web.amazon-ebs.golden,error,Timeout waiting for SSH.
"""


def feed(
    text: str, *, secrets: tuple[str, ...] = (), tail_lines: int = 50
) -> tuple[BuildOutput, RecordingHandler]:
    logger = logging.getLogger(f"tests.packer.output.{id(text)}.{tail_lines}")
    logger.setLevel(logging.DEBUG)
    handler = RecordingHandler()
    logger.addHandler(handler)
    output = BuildOutput(logger=logger, redact=Redactor(secrets), tail_lines=tail_lines)
    for line in text.splitlines():
        output(line)
    logger.removeHandler(handler)
    return output, handler


def test_failed_provisioner_step_and_packer_errors_are_reported() -> None:
    output, _ = feed(FAILED_PROVISIONER)

    assert output.progress.failed_step == (
        "Running local shell script: /tmp/packer-shell2299740306"
    )
    assert output.progress.error_lines == (
        "web.null.x: Script exited with non-zero exit status: 3.Allowed exit codes are: [0]",
        "web.null.x: oops",
    )


def test_failed_builder_step_is_the_one_that_reported_the_error() -> None:
    output, _ = feed(FAILED_BUILDER_STEP)

    assert output.progress.failed_step == "Waiting for SSH to become available..."
    assert output.progress.last_step == "Deleting temporary keypair..."
    assert output.progress.error_lines[0] == "web.amazon-ebs.golden: Timeout waiting for SSH."


def test_ui_lines_are_logged_as_text_with_errors_at_error_level() -> None:
    _, log = feed(FAILED_PROVISIONER)

    assert "    web.null.x: about to fail" in log.messages(logging.INFO)
    assert "==> web.null.x: oops" in log.messages(logging.ERROR)
    assert (
        "==> web.null.x: Provisioning step had errors: Running the cleanup provisioner, "
        "if present..." in log.messages(logging.INFO)
    )
    assert "==> Wait completed after 8 milliseconds 257 microseconds" in log.messages(logging.INFO)
    # Machine-only records stay out of the human log.
    assert not any("error-count" in m for m in log.messages(logging.INFO))


def test_secrets_are_masked_in_logs_and_error_lines() -> None:
    output, log = feed(
        "1,,ui,error,==> web.null.x: token hunter2 rejected\n"
        "1,web.null.x,error,bad token hunter2%!(PACKER_COMMA) giving up\n",
        secrets=("hunter2", ""),
    )

    assert "hunter2" not in log.text
    assert "==> web.null.x: token *** rejected" in log.messages(logging.ERROR)
    assert output.progress.error_lines == (
        "web.null.x: bad token ***, giving up",
        "web.null.x: token *** rejected",
    )


def test_tail_and_error_lines_are_bounded() -> None:
    lines = "".join(f"1,,ui,error,==> web.null.x: warning {i}\n" for i in range(500))

    output, _ = feed(lines, tail_lines=5)

    assert output.tail == tuple(f"==> web.null.x: warning {i}" for i in range(495, 500))
    assert len(output.progress.error_lines) == 20
    assert output.progress.error_lines[-1] == "web.null.x: warning 499"


def test_follower_hands_on_complete_lines_only_and_splits_huge_ones() -> None:
    seen: list[str] = []
    with tempfile.TemporaryFile() as file:
        follower = OutputFollower(file.fileno(), seen.append)

        file.write(b"first line\nsecond ")
        file.flush()
        assert follower.read_available() is True
        assert seen == ["first line"]

        assert follower.read_available() is False
        file.write(b"half\n" + b"x" * (MAX_LINE_BYTES + 10))
        file.flush()
        follower.read_available()
        assert seen == ["first line", "second half", "x" * MAX_LINE_BYTES]

        follower.finish()
        assert seen[-1] == "x" * 10
        # The writer's offset is untouched by our reads.
        assert os.lseek(file.fileno(), 0, os.SEEK_CUR) == file.tell()
