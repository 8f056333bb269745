"""checkov (--framework kubernetes) on the rendered chart, default and "everything on" values: no
failed check except those in checkov-skips.yaml, each with its reason and the resources it may fail
on. checkov lives in its own virtualenv (scripts/checkov-venv.sh, run by `make test-deps`)."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest
import yaml

from .chartlib import HERE, ROOT, documents, load_values, render

CHECKOV = ROOT / ".tools" / "checkov-venv" / "bin" / "checkov"
SKIPS = HERE / "checkov-skips.yaml"
BAD = "bad-pod.yaml"
BAD_POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad", "namespace": "x"},
           "spec": {"hostNetwork": True, "containers": [{"name": "c", "image": "busybox",
                                                         "securityContext": {"privileged": True, "runAsUser": 0}}]}}


@pytest.fixture(scope="module")
def checkov_report(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    if not CHECKOV.exists():
        subprocess.run(["bash", str(ROOT / "scripts" / "checkov-venv.sh")], check=True, timeout=900)
    out = tmp_path_factory.mktemp("checkov")
    for values in ("required.yaml", "everything-on.yaml"):
        (out / values).write_text(yaml.safe_dump_all(documents(render(load_values(values)))))
    # In the same run (one checkov start), a pod that breaks the rules: the check can fail.
    (out / BAD).write_text(yaml.safe_dump(BAD_POD))
    proc = subprocess.run([str(CHECKOV), "--framework", "kubernetes", "--skip-download", "--quiet", "--compact",
                           "-o", "json", "-d", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.stdout.strip(), proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    return report if isinstance(report, list) else [report]


def _failed(report: list[dict[str, Any]], *, chart: bool = True) -> list[tuple[str, str]]:
    return sorted({(f["check_id"], f["resource"]) for r in report for f in r["results"]["failed_checks"]
                   if f["file_path"].endswith(BAD) is not chart})


def test_checkov_finds_no_failure_beyond_the_justified_skips(checkov_report: list[dict[str, Any]]) -> None:
    skips = yaml.safe_load(SKIPS.read_text())
    summary = checkov_report[0]["summary"]
    assert summary["parsing_errors"] == 0 and summary["resource_count"] > 50, summary
    assert summary["passed"] > 500, summary
    unexplained = [(check, res) for check, res in _failed(checkov_report)
                   if not any(re.fullmatch(p, res) for p in skips.get(check, {}).get("resources", []))]
    assert unexplained == [], unexplained


def test_every_skip_is_justified_and_still_needed(checkov_report: list[dict[str, Any]]) -> None:
    skips = yaml.safe_load(SKIPS.read_text())
    failed = _failed(checkov_report)
    for check, skip in skips.items():
        assert len(skip.get("why", "").split()) >= 12, f"{check}: say why it does not apply"
        for pattern in skip["resources"]:
            assert any(c == check and re.fullmatch(pattern, r) for c, r in failed), \
                f"{check} no longer fails on {pattern}: remove it from checkov-skips.yaml"


def test_checkov_does_fail_a_pod_that_breaks_the_rules(checkov_report: list[dict[str, Any]]) -> None:
    """The check can fail: the privileged, root, host-network pod scanned beside the chart is reported."""
    failed = {check for check, _ in _failed(checkov_report, chart=False)}
    assert {"CKV_K8S_16", "CKV_K8S_19"} <= failed, failed  # privileged, hostNetwork
