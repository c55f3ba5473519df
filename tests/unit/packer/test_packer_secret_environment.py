"""Secret inputs reach a provisioner intact through Packer's environment, and nowhere else."""

from __future__ import annotations

import hashlib
from pathlib import Path

from bakery.secret_inputs import hcl_string, packer_secret_environment
from tests.process_watch import command_lines_holding
from tests.unit.packer.packer_support import Workspace

# Every character HCL, JSON or a shell could treat specially.
SECRET = "t0k\"en\\with${var.secret}%{if}$(id)`id`'quote' and spaces\ttab"


def secret_template(workspace: Workspace) -> Path:
    path = workspace.dir / "secrets.pkr.hcl"
    path.write_text(
        """
variable "secret_env" {
  type      = map(string)
  default   = {}
  sensitive = true
}
source "null" "web" {
  communicator = "none"
}
build {
  sources = ["source.null.web"]
  provisioner "shell-local" {
    environment_vars = [for name, value in var.secret_env : "${name}=${value}"]
    inline = [
      "printf %s \\"$FEED_TOKEN\\" | sha256sum | cut -d' ' -f1 > digest",
      "echo \\"a careless provisioner prints $FEED_TOKEN\\"",
      "sleep 1",
    ]
  }
  post-processor "manifest" {
    output = "manifest.json"
  }
}
"""
    )
    return path


def test_a_secret_reaches_the_provisioner_exactly_and_appears_in_no_log_or_command_line(
    workspace: Workspace,
) -> None:
    template = secret_template(workspace)
    env = {**workspace.env(), **packer_secret_environment({"FEED_TOKEN": SECRET})}
    runner = workspace.runner(env=env, secrets=[SECRET])
    with command_lines_holding(SECRET) as seen:
        runner.build(template, manifest_path=workspace.manifest)

    digest = (workspace.dir / "digest").read_text().strip()
    assert digest == hashlib.sha256(SECRET.encode()).hexdigest()
    assert "a careless provisioner prints" in workspace.log.text
    assert SECRET not in workspace.log.text
    assert seen == []
    assert not [p for p in workspace.dir.rglob("*") if p.is_file() and SECRET in _text(p)]


def _text(path: Path) -> str:
    return path.read_bytes().decode(errors="replace")


def test_no_secrets_means_no_packer_variable() -> None:
    assert packer_secret_environment({}) == {}


def test_hcl_strings_keep_template_sequences_literal() -> None:
    assert hcl_string("a${b}%{c}") == '"a$${b}%%{c}"'
    assert "PKR_VAR_secret_env" in packer_secret_environment({"A": "x"})
