"""Training records (JSONL) and their encoding into prompts for both the rollout engine and the policy.

One record per line:

    {"id": "count-0007", "task": "count_shapes", "domain": "counting",
     "prompt": "How many shapes are there? ...",        # or "messages": [chat messages]
     "images": ["images/count-0007.png"], "videos": [], # paths relative to the JSONL file
     "answer": 3, "difficulty": 1}                      # difficulty: optional curriculum tier

`domain` picks the reward function (training.rewards); `task` only names the task in logs.
With `prompt`, the user turn is the images, then the videos, then the text. With `messages`, media
parts ({"type": "image"} / {"type": "video"}) take the files in order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

if TYPE_CHECKING:  # annotations only: loading records (thinkcap eval) does not pay for torch
    import torch


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


@dataclass
class EncodedPrompt:
    """One prompt, ready for vLLM (text + media) and for the policy forward (ids + tensors)."""

    text: str
    input_ids: list[int]
    mm_token_type_ids: list[int]
    vllm_mm_data: dict[str, Any]
    tensors: dict[str, torch.Tensor]  # pixel_values, image_grid_thw, pixel_values_videos, video_grid_thw


class PromptEncoder:
    """Chat template + processor, cached per record id (prompts repeat across iterations)."""

    def __init__(self, processor: Any):
        self.processor = processor
        self._cache: dict[str, EncodedPrompt] = {}

    def __call__(self, record: Record) -> EncodedPrompt:
        if record.id not in self._cache:
            self._cache[record.id] = self._encode(record)
        return self._cache[record.id]

    def _encode(self, record: Record) -> EncodedPrompt:
        text = self.processor.apply_chat_template(record.messages, add_generation_prompt=True, tokenize=False)
        images = [Image.open(p).convert("RGB") for p in record.images]
        videos = [load_video(p) for p in record.videos]
        kwargs: dict[str, Any] = {}
        if images:
            kwargs["images"] = images
        if videos:
            kwargs["videos"] = [frames for frames, _ in videos]
            kwargs["video_metadata"] = [{k: v for k, v in m.items() if k != "do_sample_frames"} for _, m in videos]
            kwargs["do_sample_frames"] = False
        enc = self.processor(text=[text], return_tensors="pt", **kwargs)
        mm_data: dict[str, Any] = {}
        if images:
            mm_data["image"] = images if len(images) > 1 else images[0]
        if videos:
            mm_data["video"] = videos if len(videos) > 1 else videos[0]
        tensor_keys = ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw")
        return EncodedPrompt(
            text=text,
            input_ids=enc["input_ids"][0].tolist(),
            mm_token_type_ids=enc["mm_token_type_ids"][0].tolist() if "mm_token_type_ids" in enc
            else [0] * enc["input_ids"].shape[1],
            vllm_mm_data=mm_data,
            tensors={k: enc[k] for k in tensor_keys if k in enc},
        )
