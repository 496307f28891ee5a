"""Records → prompts for the rollout engine (text + media) and the policy forward (ids + tensors)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

from budget.hint import BudgetHint
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
    # The prompt's ids before the processor expanded its media placeholders: what vLLM takes as a token
    # prompt (it expands them itself). Set by `extended` from the text's ids plus the new ids: a prompt
    # extended by generated ids goes to vLLM as ids, since those need not survive a decode and re-encode.
    vllm_ids: list[int] | None = None
    text_ids: list[int] | None = None

    def extended(self, ids: list[int]) -> EncodedPrompt:
        """This prompt followed by `ids` (text tokens: a thought cut and its closing sequence), the
        media unchanged. `text` stays the original prompt's: the ids are the truth here."""
        if self.text_ids is None:
            raise ValueError("extended() needs the prompt's unexpanded ids (text_ids): encode it with PromptEncoder")
        return EncodedPrompt(text=self.text, input_ids=self.input_ids + list(ids),
                             mm_token_type_ids=self.mm_token_type_ids + [0] * len(ids),
                             vllm_mm_data=self.vllm_mm_data, tensors=self.tensors,
                             vllm_ids=self.text_ids + list(ids))


class PromptEncoder:
    """Chat template + processor, cached per (record content, hinted budget): prompts repeat across steps.

    The key is what the prompt is made of (messages, media paths), not the record id alone: two files
    from the same generator share ids (`running_sum-00000` in the training and the held-out set), and
    an id-keyed cache handed held-out evaluation the training prompt of the same id (measured: 0.03
    accuracy where the model scores 0.84).

    With a budget hint (`budget.hint`, the function the server uses too) the prompt tells the model
    `budget`, the budget the engine enforces for this sample; the same record under another budget
    is another prompt."""

    def __init__(self, processor: Any, hint: BudgetHint | None = None):
        self.processor = processor
        self.hint = hint
        self._cache: dict[tuple[str, int | None, str], EncodedPrompt] = {}

    def __call__(self, record: Record, budget: int | None = None, thought_prefix: str = "") -> EncodedPrompt:
        """`thought_prefix`: text the thought starts with, part of the prompt (not generated, not
        trained): `form_exploration` opens some samples' thoughts in each form this way."""
        shown = budget if self.hint is not None else None
        key = (_content_key(record), shown, thought_prefix)
        if key not in self._cache:
            self._cache[key] = self._encode(record, shown, thought_prefix)
        return self._cache[key]

    def messages(self, record: Record, budget: int | None) -> list[dict[str, Any]]:
        """The record's conversation as the model sees it under `budget` (hinted when a hint is set)."""
        return record.messages if self.hint is None else self.hint.apply(record.messages, budget)

    def _encode(self, record: Record, budget: int | None, thought_prefix: str = "") -> EncodedPrompt:
        text = self.processor.apply_chat_template(self.messages(record, budget), add_generation_prompt=True,
                                                  tokenize=False) + thought_prefix
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
            text_ids=self.processor.tokenizer(text, add_special_tokens=False)["input_ids"],
        )


def _content_key(record: Record) -> str:
    """What a prompt is made of, as one string: the same text means the same prompt."""
    return json.dumps([record.messages, [str(p) for p in record.images], [str(p) for p in record.videos]],
                      sort_keys=True, default=str)
