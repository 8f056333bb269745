"""How long the ``reprolab`` command takes to start, beside ``python -c pass`` measured in the same run.

Each case is a fresh process of this checkout's interpreter (or --python's): ``python -c pass`` (the
floor), importing the CLI, ``reprolab --help``, ``reprolab run submit --help``, and a simple command
(``reprolab workspace list`` against a closed loopback port: the whole start and the request path,
no server time). Wall time and CPU time (user + sys of the child) are medians over N repetitions,
cases interleaved so that background load hits all alike; the ratio is against ``python -c pass``.
Run it again with ``--python <other venv>/bin/python`` (e.g. main's) for a before/after in one session.

Also prints the ten heaviest imports of the simple command (``python -X importtime``, cumulative).

Usage: python bench/cli.py [-n N] [--python PATH]
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import time


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cases(python: str) -> dict[str, list[str]]:
    main = [python, "-m", "reprolab_cli.main"]
    url = f"http://127.0.0.1:{_closed_port()}"
    return {
        "python -c pass": [python, "-c", "pass"],
        "import reprolab_cli.main": [python, "-c", "import reprolab_cli.main"],
        "reprolab --help": [*main, "--help"],
        "reprolab run submit --help": [*main, "run", "submit", "--help"],
        "reprolab workspace list (no server)": [*main, "workspace", "list", "--url", url, "--token", "x"],
    }


def measure(cmd: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "100"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def heaviest(cmd: list[str], top: int = 10) -> list[tuple[int, str]]:
    err = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True, text=True).stderr
    rows = []
    for line in err.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|")
            if cumulative.strip().isdigit() and not name.startswith("  "):  # top-level imports only
                rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=15)
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    todo = cases(args.python)
    for cmd in todo.values():  # warm the file cache and the bytecode
        measure(cmd)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in todo}
    for _ in range(args.n):
        for name, cmd in todo.items():
            results[name].append(measure(cmd))
    floor_wall = statistics.median(w for w, _ in results["python -c pass"])
    floor_cpu = statistics.median(c for _, c in results["python -c pass"])
    print(f"python: {args.python}   n={args.n}   load average: {os.getloadavg()[0]:.2f}")
    print(f"{'case':40} {'wall ms':>9} {'cpu ms':>8} {'wall x pass':>12} {'wall - pass ms':>15}")
    for name, rows in results.items():
        wall = statistics.median(w for w, _ in rows)
        cpu = statistics.median(c for _, c in rows)
        print(f"{name:40} {wall * 1000:9.0f} {cpu * 1000:8.0f} {wall / floor_wall:12.1f} "
              f"{(wall - floor_wall) * 1000:15.0f}")
    print(f"(floor: python -c pass {floor_wall * 1000:.0f} ms wall, {floor_cpu * 1000:.0f} ms cpu)")
    print("heaviest top-level imports of the simple command (cumulative, ms):")
    for micros, name in heaviest(todo["reprolab workspace list (no server)"]):
        print(f"  {micros / 1000:8.1f}  {name}")


if __name__ == "__main__":
    main()
