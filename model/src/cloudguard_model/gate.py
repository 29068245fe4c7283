"""The promotion gate: evaluate, decide, and move the `champion` alias.

`promote` is the whole step: score challenger and champion on the frozen
evaluation set, apply the policy, write the decision record, and, only when
every check passed, move `champion` to the challenger (the old champion
becomes `previous`) under a lease lock. `rollback` moves `champion` back.
Any error stops before the aliases move and raises a `GateError` subclass.

Order of effects when promoting (see docs/gate.md):
1. The run key's stored decision, if any, is returned as it is.
2. Evaluation and policy; a rejection is recorded and nothing moves.
3. Under the lock: the run key is checked again, `champion` is re-read and
   must be the one evaluated; the record is written to S3; `previous` then
   `champion` are set; the record is updated with the aliases after the move,
   indexed by run key and attached to the challenger's MLflow run.
"""

import json
import logging
import os
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from cloudguard_model import names
from cloudguard_model.decision import (
    DecisionRecord,
    DecisionStore,
    decide,
    now_iso,
)
from cloudguard_model.errors import CloudGuardModelError, GateError
from cloudguard_model.evaluation import (
    EvaluationError,
    EvaluationReport,
    ModelScore,
    check_evaluation_frame,
    model_inputs,
    score_predictions,
)
from cloudguard_model.lineage import code_commit
from cloudguard_model.locking import lease_lock
from cloudguard_model.policy import Policy, apply_policy, load_policy
from cloudguard_model.registry import Registry, RegistrySettings, VersionInfo
from cloudguard_model.shadow_check import ShadowRule, shadow_checks

logger = logging.getLogger(__name__)

ENV_DECISIONS_URI: Final = "CLOUDGUARD_DECISIONS_URI"
ENV_LOCK_URI: Final = "CLOUDGUARD_GATE_LOCK_URI"
ENV_LOCK_TTL_S: Final = "CLOUDGUARD_GATE_LOCK_TTL_S"
ENV_LOCK_WAIT_S: Final = "CLOUDGUARD_GATE_LOCK_WAIT_S"

Observer = Callable[[str], None]
"""Called with the name of each stage the gate reaches (for logs and tests)."""


class ChampionMovedError(GateError):
    """`champion` changed between evaluation and the alias move."""


_LOCAL_STATE = ".cloudguard/gate"
"""Where records and the lock live when no artifact bucket is configured, so
that a default run never reaches a cloud bucket."""


def _artifact_location(suffix: str) -> str:
    bucket = os.environ.get(names.ENV_ARTIFACT_BUCKET)
    return f"s3://{bucket}/{suffix}" if bucket else f"{_LOCAL_STATE}/{suffix}"


@dataclass(frozen=True)
class GateSettings:
    """Everything the gate reads from the environment, with local defaults."""

    tracking_uri: str
    """MLFLOW_TRACKING_URI (or --tracking-uri): the registry to act on."""
    decisions_uri: str = field(default_factory=lambda: _artifact_location("decisions"))
    """CLOUDGUARD_DECISIONS_URI: prefix (s3:// or a directory) for records;
    default `s3://$CLOUDGUARD_ARTIFACT_BUCKET/decisions`, or `.cloudguard/gate/`
    when no bucket is set."""
    lock_uri: str = field(
        default_factory=lambda: _artifact_location("locks/promotion.lock")
    )
    """CLOUDGUARD_GATE_LOCK_URI: the lease lock object (s3:// or a file); same
    default rule as the records. Every gate of one registry must share it."""
    lock_ttl_s: float = 120.0
    """CLOUDGUARD_GATE_LOCK_TTL_S: a dead holder's lease expires after this."""
    lock_wait_s: float = 30.0
    """CLOUDGUARD_GATE_LOCK_WAIT_S: how long to wait for a held lock."""
    notify_timeout_s: float = 5.0
    """Timeout of the POST to --notify-url after a promotion."""
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    """Timeouts and retries of MLflow calls (MLFLOW_HTTP_REQUEST_*)."""
    model_name: str = names.MODEL_NAME

    @classmethod
    def from_env(
        cls, tracking_uri: str | None = None, environ: Mapping[str, str] | None = None
    ) -> "GateSettings":
        env = os.environ if environ is None else environ
        uri = tracking_uri or env.get(names.ENV_TRACKING_URI)
        if not uri:
            raise GateError(
                f"no tracking server: set {names.ENV_TRACKING_URI} or pass "
                "--tracking-uri (e.g. http://127.0.0.1:5000)"
            )
        overrides: dict[str, Any] = {}
        if env.get(ENV_DECISIONS_URI):
            overrides["decisions_uri"] = env[ENV_DECISIONS_URI]
        if env.get(ENV_LOCK_URI):
            overrides["lock_uri"] = env[ENV_LOCK_URI]
        for name, key in (
            (ENV_LOCK_TTL_S, "lock_ttl_s"),
            (ENV_LOCK_WAIT_S, "lock_wait_s"),
        ):
            if env.get(name):
                try:
                    overrides[key] = float(env[name])
                except ValueError as error:
                    raise GateError(f"{name}={env[name]!r} is not seconds") from error
        return cls(
            tracking_uri=uri, registry=RegistrySettings.from_env(env), **overrides
        )

    def connect(self) -> Registry:
        self.registry.apply()
        return Registry(self.tracking_uri, self.model_name)


