"""Records → prompts for the rollout engine (text + media) and the policy forward (ids + tensors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

from tasks.records import Record, load_video

if TYPE_CHECKING:  # annotations only
    import torch


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
