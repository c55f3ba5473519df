"""Alerts: failure alerts, the bake deadline, the weekly digest, repeated-failure marks.

Pure message building (`messages`, `redaction`, `streaks`, `outcomes`) is kept apart
from the I/O: `channels` sends through Airflow connections, `notifier` is the tasks'
failure callback, `deadlines` runs in the triggerer, `digest` is the bake's last task.
"""
