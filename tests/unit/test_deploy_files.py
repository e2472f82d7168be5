"""Static checks of the deployment files: no Docker daemon or cluster is needed.

Parses the Dockerfile, the entrypoint, compose.yaml (with its nginx and Prometheus configs) and
the Kubernetes manifests, and checks what breaks deployments in practice: floating image tags,
root users, probes that miss Streamlit's health endpoint, ports that do not line up, environment
names the app never reads, and commands the CLI does not know.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from app import settings as settings_module
from app.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
HEALTH = "/_stcore/health"
APP_PORT = 8501
METRICS_PORT = 9108

# Variables documented by the images that read them (PostgreSQL's official image), and the
# process-level variables of the Python runtime in our own image.
POSTGRES_VARS = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "PGDATA"}
RUNTIME_VARS = {
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED",
    "PYTHONPATH",
    "PIP_NO_CACHE_DIR",
    "PIP_DISABLE_PIP_VERSION_CHECK",
    "HOME",
}


def settings_env_names() -> set[str]:
    """Every variable `Settings.from_env` reads: the literal first argument of each `get*` call."""
    tree = ast.parse(Path(settings_module.__file__).read_text(encoding="utf-8"))
    from_env = next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name == "from_env"
    )
    names = set()
    for node in ast.walk(from_env):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"get", "get_int"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(str(node.args[0].value))
    return names


def streamlit_env_names() -> set[str]:
    """Streamlit's own configuration variables (server.port -> STREAMLIT_SERVER_PORT)."""
    from streamlit import config

    return {
        option.env_var
        for option in config._config_options_template.values()
        if getattr(option, "env_var", None)
    }


ALLOWED_APP_ENV = settings_env_names() | streamlit_env_names()


def mlflow_server_env_names() -> set[str]:
    """Every variable the installed MLflow declares (read from its source: no `import mlflow`)."""
    import importlib.util

    spec = importlib.util.find_spec("mlflow")
    assert spec is not None
    assert spec.origin is not None
    source = Path(spec.origin).with_name("environment_variables.py").read_text(encoding="utf-8")
    return set(re.findall(r"Variable\(\s*\"([A-Z][A-Z0-9_]+)\"", source))


def test_the_mlflow_switches_for_webhooks_are_names_mlflow_reads() -> None:
    names = mlflow_server_env_names()
    for name in (
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY",
    ):
        assert name in names
    assert "_MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS" not in names  # the Python name, not the variable


def test_the_settings_scan_finds_the_variables_the_app_is_known_to_read() -> None:
    names = settings_env_names()
    for name in (
        "MLFLOW_TRACKING_URI",
        "COUNTERSIGN_DB_URL",
        "COUNTERSIGN_AUTH",
        "COUNTERSIGN_SIGNING_KEY",
        "COUNTERSIGN_WEBHOOK_URLS",
        "COUNTERSIGN_WEBHOOK_SECRET_FILE",
    ):
        assert name in names
    assert "STREAMLIT_SERVER_PORT" in streamlit_env_names()


