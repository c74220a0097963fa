#!/usr/bin/env python3
"""Writes examples/compare/hh-rlhf-scored.jsonl.gz, the dataset of the README's "Compare two models
on a whole dataset".

It reads tests/data/real/hh-rlhf-harmless-base-test-first500.jsonl.gz (500 pairs of dialogues from
Anthropic's HH-RLHF, harmless-base test split, MIT; human raters preferred `chosen` over
`rejected`) and writes each pair back as a scoring job would: the dialogues as they were, a list
id, the scores of two baseline reward models, and the length of each final reply. The models are
those of make_request.py (its docstring defines them):

  length             reward = c
  length-penalized   reward = c - 50 q

with c the characters (Unicode code points) of the final assistant turn and q its question marks.
Each row holds the scores twice, as exports do: one array per reply in the order of the models
(`chosen_scores`, `rejected_scores`: what `prefeval compare` reads) and one column per model and
reply (`chosen_length_score`, ...: what `prefeval eval` of one model reads), plus
`chosen_chars` / `rejected_chars` (c).

Usage (paths are relative to the repository root):

  python3 examples/compare/make_dataset.py           # (re)writes the dataset
  python3 examples/compare/make_dataset.py --check   # exit 1 if it differs from what it writes

Python 3 standard library only; the output is the same bytes every time (gzip without a name or
a timestamp).
"""

import argparse
import gzip
import io
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "real" / "hh-rlhf-harmless-base-test-first500.jsonl.gz"
OUTPUT = ROOT / "examples" / "compare" / "hh-rlhf-scored.jsonl.gz"
ASSISTANT = "\n\nAssistant:"


def final_assistant_turn(dialogue):
    if ASSISTANT not in dialogue:
        raise ValueError("a dialogue without an assistant turn")
    return dialogue.rsplit(ASSISTANT, 1)[1].strip()


def scores(dialogue):
    reply = final_assistant_turn(dialogue)
    characters, questions = len(reply), reply.count("?")
    return characters, [characters, characters - 50 * questions]


def rows():
    with gzip.open(DATA, "rt", encoding="utf-8") as data:
        for number, line in enumerate(data, start=1):
            pair = json.loads(line)
            chosen_chars, chosen = scores(pair["chosen"])
            rejected_chars, rejected = scores(pair["rejected"])
            yield {
                "id": f"harmless-base-test-{number:04d}",
                "chosen": pair["chosen"],
                "rejected": pair["rejected"],
                "chosen_scores": chosen,
                "rejected_scores": rejected,
                "chosen_length_score": chosen[0],
                "rejected_length_score": rejected[0],
                "chosen_penalized_score": chosen[1],
                "rejected_penalized_score": rejected[1],
                "chosen_chars": chosen_chars,
                "rejected_chars": rejected_chars,
            }


def dataset_bytes():
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows()).encode("utf-8")
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as compressed:
        compressed.write(text)
    return out.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the dataset instead of writing it")
    args = parser.parse_args()
    data = dataset_bytes()
    name = OUTPUT.relative_to(ROOT)
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_bytes() != data:
            print(f"{name} is not what {Path(__file__).name} writes; run it again", file=sys.stderr)
            return 1
        print(f"{name} is up to date")
        return 0
    OUTPUT.write_bytes(data)
    print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
