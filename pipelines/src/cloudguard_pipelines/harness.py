"""Run one pipeline step's `cloudguard` command and collect its JSON result.

The same harness runs every step in the cluster (`cloudguard pipeline step`,
the container's command) and on this machine (the local runner), so the two
treat exit codes, optional flags, outputs and transient failures alike.
"""

import json
import logging
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from cloudguard_pipelines.errors import StepFailedError
from cloudguard_pipelines.spec import TRANSIENT_EXIT_CODE, Step

logger = logging.getLogger(__name__)

# Signs, in a failed step's stderr, of trouble that a retry can cure: the
# network, S3 or the tracking server being briefly unreachable or overloaded.
_TRANSIENT: Final = re.compile(
    r"EndpointConnectionError|ConnectTimeoutError|ReadTimeoutError|ConnectionRefused"
    r"|Could not connect to the endpoint URL|Connection refused|Connection reset"
    r"|RemoteDisconnected|Max retries exceeded"
    r"|Temporary failure in name resolution|ServiceUnavailable|SlowDown"
    r"|TooManyRequests|503 Service Unavailable|502 Bad Gateway|504 Gateway"
)
_TAIL_LINES: Final = 200

LineSink = Callable[[str], None]


@dataclass
class StepResult:
    """A finished step: its exit code, JSON result and published outputs."""

    step: str
    argv: list[str]
    exit_code: int
    seconds: float
    result: dict[str, Any]
    outputs: dict[str, str] = field(default_factory=dict)


def cloudguard_executable() -> str:
    """The `cloudguard` console script of this environment."""
    beside = Path(sys.executable).with_name("cloudguard")
    if beside.is_file():
        return str(beside)
    found = shutil.which("cloudguard")
    if found is None:
        raise StepFailedError("harness", 127, "no `cloudguard` command on PATH")
    return found


def drop_empty_optional(step: Step, argv: Sequence[str]) -> list[str]:
    """Remove `--flag ''` pairs for the step's optional flags."""
    kept: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if (
            arg in step.optional_flags
            and index + 1 < len(argv)
            and argv[index + 1] == ""
        ):
            index += 2
            continue
        kept.append(arg)
        index += 1
    return kept


def check_command(step: Step, argv: Sequence[str]) -> None:
    """Refuse to run something other than the step's own command."""
    words = [arg for arg in step.argv if not arg.startswith("-")][
        : _command_depth(step)
    ]
    if list(argv[: len(words)]) != words:
        raise StepFailedError(
            step.name,
            2,
            f"expected the command `cloudguard {' '.join(words)} ...`, got "
            f"`cloudguard {' '.join(argv[: len(words)])}`",
        )


def _command_depth(step: Step) -> int:
    depth = 0
    for arg in step.argv:
        if arg.startswith("-"):
            break
        depth += 1
    return depth


def output_value(value: Any) -> str:
    """An Argo parameter is a string: JSON for anything but a string."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value)


def parse_result(
    step: Step, stdout_tail: Sequence[str], exit_code: int
) -> dict[str, Any]:
    """The JSON object on the last non-empty stdout line."""
    lines = [line for line in stdout_tail if line.strip()]
    if not lines:
        raise StepFailedError(
            step.name, exit_code, "printed nothing; expected a JSON line"
        )
    try:
        result = json.loads(lines[-1])
    except json.JSONDecodeError as error:
        raise StepFailedError(
            step.name,
            exit_code,
            f"last stdout line is not JSON ({error}): {lines[-1][:200]!r}",
        ) from error
    if not isinstance(result, dict):
        raise StepFailedError(
            step.name,
            exit_code,
            f"last stdout line is not a JSON object: {lines[-1][:200]!r}",
        )
    missing = [key for key in step.outputs if key not in result]
    if missing:
        raise StepFailedError(
            step.name,
            exit_code,
            f"JSON result lacks {missing}; the step must print {list(step.outputs)}",
        )
    return result


def is_transient(exit_code: int, stderr_tail: Sequence[str]) -> bool:
    """True when a failure is worth retrying (see spec.RetryPolicy)."""
    if exit_code == TRANSIENT_EXIT_CODE:
        return True
    return any(_TRANSIENT.search(line) for line in stderr_tail)


class TransientStepError(StepFailedError):
    """A step failed in a way that a retry may cure."""


def run_step(
    step: Step,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdout_sink: LineSink | None = None,
    stderr_sink: LineSink | None = None,
) -> StepResult:
    """Run `cloudguard ARGV` for `step`; return its result or raise.

    Output is streamed line by line to the sinks (the terminal or the pod log)
    while the tail is kept to parse the result and classify a failure.
    Raises TransientStepError when a retry may help, StepFailedError otherwise.
    """
    argv = drop_empty_optional(step, argv)
    check_command(step, argv)
    command = [cloudguard_executable(), *argv]
    logger.info("event=step_start step=%s argv=%s", step.name, json.dumps(argv))
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    stdout_tail: deque[str] = deque(maxlen=_TAIL_LINES)
    stderr_tail: deque[str] = deque(maxlen=_TAIL_LINES)
    readers = [
        threading.Thread(
            target=_pump, args=(process.stdout, stdout_tail, stdout_sink), daemon=True
        ),
        threading.Thread(
            target=_pump, args=(process.stderr, stderr_tail, stderr_sink), daemon=True
        ),
    ]
    for reader in readers:
        reader.start()
    try:
        exit_code = process.wait(timeout=step.deadline_seconds)
    except subprocess.TimeoutExpired:
        _stop(process)
        raise StepFailedError(
            step.name, -1, f"exceeded its deadline of {step.deadline_seconds} s"
        ) from None
    except BaseException:
        _stop(process)
        raise
    finally:
        for reader in readers:
            reader.join(timeout=5)
    seconds = time.monotonic() - started

    if exit_code not in step.accepted_exit_codes:
        detail = _last_words(stderr_tail) or _last_words(stdout_tail) or "no output"
        error_type = (
            TransientStepError
            if is_transient(exit_code, stderr_tail)
            else StepFailedError
        )
        logger.warning(
            "event=step_failed step=%s exit_code=%d transient=%s seconds=%.1f",
            step.name,
            exit_code,
            error_type is TransientStepError,
            seconds,
        )
        raise error_type(step.name, exit_code, detail)

    result = parse_result(step, stdout_tail, exit_code)
    outputs = {key: output_value(result[key]) for key in step.outputs}
    logger.info(
        "event=step_done step=%s exit_code=%d seconds=%.1f outputs=%s",
        step.name,
        exit_code,
        seconds,
        json.dumps(outputs),
    )
    return StepResult(step.name, list(argv), exit_code, seconds, result, outputs)


def write_outputs(result: StepResult, directory: Path) -> None:
    """One file per output, where Argo's `valueFrom.path` reads it."""
    directory.mkdir(parents=True, exist_ok=True)
    for key, value in result.outputs.items():
        (directory / key).write_text(value, encoding="utf-8")
    (directory / "result.json").write_text(json.dumps(result.result), encoding="utf-8")


def _pump(stream: IO[str] | None, tail: deque[str], sink: LineSink | None) -> None:
    if stream is None:
        return
    for line in stream:
        line = line.rstrip("\n")
        tail.append(line)
        if sink is not None:
            sink(line)
    stream.close()


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _last_words(tail: Sequence[str], lines: int = 6) -> str:
    kept = [line for line in tail if line.strip()][-lines:]
    return " | ".join(line.strip() for line in kept)[:1000]
