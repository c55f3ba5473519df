"""Static checks of docker-compose.yaml and the Dockerfile (no Docker engine needed).

The compose file is validated against the Compose Specification's JSON schema as shipped by
the check-jsonschema package (check_jsonschema/builtin_schemas/vendor/compose-spec.json),
then checked for what the schema cannot see: dependencies that exist and can be satisfied,
one shared Airflow configuration, healthchecks, declared volumes, the mounted project
folders, no literal secrets, and an image that matches the pinned Airflow version.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from collections.abc import Iterator
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
REQUIREMENTS = REPO_ROOT / "requirements.txt"
CONSTRAINTS = REPO_ROOT / "constraints.txt"
CATALOG = REPO_ROOT / "include" / "catalog.yaml"

COMMON_KEY = "x-airflow-common"
AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "airflow-init",
)
ONE_SHOT_SERVICES = frozenset({"airflow-init"})
BACKEND_SERVICES = ("postgres", "redis")

EXPECTED_COMMANDS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-triggerer": "triggerer",
}
# What each long-running service's healthcheck must run.
EXPECTED_HEALTHCHECKS = {
    "postgres": "pg_isready",
    "redis": "redis-cli ping",
    "airflow-apiserver": (
        "curl --fail http://localhost:8080/api/v2/version"
        " && curl --fail http://localhost:8080/execution/health"
    ),
    "airflow-scheduler": "http://localhost:8974/health",
    "airflow-dag-processor": (
        'airflow jobs check --job-type DagProcessorJob --hostname "${HOSTNAME}"'
    ),
    "airflow-worker": (
        "celery --app airflow.providers.celery.executors.celery_executor.app inspect ping"
    ),
    "airflow-triggerer": 'airflow jobs check --job-type TriggererJob --hostname "${HOSTNAME}"',
}
EXPECTED_COMMON_ENVIRONMENT = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://airflow:airflow@postgres/airflow",
    "AIRFLOW__CELERY__RESULT_BACKEND": "db+postgresql://airflow:airflow@postgres/airflow",
    "AIRFLOW__CELERY__BROKER_URL": "redis://:@redis:6379/0",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://airflow-apiserver:8080/execution/",
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "true",
    "BAKERY_INCLUDE_DIR": "/opt/airflow/include",
    # Read at parse time: every component must see the same value as the dag-processor.
    "BAKERY_MAX_PARALLEL_BAKES": "${BAKERY_MAX_PARALLEL_BAKES:-8}",
}
PROJECT_MOUNTS = {
    "dags": "/opt/airflow/dags",
    "plugins": "/opt/airflow/plugins",
    "include": "/opt/airflow/include",
}
DEPENDENCY_FILES = frozenset({"requirements.txt", "constraints.txt"})

# The official file's local-only database credentials are the one literal allowed.
ALLOWED_LITERAL_SECRETS = frozenset({("POSTGRES_PASSWORD", "airflow")})
ALLOWED_URL_PASSWORDS = frozenset({"", "airflow"})
SECRET_NAME = re.compile(
    r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE_KEY|ACCESS_KEY|API_KEY|FERNET",
    re.IGNORECASE,
)
SECRET_LOOKING_VALUE = re.compile(
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key ids
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|\bxox[abpr]-[A-Za-z0-9-]{10,}"  # Slack tokens
)
URL_PASSWORD = re.compile(r"://[^:/@\s]*:([^@/\s]*)@")
# A value taken from the host with no literal fallback: ${NAME}, ${NAME:-}, ${NAME-},
# ${NAME:?message} or ${NAME?message}.
HOST_VALUE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-|:?\?[^}]*)?\}")
# Compose's interpolation syntax; "$$" is a literal "$".
INTERPOLATION = re.compile(
    r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?+][^}]*)?\}|\$[A-Za-z_][A-Za-z0-9_]*"
)


# --- loading ------------------------------------------------------------------------------


class UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that, like `docker compose`, rejects a key written twice in one mapping.

    Keys brought in by a `<<:` merge may still be overridden, as compose allows.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict), f"{COMPOSE_FILE.name} is not a mapping"
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def common(compose: dict[str, Any]) -> dict[str, Any]:
    return compose[COMMON_KEY]


@pytest.fixture(scope="module")
def compose_spec_schema() -> dict[str, Any]:
    """The Compose Specification schema that the check-jsonschema package ships."""
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text(encoding="utf-8"))
    assert schema.get("title") == "Compose Specification"
    return schema


def schema_errors(document: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    return [
        f"{error.json_path}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: e.json_path)
    ]


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a name -> value mapping, whichever form it is written in."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = (item.partition("=") for item in raw)
        return {name: value for name, _, value in pairs}
    return {name: "" if value is None else str(value) for name, value in raw.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """Service name -> condition (the short list form means service_started)."""
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def healthcheck_command(service: dict[str, Any]) -> str:
    test = (service.get("healthcheck") or {}).get("test") or ""
    return " ".join(test) if isinstance(test, list) else test


def is_disabled(healthcheck: dict[str, Any]) -> bool:
    test = healthcheck.get("test")
    first = test[0] if isinstance(test, list) and test else test
    disabled = str(healthcheck.get("disable", False)).lower() == "true"
    return disabled or not test or first == "NONE"


def volume_source_and_target(entry: str | dict[str, Any]) -> tuple[str | None, str]:
    if isinstance(entry, dict):
        return entry.get("source"), entry["target"]
    parts = entry.split(":")
    if len(parts) == 1:  # an anonymous volume: just a container path
        return None, parts[0]
    return parts[0], parts[1]


def is_named_volume(source: str | None) -> bool:
    """A volume source that is neither a host path nor a variable (bind mounts are paths)."""
    return source is not None and source != "" and not source.startswith((".", "/", "~", "$"))


def environments(compose: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(where, name, value) for every environment entry in the file."""
    for name, value in environment(compose[COMMON_KEY]).items():
        yield COMMON_KEY, name, value
    for service_name, service in compose["services"].items():
        for name, value in environment(service).items():
            yield service_name, name, value


