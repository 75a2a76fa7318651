"""Export every operator of a space (default: ofa-mbv3 w1.0, its 5 default resolutions) in each format and
print how long it takes. Cold run into a fresh folder unless --out names one that already holds files
(then it measures the "nothing new to write" path).

    python benchmarks/export_operators.py                  # both formats, 2 worker processes
    python benchmarks/export_operators.py --formats onnx --limit 40
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from hwnas.export import export_operators
from hwnas.space import create


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="ofa-mbv3")
    parser.add_argument("--formats", default="onnx,tflite")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "int8"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="only the first N operators")
    parser.add_argument("--out", type=Path, default=None, help="folder to write into (default: a temporary one)")
    args = parser.parse_args()

    space = create(args.space)
    ops = space.all_operators()[: args.limit]
    print(f"{args.space}: {len(ops)} distinct operators at resolutions {list(getattr(space, 'resolutions', []))}")
    with tempfile.TemporaryDirectory(prefix="hwnas-ops-") as tmp:
        root = args.out or Path(tmp)
        total_s = 0.0
        for fmt in [f.strip() for f in args.formats.split(",") if f.strip()]:
            marks = {int(len(ops) * q / 10) for q in range(1, 11)}

            def progress(done: int, total: int, fmt: str = fmt, marks: set = marks,
                         started: float = time.perf_counter()) -> None:
                if done in marks:
                    print(f"  {fmt}: {done}/{total} after {time.perf_counter() - started:.0f} s", flush=True)

            started = time.perf_counter()
            exported = export_operators(space, ops, root / f"{fmt}-{args.precision}", fmt, args.precision,
                                        jobs=args.jobs, progress=progress)
            seconds = time.perf_counter() - started
            total_s += seconds
            size_mb = sum(e.path.stat().st_size for e in exported) / 1e6
            print(f"{fmt} {args.precision}: {len(exported)} models, {size_mb:.1f} MB, {seconds:.1f} s "
                  f"({seconds / max(len(exported), 1):.2f} s per operator, {args.jobs} jobs)", flush=True)
        print(f"total: {total_s:.1f} s ({total_s / 60:.1f} min)")


if __name__ == "__main__":
    main()
