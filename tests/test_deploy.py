"""The deployment files (deploy/Dockerfile, deploy/compose.yaml, deploy/k8s/) stay valid and in step with the code.

Offline and fast: YAML is parsed and linted, Kubernetes manifests are checked against the Kubernetes JSON schemas that
kubernetes-validate bundles. KEDA's ScaledObject is a CRD with no bundled schema: its structure is checked here by hand.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from api.app import create_app
from shared import keys
from shared.config import SETTINGS, Settings, secret_settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
YAML_FILES = sorted([COMPOSE, *K8S.glob("*.yaml")])
KUBERNETES_VERSION = "1.33"
CUSTOM_KINDS = {("keda.sh/v1alpha1", "ScaledObject"), ("kustomize.config.k8s.io/v1beta1", "Kustomization")}
PRODUCTION_PROCESSES = ("web", "worker", "health")
# Environment variables the deploy files may set that are not server402 settings, each with its reason.
NON_SETTINGS_ENV = {
    "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "keeps the Alibaba credentials library off the ECS metadata service",
    "PATH": "puts the image's virtualenv first",
    "PYTHONDONTWRITEBYTECODE": "read-only root filesystem; bytecode is compiled at build time",
    "PYTHONUNBUFFERED": "logs reach the container runtime at once",
    "PIP_NO_CACHE_DIR": "build stage only",
    "PIP_DISABLE_PIP_VERSION_CHECK": "build stage only",
}
SECRET_SETTINGS = secret_settings() | {"ALIBABA_CLOUD_ACCESS_KEY_ID"}
# Secrets a deployment may leave empty (a facilitator that wants no credentials): wired, but not demanded.
OPTIONAL_SECRETS = {
    "SERVER402_X402_FACILITATOR_BEARER",
    "SERVER402_X402_FACILITATOR_HEADERS",
    "SERVER402_X402_CDP_API_KEY_SECRET",
}
YAMLLINT_CONFIG = YamlLintConfig("{extends: default, rules: {line-length: {max: 120}}}")


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in sorted(K8S.glob("*.yaml")) for doc in load_all(path)]


def k8s_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in k8s_documents() if doc["kind"] == kind]


def deployments() -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in k8s_kind("Deployment")}


def containers() -> list[dict[str, Any]]:
    return [c for d in deployments().values() for c in d["spec"]["template"]["spec"]["containers"]]


def compose() -> dict[str, Any]:
    return load_all(COMPOSE)[0]


def procfile() -> dict[str, list[str]]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = shlex.split(command)
    return entries


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, args = line.strip().partition(" ")
            instructions.append((instruction.upper(), args.strip()))
    return instructions


def dockerfile_env() -> dict[str, str]:
    env = {}
    for instruction, args in dockerfile_instructions():
        if instruction == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(args)))
    return env


def served_get_paths() -> set[str]:
    app = create_app(Settings.from_env({}))
    return {route.resource.canonical for route in app.router.routes() if route.method == "GET" and route.resource}


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_deploy_yaml_parses_and_passes_yamllint(path: Path) -> None:
    assert load_all(path), f"{path} holds no YAML document"
    problems = list(linter.run(path.read_text(), YAMLLINT_CONFIG, str(path)))
    assert not problems, "\n".join(f"{path.name}:{p.line}:{p.column} {p.desc} ({p.rule})" for p in problems)


def test_k8s_manifests_match_the_kubernetes_schemas() -> None:
    checked = 0
    for path, doc in k8s_documents():
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            continue  # no bundled schema: see the KEDA and kustomization tests
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{path.name} {doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
        checked += 1
    assert checked >= 6


def test_kustomization_applies_every_manifest_but_the_example_secret() -> None:
    (kustomization,) = load_all(K8S / "kustomization.yaml")
    expected = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert set(kustomization["resources"]) == expected


def test_keda_scales_the_worker_deployment_on_the_arq_queue() -> None:
    (scaled,) = k8s_kind("ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] in deployments()
    assert deployments()[spec["scaleTargetRef"]["name"]]["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "python",
        "-m",
        "workers",
    ]
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], "the API is ready only with a live worker"
    triggers = spec["triggers"]
    assert [t["metadata"]["listName"] for t in triggers] == [keys.QUEUE_NAME, keys.BATCH_QUEUE_NAME]  # both lanes
    redis_url = next(doc for doc in k8s_kind("ConfigMap"))["data"]["REDIS_URL"]
    for trigger in triggers:
        assert trigger["type"] == "redis"
        assert trigger["metadata"]["listLength"].isdigit(), "KEDA metadata values are strings"
        assert trigger["metadata"]["address"] in redis_url


def test_api_autoscaler_targets_the_api_deployment_on_cpu() -> None:
    (hpa,) = k8s_kind("HorizontalPodAutoscaler")
    target = deployments()[hpa["spec"]["scaleTargetRef"]["name"]]
    assert target["spec"]["template"]["spec"]["containers"][0]["command"] == ["python", "-m", "api"]
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]


@pytest.mark.parametrize("process", PRODUCTION_PROCESSES)
def test_every_production_process_has_a_deployment_and_a_compose_service_running_its_procfile_command(
    process: str,
) -> None:
    command = procfile()[process]
    deployment = deployments().get(f"server402-{process}")
    assert deployment is not None, f"no Deployment server402-{process}"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == command
    service = compose()["services"].get(process)
    assert service is not None, f"no compose service {process}"
    assert service["command"] == command


def test_every_env_var_in_the_deploy_files_is_a_setting_or_a_documented_exception() -> None:
    named = set(dockerfile_env())
    for service in compose()["services"].values():
        named |= set(service.get("environment") or {})
    for doc in k8s_kind("ConfigMap"):
        named |= set(doc["data"])
    for doc in k8s_kind("Secret"):
        named |= set(doc.get("stringData") or {}) | set(doc.get("data") or {})
    for container in containers():
        named |= {env["name"] for env in container.get("env", [])}
    known = {s.env for s in SETTINGS} | set(NON_SETTINGS_ENV)
    assert named - known == set()
    assert named >= SECRET_SETTINGS, "every secret setting should be wired somewhere"


def test_containers_read_the_configmap_and_secret_that_exist() -> None:
    config_maps = {doc["metadata"]["name"] for doc in k8s_kind("ConfigMap")}
    secrets = {doc["metadata"]["name"] for doc in k8s_kind("Secret")}
    for container in containers():
        sources = container["envFrom"]
        assert {s["configMapRef"]["name"] for s in sources if "configMapRef" in s} <= config_maps
        assert {s["secretRef"]["name"] for s in sources if "secretRef" in s} == secrets


def test_secrets_are_never_written_in_the_deploy_files() -> None:
    assert not SECRET_SETTINGS & set(dockerfile_env())
    for doc in k8s_kind("ConfigMap"):
        assert not SECRET_SETTINGS & set(doc["data"]), "secrets belong in the Secret"
    for doc in k8s_kind("Secret"):
        assert doc["metadata"]["name"] and "data" not in doc
        for env, value in doc["stringData"].items():
            assert value.startswith("REPLACE_ME") or (env in OPTIONAL_SECRETS and value == ""), env
    for name, service in compose()["services"].items():
        for env in SECRET_SETTINGS & set(service.get("environment") or {}):
            demanded = r"\$\{" + env + (r":-\}" if env in OPTIONAL_SECRETS else r":\?[^}]*\}")
            assert re.fullmatch(demanded, service["environment"][env]), f"{name}: {env}"


def test_probes_and_healthchecks_point_at_routes_the_api_serves() -> None:
    served = served_get_paths()
    api = deployments()["server402-web"]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    port_names = {p["name"]: p["containerPort"] for p in api["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        assert api[probe]["httpGet"]["port"] in port_names
    assert set(port_names.values()) == {int(dockerfile_env()["SERVER402_PORT"])}
    compose_check = " ".join(compose()["services"]["web"]["healthcheck"]["test"])
    docker_check = next(args for instruction, args in dockerfile_instructions() if instruction == "HEALTHCHECK")
    paths = {"/readyz", "/healthz"}
    assert "/readyz" in compose_check and "/healthz" in docker_check
    assert paths <= served, f"the app does not serve {paths - served}"


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [args.strip() for instruction, args in dockerfile_instructions() if instruction == "USER"]
    assert users, "no USER line: the image would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-zero uid lets Kubernetes check runAsNonRoot"
    for deployment in deployments().values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == int(uid)
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_dockerfile_copies_every_package_and_the_operator_terms_and_defaults_to_the_api() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {args.split()[0].rstrip("/") for instruction, args in dockerfile_instructions() if instruction == "COPY"}
    operator_file = next(s.default for s in SETTINGS if s.env == "SERVER402_OPERATOR_FILE")
    assert packages | {operator_file} <= copied
    allowed = {line.lstrip("!").rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert packages | {operator_file, "requirements.lock", "pyproject.toml"} <= allowed
    (cmd,) = [args for instruction, args in dockerfile_instructions() if instruction == "CMD"]
    assert yaml.safe_load(cmd) == procfile()["web"]
    assert dockerfile_env()["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] == "true"


def test_dockerfile_installs_dependencies_pinned_by_the_lock_on_the_python_the_lock_was_made_with() -> None:
    lock_python = re.search(
        r"autogenerated by pip-compile with Python (\d+\.\d+)", (ROOT / "requirements.lock").read_text()
    )
    assert lock_python is not None
    froms = [args for instruction, args in dockerfile_instructions() if instruction in ("FROM", "ARG")]
    assert any(f"python:{lock_python[1]}-slim" in args for args in froms)
    runs = " ".join(args for instruction, args in dockerfile_instructions() if instruction == "RUN")
    assert "-c requirements.lock" in runs or "-r requirements.lock" in runs


def test_compose_redis_keeps_an_append_only_file_on_a_volume() -> None:
    redis = compose()["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    volume = next(v.split(":")[0] for v in redis["volumes"] if v.endswith(":/data"))
    assert volume in compose()["volumes"]
    assert all(s["depends_on"]["redis"]["condition"] == "service_healthy" for s in _app_services())


def test_compose_runs_two_api_replicas_and_one_health_worker_with_a_readiness_check() -> None:
    services = compose()["services"]
    assert services["web"]["deploy"]["replicas"] == 2
    assert services["health"]["deploy"]["replicas"] == 1
    assert services["worker"]["deploy"]["replicas"] >= 1
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    for service in _app_services():
        assert service["environment"]["SERVER402_UPSTREAM"] == "aliyun"
        assert service["read_only"] is True


def _app_services() -> list[dict[str, Any]]:
    return [compose()["services"][name] for name in PRODUCTION_PROCESSES]
