# Sourced by the Makefile's scripts and the tests' docs: a local Airflow that reads this
# repo's dags/ and plugins/ and talks to the sandbox cloud.
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$repo_root/.airflow}"
# A fresh checkout has no .airflow yet; the demo writes its logs there before Airflow runs.
mkdir -p "$AIRFLOW_HOME"
export AIRFLOW__CORE__DAGS_FOLDER="$repo_root/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$repo_root/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__UNIT_TEST_MODE=False
export PATH="$repo_root/.venv/bin:$PATH"
export PYTHONPATH="$repo_root/plugins${PYTHONPATH:+:$PYTHONPATH}"
if [ -f "$repo_root/.sandbox/env.sh" ]; then
  # shellcheck disable=SC1091
  . "$repo_root/.sandbox/env.sh"
fi
