from cloudguard_model.lineage import code_commit
from cloudguard_model.names import ENV_GIT_COMMIT


def test_commit_baked_into_the_image_wins_over_git(monkeypatch):
    monkeypatch.setenv(ENV_GIT_COMMIT, "0123abc")

    assert code_commit() == "0123abc"


def test_without_the_variable_the_checkout_commit_is_used(monkeypatch):
    monkeypatch.delenv(ENV_GIT_COMMIT, raising=False)

    commit = code_commit()

    assert commit == "unknown" or len(commit) == 40
