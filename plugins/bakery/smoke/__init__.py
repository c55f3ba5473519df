"""Smoke checks run against a freshly booted instance of a new image."""
