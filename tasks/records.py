"""Task records (JSONL): the one format training and `thinkcap eval` read (prompts: training/prompts.py).

One record per line:

    {"id": "count-0007", "task": "count_shapes", "domain": "counting",
     "prompt": "How many shapes are there? ...",        # or "messages": [chat messages]
     "images": ["images/count-0007.png"], "videos": [], # paths relative to the JSONL file
     "answer": 3, "difficulty": 1}                      # difficulty: optional curriculum tier

`domain` picks the reward function (scoring.rewards); `task` only names the task in logs.
With `prompt`, the user turn is the images, then the videos, then the text. With `messages`, media
parts ({"type": "image"} / {"type": "video"}) take the files in order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Record:
    id: str
    task: str
    domain: str
    messages: list[dict[str, Any]]
    answer: Any
    images: list[Path] = field(default_factory=list)
    videos: list[Path] = field(default_factory=list)
    difficulty: int | None = None


def _user_turn(prompt: str, n_images: int, n_videos: int) -> dict[str, Any]:
    parts = [{"type": "image"}] * n_images + [{"type": "video"}] * n_videos
    return {"role": "user", "content": [*parts, {"type": "text", "text": prompt}]}


def load_records(path: str | Path, domains: set[str] | None = None, system_prompt: str = "") -> list[Record]:
    """Parse and validate a JSONL file; errors name the line and what to fix."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"train_data {path} does not exist; make one with `thinkcap train --make-data DIR`")
    records, seen = [], set()
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        raw = json.loads(line)
        where = f"{path}:{lineno}"
        for key in ("domain", "answer"):
            if key not in raw:
                raise ValueError(f"{where}: record has no {key!r}")
        if domains is not None and raw["domain"] not in domains:
            raise ValueError(f"{where}: unknown domain {raw['domain']!r}; known: {sorted(domains)}")
        images = [path.parent / p for p in raw.get("images", [])]
        videos = [path.parent / p for p in raw.get("videos", [])]
        if "messages" in raw:
            messages = raw["messages"]
        elif "prompt" in raw:
            messages = [_user_turn(raw["prompt"], len(images), len(videos))]
        else:
            raise ValueError(f"{where}: record needs 'messages' or 'prompt'")
        if system_prompt:
            messages = [{"role": "system", "content": system_prompt}, *messages]
        rid = str(raw.get("id", f"{path.stem}-{lineno}"))
        if rid in seen:
            raise ValueError(f"{where}: duplicate id {rid!r}")
        seen.add(rid)
        records.append(Record(
            id=rid, task=raw.get("task", raw["domain"]), domain=raw["domain"], messages=messages,
            answer=raw["answer"], images=images, videos=videos, difficulty=raw.get("difficulty"),
        ))
    if not records:
        raise ValueError(f"{path} holds no records")
    return records


def load_video(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """All frames [T, H, W, 3] uint8 RGB plus the metadata GLM-4.1V's processors read (timestamps).

    Decoded by the one video helper the server uses too (`thinkcap.video`, decord). We decode once and
    tell both vLLM and HF not to re-sample frames (`do_sample_frames=False`), so the rollout engine and
    the policy see the very same frames and prompt tokens."""
    from thinkcap.video import VideoError, read_video

    try:
        frames, info, indices = read_video(path)  # default rule: every frame
    except VideoError as exc:
        raise ValueError(f"could not read the video {path}: {exc}") from None
    meta = {"fps": float(info.fps), "duration": info.duration, "total_num_frames": info.total_frames,
            "frames_indices": indices, "do_sample_frames": False}
    return frames, meta
