import pytest
from cloudguard_model import names
from cloudguard_model.gate import GateSettings


def test_without_an_artifact_bucket_records_and_lock_stay_on_this_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(names.ENV_ARTIFACT_BUCKET, raising=False)

    local = GateSettings(tracking_uri="sqlite:///unused.db")
    monkeypatch.setenv(names.ENV_ARTIFACT_BUCKET, "plant-artifacts")
    cloud = GateSettings(tracking_uri="sqlite:///unused.db")

    assert not local.decisions_uri.startswith("s3://")
    assert not local.lock_uri.startswith("s3://")
    assert cloud.decisions_uri == "s3://plant-artifacts/decisions"
    assert cloud.lock_uri == "s3://plant-artifacts/locks/promotion.lock"


def test_policy_with_a_nan_margin_is_refused(tmp_path) -> None:
    from cloudguard_model.policies import DEFAULT_POLICY_PATH
    from cloudguard_model.policy import PolicyError, load_policy

    text = DEFAULT_POLICY_PATH.read_text().replace(
        "min_improvement: 0.005", "min_improvement: .nan"
    )
    path = tmp_path / "policy.yaml"
    path.write_text(text)

    with pytest.raises(PolicyError, match="not a finite number"):
        load_policy(path)
