#!/usr/bin/env python3
"""Writes examples/compare/request.json, the body of docs/api.md's `POST /v1/compare` example.

It reads tests/data/real/hh-rlhf-harmless-base-test-first500.jsonl.gz (500 pairs of dialogues from
Anthropic's HH-RLHF, harmless-base test split; human raters preferred `chosen` over `rejected`) and
scores the final assistant turn of every dialogue with two baseline reward models:

  length             reward = c
  length-penalized   reward = c - 50 q

where c is the number of characters (Unicode code points) of the final assistant turn and q the
number of question marks in it: the second model is the first one docked 50 characters for every
question the reply asks back instead of answering. The final assistant turn is the text after the
last "\\n\\nAssistant:" of the dialogue, with surrounding whitespace removed.

Each pair becomes one list of two items, chosen first (the human's preference, best first), with
rewards [length, length-penalized]. The options ask for `"normalization": "comparisons"` and
`"beta": 0.01`, so that a 100-character difference is one logit of preference (the same as rewards
of c/100 and c/100 - 0.5 q with beta 1). The rewards are integers so that the two models' reward
differences are exact: on a pair where chosen and rejected ask as many questions, both models have
bit for bit the same loss, and the server counts the list as tied rather than won or lost by a
rounding error.

Usage (from anywhere; paths are relative to the repository root):

  python3 examples/compare/make_request.py           # (re)writes examples/compare/request.json
  python3 examples/compare/make_request.py --check   # exit 1 if request.json differs from what it writes

Python 3 standard library only. The output is deterministic: the same data gives the same bytes.
"""

import argparse
import gzip
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "real" / "hh-rlhf-harmless-base-test-first500.jsonl.gz"
REQUEST = ROOT / "examples" / "compare" / "request.json"

MODELS = ["length", "length-penalized"]
OPTIONS = {"normalization": "comparisons", "beta": 0.01}
ASSISTANT = "\n\nAssistant:"


def final_assistant_turn(dialogue):
    if ASSISTANT not in dialogue:
        raise ValueError("a dialogue without an assistant turn")
    return dialogue.rsplit(ASSISTANT, 1)[1].strip()


def rewards(dialogue):
    reply = final_assistant_turn(dialogue)
    characters, questions = len(reply), reply.count("?")
    return [characters, characters - 50 * questions]


def dumps(value):
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def request_text():
    lines = []
    with gzip.open(DATA, "rt", encoding="utf-8") as data:
        for number, line in enumerate(data, start=1):
            pair = json.loads(line)
            items = [
                {"id": "chosen", "rewards": rewards(pair["chosen"])},
                {"id": "rejected", "rewards": rewards(pair["rejected"])},
            ]
            lines.append(dumps({"id": f"harmless-base-test-{number:04d}", "items": items}))
    # One list per line, so that the file reads and diffs line by line.
    return (
        "{\n"
        f'  "models": {dumps(MODELS)},\n'
        f'  "options": {dumps(OPTIONS)},\n'
        '  "lists": [\n    ' + ",\n    ".join(lines) + "\n  ]\n}\n"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with request.json instead of writing it")
    args = parser.parse_args()
    text = request_text()
    if args.check:
        current = REQUEST.read_text(encoding="utf-8") if REQUEST.exists() else None
        if current != text:
            print(f"{REQUEST.relative_to(ROOT)} is not what {Path(__file__).name} writes; run it again", file=sys.stderr)
            return 1
        print(f"{REQUEST.relative_to(ROOT)} is up to date")
        return 0
    REQUEST.write_text(text, encoding="utf-8")
    print(f"wrote {REQUEST.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
