"""Tests of the Packer runner, run against the real Packer binary."""
