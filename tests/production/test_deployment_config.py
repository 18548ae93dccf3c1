"""deployment/ agrees with itself and with the code: image, ports, environment variables and
the code location in the Dockerfile, the compose file, the Helm values and both Dagster YAML
files; and deployment/dagster.yaml loads as a Dagster instance on PostgreSQL.

The Dockerfile, the compose file and the Helm values are configuration only here (no Docker,
no Kubernetes): these tests parse them, nothing more.
"""

from __future__ import annotations

import re
import shlex
import tomllib

import dagster as dg
import pytest
import yaml
from production_stack import DEPLOYMENT, LOCATION, PROJECT

pytestmark = [pytest.mark.production]

CODE_SERVER_PORT = 4000
DATA_ROOT, BUNDLE_ROOT = "/data", "/bundles"
PG_VARIABLES = {"DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"}


def _yaml(name: str) -> dict:
    return yaml.safe_load((DEPLOYMENT / name).read_text())


def _dockerfile() -> dict[str, list[str]]:
    """Instruction -> its arguments, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (DEPLOYMENT / "Dockerfile").read_text())
    instructions: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.setdefault(keyword.upper(), []).append(rest.strip())
    return instructions


def _dagster_env_names(node) -> set[str]:
    """Every `env: NAME` in a Dagster YAML tree."""
    if isinstance(node, dict):
        names = {node["env"]} if set(node) == {"env"} else set()
        return names.union(*(_dagster_env_names(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_dagster_env_names(value) for value in node))
    return set()


def _option(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_dockerfile_builds_a_cpu_only_non_root_image_serving_the_code_location():
    docker = _dockerfile()
    assert docker["FROM"] == ["python:3.11-slim"]
    installs = " ".join(docker["RUN"])
    assert "--index-url https://download.pytorch.org/whl/cpu torch==2.13.0" in installs
    assert "pip install ." in installs and "[dev]" not in installs
    assert docker["USER"] == ["dagster"] and "useradd" in installs
    assert docker["EXPOSE"] == [str(CODE_SERVER_PORT)]
    command = yaml.safe_load(docker["CMD"][0])  # the exec form is a JSON (so YAML) list
    assert command[:3] == ["dagster", "code-server", "start"]
    assert _option(command, "-m") == LOCATION and _option(command, "-p") == str(CODE_SERVER_PORT)
    assert "ENTRYPOINT" not in docker  # the chart's args and the run launcher's commands replace CMD
    env = dict(shlex.split(item)[0].split("=", 1) for item in " ".join(docker["ENV"]).split() if "=" in item)
    assert (env["INFERENCE_DATA_ROOT"], env["INFERENCE_DEPLOYMENT_ROOT"]) == (DATA_ROOT, BUNDLE_ROOT)


def test_the_code_location_is_the_same_everywhere():
    pyproject = tomllib.loads((PROJECT / "pyproject.toml").read_text())["tool"]["dagster"]
    (entry,) = _yaml("workspace.yaml")["load_from"]
    deployment = _helm_deployment()
    compose = _yaml("docker-compose.yaml")["services"]
    assert pyproject["module_name"] == LOCATION
    assert entry["grpc_server"] == {"host": "code-server", "port": CODE_SERVER_PORT, "location_name": LOCATION}
    assert "code-server" in compose and compose["code-server"]["expose"] == [str(CODE_SERVER_PORT)]
    assert deployment["codeServerArgs"] == ["-m", LOCATION] and deployment["port"] == CODE_SERVER_PORT


def test_compose_and_helm_run_the_same_image_with_the_same_variables_and_volumes():
    compose = _yaml("docker-compose.yaml")["services"]
    values = _yaml("helm/values.yaml")
    deployment = _helm_deployment()
    image = f"{deployment['image']['repository']}:{deployment['image']['tag']}"
    assert {compose[name]["image"] for name in ("code-server", "webserver", "daemon", "init")} == {image}
    assert compose["code-server"]["build"]["dockerfile"] == "deployment/Dockerfile"

    needed = _dagster_env_names(_yaml("dagster.yaml"))
    assert needed == PG_VARIABLES
    for name in ("code-server", "webserver", "daemon", "init"):
        assert needed <= set(compose[name]["environment"]), name
    helm_env = {item["name"]: item["value"] for item in deployment["env"]}
    for name in ("code-server", "webserver", "daemon"):
        env = compose[name]["environment"]
        assert (env["INFERENCE_DATA_ROOT"], env["INFERENCE_DEPLOYMENT_ROOT"]) == (DATA_ROOT, BUNDLE_ROOT), name
        assert {f"data:{DATA_ROOT}", f"bundles:{BUNDLE_ROOT}"} <= set(compose[name]["volumes"]), name
    assert (helm_env["INFERENCE_DATA_ROOT"], helm_env["INFERENCE_DEPLOYMENT_ROOT"]) == (DATA_ROOT, BUNDLE_ROOT)
    assert set(helm_env) <= set(compose["code-server"]["environment"]) | {"OMP_NUM_THREADS"}
    assert int(helm_env["INFERENCE_MAX_PARTITIONS_PER_RUN"]) > 0  # runs of a bounded size on Kubernetes

    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    for mounts, volumes in ((deployment["volumeMounts"], deployment["volumes"]), (launcher["volumeMounts"], launcher["volumes"])):
        assert {m["mountPath"] for m in mounts} == {DATA_ROOT, BUNDLE_ROOT}
        assert {v["persistentVolumeClaim"]["claimName"] for v in volumes} == {m["name"] for m in mounts} == {"inference-data"}
    assert values["postgresql"]["enabled"] and values["postgresql"]["postgresqlUsername"] == "dagster"
    assert compose["postgres"]["environment"]["POSTGRES_USER"] == compose["code-server"]["environment"]["DAGSTER_PG_USERNAME"]


def test_helm_queue_and_monitoring_follow_dagster_yaml():
    instance = _yaml("dagster.yaml")
    daemon = _yaml("helm/values.yaml")["dagsterDaemon"]
    queue = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert {limit["key"] for limit in instance["concurrency"]["runs"]["tag_concurrency_limits"]} == {
        limit["key"] for limit in queue["tagConcurrencyLimits"]
    }
    assert daemon["runMonitoring"]["freeSlotsAfterRunEndSeconds"] == instance["run_monitoring"]["free_slots_after_run_end_seconds"]
    assert daemon["runRetries"]["enabled"] == instance["run_retries"]["enabled"]
    assert _yaml("helm/values.yaml")["telemetry"]["enabled"] is False is instance["telemetry"]["enabled"]
    assert _yaml("helm/values.yaml")["pythonLogs"]["pythonLogLevel"] == instance["python_logs"]["python_log_level"] == "INFO"


def test_dagster_yaml_loads_as_an_instance_on_postgresql(pg_database, tmp_path, monkeypatch):
    (tmp_path / "dagster.yaml").write_text((DEPLOYMENT / "dagster.yaml").read_text())
    for name, value in pg_database.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        storages = {type(s).__name__ for s in (instance.run_storage, instance.event_log_storage, instance.schedule_storage)}
        assert storages == {"PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage"}
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 2
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 30
        assert instance.run_retries_enabled and not instance.telemetry_enabled
        instance.event_log_storage.set_concurrency_slots("scoring", 2)  # what the compose `init` service does
        assert instance.event_log_storage.get_concurrency_info("scoring").slot_count == 2


def _helm_deployment() -> dict:
    (deployment,) = _yaml("helm/values.yaml")["dagster-user-deployments"]["deployments"]
    return deployment
