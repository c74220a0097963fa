"""examples/hh_rlhf.py runs against the service and prints the figures of docs/api.md's comparison
example for the same baseline (reply length on the 500 HH-RLHF pairs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "hh_rlhf.py"


@pytest.mark.parametrize("mode", [[], ["--stream"]])
def test_hh_rlhf_example(url: str, mode: list) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--url", url, *mode], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "500 pairs" in out
    # The `length` model of examples/compare/response.json: loss 1.3276874813822475, CI
    # [1.1743815801086208, 1.480993382655874]; accuracy 0.447, CI [0.403687070028073, 0.490312929971927].
    assert "loss      1.3277  95% CI [1.1744, 1.4810]" in out
    assert "accuracy  0.4470  95% CI [0.4037, 0.4903]" in out
    assert "worse than chance" in out
