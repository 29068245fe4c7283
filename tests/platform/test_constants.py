"""The platform's copy of the shared names must match cloudguard_model.names."""

from cloudguard_model import names
from cloudguard_platform import constants


def test_platform_names_equal_the_model_names() -> None:
    shared = [
        "MODEL_NAME",
        "ALIAS_CHAMPION",
        "ALIAS_CHALLENGER",
        "ENV_TRACKING_URI",
        "ENV_RAW_BUCKET",
        "ENV_ARTIFACT_BUCKET",
        "ENV_INFERENCE_BUCKET",
        "ENV_API_KEYS",
        "ENV_MODEL_ALIAS",
    ]
    for name in shared:
        assert getattr(constants, name) == getattr(names, name), name


def test_bucket_purposes_match_the_demo_bucket_suffixes() -> None:
    assert f"cloudguard-{constants.BUCKET_RAW}" == names.DEFAULT_RAW_BUCKET
    assert f"cloudguard-{constants.BUCKET_ARTIFACTS}" == names.DEFAULT_ARTIFACT_BUCKET
    assert f"cloudguard-{constants.BUCKET_INFERENCE}" == names.DEFAULT_INFERENCE_BUCKET