def strings(node: Any) -> Iterator[str]:
    """Every string (keys included) anywhere in a loaded YAML document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def mapping_items(node: Any) -> Iterator[tuple[Any, Any]]:
    """Every (key, value) pair of every mapping, however deeply nested."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from mapping_items(value)
    elif isinstance(node, list):
        for item in node:
            yield from mapping_items(item)


def literal_secret_problem(name: str, value: str) -> str | None:
    """Why an environment entry looks like a literal secret, or None if it does not."""
    if SECRET_LOOKING_VALUE.search(value):
        return "value looks like a credential"
    if any(password not in ALLOWED_URL_PASSWORDS for password in URL_PASSWORD.findall(value)):
        return "URL carries a password"
    if not SECRET_NAME.search(name) or not value or HOST_VALUE.fullmatch(value):
        return None
    if (name, value) in ALLOWED_LITERAL_SECRETS:
        return None
    if name.endswith(("_FILE", "_PATH")) and value.startswith("/"):
        return None  # names the file holding the secret, not the secret
    return "secret-named variable with a literal value"


def pinned_version(path: Path, package: str) -> str:
    match = re.search(rf"^{re.escape(package)}==([^\s;#]+)", path.read_text(), re.MULTILINE)
    assert match, f"{path.name} does not pin {package}=="
    return match.group(1)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


def from_image() -> str:
    """The FROM image with ARG defaults declared before it substituted."""
    defaults: dict[str, str] = {}
    for keyword, arguments in dockerfile_instructions():
        if keyword == "ARG":
            name, _, default = arguments.partition("=")
            defaults[name] = default
        elif keyword == "FROM":
            image = arguments.split()[0]
            for name, default in defaults.items():
                image = image.replace(f"${{{name}}}", default).replace(f"${name}", default)
            return image
    raise AssertionError("Dockerfile has no FROM")


def runs_with_user() -> Iterator[tuple[str, str]]:
    """(user in effect, command) for every RUN after FROM."""
    user = "root"
    for keyword, arguments in dockerfile_instructions():
        if keyword == "USER":
            user = arguments.split(":")[0]
        elif keyword == "RUN":
            yield user, arguments


def copied_paths() -> dict[str, str]:
    """Image path -> build-context source, for every COPY and ADD."""
    paths: dict[str, str] = {}
    for keyword, arguments in dockerfile_instructions():
        if keyword not in {"COPY", "ADD"}:
            continue
        *sources, destination = [
            word for word in shlex.split(arguments) if not word.startswith("--")
        ]
        for source in sources:
            target = (
                PurePosixPath(destination) / PurePosixPath(source).name
                if destination.endswith("/") or len(sources) > 1
                else PurePosixPath(destination)
            )
            paths[str(target)] = source
    return paths


