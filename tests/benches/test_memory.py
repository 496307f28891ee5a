"""`thinkcap bench train-memory` runs each setting in its own process and prints the table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from thinkcap.cli import main as thinkcap


@pytest.mark.slow
def test_train_memory_bench_chunking_lowers_the_peak(tmp_path: Path, capsys):
    out = tmp_path / "mem.json"
    assert thinkcap(["bench", "train-memory", "--hidden", "64", "--layers", "1", "--vocab", "16384", "--rows", "4",
                     "--prompt", "16", "--response", "256", "--chunk", "32", "--settings", "plain,+chunked",
                     "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    # All response logits at once: 4 x 256 x 16384 fp32 = 64 MiB per copy; chunks of 32 rows: 2 MiB.
    assert rows["+chunked"]["peak_bytes"] < rows["plain"]["peak_bytes"]
    assert rows["plain"]["ratio"] == 1.0 and "+chunked" in capsys.readouterr().out