def _stage(observer: Observer | None, name: str) -> None:
    logger.info("event=gate_stage stage=%s", name)
    if observer is not None:
        observer(name)


def _check_provenance(registry: Registry, version: VersionInfo, sha256: str) -> str:
    """Refuse a version that may have trained on the evaluation rows."""
    data_sha, held_out_sha = registry.provenance(version)
    if data_sha == sha256:
        raise EvaluationError(
            f"version {version.version} was trained on the evaluation set itself "
            f"(sha256 {sha256[:12]}); it cannot be judged on it"
        )
    if held_out_sha != sha256:
        held = held_out_sha[:12] or "no evaluation set"
        raise EvaluationError(
            f"version {version.version} held out {held} during training but the "
            f"gate scores on {sha256[:12]}: its training data may contain these "
            "rows. Retrain it with `cloudguard train --evaluation <this set>`"
        )
    return data_sha


def _score(
    registry: Registry,
    version: VersionInfo,
    frame: Any,
    policy: Policy,
    data_sha: str,
) -> ModelScore:
    model = registry.load_model(version.version)
    try:
        prediction = model.predict(model_inputs(frame))
    except CloudGuardModelError:
        raise
    except Exception as error:
        raise EvaluationError(
            f"version {version.version} failed to predict on the evaluation set: "
            f"{error}"
        ) from error
    overall, slices = score_predictions(
        frame, prediction, policy.slices.column, policy.slices.values
    )
    threshold = None
    try:
        threshold = float(model.unwrap_python_model().threshold)
    except (AttributeError, TypeError, ValueError):
        logger.info("event=no_threshold version=%s", version.version)
    logger.info(
        "event=model_scored version=%s pr_auc=%s recall=%s precision=%s",
        version.version,
        overall.get("pr_auc"),
        overall.get("recall"),
        overall.get("precision"),
    )
    return ModelScore(
        version=version.version,
        run_id=version.run_id,
        threshold=threshold,
        metrics=overall,
        slices=slices,
        training_data_sha256=data_sha,
    )