def apt_installed_packages(argv: list[str]) -> set[str]:
    """Package names given to `apt-get install` in one shell command line."""
    packages: set[str] = set()
    installing = False
    for index, word in enumerate(argv):
        if word in {"&&", "||", ";", "|"}:
            installing = False
        elif word == "install" and index > 0 and argv[index - 1] in {"apt-get", "apt"}:
            installing = True
        elif installing and not word.startswith("-"):
            packages.add(word.split("=")[0])
    return packages


def option_values(argv: list[str], *options: str) -> list[str]:
    """Values of pip-style options given as `-x value`, `--opt value` or `--opt=value`."""
    values: list[str] = []
    for index, word in enumerate(argv):
        for option in options:
            if word == option and index + 1 < len(argv):
                values.append(argv[index + 1])
            elif option.startswith("--") and word.startswith(option + "="):
                values.append(word.split("=", 1)[1])
    return values


# --- schema -------------------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_spec_schema(
    compose: dict[str, Any], compose_spec_schema: dict[str, Any]
) -> None:
    assert schema_errors(compose, compose_spec_schema) == []


@pytest.mark.parametrize(
    ("service", "key", "value"),
    [
        ("postgres", "helthcheck", {"test": ["CMD", "true"]}),
        ("airflow-worker", "depends_on", {"redis": {"condition": "service_ready"}}),
        ("redis", "restart", ["always"]),
    ],
)
def test_compose_spec_schema_rejects_a_broken_service(
    compose: dict[str, Any],
    compose_spec_schema: dict[str, Any],
    service: str,
    key: str,
    value: Any,
) -> None:
    """The validation above is strict enough to catch typos and wrong shapes."""
    broken = copy.deepcopy(compose)
    broken["services"][service][key] = value
    assert schema_errors(broken, compose_spec_schema)


def test_compose_file_has_no_duplicate_keys() -> None:
    """PyYAML keeps the last of two equal keys silently; `docker compose` refuses the file."""
    yaml.load(COMPOSE_FILE.read_text(), Loader=UniqueKeyLoader)  # a SafeLoader subclass


def test_compose_interpolations_are_well_formed(compose: dict[str, Any]) -> None:
    """Every `$` is `$$` (a literal, e.g. for the container's shell) or a valid `${VAR...}`."""
    bad = []
    for text in strings(compose):
        remainder = INTERPOLATION.sub("", text.replace("$$", ""))
        if "$" in remainder:
            bad.append(text)
    assert bad == []


# --- services and dependencies ------------------------------------------------------------


