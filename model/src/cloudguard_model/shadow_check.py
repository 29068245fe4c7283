"""The gate's optional shadow check: live agreement before a promotion.

`cloudguard shadow summary` condenses the service's shadow records into one
entry per (champion, challenger) pair. Given such a summary, the gate adds
checks on the entry for the versions it is judging: enough live readings,
enough agreement with the champion, and an alarm rate that has not grown
beyond a ratio of the champion's. The thresholds live in the policy file's
optional `shadow:` section.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cloudguard_model import storage
from cloudguard_model.errors import GateError
from cloudguard_model.policy import CheckResult


class ShadowSummaryError(GateError):
    """The shadow summary is unreadable or has no entry for the judged pair."""


@dataclass(frozen=True)
class ShadowRule:
    """Thresholds of the `shadow:` section of a policy file."""

    min_readings: int = 500
    min_agreement: float = 0.98
    max_alarm_rate_ratio: float = 2.0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> "ShadowRule":
        if not data:
            return cls()
        try:
            return cls(
                min_readings=int(data.get("min_readings", cls.min_readings)),
                min_agreement=float(data.get("min_agreement", cls.min_agreement)),
                max_alarm_rate_ratio=float(
                    data.get("max_alarm_rate_ratio", cls.max_alarm_rate_ratio)
                ),
            )
        except (TypeError, ValueError) as error:
            raise GateError(f"policy shadow section is malformed: {error}") from error


def load_summary(uri: str) -> dict[str, Any]:
    """Read the JSON written by `cloudguard shadow summary --out URI`."""
    try:
        data = json.loads(storage.read_bytes(uri))
    except (storage.StorageError, ValueError) as error:
        raise ShadowSummaryError(
            f"cannot read shadow summary {uri}: {error}"
        ) from error
    if not isinstance(data, Mapping) or not isinstance(data.get("pairs"), list):
        raise ShadowSummaryError(
            f"shadow summary {uri} has no `pairs` list; write it with "
            "`cloudguard shadow summary --out`"
        )
    return dict(data)


def _entry(
    summary: Mapping[str, Any], champion: str | None, challenger: str
) -> Mapping[str, Any]:
    for pair in summary["pairs"]:
        if str(pair.get("challenger_version")) == challenger and (
            champion is None or str(pair.get("champion_version")) == champion
        ):
            return pair  # type: ignore[no-any-return]
    raise ShadowSummaryError(
        f"the shadow summary has no readings of challenger v{challenger} against "
        f"champion v{champion}; shadow-score this pair first or drop the summary"
    )


def shadow_checks(
    rule: ShadowRule,
    summary: Mapping[str, Any],
    *,
    champion: str | None,
    challenger: str,
) -> list[CheckResult]:
    """The shadow checks for one judged pair, in a fixed order."""
    entry = _entry(summary, champion, challenger)
    readings = float(entry["readings"])
    agreement = float(entry["agreement"])
    champion_rate = float(entry["champion_alarm_rate"])
    challenger_rate = float(entry["challenger_alarm_rate"])
    # A champion that never alarmed still allows the rate of one alarm in the
    # window, so a single true alarm cannot block a promotion.
    rate_limit = rule.max_alarm_rate_ratio * max(champion_rate, 1.0 / readings)

    return [
        _check(
            "shadow:readings", "readings", readings, None, rule.min_readings,
            readings >= rule.min_readings,
            f"{readings:.0f} live readings, need >= {rule.min_readings}",
        ),
        _check(
            "shadow:agreement", "agreement", agreement, None, rule.min_agreement,
            agreement >= rule.min_agreement,
            f"decisions agree on {agreement:.4f}, need >= {rule.min_agreement}",
        ),
        _check(
            "shadow:alarm_rate", "alarm_rate", challenger_rate, champion_rate,
            rate_limit, challenger_rate <= rate_limit,
            f"alarm rate {challenger_rate:.4f} vs champion {champion_rate:.4f}, "
            f"allowed <= {rate_limit:.4f}",
        ),
    ]  # fmt: skip


def _check(
    name: str,
    metric: str,
    challenger: float,
    champion: float | None,
    limit: float,
    passed: bool,
    detail: str,
) -> CheckResult:
    return CheckResult(
        name=name,
        kind="shadow",
        metric=metric,
        status="pass" if passed else "fail",
        challenger=challenger,
        champion=champion,
        limit=float(limit),
        detail=detail,
    )
