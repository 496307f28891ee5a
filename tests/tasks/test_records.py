"""The synthetic dataset and record loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scoring.rewards import build_reward_fns
from tasks.records import load_records, load_video
from tasks.synthetic import make_dataset


def test_synthetic_dataset_is_deterministic_and_loads(tmp_path: Path, synthetic_data: Path):
    again = make_dataset(tmp_path / "again", n=6, seed=0)
    first = synthetic_data.read_text().splitlines()[:6]
    assert again.read_text().splitlines() == first
    records = load_records(synthetic_data, set(build_reward_fns()))
    assert {r.task for r in records} == {"count_shapes", "read_number", "square_motion"}
    motion = next(r for r in records if r.task == "square_motion")
    frames, meta = load_video(motion.videos[0])
    assert frames.shape == (4, 112, 112, 3) and meta["fps"] == 2.0 and meta["do_sample_frames"] is False
    # The square moves: the frames differ where it was and where it went.
    assert abs(frames[0].astype(int) - frames[-1].astype(int)).max() > 100


def test_load_records_errors(tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"prompt": "hi", "domain": "astrology", "answer": 1}) + "\n")
    with pytest.raises(ValueError, match="bad.jsonl:1: unknown domain 'astrology'"):
        load_records(path, {"counting"})
    path.write_text(json.dumps({"domain": "counting", "answer": 1}) + "\n")
    with pytest.raises(ValueError, match="needs 'messages' or 'prompt'"):
        load_records(path)
    with pytest.raises(FileNotFoundError, match="--make-data"):
        load_records(tmp_path / "missing.jsonl")
