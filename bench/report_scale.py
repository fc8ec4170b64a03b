"""The report at scale: a 100,000-record journal rendered by `margin report`, timed and weighed.

    python bench/report_scale.py [--records 100000]   (or python -m bench.report_scale)

Writes the same kind of run directory as bench/score_scale.py (5 models × 10 tasks × 100 cases
× 10 conditions × repeats, with infra errors and retried keys), then runs `margin report RUN`
in a fresh process and prints its seconds and the size of index.html last. Exits 1 above 30 s
or 5 MB.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    from bench.score_scale import write_run
except ModuleNotFoundError:  # run as a script: its own folder is on the path, the root is not
    from score_scale import write_run  # type: ignore[no-redef]

LIMIT_S, LIMIT_BYTES = 30.0, 5_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "run"
        written = write_run(folder, args.records)
        print(f"wrote {written:,} records")
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "margin.cli.main", "report", str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            print(result.stderr, file=sys.stderr)
            sys.exit(1)
        size = (folder / "index.html").stat().st_size
        summary = (folder / "summary.md").stat().st_size
    print(f"summary.md {summary / 1000:,.0f} kB (limit 1,000 kB)")
    print(
        f"seconds {seconds:.1f} (limit {LIMIT_S:.0f}); index.html {size / 1e6:.2f} MB (limit 5 MB)"
    )
    if seconds > LIMIT_S or size > LIMIT_BYTES or summary > 1_000_000:
        sys.exit(1)


if __name__ == "__main__":
    main()
