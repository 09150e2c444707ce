"""cluster.yaml (AWS) and docs/cluster/onprem.yaml validate against Ray's cluster-launcher schema,
offline, share every command, and keep the promises the README makes (an image with Python >= 3.10
and a current driver, no credentials, nothing public, GPU autoscaling, the commit on every node, the
tracking server as a service on PostgreSQL). `ray up` itself runs in tests/cluster/test_ray_up.py."""
from __future__ import annotations

import copy
import re
import shutil
import subprocess

import pytest
import yaml

from tests.helpers import ROOT

CLOUD = yaml.safe_load((ROOT / "cluster.yaml").read_text())
ONPREM = yaml.safe_load((ROOT / "docs/cluster/onprem.yaml").read_text())
SERVER = ROOT / "docs/cluster/tracking-server.sh"
SHARED = ("file_mounts", "rsync_exclude", "setup_commands", "head_setup_commands", "head_start_ray_commands",
          "worker_start_ray_commands")


@pytest.mark.parametrize("cfg", [CLOUD, ONPREM], ids=["cloud", "onprem"])
def test_validates_against_ray_schema(cfg):
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(cfg))
    validate_config(prepared)
    assert prepared["head_node_type"] in prepared["available_node_types"]


def test_schema_check_is_real():
    from ray.autoscaler._private.util import prepare_config, validate_config

    bad = copy.deepcopy(CLOUD)
    bad["available_node_types"]["gpu_worker"]["min_workers"] = "zero"
    with pytest.raises(Exception):
        validate_config(prepare_config(bad))


def test_onprem_is_the_same_cluster_with_another_provider():
    assert ONPREM["provider"]["type"] == "local"
    assert {"head_ip", "worker_ips"} <= set(ONPREM["provider"])
    for key in SHARED:
        assert ONPREM[key] == CLOUD[key], key
    shared_text = lambda f: (ROOT / f).read_text().split("# --- From here on identical", 1)[1].split("\n", 1)[1]
    assert shared_text("cluster.yaml") == shared_text("docs/cluster/onprem.yaml")


def test_image_has_python_310_and_a_current_driver():
    """Not Ray's `latest_dlami` (Ubuntu 18.04, CUDA 11 era driver): the Deep Learning Base AMI with
    NVIDIA's open driver on Ubuntu 22.04 (Python 3.10), chosen by name through its SSM parameter."""
    text = (ROOT / "cluster.yaml").read_text()
    assert "latest_dlami" not in re.sub(r"#.*", "", text)
    for node in CLOUD["available_node_types"].values():
        assert node["node_config"]["ImageId"] == (
            "resolve:ssm:/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id")
    assert "Python 3.10" in text and "driver 580" in text
    setup = " ".join(CLOUD["setup_commands"])
    assert "sys.version_info >= (3, 10)" in setup
    assert "nvidia-smi -L" in setup and "torch.cuda.is_available()" in setup


def test_gpu_worker_autoscales_from_zero():
    w = CLOUD["available_node_types"]["gpu_worker"]
    assert w["min_workers"] == 0 and w["max_workers"] >= 1
    assert w["node_config"]["InstanceType"].startswith(("g4dn", "g5", "g6", "p3", "p4", "p5"))
    assert CLOUD["available_node_types"]["head"]["resources"] == {"CPU": 0}


def test_quota_cost_and_uis_are_documented():
    text = (ROOT / "cluster.yaml").read_text()
    assert "L-DB2E81BA" in text and "$1.006/h" in text and "$0.192/h" in text
    assert "-p 5000 -p 8265" in text


def test_no_credentials_and_nothing_public():
    for f in ("cluster.yaml", "docs/cluster/onprem.yaml", "docs/cluster/tracking-server.sh"):
        text = (ROOT / f).read_text()
        assert not re.search(r"AKIA[0-9A-Z]{16}|aws_secret|aws_access_key|password\s*[:=]\s*\S", text, re.I), f
        assert "0.0.0.0" not in text, f
    assert "--dashboard-host=127.0.0.1" in " ".join(CLOUD["head_start_ray_commands"])
    server = SERVER.read_text()
    assert server.count("--host 127.0.0.1") == 2          # the unit and the background start
    assert "--serve-artifacts" in server


def test_project_and_its_commit_on_every_node():
    assert CLOUD["file_mounts"]["~/ablate"] == "."
    assert ".git" not in CLOUD["rsync_exclude"], "the nodes record the commit they run from the synced .git"
    setup = " ".join(CLOUD["setup_commands"])
    assert "-e ~/ablate" in setup and "torch==" in setup


def test_tracking_server_is_a_restarting_service_on_postgresql(tmp_path):
    """The systemd unit the head gets: restarts, starts at boot after PostgreSQL, reads the database
    URI from a file outside the repository; checked by systemd-analyze where systemd is installed."""
    assert CLOUD["head_setup_commands"] == ["bash ~/ablate/docs/cluster/tracking-server.sh start"]
    home = tmp_path / "home"
    (home / ".ablate").mkdir(parents=True)
    (home / ".ablate" / "mlflow.env").write_text("MLFLOW_BACKEND_STORE_URI=postgresql://me@/ablate_mlflow"
                                                 "?host=/var/run/postgresql\n")
    r = subprocess.run(["bash", str(SERVER), "unit"], env={"HOME": str(home), "USER": "ubuntu", "PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    unit = r.stdout
    for line in ("Restart=always", "WantedBy=multi-user.target", f"EnvironmentFile={home}/.ablate/mlflow.env",
                 "User=ubuntu", "After=network-online.target postgresql.service"):
        assert line in unit, line
    assert "postgresql://" not in unit, "the URI stays in the env file"
    if shutil.which("systemd-analyze") is None:
        return
    (home / "ablate-venv" / "bin").mkdir(parents=True)
    (home / "ablate-venv" / "bin" / "mlflow").write_text("#!/bin/sh\n")
    (home / "ablate-venv" / "bin" / "mlflow").chmod(0o755)
    (home / "ablate-store").mkdir()
    f = tmp_path / "ablate-mlflow.service"

    def problems(text: str) -> list:
        f.write_text(text.replace("User=ubuntu", "User=root"))
        r = subprocess.run(["systemd-analyze", "verify", str(f)], capture_output=True, text=True, timeout=60)
        return [ln for ln in r.stderr.splitlines() if "ablate-mlflow.service" in ln]

    assert not problems(unit)
    assert problems(unit.replace("Restart=always", "Restart=sometimes")), "the check is real"