def evaluate(
    settings: GateSettings,
    evaluation_uri: str,
    *,
    challenger_version: str | None = None,
    policy: Policy | None = None,
    observer: Observer | None = None,
) -> EvaluationReport:
    """Score challenger and champion on the frozen evaluation set."""
    from cloudguard_model.evalset import load_evaluation_set

    policy = policy or load_policy()
    registry = settings.connect()

    if challenger_version is not None:
        challenger = registry.version(challenger_version)
    else:
        found, why = registry.resolve(names.ALIAS_CHALLENGER)
        if found is None:
            raise GateError(
                f"no challenger: {why}; run `cloudguard train` or pass --challenger"
            )
        challenger = found
    champion, note = registry.resolve(names.ALIAS_CHAMPION)
    _stage(observer, "resolved")

    try:
        evaluation = load_evaluation_set(evaluation_uri)
    except CloudGuardModelError as error:
        raise EvaluationError(
            f"cannot load the evaluation set {evaluation_uri}: {error}"
        ) from error
    frame = evaluation.frame
    check_evaluation_frame(frame, policy.slices.column)

    challenger_sha = _check_provenance(registry, challenger, evaluation.sha256)
    challenger_score = _score(registry, challenger, frame, policy, challenger_sha)
    champion_score = None
    if champion is not None and champion.version == challenger.version:
        # Same version on both sides: a tie by construction, which keeps it.
        champion_score = challenger_score
        note = f"version {challenger.version} is already the champion"
    elif champion is not None:
        champion_sha = _check_provenance(registry, champion, evaluation.sha256)
        champion_score = _score(registry, champion, frame, policy, champion_sha)
    _stage(observer, "evaluated")

    labels = frame["Machine failure"].astype(bool)
    return EvaluationReport(
        evaluation_uri=evaluation_uri,
        evaluation_sha256=evaluation.sha256,
        rows=len(frame),
        positives=int(labels.sum()),
        slice_column=policy.slices.column,
        challenger=challenger_score,
        champion=champion_score,
        champion_note=note,
        created_at=now_iso(),
    )


def judge(
    settings: GateSettings,
    report: EvaluationReport,
    policy: Policy | None = None,
    run_key: str | None = None,
    shadow_summary: Mapping[str, Any] | None = None,
) -> DecisionRecord:
    """Apply the policy to a report (pure: no registry, nothing written).

    With a shadow summary (`cloudguard shadow summary`), the policy's shadow
    checks on the judged pair's live readings count too.
    """
    policy = policy or load_policy()
    checks = apply_policy(policy, report)
    if shadow_summary is not None:
        checks += shadow_checks(
            ShadowRule.from_mapping(policy.shadow),
            shadow_summary,
            champion=None if report.champion is None else report.champion.version,
            challenger=report.challenger.version,
        )
    record = decide(
        report,
        policy,
        checks,
        model_name=settings.model_name,
        tracking_uri=settings.tracking_uri,
        run_key=run_key,
    )
    logger.info(
        "event=gate_decided challenger=%s champion=%s outcome=%s",
        record.challenger_version,
        record.champion_version,
        record.outcome,
    )
    return record


def publish(settings: GateSettings, record: DecisionRecord) -> str:
    """Write a record to S3 and to the MLflow run it concerns; return the S3 URI."""
    store = DecisionStore(settings.decisions_uri, settings.model_name)
    uri = store.write(record)
    run_id = None if record.challenger is None else record.challenger.get("run_id")
    if run_id:
        settings.connect().log_record(run_id, record.to_dict(), record.file_name)
    # A passing decision is final only once the aliases moved; indexing it
    # earlier would make a later `promote --run-key` return it unapplied.
    if not record.promoted or record.aliases_after:
        store.index_run_key(record)
    return uri


def _move(
    settings: GateSettings,
    registry: Registry,
    record: DecisionRecord,
    observer: Observer | None,
) -> DecisionRecord:
    """Move the aliases per a passing record, under the lease lock."""
    store = DecisionStore(settings.decisions_uri, settings.model_name)
    challenger = record.challenger_version
    if challenger is None:
        raise GateError("a passing decision without a challenger version")

    with lease_lock(
        settings.lock_uri, ttl_s=settings.lock_ttl_s, wait_s=settings.lock_wait_s
    ):
        _stage(observer, "locked")
        if record.run_key is not None:
            stored = store.by_run_key(record.run_key)
            if stored is not None:
                logger.info("event=run_key_reused run_key=%s", record.run_key)
                return stored
        before = registry.aliases()
        current, _ = registry.resolve(names.ALIAS_CHAMPION)
        current_version = None if current is None else current.version
        if current_version != record.champion_version:
            raise ChampionMovedError(
                f"champion moved since evaluation (evaluated against "
                f"{record.champion_version or 'no champion'}, now "
                f"{current_version or 'no champion'}); nothing moved. Run the "
                "gate again to judge against the new champion"
            )
        registry.version(challenger)

        store.write(record)
        if current_version is not None:
            registry.set_alias(names.ALIAS_PREVIOUS, current_version)
        registry.set_alias(names.ALIAS_CHAMPION, challenger)
        moved = replace(record, aliases_before=before, aliases_after=registry.aliases())
        _stage(observer, "moved")
        publish(settings, moved)
    logger.info(
        "event=champion_moved model=%s from=%s to=%s",
        settings.model_name,
        current_version,
        challenger,
    )
    return moved


