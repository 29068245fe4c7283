"""Training benchmark: end-to-end `train` against a bare `xgboost.train`.

For each size (default 100k, 1M and 10M rows) it writes synthetic readings
(`cloudguard data synth`'s generator, not timed), then in a fresh child
process per measurement:

- ours: `train_model` end to end (validation, time-ordered split, streaming
  into QuantileDMatrix, failure head plus five mode heads, threshold, holdout
  scoring, plots, MLflow logging and registration to a local SQLite store);
- bare: the same fit matrix built the same way, then only `xgboost.train` of
  the failure head for as many rounds as ours kept, no evaluation.

It prints wall time, peak RSS (the child's ru_maxrss) and rows per second for
each, and the ratio ours / bare. Not a test: numbers depend on the machine and
on whatever else shares its cores, so say so when you quote them.

    .venv/bin/python bench/training.py --sizes 100000 1000000 10000000
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_CHILD_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "AWS_EC2_METADATA_DISABLED": "true",
    "OMP_WAIT_POLICY": "PASSIVE",
}


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _run_ours(data: str, workdir: str) -> dict[str, Any]:
    from cloudguard_model.training import train_model

    started = time.perf_counter()
    result = train_model(data, tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_rss_mib": _peak_rss_mib(),
        "trees": int(result.metrics["failure_trees"]),
        "rows_fit": int(result.metrics["rows_fit"]),
        "f1": result.metrics["holdout_f1"],
        "pr_auc": result.metrics["holdout_pr_auc"],
        "phases": {
            key: round(value, 2)
            for key, value in result.metrics.items()
            if key.endswith("_seconds")
        },
    }


def _run_bare(data: str, trees: int) -> dict[str, Any]:
    import xgboost as xgb
    from cloudguard_model.config import TrainConfig
    from cloudguard_model.dataio import materialize
    from cloudguard_model.fitting import build_matrices, plan_split
    from cloudguard_model.validation import validate_local

    config = TrainConfig()
    with materialize(data) as local:
        report = validate_local(local, config.chunk_rows)
        plan = plan_split(report.udis, config)
        matrices = build_matrices(local, plan, config, report.rows)
    params = config.xgb_params(len(matrices.fit_labels))
    started = time.perf_counter()
    xgb.train(params, matrices.fit, num_boost_round=trees)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_rss_mib": _peak_rss_mib(),
        "rows_fit": len(matrices.fit_labels),
    }


def _child(kind: str, data: str, argument: str) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; return its JSON result."""
    env = {**os.environ, **_CHILD_ENV}
    command = [sys.executable, __file__, "--child", kind, data, argument]
    completed = subprocess.run(
        command, env=env, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr[-4000:])
        raise SystemExit(f"{kind} run failed for {data}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _synthesize(rows: int, directory: Path, data_format: str) -> str:
    from cloudguard_model.synth import write_synthetic

    path = directory / f"synthetic-{rows}.{data_format}"
    started = time.perf_counter()
    write_synthetic(str(path), rows=rows, seed=2020)
    size_mib = path.stat().st_size / 2**20
    seconds = time.perf_counter() - started
    print(
        f"# wrote {rows:,} rows to {path.name} ({size_mib:,.0f} MiB) "
        f"in {seconds:.0f} s",
        flush=True,
    )
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000]
    )
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, data, argument = args.child
        result = (
            _run_ours(data, argument)
            if kind == "ours"
            else _run_bare(data, int(argument))
        )
        print(json.dumps(result))
        return

    print(f"# cores={os.cpu_count()} load={os.getloadavg()[0]:.1f} (1-min average)")
    header = (
        f"{'rows':>11} {'ours s':>8} {'ours MiB':>9} {'ours rows/s':>12} "
        f"{'bare s':>8} {'bare MiB':>9} {'bare rows/s':>12} {'ratio':>6} "
        f"{'trees':>6} {'F1':>6} {'PR-AUC':>7}"
    )
    with tempfile.TemporaryDirectory(prefix="cloudguard-bench-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        rows_out = []
        for rows in args.sizes:
            data = _synthesize(rows, workdir, args.format)
            ours = _child("ours", data, tempfile.mkdtemp(dir=workdir))
            bare = _child("bare", data, str(ours["trees"]))
            ratio = ours["seconds"] / bare["seconds"]
            line = (
                f"{rows:>11,} {ours['seconds']:>8.1f} {ours['peak_rss_mib']:>9.0f} "
                f"{rows / ours['seconds']:>12,.0f} {bare['seconds']:>8.1f} "
                f"{bare['peak_rss_mib']:>9.0f} {rows / bare['seconds']:>12,.0f} "
                f"{ratio:>6.1f} {ours['trees']:>6} {ours['f1']:>6.3f} "
                f"{ours['pr_auc']:>7.3f}"
            )
            rows_out.append(line)
            print(f"# {rows:,} rows phases: {ours['phases']}", flush=True)
            print(header)
            print("\n".join(rows_out), flush=True)
            Path(data).unlink()


if __name__ == "__main__":
    main()
