"""Every way of installing idauth-exporter, validated offline with the tools its issue
names: the Debian package (built with cargo-deb, inspected with dpkg-deb, installed with
dpkg -i), the systemd unit (systemd-analyze), the Dockerfile (hadolint), the Compose
stack (yamllint and file checks) and the Kubernetes base (kustomize, kubernetes-validate
--strict, promtool). Each of them uses the same configuration file, the same secret and
the same rules and dashboard.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]["version"]
BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / "target" / "python-venv")) / "bin"


def run(*args, check=True, **kw):
    """Runs a command; a missing tool fails the test with what to install."""
    try:
        out = subprocess.run(args, capture_output=True, text=True, **kw)
    except FileNotFoundError:
        pytest.fail(f"{args[0]} is needed; ./scripts/test installs it")
    if check and out.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


def tool(name):
    path = BIN / name
    return str(path) if path.exists() else name


# ---------------------------------------------------------------- Debian package


@pytest.fixture(scope="module")
def deb():
    # The package's layout and behaviour, not the optimiser's work: built from the dev
    # profile that `cargo test` has just built (seconds, where the release profile's fat
    # LTO takes two minutes on 2 cores). `cargo deb --locked` alone builds the release
    # package users install, from the same metadata.
    run("cargo", "deb", "--locked", "--profile", "dev", cwd=ROOT)
    debs = sorted((ROOT / "target" / "debian").glob(f"idauth-exporter_{VERSION}-*_*.deb"))
    assert debs, "cargo deb built no package"
    return debs[-1]


def test_the_deb_holds_the_binary_the_config_the_unit_and_the_rules(deb):
    contents = run("dpkg-deb", "--contents", str(deb)).stdout
    paths = {line.split()[-1].lstrip(".") for line in contents.splitlines()}
    for wanted in [
        "/usr/bin/idauth-exporter",
        "/etc/idauth-exporter/config.yaml",
        "/usr/lib/systemd/system/idauth-exporter.service",
        "/usr/share/idauth-exporter/prometheus/alerts.yaml",
        "/usr/share/idauth-exporter/prometheus/rules.yaml",
        "/usr/share/idauth-exporter/grafana/idauth-overview.json",
        "/usr/share/idauth-exporter/alertmanager/alertmanager.yml",
        "/usr/share/idauth-exporter/alertmanager/templates/idauth.tmpl",
        "/usr/share/idauth-exporter/mixin/mixin.libsonnet",
        "/usr/share/idauth-exporter/mixin/lib/utils.libsonnet",
        "/usr/share/doc/idauth-exporter/README.md",
        "/usr/share/doc/idauth-exporter/runbook.md",
        "/usr/share/doc/idauth-exporter/copyright",
    ]:
        assert wanted in paths, f"{wanted} missing from:\n{contents}"
    assert re.search(r"^-rwxr-xr-x 0/0 .* \./usr/bin/idauth-exporter$", contents, re.M), contents

    info = run("dpkg-deb", "--info", str(deb)).stdout
    assert "Package: idauth-exporter" in info
    assert f"Version: {VERSION}-" in info
    assert re.search(r"Depends: libc6", info), info
    # The configuration is a conffile: an upgrade never overwrites the admin's edits.
    conffiles = run("sh", "-c", f"dpkg-deb --ctrl-tarfile {deb} | tar -xO ./conffiles").stdout
    assert conffiles.split() == ["/etc/idauth-exporter/config.yaml"], conffiles
    # The packaged files are the repository's own.
    for packaged, source in [
        ("./etc/idauth-exporter/config.yaml", "config.example.yaml"),
        ("./usr/share/idauth-exporter/prometheus/alerts.yaml", "deploy/prometheus/alerts.yaml"),
        ("./usr/share/idauth-exporter/alertmanager/templates/idauth.tmpl", "deploy/alertmanager/templates/idauth.tmpl"),
        ("./usr/share/idauth-exporter/mixin/config.libsonnet", "deploy/mixin/config.libsonnet"),
        ("./usr/lib/systemd/system/idauth-exporter.service", "deploy/systemd/idauth-exporter.service"),
    ]:
        text = run("sh", "-c", f"dpkg-deb --fsys-tarfile {deb} | tar -xO {packaged}").stdout
        assert text == (ROOT / source).read_text(), packaged


def test_the_deb_installs_and_runs(deb):
    if os.geteuid() != 0:
        pytest.fail("installing the package needs root: run ./scripts/test as root (CI does)")
    run("dpkg", "-i", str(deb))
    try:
        out = run("/usr/bin/idauth-exporter", "--version").stdout
        assert out.startswith(f"idauth-exporter {VERSION} (revision "), out
        # The installed configuration is valid with the key where systemd would put it.
        with tempfile.TemporaryDirectory() as creds:
            Path(creds, "smile_id_api_key").write_text("k\n")
            env = {**os.environ, "CREDENTIALS_DIRECTORY": creds}
            env.pop("SMILE_ID_API_KEY", None)
            check = run(
                "/usr/bin/idauth-exporter", "config", "check", "--config.file=/etc/idauth-exporter/config.yaml", env=env
            )
            assert "SUCCESS" in check.stdout, check.stdout
        if shutil.which("systemd-analyze"):
            run("systemd-analyze", "verify", "/usr/lib/systemd/system/idauth-exporter.service")
    finally:
        run("dpkg", "--purge", "idauth-exporter")
    assert not Path("/usr/bin/idauth-exporter").exists()


# ---------------------------------------------------------------- systemd


UNIT = ROOT / "deploy" / "systemd" / "idauth-exporter.service"


def unit_settings():
    settings = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def test_the_unit_is_hardened_and_takes_the_key_as_a_credential():
    s = unit_settings()
    expected = {
        "DynamicUser": "yes",
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "Restart": "on-failure",
        "LoadCredential": "smile_id_api_key:/etc/idauth-exporter/smile_id_api_key",
        "ExecStart": "/usr/bin/idauth-exporter --config.file=/etc/idauth-exporter/config.yaml"
        " --storage.path=/var/lib/idauth-exporter",
        # The history store: the unit's one writable directory.
        "StateDirectory": "idauth-exporter",
        "StateDirectoryMode": "0700",
        "ExecReload": "/bin/kill -HUP $MAINPID",
        # Soft = hard: the exporter needs no setrlimit, which SystemCallFilter=~@resources forbids.
        "LimitNOFILE": "8192",
    }
    for key, value in expected.items():
        assert s.get(key) == [value], f"{key}={s.get(key)}"
    for key in ["ProtectHome", "PrivateTmp", "PrivateDevices", "RestrictNamespaces", "MemoryDenyWriteExecute"]:
        assert s.get(key) == ["yes"], key


def test_systemd_analyze_accepts_the_unit():
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is missing: install the Debian package systemd (./scripts/test does)")
    with tempfile.TemporaryDirectory() as root:
        # verify wants the ExecStart binary to exist: give it a stand-in in a scratch root.
        unit = Path(root, "idauth-exporter.service")
        unit.write_text(UNIT.read_text().replace("/usr/bin/idauth-exporter", "/bin/true"))
        run("systemd-analyze", "verify", str(unit))
        security = run("systemd-analyze", "security", "--offline=true", str(unit)).stdout
    exposure = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", security).group(1))
    print(f"systemd-analyze security: exposure {exposure}")
    assert exposure <= 2.0, security


# ---------------------------------------------------------------- container


def test_the_dockerfile_lints_clean_and_is_conventional():
    run(tool("hadolint"), "--failure-threshold", "info", str(ROOT / "Dockerfile"))
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(stages) >= 2, "multi-stage"
    assert "distroless" in stages[-1], stages
    assert "cargo build --release --locked" in text
    assert re.search(r"^USER 65532:65532$", text, re.M), "a numeric non-root user"
    assert re.search(r"^EXPOSE 9877$", text, re.M)
    assert "ENV CREDENTIALS_DIRECTORY=/run/secrets" in text
    assert "COPY config.example.yaml /etc/idauth-exporter/config.yaml" in text
    # The history store: a volume at the same path as the Debian package's, owned by the user.
    assert re.search(r'^VOLUME \["/var/lib/idauth-exporter"\]$', text, re.M)
    assert re.search(r"^COPY --from=build --chown=65532:65532 \S+ /var/lib/idauth-exporter$", text, re.M)
    assert "--storage.path=/var/lib/idauth-exporter" in text
    for label in ["title", "description", "version", "revision", "licenses", "source"]:
        assert f"org.opencontainers.image.{label}=" in text, label
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "target" in ignored and ".git" in ignored


# ---------------------------------------------------------------- Compose


COMPOSE = ROOT / "deploy" / "compose"


def test_compose_files_lint_and_every_referenced_file_exists():
    run(tool("yamllint"), "-c", str(ROOT / ".yamllint.yaml"), str(COMPOSE))
    doc = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    assert set(doc["services"]) == {"idauth-exporter", "prometheus", "alertmanager", "grafana"}
    exporter = doc["services"]["idauth-exporter"]
    assert (COMPOSE / exporter["build"]["context"] / "Dockerfile").is_file()
    assert exporter["command"][0] == "demo"
    mounts = {}
    for name, service in doc["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                assert (COMPOSE / source).exists(), f"{name}: {source} does not exist"
                mounts[target] = (COMPOSE / source).resolve()
    # The same rules and dashboard as everywhere else, not copies.
    assert mounts["/etc/prometheus/rules.yaml"] == ROOT / "deploy" / "prometheus" / "rules.yaml"
    assert mounts["/etc/prometheus/alerts.yaml"] == ROOT / "deploy" / "prometheus" / "alerts.yaml"
    assert mounts["/var/lib/grafana/dashboards"] == ROOT / "grafana" / "dashboards"
    assert mounts["/etc/grafana/provisioning"] == ROOT / "grafana" / "provisioning"
    datasource = yaml.safe_load((ROOT / "grafana/provisioning/datasources/prometheus.yaml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"


def test_compose_prometheus_and_alertmanager_configs_are_valid():
    with tempfile.TemporaryDirectory() as d:
        # Laid out as the containers see it: the config beside the mounted rule files.
        shutil.copy(COMPOSE / "prometheus.yml", d)
        for f in ["rules.yaml", "alerts.yaml"]:
            shutil.copy(ROOT / "deploy" / "prometheus" / f, d)
        out = run("promtool", "check", "config", "prometheus.yml", cwd=d).stdout
        assert "SUCCESS: 2 rule files found" in out, out
    run("amtool", "check-config", str(COMPOSE / "alertmanager.yml"))
    text = (COMPOSE / "prometheus.yml").read_text()
    assert "idauth-exporter:9877" in text and "alertmanager:9093" in text


ALERTMANAGER = ROOT / "deploy" / "alertmanager"


def test_the_alertmanager_example_and_its_templates_are_valid():
    out = run("amtool", "check-config", str(ALERTMANAGER / "alertmanager.yml")).stdout
    assert "1 templates" in out and "3 inhibit rules" in out, out
    run(tool("yamllint"), "-c", str(ROOT / ".yamllint.yaml"), str(ALERTMANAGER))
    doc = yaml.safe_load((ALERTMANAGER / "alertmanager.yml").read_text())
    (glob,) = doc["templates"]
    assert sorted(ALERTMANAGER.glob(glob)) == [ALERTMANAGER / "templates" / "idauth.tmpl"]


def test_the_compose_alertmanager_groups_routes_and_inhibits_as_the_example():
    example = yaml.safe_load((ALERTMANAGER / "alertmanager.yml").read_text())
    demo = yaml.safe_load((COMPOSE / "alertmanager.yml").read_text())
    assert demo["route"]["group_by"] == example["route"]["group_by"]
    assert demo["route"]["receiver"] == example["route"]["receiver"]
    def matchers(route):
        return [(r["receiver"], r["matchers"]) for r in route["routes"]]

    assert matchers(demo["route"]) == matchers(example["route"])
    assert demo["inhibit_rules"] == example["inhibit_rules"]
    assert [r["name"] for r in demo["receivers"]] == [r["name"] for r in example["receivers"]]


# ---------------------------------------------------------------- Kubernetes


K8S = ROOT / "deploy" / "kubernetes"


def kustomize(path):
    out = run(tool("kubectl"), "kustomize", str(path)).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="module")
def rendered():
    return kustomize(K8S)


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def test_generated_copies_are_in_step_with_their_sources():
    run("python3", str(ROOT / "scripts" / "sync-deploy"), "--check")


def test_core_manifests_pass_kubernetes_validate_strict(rendered):
    kinds = {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget"}
    core = [d for d in rendered if d["kind"] in kinds]
    assert {d["kind"] for d in core} == kinds
    with tempfile.TemporaryDirectory() as d:
        path = Path(d, "core.yaml")
        path.write_text(yaml.safe_dump_all(core))
        out = run(tool("kubernetes-validate"), "--strict", str(path))
    assert out.stdout.count("passed for resource") == len(core), out.stdout + out.stderr


def test_the_deployment_is_locked_down(rendered):
    (deploy,) = by_kind(rendered, "Deployment")
    spec = deploy["spec"]
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert c["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and "memory" in c["resources"]["limits"]
    assert {"name": "CREDENTIALS_DIRECTORY", "value": "/run/secrets"} in c["env"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts == {"config": "/etc/idauth-exporter", "api-key": "/run/secrets", "history": "/var/lib/idauth-exporter"}
    assert "--storage.path=/var/lib/idauth-exporter" in c["args"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    # History in an emptyDir by default (it survives container restarts, not pod moves), with
    # a size limit; the README documents a PersistentVolumeClaim instead.
    assert volumes["history"]["emptyDir"]["sizeLimit"]
    (history_mount,) = [m for m in c["volumeMounts"] if m["name"] == "history"]
    assert not history_mount.get("readOnly")
    secret = volumes["api-key"]["secret"]
    assert secret["items"] == [{"key": "smile_id_api_key", "path": "smile_id_api_key"}]
    config_map = volumes["config"]["configMap"]["name"]
    (config,) = [d for d in by_kind(rendered, "ConfigMap") if d["metadata"]["name"] == config_map]
    # The same configuration file as every other install path, with a note on top.
    source = (ROOT / "config.example.yaml").read_text()
    assert config["data"]["config.yaml"].endswith(source)
    (service,) = by_kind(rendered, "Service")
    (monitor,) = by_kind(rendered, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"] == "http-metrics"
    assert service["spec"]["ports"][0]["port"] == 9877


def test_two_replicas_spread_over_nodes_and_zones_roll_and_drain_one_at_a_time(rendered):
    (deploy,) = by_kind(rendered, "Deployment")
    spec = deploy["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    pod_labels = spec["template"]["metadata"]["labels"]
    spread = {c["topologyKey"]: c for c in spec["template"]["spec"]["topologySpreadConstraints"]}
    assert set(spread) == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    for c in spread.values():
        assert c["maxSkew"] == 1 and c["whenUnsatisfiable"] == "ScheduleAnyway", c
        assert c["labelSelector"]["matchLabels"].items() <= pod_labels.items(), c
        assert c["matchLabelKeys"] == ["pod-template-hash"], c
    (pdb,) = by_kind(rendered, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["selector"] == spec["selector"]
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_the_kube_prometheus_stack_component_adds_the_release_label(rendered):
    component = K8S / "components" / "kube-prometheus-stack"
    with tempfile.TemporaryDirectory() as d:
        # An overlay as the component's comment shows, outside the base's folder.
        overlay = Path(d, "overlay")
        overlay.mkdir()
        overlay.joinpath("kustomization.yaml").write_text(
            yaml.safe_dump({"resources": [os.path.relpath(K8S, overlay)], "components": [os.path.relpath(component, overlay)]})
        )
        docs = kustomize(overlay)
        # Another release name: the overlay's own patch, applied after the component.
        overlay.joinpath("kustomization.yaml").write_text(
            yaml.safe_dump(
                {
                    "resources": [os.path.relpath(K8S, overlay)],
                    "components": [os.path.relpath(component, overlay)],
                    "patches": [
                        {
                            "target": {"group": "monitoring.coreos.com", "kind": "ServiceMonitor|PrometheusRule"},
                            "patch": '[{"op": "add", "path": "/metadata/labels/release", "value": "prom"}]',
                        }
                    ],
                }
            )
        )
        renamed = kustomize(overlay)
    labelled = {d["kind"] for d in docs if d["metadata"].get("labels", {}).get("release") == "kube-prometheus-stack"}
    assert labelled == {"ServiceMonitor", "PrometheusRule"}
    # Nothing else changes.
    for doc in docs:
        doc["metadata"].get("labels", {}).pop("release", None)
    assert docs == rendered
    assert {d["kind"] for d in renamed if d["metadata"].get("labels", {}).get("release") == "prom"} == labelled


def test_the_dashboard_config_map_is_the_dashboard(rendered):
    (cm,) = [d for d in by_kind(rendered, "ConfigMap") if d["metadata"]["name"] == "idauth-exporter-dashboard"]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((ROOT / "grafana" / "dashboards" / "idauth-overview.json").read_text())
    assert json.loads(cm["data"]["idauth-overview.json"]) == shipped


def test_the_prometheus_rule_carries_the_same_rules_and_promtool_accepts_them(rendered):
    (rule,) = by_kind(rendered, "PrometheusRule")
    groups = rule["spec"]["groups"]
    shipped = [
        g
        for f in ["rules.yaml", "alerts.yaml"]
        for g in yaml.safe_load((ROOT / "deploy" / "prometheus" / f).read_text())["groups"]
    ]
    assert groups == shipped
    with tempfile.TemporaryDirectory() as d:
        path = Path(d, "rules.yaml")
        path.write_text(yaml.safe_dump({"groups": groups}))
        out = run("promtool", "check", "rules", str(path)).stdout
    # Every rule of the mixin, whatever their number.
    count = sum(len(g["rules"]) for g in groups)
    assert count >= 13 and f"SUCCESS: {count} rules found" in out, out