def promote(
    settings: GateSettings,
    *,
    evaluation_uri: str | None = None,
    decision: DecisionRecord | None = None,
    challenger_version: str | None = None,
    policy: Policy | None = None,
    run_key: str | None = None,
    observer: Observer | None = None,
    shadow_summary: Mapping[str, Any] | None = None,
) -> DecisionRecord:
    """Decide (or take a decision from `cloudguard gate`) and act on it."""
    registry = settings.connect()
    store = DecisionStore(settings.decisions_uri, settings.model_name)
    run_key = run_key or (decision.run_key if decision else None)
    if run_key is not None:
        stored = store.by_run_key(run_key)
        if stored is not None:
            logger.info("event=run_key_reused run_key=%s", run_key)
            return stored

    if decision is None:
        if evaluation_uri is None:
            raise GateError("promote needs --decision or --evaluation")
        policy = policy or load_policy()
        report = evaluate(
            settings,
            evaluation_uri,
            challenger_version=challenger_version,
            policy=policy,
            observer=observer,
        )
        decision = judge(settings, report, policy, run_key, shadow_summary)
    elif decision.kind != "promotion":
        raise GateError(f"record {decision.decision_id} is a {decision.kind}")
    elif run_key != decision.run_key:
        decision = replace(decision, run_key=run_key)
    _stage(observer, "decided")

    if not decision.promoted:
        publish(settings, decision)
        return decision
    return _move(settings, registry, decision, observer)


def rollback(
    settings: GateSettings, *, to_version: str | None = None, reason: str = ""
) -> DecisionRecord:
    """Point `champion` at `previous` (or `to_version`); old champion -> previous."""
    registry = settings.connect()
    with lease_lock(
        settings.lock_uri, ttl_s=settings.lock_ttl_s, wait_s=settings.lock_wait_s
    ):
        before = registry.aliases()
        current = before.get(names.ALIAS_CHAMPION)
        target = to_version or before.get(names.ALIAS_PREVIOUS)
        if target is None:
            raise GateError(
                f"nothing to roll back to: alias {names.ALIAS_PREVIOUS!r} is not "
                "set; pass --to VERSION"
            )
        target_info = registry.version(target)
        if target_info.version == current:
            raise GateError(f"version {target} is already the champion")
        current_info = registry.version(current) if current else None

        record = DecisionRecord(
            kind="rollback",
            outcome="rolled_back",
            promoted=True,
            reason=reason or f"rollback from {current or 'no champion'} to {target}",
            model_name=settings.model_name,
            challenger={"version": target_info.version, "run_id": target_info.run_id},
            champion=None
            if current_info is None
            else {"version": current_info.version, "run_id": current_info.run_id},
            champion_note="" if current else "no champion before the rollback",
            checks=[],
            policy=None,
            evaluation=None,
            run_key=None,
            decided_at=now_iso(),
            code_commit=code_commit(),
            tracking_uri=settings.tracking_uri,
            aliases_before=before,
        )
        store = DecisionStore(settings.decisions_uri, settings.model_name)
        store.write(record)
        registry.set_alias(names.ALIAS_CHAMPION, target_info.version)
        if current is not None:
            registry.set_alias(names.ALIAS_PREVIOUS, current)
        record = replace(record, aliases_after=registry.aliases())
        publish(settings, record)
    logger.info("event=rolled_back from=%s to=%s", current, target)
    return record


def notify(url: str, record: DecisionRecord, timeout_s: float = 5.0) -> bool:
    """POST the record to `url` after a promotion; a failure is logged, not raised."""
    if not url.startswith(("http://", "https://")):
        logger.warning("event=notify_skipped url=%s reason=not_http", url)
        return False
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=json.dumps(record.to_dict()).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as reply:  # noqa: S310
            ok = bool(200 <= reply.status < 300)
    except OSError as error:
        logger.warning("event=notify_failed url=%s error=%s", url, error)
        return False
    logger.info("event=notify_sent url=%s ok=%s", url, ok)
    return ok
