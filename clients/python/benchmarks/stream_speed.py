"""Wall time of the Python client's stream against curl, on the same server and data.

Generates ``--lists`` ranked lists of 2 to 8 items (native format, about 200 bytes a line), starts
the prefeval binary on a free port, and times, ``--repeat`` times each:

- ``curl --data-binary @file`` to ``/v1/evaluate/stream`` (the floor: the server's own time);
- ``Client.evaluate_file`` iterating every result, without and with pairs (and with pairs, also
  reading every result's ``pairs``: a Python object per implied pair);
- ``Client.evaluate_dataset`` on the same lists as a pyarrow Table, summary only.

Prints a table of wall times (median, min and max of the runs) and each client figure's ratio to
curl's median with the same ``include_pairs``. Not a test: the figures depend on the machine.

    python clients/python/benchmarks/stream_speed.py --binary target/release/prefeval
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import prefeval


def generate(path: Path, lists: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as out:
        for index in range(lists):
            n = rng.randint(2, 8)
            items = ",".join(
                f'{{"reward":{rng.gauss(0.0, 1.0)!r},"rank":{rank}}}' for rank in rng.sample(range(1, n + 1), n)
            )
            out.write(f'{{"id":"list-{index}","items":[{items}]}}\n')


def table_of(path: Path) -> "object":
    """The lists of ``path`` as a pyarrow Table (read by pyarrow's JSON reader, not timed)."""
    import pyarrow.json as pj

    return pj.read_json(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(binary: str) -> Tuple[subprocess.Popen, str]:  # type: ignore[type-arg]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1):
                return process, url
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the server did not start")


def timed(run: Callable[[], object], repeat: int) -> List[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.environ.get("PREFEVAL_BINARY", "target/release/prefeval"))
    parser.add_argument("--lists", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("curl is needed")

    work = Path(tempfile.mkdtemp(prefix="prefeval-bench-"))
    data = work / "lists.ndjson"
    generate(data, args.lists)
    size = data.stat().st_size
    table = table_of(data)
    process, url = start(args.binary)
    client = prefeval.Client(url, timeout=120)

    def curl(pairs: bool) -> Callable[[], object]:
        command = [
            "curl", "-sS", "--fail", "-o", os.devnull, "-H", "content-type: application/x-ndjson",
            "--data-binary", f"@{data}", f"{url}/v1/evaluate/stream?include_pairs={str(pairs).lower()}",
        ]  # fmt: skip
        return lambda: subprocess.run(command, check=True)

    def evaluate_file(pairs: bool, read_pairs: bool = False) -> Callable[[], object]:
        def run() -> object:
            count = 0
            with client.evaluate_file(data, include_pairs=pairs) as stream:
                for item in stream:
                    count += 1
                    if read_pairs and isinstance(item, prefeval.StreamResult):
                        assert item.pairs  # every Pair built
            assert count == args.lists and stream.summary is not None
            return stream.summary

        return run

    def evaluate_dataset() -> object:
        summary = client.evaluate_dataset(table, include_pairs=False)
        assert summary.lists == args.lists
        return summary

    runs: Dict[str, Tuple[bool, Callable[[], object]]] = {
        "curl, include_pairs=false": (False, curl(False)),
        "curl, include_pairs=true": (True, curl(True)),
        "evaluate_file, every result, include_pairs=false": (False, evaluate_file(False)),
        "evaluate_file, every result, include_pairs=true": (True, evaluate_file(True)),
        "evaluate_file, every result and its pairs, include_pairs=true": (True, evaluate_file(True, True)),
        "evaluate_dataset(pyarrow.Table), summary, include_pairs=false": (False, evaluate_dataset),
    }
    try:
        results = {name: (pairs, timed(run, args.repeat)) for name, (pairs, run) in runs.items()}
    finally:
        client.close()
        process.terminate()
        process.wait()
        shutil.rmtree(work)
    floor = {pairs: statistics.median(times) for name, (pairs, times) in results.items() if name.startswith("curl")}
    print(f"{args.lists} lists of 2-8 items, {size / 1e6:.1f} MB, {args.repeat} runs each (python {sys.version.split()[0]})")
    print(f"{'':64} {'median s':>9} {'min':>7} {'max':>7} {'x curl':>7}")
    for name, (pairs, times) in results.items():
        median = statistics.median(times)
        print(f"{name:64} {median:9.2f} {min(times):7.2f} {max(times):7.2f} {median / floor[pairs]:7.2f}")


if __name__ == "__main__":
    main()
