#!/usr/bin/env python3
"""Evaluate a reward function on real human preferences through a running prefeval service.

The data is the first 500 pairs of the test split of Anthropic's HH-RLHF harmless-base subset,
vendored in this repository at tests/data/real/ with its MIT licence and provenance. Each line is
{"chosen": <dialogue>, "rejected": <dialogue>}: two versions of one conversation that differ in the
final assistant turn, of which human raters preferred "chosen".

The "reward model" here is a baseline: the length of the final assistant reply, in characters.
Replace `reward()` with your model's score. Each pair becomes one ranked list (chosen first) via
prefeval.lists_from_pairs; `normalization="comparisons"` makes a list's loss the usual pairwise
loss -log σ(β(r_chosen - r_rejected)), and β = 0.01 makes 100 characters one logit.

    cargo run --release &                       # the service, on 127.0.0.1:8080
    pip install ./clients/python
    python clients/python/examples/hh_rlhf.py   # --url, --token, --stream

It prints the loss and the accuracy with their 95 % intervals, against chance.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
from pathlib import Path
from typing import Iterator, List, Tuple

import prefeval

DATA = Path(__file__).resolve().parents[3] / "tests" / "data" / "real" / "hh-rlhf-harmless-base-test-first500.jsonl.gz"
ASSISTANT = "\n\nAssistant:"


def final_reply(dialogue: str) -> str:
    return dialogue.rsplit(ASSISTANT, 1)[-1].strip()


def reward(dialogue: str) -> float:
    """The baseline reward model: the number of characters of the final assistant reply."""
    return float(len(final_reply(dialogue)))


def pairs(path: Path) -> Iterator[Tuple[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            pair = json.loads(line)
            yield pair["chosen"], pair["rejected"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("PREFEVAL_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--token", default=os.environ.get("PREFEVAL_TOKEN"))
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--stream", action="store_true", help="send the pairs through the stream endpoint")
    args = parser.parse_args()

    chosen: List[float] = []
    rejected: List[float] = []
    for good, bad in pairs(args.data):
        chosen.append(reward(good))
        rejected.append(reward(bad))
    ids = [f"harmless-base-test-{n:04d}" for n in range(1, len(chosen) + 1)]
    lists = prefeval.lists_from_pairs(chosen, rejected, ids=ids)
    options = dict(model="length-baseline", normalization="comparisons", beta=0.01, include_pairs=False)

    with prefeval.Client(args.url, token=args.token) as client:
        try:
            if args.stream:
                with client.evaluate_stream(iter(lists), **options) as stream:
                    for _ in stream:
                        pass
                summary = stream.summary
                assert summary is not None
                loss, figures = summary.loss, summary
            else:
                result = client.evaluate(lists, **options)
                loss, figures = result.loss, result.summary
        except prefeval.PrefevalConnectionError as error:
            print(f"cannot reach prefeval at {args.url}: {error}", file=sys.stderr)
            return 1

    assert loss is not None and figures.accuracy is not None
    # With two lists or more the summary has its intervals (at 95 % unless `confidence` says).
    assert figures.loss_ci is not None and figures.accuracy_ci is not None
    loss_low, loss_high = figures.loss_ci
    accuracy_low, accuracy_high = figures.accuracy_ci
    print(f"HH-RLHF harmless-base, {figures.lists} pairs, reward = reply length (beta 0.01)")
    print(f"  loss      {loss:.4f}  95% CI [{loss_low:.4f}, {loss_high:.4f}]")
    print(f"  chance    {figures.chance_loss:.4f}  (a model that gives 1/2 to every pair)")
    print(f"  accuracy  {figures.accuracy:.4f}  95% CI [{accuracy_low:.4f}, {accuracy_high:.4f}]")
    if accuracy_high < 0.5:
        verdict = "worse than chance"
    elif accuracy_low > 0.5:
        verdict = "better than chance"
    else:
        verdict = "not distinguishable from chance"
    print(f"  -> the length baseline is {verdict} at agreeing with the raters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
