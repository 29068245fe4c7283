"""The cluster code path: XGBoost's Dask integration on a local cluster whose
scheduler, workers and tracker all listen on 127.0.0.1 trains a model that
meets the same bar as the local path."""

import pytest
from cloudguard_model.config import TrainConfig
from cloudguard_model.dataio import materialize
from cloudguard_model.training import fit_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dask_client():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            protocol="tcp://",
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def test_heads_trained_on_a_dask_cluster_meet_the_quality_bar(
    dask_client, dataset_path
):
    with materialize(str(dataset_path)) as data:
        outcome = fit_model(data, TrainConfig(), dask_client=dask_client)

    assert outcome.metrics["rows_fit"] == 6400
    assert outcome.metrics["rows_validation"] == 1600
    assert outcome.metrics["rows_holdout"] == 2000
    assert outcome.metrics["holdout_f1"] >= 0.78
    assert outcome.metrics["holdout_pr_auc"] >= 0.75
    assert set(outcome.heads.modes) >= {"OSF", "PWF", "TWF"}
    assert 0.0 < outcome.model.threshold < 1.0