def test_compose_defines_the_official_celery_stack(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {*BACKEND_SERVICES, *AIRFLOW_SERVICES}
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7.2-bookworm"
    commands = {name: services[name].get("command") for name in EXPECTED_COMMANDS}
    assert commands == EXPECTED_COMMANDS
    assert "8080:8080" in [str(port) for port in services["airflow-apiserver"]["ports"]]


def test_every_depends_on_target_is_a_defined_service(compose: dict[str, Any]) -> None:
    defined = set(compose["services"])
    missing = {
        (name, target)
        for name, service in [(COMMON_KEY, compose[COMMON_KEY]), *compose["services"].items()]
        for target in depends_on(service)
        if target not in defined
    }
    assert missing == set()


def test_depends_on_conditions_can_be_met(services: dict[str, dict[str, Any]]) -> None:
    """service_healthy needs a healthcheck; service_completed_successfully a one-shot service."""
    problems = []
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            dependency = services.get(target, {})
            if condition == "service_healthy" and "healthcheck" not in dependency:
                problems.append(f"{name} waits for {target} to be healthy; it has no healthcheck")
            if condition == "service_completed_successfully" and (
                target not in ONE_SHOT_SERVICES or dependency.get("restart") not in (None, "no")
            ):
                problems.append(f"{name} waits for {target} to exit; it is long-running")
    assert problems == []


def test_airflow_services_wait_for_healthy_backends_and_a_completed_init(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in AIRFLOW_SERVICES:
        conditions = depends_on(services[name])
        for backend in BACKEND_SERVICES:
            assert conditions.get(backend) == "service_healthy", f"{name} -> {backend}"
        if name not in ONE_SHOT_SERVICES:
            assert conditions.get("airflow-init") == "service_completed_successfully", name


# --- one shared Airflow configuration -----------------------------------------------------


def test_common_anchor_builds_the_bakery_image_from_the_dockerfile(common: dict[str, Any]) -> None:
    build = common["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (REPO_ROOT / context).resolve() == REPO_ROOT
    assert (REPO_ROOT / context / dockerfile).resolve() == DOCKERFILE
    assert common["image"] == f"bakery-airflow:{pinned_version(REQUIREMENTS, 'apache-airflow')}"


def test_common_environment_runs_celery_against_the_compose_backends(
    common: dict[str, Any],
) -> None:
    env = environment(common)
    assert {key: env.get(key) for key in EXPECTED_COMMON_ENVIRONMENT} == EXPECTED_COMMON_ENVIRONMENT


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_every_airflow_service_uses_the_common_anchor(
    common: dict[str, Any], services: dict[str, dict[str, Any]], name: str
) -> None:
    service = services[name]
    assert service.get("build") == common["build"]
    assert service.get("image") == common["image"]
    assert service.get("volumes") == common["volumes"]
    if name not in ONE_SHOT_SERVICES:  # airflow-init runs as root to chown the folders
        assert service.get("user") == common["user"]
    env, common_env = environment(service), environment(common)
    assert {key: env.get(key) for key in common_env} == common_env


def test_execution_api_url_points_at_the_api_server(
    common: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    url = environment(common)["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    match = re.fullmatch(r"http://([a-z0-9-]+):(\d+)/execution/", url)
    assert match, url
    host, port = match.groups()
    assert host == "airflow-apiserver"
    assert services[host]["command"] == "api-server"
    assert port in healthcheck_command(services[host])


# --- healthchecks -------------------------------------------------------------------------


def test_every_long_running_service_has_an_enabled_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    missing = [
        name
        for name, service in services.items()
        if name not in ONE_SHOT_SERVICES
        and ("healthcheck" not in service or is_disabled(service["healthcheck"]))
    ]
    assert missing == []


@pytest.mark.parametrize(("name", "expected"), EXPECTED_HEALTHCHECKS.items())
def test_healthcheck_probes_what_the_service_serves(
    services: dict[str, dict[str, Any]], name: str, expected: str
) -> None:
    # "$${HOSTNAME}" in the file reaches the container's shell as "${HOSTNAME}".
    command = healthcheck_command(services[name]).replace("$$", "$")
    assert expected in command


# --- volumes and mounts -------------------------------------------------------------------


def test_every_named_volume_is_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used = {
        (name, source)
        for name, service in [(COMMON_KEY, compose[COMMON_KEY]), *compose["services"].items()]
        for source, _ in map(volume_source_and_target, service.get("volumes") or [])
        if is_named_volume(source)
    }
    assert used, "postgres keeps its data in a named volume"
    assert {(name, source) for name, source in used if source not in declared} == set()


def test_postgres_keeps_its_data_in_a_named_volume(services: dict[str, dict[str, Any]]) -> None:
    mounts = dict(
        reversed(volume_source_and_target(entry)) for entry in services["postgres"]["volumes"]
    )
    assert is_named_volume(mounts.get("/var/lib/postgresql/data"))


def test_airflow_mounts_the_projects_dags_plugins_and_include(common: dict[str, Any]) -> None:
    mounts = {target: source for source, target in map(volume_source_and_target, common["volumes"])}
    for folder, target in PROJECT_MOUNTS.items():
        assert target in mounts, f"{folder}/ is not mounted at {target}"
        source = mounts[target]
        assert source is not None and not is_named_volume(source), f"{target} is not a bind mount"
        assert (REPO_ROOT / source).resolve() == REPO_ROOT / folder
        assert (REPO_ROOT / folder).is_dir()
    assert environment(common)["BAKERY_INCLUDE_DIR"] == PROJECT_MOUNTS["include"]


# --- secrets ------------------------------------------------------------------------------


def test_no_environment_value_is_a_literal_secret(compose: dict[str, Any]) -> None:
    found = [
        f"{where}: {name} ({problem})"
        for where, name, value in environments(compose)
        if (problem := literal_secret_problem(name, value))
    ]
    assert found == []


def test_no_string_in_the_compose_file_looks_like_a_credential(compose: dict[str, Any]) -> None:
    """Commands, healthchecks and labels too, not only environment values."""
    assert [text for text in strings(compose) if SECRET_LOOKING_VALUE.search(text)] == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ("AIRFLOW__API_AUTH__JWT_SECRET", "${JWT_SECRET:-changeme}"),
        ("AIRFLOW_CONN_AWS_BAKERY", "aws://AKIAIOSFODNN7EXAMPLE:secret@"),
        ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://airflow:hunter2@db/airflow"),
        ("SLACK_TOKEN", "xoxb-123456789012-abcdef"),
    ],
)
def test_literal_secret_detector_flags_literal_credentials(name: str, value: str) -> None:
    assert literal_secret_problem(name, value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("POSTGRES_PASSWORD", "airflow"),
        ("AWS_SECRET_ACCESS_KEY", "${AWS_SECRET_ACCESS_KEY:-}"),
        ("AIRFLOW_CONN_AWS_BAKERY", "${AIRFLOW_CONN_AWS_BAKERY:-}"),
        ("AIRFLOW__CELERY__BROKER_URL", "redis://:@redis:6379/0"),
        ("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", "/opt/airflow/config/p.json"),
    ],
)
def test_literal_secret_detector_accepts_host_values_and_local_defaults(
    name: str, value: str
) -> None:
    assert literal_secret_problem(name, value) is None


def test_cloud_credentials_reach_airflow_only_as_host_connections(
    compose: dict[str, Any],
) -> None:
    """Each catalog connection is an AIRFLOW_CONN_* taken from the host; no raw cloud keys."""
    catalog_connections = {
        value
        for key, value in mapping_items(yaml.safe_load(CATALOG.read_text()))
        if key == "connection_id"
    }
    env = environment(compose[COMMON_KEY])
    for connection_id in catalog_connections:
        variable = f"AIRFLOW_CONN_{connection_id.upper()}"
        assert env.get(variable) == f"${{{variable}:-}}", variable
    for where, name, value in environments(compose):
        if name.startswith("AIRFLOW_CONN_"):
            assert HOST_VALUE.fullmatch(value), f"{where}: {name} is not from the host"
        assert not re.match(r"(AWS|AZURE|ARM|GOOGLE)_", name), (
            f"{where}: {name} bypasses connections"
        )


def test_dockerfile_bakes_in_no_secrets() -> None:
    assert not SECRET_LOOKING_VALUE.search(DOCKERFILE.read_text())
    for keyword, arguments in dockerfile_instructions():
        if keyword in {"ENV", "ARG"}:
            name, _, value = arguments.partition("=")
            assert not (SECRET_NAME.search(name) and value), f"{keyword} {name} has a value"


# --- Dockerfile ---------------------------------------------------------------------------


def test_dockerfile_base_image_matches_the_pinned_airflow_version() -> None:
    version = pinned_version(REQUIREMENTS, "apache-airflow")
    assert pinned_version(CONSTRAINTS, "apache-airflow") == version
    repository, _, tag = from_image().partition(":")
    assert repository == "apache/airflow"
    assert re.fullmatch(rf"{re.escape(version)}-python3\.\d+", tag), tag


def test_dockerfile_installs_the_requirements_with_the_lock_file() -> None:
    copied = copied_paths()
    installs = [
        shlex.split(command)
        for _, command in runs_with_user()
        if re.search(r"\bpip install\b", command)
    ]
    assert installs, "no pip install"
    for argv in installs:
        requirements = option_values(argv, "-r", "--requirement")
        constraints = option_values(argv, "-c", "--constraint")
        assert [copied.get(path) for path in requirements] == ["requirements.txt"], argv
        assert [copied.get(path) for path in constraints] == ["constraints.txt"], argv
        assert "--no-cache-dir" in argv


def test_dockerfile_installs_packer_and_ssh_client_as_root() -> None:
    installed = {
        package
        for user, command in runs_with_user()
        if user == "root"
        for package in apt_installed_packages(shlex.split(command))
    }
    assert {"packer", "openssh-client"} <= installed


def test_dockerfile_pip_installs_and_runs_as_the_airflow_user() -> None:
    runs = list(runs_with_user())
    assert all(user == "airflow" for user, command in runs if "pip install" in command)
    users = [arguments for keyword, arguments in dockerfile_instructions() if keyword == "USER"]
    assert users and users[-1] == "airflow"


def test_dockerfile_copies_only_dependency_files_not_dags_plugins_or_include() -> None:
    """The project's code and templates are mounted by docker-compose.yaml, not baked in."""
    assert set(copied_paths().values()) <= DEPENDENCY_FILES
