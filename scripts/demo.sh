#!/usr/bin/env bash
# make demo: start the sandbox cloud, bake the catalog through the bake DAG with real
# Packer, then print the freshness report.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m sandbox up
# shellcheck source=scripts/airflow-env.sh
. scripts/airflow-env.sh
airflow db migrate >"$AIRFLOW_HOME/migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/migrate.log"; exit 1; }
echo "== baking the catalog through the golden_image_bake DAG (log: $AIRFLOW_HOME/demo-bake.log)"
# `airflow dags test` crashes on a DAG with a deadline (apache/airflow#73428); deadlines
# need the real scheduler, so the demo's one-process run goes without.
if ! BAKERY_BAKE_DEADLINE_MINUTES=off airflow dags test golden_image_bake \
  >"$AIRFLOW_HOME/demo-bake.log" 2>&1; then
  tail -n 40 "$AIRFLOW_HOME/demo-bake.log"
  exit 1
fi
# The story of the run, one line per step, without the log plumbing around each message.
python - "$AIRFLOW_HOME/demo-bake.log" <<'PY'
import re, sys
prefix = re.compile(r"^\S+Z \[\w+\s*\] ")
suffix = re.compile(r"\s*\[[\w.]+\] loc=\S+\s*$")
step = re.compile(r"(: baking |: baked |: not baked: |adopting |^\[(PASS|FAIL)\] |promoted |superseded$|"
                  r"^(ACTION|KEEP|DELETE|WOULD DELETE) |^reaped |^DagRun Finished)")
seen = set()
for raw in open(sys.argv[1], errors="replace"):
    text = suffix.sub("", prefix.sub("", raw.rstrip("\n")))
    if "SmokeTestTrigger" in raw or not step.search(text) or text in seen:
        continue
    seen.add(text)
    print("  " + text.split(", logical_date=")[0])
PY
grep -q "state=success" "$AIRFLOW_HOME/demo-bake.log" || { echo "bake DAG run did not succeed"; exit 1; }
echo
python -m bakery.audit
echo
echo "The sandbox keeps running (python -m sandbox down stops it); its images are in moto at \$BAKERY_SANDBOX_MOTO_URL."
