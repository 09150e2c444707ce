"""cluster.yaml validates against Ray's cluster-launcher schema, offline, and keeps
the promises the README makes (no credentials, nothing public, GPU autoscaling)."""
from __future__ import annotations

import copy
import re

import pytest
import yaml

from tests.conftest import ROOT

CFG = yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_validates_against_ray_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    cfg = prepare_config(copy.deepcopy(CFG))
    validate_config(cfg)
    assert cfg["head_node_type"] in cfg["available_node_types"]


def test_schema_check_is_real():
    from ray.autoscaler._private.util import prepare_config, validate_config

    bad = copy.deepcopy(CFG)
    bad["available_node_types"]["gpu_worker"]["min_workers"] = "zero"
    with pytest.raises(Exception):
        validate_config(prepare_config(bad))


def test_gpu_worker_autoscales_from_zero():
    w = CFG["available_node_types"]["gpu_worker"]
    assert w["min_workers"] == 0 and w["max_workers"] >= 1
    assert w["node_config"]["InstanceType"].startswith(("g4dn", "g5", "g6", "p3", "p4", "p5"))
    assert CFG["available_node_types"]["head"]["resources"] == {"CPU": 0}


def test_no_credentials_and_nothing_public():
    text = (ROOT / "cluster.yaml").read_text()
    assert not re.search(r"AKIA[0-9A-Z]{16}|aws_secret|aws_access_key|password", text, re.I)
    start = " ".join(CFG["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in start
    mlflow_cmd = " ".join(CFG["head_setup_commands"])
    assert "mlflow server" in mlflow_cmd and "--host 127.0.0.1" in mlflow_cmd
    assert "0.0.0.0" not in text


def test_project_installed_on_every_node():
    assert CFG["file_mounts"]["~/ablate"] == "."
    setup = " ".join(CFG["setup_commands"])
    assert "-e ~/ablate" in setup and "torch==" in setup
