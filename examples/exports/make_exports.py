#!/usr/bin/env python3
"""Writes the exports of examples/exports/: real preference data in the shapes other tools export it,
extra columns and all, each scored by the same baseline reward model.

It reads the first 100 rows of tests/data/real/hh-rlhf-harmless-base-test-first500.jsonl.gz (pairs
of dialogues from Anthropic's HH-RLHF, harmless-base test split, MIT; human raters preferred
`chosen` over `rejected`) and scores the final assistant turn of every dialogue with the baseline
model `length-penalized` of examples/compare/make_request.py, put on a logit scale:

  reward = c / 100 - q / 2

where c is the number of characters (Unicode code points) of the final assistant turn and q the
number of question marks in it. It writes three files, one list (one pair) per line:

  hh-rlhf.jsonl        the HH-RLHF rows as they are (`chosen`, `rejected`: whole dialogues) plus
                       the model's scores as `chosen_score`, `rejected_score`
  ultrafeedback.jsonl  the shape of UltraFeedback-binarized: `prompt`, `prompt_id` (SHA-256 of
                       the prompt, hex), `chosen` and `rejected` as lists of `{"content", "role"}`
                       messages, `messages` (= chosen), `score_chosen`, `score_rejected`
  rewardbench.jsonl    the shape of RewardBench's per-prompt results: `prompt`, `chosen`,
                       `rejected` (the final replies), `chosen_model`, `rejected_model`,
                       `subset` (`single-turn` or `multi-turn`), an integer `id`,
                       `scores_chosen`, `scores_rejected`

and, beside them, compressed copies: hh-rlhf.jsonl.gz (gzip -9 -n) and ultrafeedback.jsonl.zst
(zstd -19), which are made by the command-line tools so that the bytes are what users get.

Usage (from anywhere; paths are relative to the repository root):

  python3 examples/exports/make_exports.py           # (re)writes the exports
  python3 examples/exports/make_exports.py --check   # exit 1 if an export differs from what it writes

Python 3 standard library only (plus `gzip` and `zstd` on PATH to write the compressed copies). The
output is deterministic: the same data gives the same bytes.
"""

import argparse
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "real" / "hh-rlhf-harmless-base-test-first500.jsonl.gz"
HERE = ROOT / "examples" / "exports"
ROWS = 100
HUMAN = "\n\nHuman:"
ASSISTANT = "\n\nAssistant:"


def turns(dialogue):
    """The dialogue as `{"content", "role"}` messages, in order."""
    messages = []
    rest = dialogue
    while rest:
        human = rest.find(HUMAN)
        assistant = rest.find(ASSISTANT)
        starts = [(at, marker) for at, marker in ((human, HUMAN), (assistant, ASSISTANT)) if at >= 0]
        if not starts:
            break
        at, marker = min(starts)
        rest = rest[at + len(marker):]
        following = [at for at in (rest.find(HUMAN), rest.find(ASSISTANT)) if at >= 0]
        end = min(following) if following else len(rest)
        role = "user" if marker == HUMAN else "assistant"
        messages.append({"content": rest[:end].strip(), "role": role})
        rest = rest[end:]
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError("a dialogue that does not end with an assistant turn")
    return messages


def score(dialogue):
    reply = turns(dialogue)[-1]["content"]
    return len(reply) / 100 - reply.count("?") / 2


def dumps(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n"


def exports(rows):
    hh, ultrafeedback, rewardbench = [], [], []
    for index, row in enumerate(rows):
        chosen, rejected = turns(row["chosen"]), turns(row["rejected"])
        prompt = chosen[0]["content"]
        humans = sum(1 for message in chosen if message["role"] == "user")
        hh.append(dumps({**row, "chosen_score": score(row["chosen"]), "rejected_score": score(row["rejected"])}))
        ultrafeedback.append(
            dumps(
                {
                    "prompt": prompt,
                    "prompt_id": hashlib.sha256(prompt.encode()).hexdigest(),
                    "chosen": chosen,
                    "rejected": rejected,
                    "messages": chosen,
                    "score_chosen": score(row["chosen"]),
                    "score_rejected": score(row["rejected"]),
                }
            )
        )
        rewardbench.append(
            dumps(
                {
                    "prompt": prompt,
                    "chosen": chosen[-1]["content"],
                    "chosen_model": "hh-rlhf",
                    "rejected": rejected[-1]["content"],
                    "rejected_model": "hh-rlhf",
                    "subset": "single-turn" if humans == 1 else "multi-turn",
                    "id": 3000 + index,
                    "scores_chosen": score(row["chosen"]),
                    "scores_rejected": score(row["rejected"]),
                }
            )
        )
    return {
        "hh-rlhf.jsonl": "".join(hh).encode(),
        "ultrafeedback.jsonl": "".join(ultrafeedback).encode(),
        "rewardbench.jsonl": "".join(rewardbench).encode(),
    }


# Each compressed copy: the tool that writes it and the export it holds.
COMPRESSED = {"hh-rlhf.jsonl.gz": ("gzip", "hh-rlhf.jsonl"), "ultrafeedback.jsonl.zst": ("zstd", "ultrafeedback.jsonl")}


def compressed(files):
    out = {}
    out["hh-rlhf.jsonl.gz"] = subprocess.run(
        ["gzip", "-9", "-n", "-c"], input=files["hh-rlhf.jsonl"], capture_output=True, check=True
    ).stdout
    out["ultrafeedback.jsonl.zst"] = subprocess.run(
        ["zstd", "-19", "-q", "-c"], input=files["ultrafeedback.jsonl"], capture_output=True, check=True
    ).stdout
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if an export differs from what this writes")
    args = parser.parse_args()
    with gzip.open(DATA, "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for _, line in zip(range(ROWS), lines)]
    files = exports(rows)
    if not args.check:
        files.update(compressed(files))
    else:
        files.update({name: b"" for name in COMPRESSED})
    stale = []
    for name, data in files.items():
        path = HERE / name
        if not args.check:
            path.write_bytes(data)
        elif not path.exists():
            stale.append(name)
        elif name in COMPRESSED:
            # Compressors of other versions may write other bytes: the copy must hold the same data.
            tool, plain = COMPRESSED[name]
            if shutil.which(tool) is None:
                print(f"note: {tool} is not installed; {name} was not checked", file=sys.stderr)
                continue
            unpacked = subprocess.run([tool, "-d", "-c"], input=path.read_bytes(), capture_output=True, check=True)
            if unpacked.stdout != files[plain]:
                stale.append(name)
        elif path.read_bytes() != data:
            stale.append(name)
    if stale:
        print(f"stale: {', '.join(stale)}; run python3 examples/exports/make_exports.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
