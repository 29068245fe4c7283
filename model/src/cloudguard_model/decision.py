"""Decision records: what the gate decided, on which evidence, and where kept.

Every decision (promoted or not) and every rollback becomes one JSON record.
It is written to S3 under `<decisions>/<model>/` and to the MLflow run of the
version it concerns. A decision made for a scheduled run is also indexed by
its run key, which is how a rerun of the same scheduled run finds it and
moves nothing (see docs/gate.md for the format).
"""

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Literal

from cloudguard_model import storage
from cloudguard_model.errors import GateError
from cloudguard_model.evaluation import EvaluationReport
from cloudguard_model.lineage import code_commit
from cloudguard_model.policy import CheckResult, Policy

logger = logging.getLogger(__name__)

RECORD_FORMAT: Final = "cloudguard.decision/v1"
"""Commit of the code that decides; set by the image build. Falls back to git."""

Kind = Literal["promotion", "rollback"]
Outcome = Literal["promoted", "rejected", "rolled_back", "error"]


class DecisionStoreError(GateError):
    """A decision record cannot be read, parsed or written."""


@dataclass(frozen=True)
class DecisionRecord:
    """One gate decision or rollback, as written to S3 and MLflow."""

    kind: Kind
    outcome: Outcome
    promoted: bool
    reason: str
    model_name: str
    challenger: dict[str, Any] | None
    champion: dict[str, Any] | None
    champion_note: str
    checks: list[dict[str, Any]]
    policy: dict[str, Any] | None
    evaluation: dict[str, Any] | None
    run_key: str | None
    decided_at: str
    code_commit: str
    tracking_uri: str
    aliases_before: dict[str, str] = field(default_factory=dict)
    aliases_after: dict[str, str] = field(default_factory=dict)
    decision_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    reused: bool = False
    """True when returned from the run-key index instead of decided now."""

    def to_dict(self) -> dict[str, Any]:
        return {"format": RECORD_FORMAT, **asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DecisionRecord":
        if data.get("format") != RECORD_FORMAT:
            raise DecisionStoreError(
                f"record format {data.get('format')!r} is not {RECORD_FORMAT!r}; "
                "pass a record written by `cloudguard gate`"
            )
        fields = {key: value for key, value in data.items() if key != "format"}
        try:
            return cls(**fields)
        except TypeError as error:
            raise DecisionStoreError(f"malformed decision record: {error}") from error

    @property
    def challenger_version(self) -> str | None:
        return None if self.challenger is None else str(self.challenger["version"])

    @property
    def champion_version(self) -> str | None:
        return None if self.champion is None else str(self.champion["version"])

    @property
    def file_name(self) -> str:
        stamp = re.sub(r"[^0-9TZ]", "", self.decided_at)
        target = self.challenger_version or "none"
        return f"{stamp}-{self.kind}-v{target}-{self.decision_id[:8]}.json"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _score_summary(score: Any) -> dict[str, Any]:
    return {
        "version": score.version,
        "run_id": score.run_id,
        "threshold": score.threshold,
        "metrics": score.metrics,
        "slices": score.slices,
    }


def decide(
    report: EvaluationReport,
    policy: Policy,
    checks: Sequence[CheckResult],
    *,
    model_name: str,
    tracking_uri: str,
    run_key: str | None = None,
) -> DecisionRecord:
    """Turn checked evidence into a record; promoted iff no check failed."""
    failed = [check for check in checks if check.status == "fail"]
    if failed:
        reason = "rejected: " + "; ".join(
            f"{check.name} {check.detail}" for check in failed
        )
    elif report.champion is None:
        reason = f"first promotion ({report.champion_note}); every floor passed"
    else:
        reason = "every check passed"
    return DecisionRecord(
        kind="promotion",
        outcome="rejected" if failed else "promoted",
        promoted=not failed,
        reason=reason,
        model_name=model_name,
        challenger=_score_summary(report.challenger),
        champion=None if report.champion is None else _score_summary(report.champion),
        champion_note=report.champion_note,
        checks=[check.to_dict() for check in checks],
        policy={
            "source": policy.source,
            "version": policy.version,
            "sha256": policy.sha256,
        },
        evaluation={
            "uri": report.evaluation_uri,
            "sha256": report.evaluation_sha256,
            "rows": report.rows,
            "positives": report.positives,
        },
        run_key=run_key,
        decided_at=now_iso(),
        code_commit=code_commit(),
        tracking_uri=tracking_uri,
    )


def run_key_slug(run_key: str) -> str:
    """A file-safe, collision-free name for a run key (e.g. a timestamp)."""
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", run_key)[:80]
    digest = hashlib.sha256(run_key.encode()).hexdigest()[:12]
    return f"{readable}-{digest}"


class DecisionStore:
    """Decision records under one prefix (an `s3://` URI or a local directory)."""

    def __init__(self, prefix: str, model_name: str) -> None:
        self.root = f"{prefix.rstrip('/')}/{model_name}"

    def record_uri(self, record: DecisionRecord) -> str:
        return f"{self.root}/records/{record.file_name}"

    def run_key_uri(self, run_key: str) -> str:
        return f"{self.root}/run-keys/{run_key_slug(run_key)}.json"

    def write(self, record: DecisionRecord) -> str:
        uri = self.record_uri(record)
        self._put(uri, record)
        return uri

    def index_run_key(self, record: DecisionRecord) -> None:
        if record.run_key is not None:
            self._put(self.run_key_uri(record.run_key), record)

    def by_run_key(self, run_key: str) -> DecisionRecord | None:
        uri = self.run_key_uri(run_key)
        try:
            if not storage.exists(uri):
                return None
            data = json.loads(storage.read_bytes(uri))
        except (storage.StorageError, ValueError) as error:
            raise DecisionStoreError(
                f"cannot read the decision of run key {run_key!r} at {uri}: {error}"
            ) from error
        return replace(DecisionRecord.from_dict(data), reused=True)

    def _put(self, uri: str, record: DecisionRecord) -> None:
        try:
            storage.write_bytes(uri, json.dumps(record.to_dict(), indent=2).encode())
        except storage.StorageError as error:
            raise DecisionStoreError(
                f"cannot write decision record to {uri}: {error}"
            ) from error
        logger.info("event=decision_written uri=%s outcome=%s", uri, record.outcome)


def read_json(uri: str) -> dict[str, Any]:
    """Read a JSON document (report or decision) from a local path or S3."""
    try:
        data = json.loads(storage.read_bytes(uri))
    except (storage.StorageError, ValueError) as error:
        raise DecisionStoreError(f"cannot read JSON from {uri}: {error}") from error
    if not isinstance(data, dict):
        raise DecisionStoreError(f"{uri} does not hold a JSON object")
    return data


def write_json(uri: str, data: Mapping[str, Any]) -> None:
    """Write a JSON document to a local path or S3."""
    try:
        storage.write_bytes(uri, json.dumps(data, indent=2).encode())
    except storage.StorageError as error:
        raise DecisionStoreError(f"cannot write JSON to {uri}: {error}") from error