def pinned(image: str) -> bool:
    """A registry image with an explicit version tag (or digest); never `latest` or bare."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag or tag == "latest":
        return False
    return re.search(r"\d+\.\d+", tag) is not None


@pytest.mark.parametrize(
    ("image", "ok"),
    [
        ("python:3.11.14-slim-bookworm", True),
        ("postgres:16.10-bookworm", True),
        ("registry.example.com:5000/countersign:0.1.0", True),
        ("nginx:latest", False),
        ("nginx", False),
        ("postgres:16", False),
        ("registry.example.com:5000/countersign", False),
    ],
)
def test_an_image_counts_as_pinned_only_with_a_version_tag(image: str, ok: bool) -> None:
    assert pinned(image) is ok


def cli_accepts(argv: list[str]) -> None:
    """The real CLI parser knows this command line (exits on an unknown command or flag)."""
    args = build_parser().parse_args(argv)
    assert callable(args.func)


def cli_argv(command: list[str] | str) -> list[str] | None:
    """The `python -m app.cli ...` arguments of a container command, or None for other programs."""
    parts = shlex.split(command) if isinstance(command, str) else [str(p) for p in command]
    if parts[:3] == ["python", "-m", "app.cli"]:
        return parts[3:]
    return None


def cli_lines_in_script(script: str) -> list[list[str]]:
    """Every `python -m app.cli ...` call inside a shell script (a `sh -c` command)."""
    script = re.sub(r"\$+\([^)]*\)", "X", script)  # command substitutions become one word
    found = []
    for match in re.finditer(r"python -m app\.cli ([^|;&\n]+)", script):
        found.append(shlex.split(match.group(1)))
    return found


# --- Dockerfile and entrypoint ---------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def docker_env_names(instructions: list[tuple[str, str]]) -> set[str]:
    names = set()
    for op, rest in instructions:
        if op == "ENV":
            names.update(re.findall(r"([A-Z][A-Z0-9_]*)=", rest))
    return names


def test_the_image_is_pinned_and_runs_as_an_unprivileged_user() -> None:
    instructions = dockerfile()
    bases = [rest.split()[0] for op, rest in instructions if op == "FROM"]
    assert bases
    assert all(pinned(image) for image in bases), bases
    users = [rest.strip() for op, rest in instructions if op == "USER"]
    assert users, "no USER: the container would run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    # the uid the Kubernetes securityContext asks for
    assert users[-1].split(":")[0] == "10001"


def test_every_runtime_package_is_pinned_exactly() -> None:
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][\w.]*", line), line


def test_the_health_check_asks_streamlits_health_endpoint_on_the_exposed_port() -> None:
    instructions = dockerfile()
    health = " ".join(rest for op, rest in instructions if op == "HEALTHCHECK")
    assert HEALTH in health
    exposed = {rest.strip() for op, rest in instructions if op == "EXPOSE"}
    assert str(APP_PORT) in exposed
    env = " ".join(rest for op, rest in instructions if op == "ENV")
    assert f"STREAMLIT_SERVER_PORT={APP_PORT}" in env


def test_the_image_sets_only_variables_that_something_reads() -> None:
    unknown = docker_env_names(dockerfile()) - ALLOWED_APP_ENV - RUNTIME_VARS
    assert unknown == set()


def test_the_entrypoint_migrates_before_it_serves_and_passes_other_commands_through() -> None:
    instructions = dockerfile()
    entry = " ".join(rest for op, rest in instructions if op == "ENTRYPOINT")
    assert "docker-entrypoint.sh" in entry
    copied = " ".join(rest for op, rest in instructions if op == "COPY")
    assert "deploy/docker-entrypoint.sh" in copied
    script = (ROOT / "deploy" / "docker-entrypoint.sh").read_text(encoding="utf-8")
    assert script.startswith("#!/bin/sh")
    assert "set -eu" in script
    upgrade = script.index("python -m app.cli db upgrade")
    serve = script.index("streamlit run app/main.py")
    assert upgrade < serve
    assert 'exec "$@"' in script
    assert (ROOT / "deploy" / "docker-entrypoint.sh").stat().st_mode & 0o111
    cli_accepts(["db", "upgrade"])


def test_the_build_context_leaves_secrets_and_local_data_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for entry in (".streamlit/secrets.toml", ".env", "data", ".git", "deploy/secrets"):
        assert entry in ignored


# --- compose.yaml -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8")))


def env_names(environment: Any) -> set[str]:
    if isinstance(environment, dict):
        return set(environment)
    return {str(item).split("=", 1)[0] for item in environment or ()}


def test_compose_has_the_whole_stack(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in (
        "app-1",
        "app-2",
        "proxy",
        "mlflow",
        "mlflow-db",
        "governance-db",
        "migrator",
        "seeder",
        "webhooks",
        "receiver",
        "receiver-register",
        "metrics",
        "jobs",
        "prometheus",
    ):
        assert name in services, name
    assert services["seeder"]["profiles"] == ["demo"]


def test_in_the_demo_profile_the_seeder_writes_before_anything_else_opens_the_ledger(
    compose: dict[str, Any],
) -> None:
    # The demo history lies in the past, so the seeder writes it only into a chain with nothing
    # newer: a replica, a job or the receiver that wrote first would leave the demo without it.
    services = compose["services"]
    opens_ledger = {
        name for name, s in services.items() if "COUNTERSIGN_DB_URL" in (s.get("environment") or {})
    }
    assert {"app-1", "app-2", "jobs", "receiver", "webhooks", "metrics", "monitor"} <= opens_ledger
    seeder = services["seeder"]
    assert seeder["profiles"] == ["demo"]
    # it waits only for the schema and MLflow, neither of which writes to the chain
    assert set(seeder["depends_on"]) == {"migrator", "mlflow"}
    assert "COUNTERSIGN_DB_URL" not in services["mlflow"].get("environment", {})
    for name in sorted(opens_ledger - {"seeder", "migrator"}):
        wait = services[name]["depends_on"].get("seeder")
        assert wait == {"condition": "service_completed_successfully", "required": False}, name
    # without the profile the seeder is no part of the stack: only optional edges may name it
    for name, s in services.items():
        depends = s.get("depends_on") or {}
        if "seeder" in depends:
            assert depends["seeder"].get("required") is False, name


def test_compose_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert "image" in service, name
        assert pinned(service["image"]), (name, service["image"])


def test_compose_sets_only_variables_that_the_services_read(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        names = env_names(service.get("environment"))
        allowed = POSTGRES_VARS if service["image"].startswith("postgres:") else ALLOWED_APP_ENV
        if name == "mlflow":  # the tracking server (same image) reads MLflow's own variables
            allowed = mlflow_server_env_names()
        assert names - allowed == set(), name


def test_compose_commands_are_ones_the_cli_knows(compose: dict[str, Any]) -> None:
    seen = set()
    for service in compose["services"].values():
        command = service.get("command")
        argv = cli_argv(command) if command else None
        if argv is not None:
            cli_accepts(argv)
            seen.add(" ".join(argv[:2]))
        if command and command[:2] == ["sh", "-c"]:
            for argv in cli_lines_in_script(command[2]):
                cli_accepts(argv)
                seen.add(" ".join(argv[:2]))
    assert {"db upgrade", "seed-demo", "webhooks deliver", "metrics serve"} <= seen
    assert {"reconcile --json", "audit checkpoint", "monitor run"} <= seen
    assert {"webhooks receive", "webhooks register"} <= seen


def test_mlflow_sends_its_registry_webhooks_to_the_receiver(compose: dict[str, Any]) -> None:
    services = compose["services"]
    receiver = [str(part) for part in services["receiver"]["command"]]
    port = receiver[receiver.index("--port") + 1]
    assert [str(p) for p in services["receiver"]["expose"]] == [port]
    assert f"127.0.0.1:{port}/healthz" in " ".join(services["receiver"]["healthcheck"]["test"])
    register = [str(part) for part in services["receiver-register"]["command"]]
    assert register[register.index("--receiver") + 1] == f"http://receiver:{port}/mlflow/webhooks"
    assert register[register.index("--mlflow") + 1] == "http://mlflow:5000"
    for name in ("receiver", "receiver-register"):
        env = services[name]["environment"]
        assert env["COUNTERSIGN_MLFLOW_WEBHOOK_SECRET_FILE"].startswith("/run/secrets/")
    mlflow_env = services["mlflow"]["environment"]
    assert mlflow_env["MLFLOW_WEBHOOK_ALLOWED_SCHEMES"] == "http,https"
    assert mlflow_env["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"] == "true"
    assert mlflow_env["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"].startswith("${")


def test_the_replicas_wait_for_the_migrator_and_check_streamlits_health(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert cli_argv(services["migrator"]["command"]) == ["db", "upgrade"]
    for name in ("app-1", "app-2"):
        app = services[name]
        assert app["depends_on"]["migrator"]["condition"] == "service_completed_successfully"
        assert HEALTH in " ".join(app["healthcheck"]["test"])
        assert str(APP_PORT) in [str(port) for port in app["expose"]]
        assert app["environment"]["COUNTERSIGN_DB_URL"].startswith("postgresql+psycopg://")
        assert app["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
        # secrets come from mounted files, not literals
        assert app["environment"]["COUNTERSIGN_SIGNING_KEY"].startswith("/run/secrets/")


def test_mlflow_runs_on_postgresql_with_served_artifacts_on_a_volume(
    compose: dict[str, Any],
) -> None:
    mlflow = compose["services"]["mlflow"]
    command = [str(part) for part in mlflow["command"]]
    assert command[:2] == ["mlflow", "server"]
    store = command[command.index("--backend-store-uri") + 1]
    assert store.startswith("postgresql+psycopg://")
    assert "@mlflow-db:5432/" in store
    assert "--serve-artifacts" in command
    destination = command[command.index("--artifacts-destination") + 1]
    mounts = [str(volume).split(":")[1] for volume in mlflow["volumes"]]
    assert any(destination.startswith(mount) for mount in mounts)
    assert command[command.index("--port") + 1] == "5000"
    assert "mlflow:5000" in command[command.index("--allowed-hosts") + 1].split(",")


def test_the_proxy_is_sticky_and_passes_websockets_to_both_replicas(
    compose: dict[str, Any],
) -> None:
    conf = (ROOT / "deploy" / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    upstream = re.search(r"upstream countersign \{(.*?)\}", conf, re.S)
    assert upstream is not None
    assert "ip_hash;" in upstream.group(1)
    servers = set(re.findall(r"server ([\w-]+):(\d+)", upstream.group(1)))
    assert servers == {("app-1", str(APP_PORT)), ("app-2", str(APP_PORT))}
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert 'proxy_set_header X-Forwarded-User "";' in conf
    proxy = compose["services"]["proxy"]
    listen = re.search(r"listen (\d+);", conf)
    assert listen is not None
    assert any(str(port).endswith(f":{listen.group(1)}") for port in proxy["ports"])


def test_prometheus_scrapes_the_metrics_service(compose: dict[str, Any]) -> None:
    config = yaml.safe_load(
        (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text(encoding="utf-8")
    )
    targets = [
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    ]
    assert f"metrics:{METRICS_PORT}" in targets
    command = [str(part) for part in compose["services"]["metrics"]["command"]]
    assert command[command.index("--port") + 1] == str(METRICS_PORT)


# --- Kubernetes ---------------------------------------------------------------------------------


def k8s_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                yield path.name, doc


@pytest.fixture(scope="module")
def manifests() -> list[tuple[str, dict[str, Any]]]:
    return list(k8s_documents())


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    kind = doc["kind"]
    if kind in {"Deployment", "Job"}:
        return dict(doc["spec"]["template"]["spec"])
    if kind == "CronJob":
        return dict(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return None


def by_kind(manifests: list[tuple[str, dict[str, Any]]], kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in manifests if doc["kind"] == kind]


def test_the_manifests_cover_what_a_deployment_needs(
    manifests: list[tuple[str, dict[str, Any]]],
) -> None:
    kinds = {doc["kind"] for _, doc in manifests}
    assert {"Deployment", "Service", "Ingress", "ConfigMap", "Secret", "CronJob", "Job"} <= kinds
    for _, doc in manifests:
        assert doc["apiVersion"]
        assert doc["metadata"]["name"]


def test_every_pod_is_pinned_and_non_root(manifests: list[tuple[str, dict[str, Any]]]) -> None:
    for _, doc in manifests:
        spec = pod_spec(doc)
        if spec is None:
            continue
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        for container in spec["containers"]:
            assert pinned(container["image"]), container["image"]
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_the_web_deployment_probes_streamlits_health_on_its_port(
    manifests: list[tuple[str, dict[str, Any]]],
) -> None:
    web = next(
        d for d in by_kind(manifests, "Deployment") if d["metadata"]["name"] == "countersign"
    )
    assert web["spec"]["replicas"] >= 2
    container = web["spec"]["template"]["spec"]["containers"][0]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == HEALTH
        assert ports.get(get["port"], get["port"]) == APP_PORT


def test_services_and_the_ingress_point_at_ports_that_exist(
    manifests: list[tuple[str, dict[str, Any]]],
) -> None:
    pods = [
        (doc["spec"]["template"]["metadata"]["labels"], doc["spec"]["template"]["spec"])
        for doc in by_kind(manifests, "Deployment")
    ]
    services = {doc["metadata"]["name"]: doc for doc in by_kind(manifests, "Service")}
    for service in services.values():
        selector = service["spec"]["selector"]
        matching = [spec for labels, spec in pods if selector.items() <= labels.items()]
        assert matching, service["metadata"]["name"]
        names = {p["name"] for spec in matching for c in spec["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in names
    for ingress in by_kind(manifests, "Ingress"):
        annotations = ingress["metadata"]["annotations"]
        assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"
        assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                port_names = {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
                assert backend["port"]["name"] in port_names


def test_the_manifests_set_only_variables_that_the_app_reads(
    manifests: list[tuple[str, dict[str, Any]]],
) -> None:
    for _, doc in manifests:
        if doc["kind"] == "ConfigMap":
            assert set(doc["data"]) - ALLOWED_APP_ENV == set()
        spec = pod_spec(doc)
        for container in spec["containers"] if spec else ():
            assert {env["name"] for env in container.get("env", ())} - ALLOWED_APP_ENV == set()


def test_the_secret_templates_hold_no_secret_values(
    manifests: list[tuple[str, dict[str, Any]]],
) -> None:
    for doc in by_kind(manifests, "Secret"):
        for key, value in doc.get("stringData", {}).items():
            if key == "secrets.toml":
                assert re.findall(r'(?:secret|client_id) = "(.+)"', value) == []
            else:
                assert value == "", key
        assert "data" not in doc


def test_jobs_run_migrations_reconcile_and_checkpoints_with_real_cli_commands(
    manifests: list[tuple[str, dict[str, Any]]],
) -> None:
    commands = set()
    for _, doc in manifests:
        spec = pod_spec(doc)
        for container in spec["containers"] if spec else ():
            argv = cli_argv(container["command"]) if "command" in container else None
            if argv is not None:
                cli_accepts(argv)
                commands.add(" ".join(argv[:2]))
    assert {"db upgrade", "reconcile --json", "audit checkpoint", "webhooks deliver"} <= commands
    assert {"webhooks receive", "webhooks register"} <= commands
    assert "monitor run" in commands  # the daily monitoring CronJob
    for cron in by_kind(manifests, "CronJob"):
        assert len(cron["spec"]["schedule"].split()) == 5
        assert cron["spec"]["concurrencyPolicy"] == "Forbid"
