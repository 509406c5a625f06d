"""Fuzz the decode → anonymise → encode path for a chosen time, outside CI.

    .venv/bin/python benchmarks/fuzz.py --minutes 10            # built-in mutational fuzzer
    .venv/bin/python benchmarks/fuzz.py --minutes 10 --atheris  # coverage-guided, if atheris is installed
    .venv/bin/python benchmarks/fuzz.py --replay fuzz-findings/  # re-run saved findings

Invariant (tests/hostile.py: decode_anonymise_encode): every input either becomes a verified,
metadata-free image or is refused with a BlurError. Anything else is a finding: another exception
type, a hang (over --timeout seconds), or a crash of the process (a signal from native code).
Inputs are mutations of the generated seeds in tests/hostile.py (no photos needed). Each input
runs in a child process that is restarted after a crash; findings are saved under --findings.
Prints inputs tried, inputs per second, refused/accepted counts and one line per distinct finding.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))


def child(seed: int, seconds: float, timeout: float, current: Path) -> None:
    """Fuzz for `seconds`; write each input to `current` first (so a crash leaves it); print JSON lines."""
    import hostile

    def hang(signum, frame):
        raise TimeoutError(f"no answer within {timeout} s")

    signal.signal(signal.SIGALRM, hang)
    rng = random.Random(seed)
    seeds = hostile.fuzz_seeds()
    tried = accepted = 0
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        data = rng.choice(seeds)
        for _ in range(rng.randint(1, 4)):
            payload = rng.randbytes(rng.choice((1, 2, 4, 8, 16)))
            data = hostile.mutate(data, rng.choice(hostile.MUTATIONS), rng.random(), payload, rng.choice(seeds))
        current.write_bytes(data)
        tried += 1
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            accepted += hostile.decode_anonymise_encode(data) is not None
        except Exception as exc:  # a finding: anything but a BlurError, or a hang
            print(json.dumps({"finding": _describe(exc), "sha": _save_name(data)}), flush=True)
            Path(current.parent, _save_name(data)).write_bytes(data)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if tried % 200 == 0:
            print(json.dumps({"tried": tried, "accepted": accepted}), flush=True)
    print(json.dumps({"tried": tried, "accepted": accepted}), flush=True)


def _describe(exc: BaseException) -> str:
    import traceback

    frame = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__}: {str(exc)[:120]} (at {Path(frame.filename).name}:{frame.lineno})"


def _save_name(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16] + ".bin"


def run(minutes: float, seed: int, timeout: float, findings: Path) -> int:
    """Run children until time is up, restarting after crashes; print the summary. Exit 1 on findings."""
    findings.mkdir(parents=True, exist_ok=True)
    current = findings / "current-input.tmp"
    stop = time.monotonic() + minutes * 60
    tried = accepted = 0
    found: dict[str, str] = {}
    started = time.monotonic()
    stray = open(findings / "stderr.txt", "w+")  # libraries must not print: anything here is a finding
    while (left := stop - time.monotonic()) > 1:
        process = subprocess.Popen(
            [sys.executable, __file__, "--child", str(seed), str(left), str(timeout), str(current)],
            stdout=subprocess.PIPE, stderr=stray, text=True,
        )
        last = {"tried": 0, "accepted": 0}
        for line in process.stdout:
            record = json.loads(line)
            if "finding" in record:
                found.setdefault(record["finding"], record["sha"])
            else:
                last = record
        process.wait()
        tried += last["tried"]
        accepted += last["accepted"]
        if process.returncode != 0:  # killed by a signal (native crash) or out of memory
            data = current.read_bytes()
            tried += 1
            name = _save_name(data)
            (findings / name).write_bytes(data)
            found.setdefault(f"process died with status {process.returncode}", name)
        seed += 1
    current.unlink(missing_ok=True)
    stray.seek(0)
    printed = stray.read().splitlines()
    if printed:
        found[f"{len(printed)} lines printed on stderr, e.g. {printed[0][:100]!r}"] = "stderr.txt"
    seconds = time.monotonic() - started
    print(f"fuzz: {tried} inputs in {seconds:.0f} s ({tried / max(seconds, 1e-9):.0f}/s); "
          f"{accepted} anonymised, {tried - accepted - len(found)} refused with a BlurError; "
          f"{len(found)} distinct findings")
    for finding, name in found.items():
        print(f"  {finding}  -> {findings / name}")
    return 1 if found else 0


def replay(folder: Path) -> int:
    import hostile

    failures = 0
    for path in sorted(folder.glob("*.bin")):
        try:
            hostile.decode_anonymise_encode(path.read_bytes())
            print(f"ok       {path.name}")
        except Exception as exc:
            failures += 1
            print(f"FINDING  {path.name}: {_describe(exc)}")
    return 1 if failures else 0


def run_atheris(minutes: float) -> int:
    """Coverage-guided fuzzing of the same invariant (Pillow's Python parsers are instrumented)."""
    import atheris

    with atheris.instrument_imports():
        import hostile  # noqa: F401  (imports PIL, blur)
        import PIL.Image  # noqa: F401
    import hostile

    def one_input(data: bytes) -> None:
        hostile.decode_anonymise_encode(data)

    corpus = Path(TESTS.parent, "fuzz-findings", "atheris-corpus")
    corpus.mkdir(parents=True, exist_ok=True)
    for data in hostile.fuzz_seeds():
        (corpus / _save_name(data)).write_bytes(data)
    atheris.Setup(
        [sys.argv[0], f"-max_total_time={int(minutes * 60)}", "-timeout=10", "-rss_limit_mb=3000", str(corpus)],
        one_input,
    )
    atheris.Fuzz()
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        seed, seconds, timeout, current = sys.argv[2:6]
        child(int(seed), float(seconds), float(timeout), Path(current))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before an input counts as a hang")
    parser.add_argument("--findings", type=Path, default=Path("fuzz-findings"))
    parser.add_argument("--replay", type=Path, metavar="DIR", help="re-run saved inputs instead of fuzzing")
    parser.add_argument("--atheris", action="store_true", help="use atheris (pip install atheris) instead")
    args = parser.parse_args()
    if args.replay:
        return replay(args.replay)
    if args.atheris:
        return run_atheris(args.minutes)
    print(f"fuzz: seed {args.seed}, {args.minutes} min, findings in {args.findings}/")
    return run(args.minutes, args.seed, args.timeout, args.findings)


if __name__ == "__main__":
    sys.exit(main())
