"""One adapter per cloud behind the CloudAdapter interface (see base.py)."""
