"""Every synthesized manifest validates against its schema and the pod rules."""

import copy
from typing import Any

import pytest
import yaml
from cloudguard_platform import STACKS, SynthResult, manifests
from cloudguard_platform.validate import (
    checkov_view,
    manifest_problems,
    schema_errors,
    scrape_config_errors,
)


def _all_manifests(result: SynthResult) -> list[dict[str, Any]]:
    tree = manifests.gitops_tree(result.settings)
    return result.kubernetes_manifests() + [d for docs in tree.values() for d in docs]


@pytest.mark.parametrize("stack", STACKS)
def test_every_manifest_of_the_stack_is_valid(
    synths: dict[str, SynthResult], stack: str
) -> None:
    documents = _all_manifests(synths[stack])
    kinds = {d["kind"] for d in documents}

    assert {
        "Rollout",
        "AnalysisTemplate",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Deployment",
        "Application",
        "CronWorkflow",
        "WorkflowTemplate",
        "NodePool",
        "EC2NodeClass",
    } <= kinds
    assert [p for d in documents for p in manifest_problems(d)] == []


def _prod(synths: dict[str, SynthResult], path: str) -> dict[str, Any]:
    tree = manifests.gitops_tree(synths["prod"].settings)
    return copy.deepcopy(tree[path][0])


def test_a_typo_in_a_rollout_fails_its_schema(synths: dict[str, SynthResult]) -> None:
    rollout = _prod(synths, "serving/rollout.yaml")
    rollout["spec"]["strategy"]["canary"]["steps"].append({"setWieght": 50})

    assert any("setWieght" in e for e in schema_errors(rollout))


def test_an_analysis_without_conditions_fails_its_schema(
    synths: dict[str, SynthResult],
) -> None:
    analysis = _prod(synths, "serving/analysis-template.yaml")
    del analysis["spec"]["metrics"][0]["failureCondition"]

    assert schema_errors(analysis)


def test_a_wrong_field_type_in_a_core_object_fails_kubernetes_validation(
    synths: dict[str, SynthResult],
) -> None:
    hpa = _prod(synths, "serving/hpa.yaml")
    hpa["spec"]["minReplicas"] = "three"

    assert schema_errors(hpa)


def test_an_unknown_field_in_a_core_object_fails_strict_validation(
    synths: dict[str, SynthResult],
) -> None:
    pdb = _prod(synths, "serving/pdb.yaml")
    pdb["spec"]["maxUnavailabel"] = 1

    assert schema_errors(pdb)


def test_a_bad_cron_workflow_fails_the_argo_model(
    synths: dict[str, SynthResult],
) -> None:
    (cron,) = [
        m for m in synths["prod"].kubernetes_manifests() if m["kind"] == "CronWorkflow"
    ]
    broken = copy.deepcopy(cron)
    broken["spec"]["startingDeadlineSeconds"] = {"minutes": 5}

    assert schema_errors(broken)


def test_a_kind_without_a_schema_is_an_error() -> None:
    unknown = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
    }

    assert schema_errors(unknown) == [
        "no schema for example.com/v1 Widget; add one under schemas/"
    ]


def test_a_rollout_is_scanned_as_a_deployment_with_the_same_pod(
    synths: dict[str, SynthResult],
) -> None:
    rollout = _prod(synths, "serving/rollout.yaml")

    view = checkov_view(rollout)

    assert view["kind"] == "Deployment"
    assert view["spec"]["template"] == rollout["spec"]["template"]
    assert schema_errors(view) == []


def test_serving_runs_locked_down_with_writable_tmp_and_spool(
    synths: dict[str, SynthResult],
) -> None:
    pod = _prod(synths, "serving/rollout.yaml")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in container["env"]}

    assert pod["serviceAccountName"] == "cloudguard-serving"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"/tmp", env["CLOUDGUARD_SPOOL_DIR"]} <= mounts
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert env["CLOUDGUARD_SHADOW_SHARE"] == "0.05"
    assert not container["image"].endswith(":latest")


def test_serving_leaves_the_service_before_it_stops_listening(
    synths: dict[str, SynthResult],
) -> None:
    pod = _prod(synths, "serving/rollout.yaml")["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]

    assert pause >= 5
    assert pod["terminationGracePeriodSeconds"] >= pause + 20


def test_prometheus_scrape_config_is_valid_and_keeps_the_rollout_hash(
    synths: dict[str, SynthResult],
) -> None:
    (release,) = [
        r
        for r in synths["prod"].of_type("kubernetes:helm.sh/v3:Release")
        if r.inputs["name"] == "prometheus"
    ]
    jobs = yaml.safe_load(release.inputs["values"]["extraScrapeConfigs"])

    assert scrape_config_errors({"scrape_configs": jobs}) == []
    (job,) = jobs
    targets = {r.get("target_label") for r in job["relabel_configs"]}
    assert {"rollouts_pod_template_hash", "namespace", "pod"} <= targets
    assert scrape_config_errors(
        {"scrape_configs": [job | {"scrape_interval": "often"}]}
    )


def test_analysis_queries_compare_canary_with_stable_by_pod_hash(
    synths: dict[str, SynthResult],
) -> None:
    analysis = _prod(synths, "serving/analysis-template.yaml")
    queries = {
        m["name"]: m["provider"]["prometheus"]["query"]
        for m in analysis["spec"]["metrics"]
    }

    assert "{{args.canary-hash}}" in queries["error-ratio"]
    assert 'status=~"5.."' in queries["error-ratio"]
    assert queries["p99-latency-seconds"].startswith("histogram_quantile(0.99")
    assert "{{args.stable-hash}}" in queries["failure-share-delta"]
    assert 'decision="failure"' in queries["failure-share-delta"]
