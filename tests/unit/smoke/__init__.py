"""Tests of the smoke checks and their transport (local servers on 127.0.0.1 only)."""
