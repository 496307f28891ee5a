"""The policy side: load the HF model, batch samples, compute per-token log-probs of the responses.

Sequences are prompt + response, right-padded. Everything per token lives on one grid [B, L-1]:
position j holds the log-prob of token j+1, so a response token i of row b sits at j = P_b + i - 1.
The loss mask is 1 only at response tokens the policy chose (forced tokens and padding are 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from training.rollout import Sample, concat_media


def load_policy(path: str, dtype: str = "float32") -> torch.nn.Module:
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(path, dtype=getattr(torch, dtype))
    model.config.use_cache = False  # training forwards never reuse a KV cache
    return model


@dataclass
class Batch:
    input_ids: Tensor  # [B, L]
    attention_mask: Tensor  # [B, L]
    mm_token_type_ids: Tensor  # [B, L]
    media: dict[str, Tensor]  # pixel tensors of all rows, concatenated in row order
    loss_mask: Tensor  # [B, L-1] float: 1 where the next token is a trained response token
    engine_logprobs: Tensor  # [B, L-1] rollout engine's log-probs on the same grid (0 where unknown)

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def to(self, device: torch.device) -> Batch:
        move = lambda t: t.to(device)  # noqa: E731
        return Batch(move(self.input_ids), move(self.attention_mask), move(self.mm_token_type_ids),
                     {k: move(v) for k, v in self.media.items()}, move(self.loss_mask), move(self.engine_logprobs))


def collate(samples: list[Sample], pad_token_id: int) -> Batch:
    lengths = [len(s.prompt.input_ids) + len(s.response_ids) for s in samples]
    width = max(lengths)
    ids = torch.full((len(samples), width), pad_token_id, dtype=torch.long)  # [B, L]
    attention = torch.zeros(len(samples), width, dtype=torch.long)  # [B, L]
    mm_types = torch.zeros(len(samples), width, dtype=torch.long)  # [B, L]
    loss_mask = torch.zeros(len(samples), width - 1)  # [B, L-1]
    engine_lp = torch.zeros(len(samples), width - 1)  # [B, L-1]
    for b, s in enumerate(samples):
        p, r = len(s.prompt.input_ids), len(s.response_ids)
        ids[b, : p + r] = torch.tensor(s.prompt.input_ids + s.response_ids)
        attention[b, : p + r] = 1
        mm_types[b, :p] = torch.tensor(s.prompt.mm_token_type_ids)
        loss_mask[b, p - 1 : p - 1 + r] = torch.tensor(s.loss_mask, dtype=torch.float)
        if s.engine_logprobs is not None:
            engine_lp[b, p - 1 : p - 1 + r] = torch.tensor(s.engine_logprobs)
    media = concat_media([s.prompt for s in samples])
    return Batch(ids, attention, mm_types, media, loss_mask, engine_lp)


class SequenceLogprobs(torch.nn.Module):
    """Wraps the HF model so one `forward` returns per-token log-probs: [B, L-1].

    It builds the input embeddings itself: HF's Glm4v finds image *and* video placeholders by the
    same token id, so a batch mixing images and videos fails there; `mm_token_type_ids` (1 image,
    2 video) tells them apart. Being one module, it is also what DDP wraps under torchrun.
    """

    def __init__(self, model: torch.nn.Module, temperature: float = 1.0):
        super().__init__()
        self.model = model
        # Rollouts sample from softmax(logits / T): score tokens under that same distribution, so
        # the PPO ratio compares the policy that actually produced the samples (as verl does).
        self.temperature = temperature

    def forward(self, input_ids: Tensor, attention_mask: Tensor, mm_token_type_ids: Tensor,
                media: dict[str, Tensor]) -> Tensor:
        inner = self.model.model  # Glm4vModel: vision tower + language model
        dtype = next(inner.parameters()).dtype
        embeds = inner.get_input_embeddings()(input_ids)  # [B, L, H]
        if "pixel_values" in media:
            feats = inner.get_image_features(media["pixel_values"].to(dtype), media["image_grid_thw"]).pooler_output
            embeds = embeds.masked_scatter((mm_token_type_ids == 1).unsqueeze(-1), torch.cat(feats).to(embeds.dtype))
        if "pixel_values_videos" in media:
            feats = inner.get_video_features(media["pixel_values_videos"].to(dtype), media["video_grid_thw"]).pooler_output
            embeds = embeds.masked_scatter((mm_token_type_ids == 2).unsqueeze(-1), torch.cat(feats).to(embeds.dtype))
        positions = inner.compute_3d_position_ids(
            input_ids=input_ids, inputs_embeds=embeds, image_grid_thw=media.get("image_grid_thw"),
            video_grid_thw=media.get("video_grid_thw"), attention_mask=attention_mask,
            mm_token_type_ids=mm_token_type_ids)  # [3, B, L] (M-RoPE), or None for text-only
        logits = self.model(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=positions,
                            use_cache=False).logits[:, :-1].float() / self.temperature  # [B, L-1, V]
        targets = input_ids[:, 1:].unsqueeze(-1)  # [B, L-1, 1]
        # log_softmax via logsumexp: one [B, L-1, V] temporary fewer than log_softmax().gather().
        return logits.gather(-1, targets).squeeze(-1) - logits.logsumexp(dim=-1)  # [B, L-1]


def token_logprobs(model: torch.nn.Module, batch: Batch) -> Tensor:
    """log p(token j+1 | tokens <= j) for every position: [B, L-1] (float32). `model` is a
    `SequenceLogprobs`, possibly inside DDP."""
    return model(batch.input_ids, batch.attention_mask, batch.mm_token_type_ids, batch.media)
