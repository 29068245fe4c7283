"""Synthetic readings follow the documented generating rules, and the
streaming trainer reads them in chunks from local disk and from S3 (moto)."""

import numpy as np
import pandas as pd
import pytest
from cloudguard_model import storage
from cloudguard_model.config import TrainConfig
from cloudguard_model.dataio import materialize
from cloudguard_model.features import OVERSTRAIN_LIMITS
from cloudguard_model.synth import iter_synthetic, synthesize, write_synthetic
from cloudguard_model.training import fit_model
from cloudguard_model.validation import validate_data


@pytest.fixture(scope="module")
def readings() -> pd.DataFrame:
    return synthesize(60_000, seed=3)


def test_hdf_pwf_osf_follow_the_documented_rules_exactly(readings):
    air = readings["Air temperature [K]"]
    process = readings["Process temperature [K]"]
    speed = readings["Rotational speed [rpm]"]
    torque = readings["Torque [Nm]"]
    wear = readings["Tool wear [min]"]
    power = torque * speed * 2 * np.pi / 60
    limit = readings["Type"].map(OVERSTRAIN_LIMITS)

    assert (readings["HDF"] == ((process - air < 8.6) & (speed < 1380))).all()
    assert (readings["PWF"] == ((power < 3500) | (power > 9000))).all()
    assert (readings["OSF"] == (wear * torque > limit)).all()
    modes = readings[["TWF", "HDF", "PWF", "OSF", "RNF"]].sum(axis=1) > 0
    assert (readings["Machine failure"] == modes).all()


def test_twf_happens_at_tool_wear_200_to_240_and_rnf_is_rare(readings):
    worn = readings.loc[readings["TWF"] == 1, "Tool wear [min]"]

    assert len(worn) > 0
    # The tool goes at the first process that reaches its limit, which can
    # overshoot 240 by one step of wear (at most 5 min for H).
    assert worn.between(200, 245).all()
    assert 0.0003 < readings["RNF"].mean() < 0.002
    assert readings["Type"].value_counts(normalize=True)["L"] == pytest.approx(
        0.5, abs=0.02
    )


def test_same_seed_gives_the_same_readings():
    first = pd.concat(iter_synthetic(5_000, seed=9, chunk_rows=1_000))
    second = pd.concat(iter_synthetic(5_000, seed=9, chunk_rows=1_000))

    pd.testing.assert_frame_equal(first, second)
    assert first["UDI"].tolist() == list(range(1, 5_001))


def test_streaming_trainer_reads_parquet_in_small_chunks(tmp_path):
    path = tmp_path / "synthetic.parquet"
    write_synthetic(str(path), rows=40_000, seed=5)

    with materialize(str(path)) as data:
        outcome = fit_model(data, TrainConfig(chunk_rows=3_000))

    assert outcome.report.ok
    assert outcome.metrics["rows_fit"] == 25_600
    assert outcome.metrics["rows_holdout"] == 8_000
    # HDF, PWF and OSF follow rules a model can learn; TWF and RNF do not.
    labels = outcome.holdout.labels
    learnable = labels[:, 2:5].max(axis=1)
    ceiling = learnable[labels[:, 0] == 1].mean()
    assert outcome.metrics["holdout_recall"] >= 0.9 * ceiling
    assert outcome.metrics["holdout_precision"] > 0.9


def test_data_is_read_from_s3_and_hashed_on_the_way(tmp_path, monkeypatch):
    from moto import mock_aws

    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    storage.s3_client.cache_clear()
    with mock_aws():
        storage.s3_client().create_bucket(Bucket="cloudguard-raw-data")
        uri = "s3://cloudguard-raw-data/synthetic/readings.csv"
        write_synthetic(uri, rows=20_000, seed=6)
        local = tmp_path / "readings.csv"
        storage.copy_to_local(uri, local)

        report = validate_data(uri)
        with materialize(uri) as data:
            sha256 = data.sha256
            outcome = fit_model(data, TrainConfig(chunk_rows=5_000))
    storage.s3_client.cache_clear()

    assert report.ok
    assert report.rows == 20_000
    assert sha256 == storage.sha256_of(str(local))
    assert outcome.metrics["rows_holdout"] == 4_000
