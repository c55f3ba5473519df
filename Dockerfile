# The bakery Airflow image: the official Apache Airflow image plus Packer, an SSH client and
# bakery's Python dependencies. docker-compose.yaml builds it (`docker compose build`).
#
# What is NOT in the image, on purpose:
# - dags/, plugins/ and include/ (catalog, Packer templates, provisioning scripts) are
#   bind-mounted by docker-compose.yaml, not copied: editing a DAG, the catalog or a template
#   takes effect without a rebuild, and every Airflow component (scheduler, dag-processor,
#   worker, triggerer, api-server) sees the same files. A deployment that ships a
#   self-contained image would add COPY lines for them in a derived image.
# - credentials and secrets of any kind: cloud credentials reach tasks only as Airflow
#   connections (AIRFLOW_CONN_* passed from the host environment, or a secrets backend), and
#   Airflow's own keys are generated into config/airflow.cfg by `airflow-init`.

# Must match apache-airflow==... in requirements.txt and constraints.txt
# (tests/unit/test_docker_compose.py checks that).
ARG AIRFLOW_VERSION=3.3.2
FROM apache/airflow:${AIRFLOW_VERSION}-python3.11

USER root
# Debian's packer (1.6.6, MPL-licensed, with the amazon builder built in; the templates in
# include/packer need no `packer init`), plus an SSH client for debugging Packer's SSH
# communicator from inside the worker. Same packages as the Makefile's APT_PACKAGES.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        packer \
        openssh-client \
    && apt-get autoremove -yqq --purge \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && packer version

USER airflow
# The project's lock file constrains every dependency, including apache-airflow itself
# (pinned in requirements.txt), so pip cannot up- or downgrade the image's Airflow.
COPY requirements.txt constraints.txt /opt/bakery/
RUN pip install --no-cache-dir -r /opt/bakery/requirements.txt -c /opt/bakery/constraints.txt
