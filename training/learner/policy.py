"""The policy side: load the HF model, batch samples, compute per-token log-probs of the responses.

Sequences are prompt + response, right-padded. Everything per token lives on one grid [B, L-1]:
position j holds the log-prob of token j+1, so a response token i of row b sits at j = P_b + i - 1.
The loss mask is 1 only at response tokens the policy chose (forced tokens and padding are 0).

Memory: only response positions are scored, `chunk_size` tokens at a time (lm_head + log-softmax
of one chunk, recomputed in backward), so no [B, L, V] logits tensor ever exists; the biggest
temporary is [chunk_size, V] fp32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from training.rollout.samples import Sample, concat_media


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
    engine_mask: Tensor  # [B, L-1] float: 1 on response tokens the engine gave a log-prob for
    score_mask: Tensor  # [B, L-1] bool: every response position (forced ones too): what gets scored

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def to(self, device: torch.device) -> Batch:
        move = lambda t: t.to(device)  # noqa: E731
        return Batch(move(self.input_ids), move(self.attention_mask), move(self.mm_token_type_ids),
                     {k: move(v) for k, v in self.media.items()}, move(self.loss_mask), move(self.engine_logprobs),
                     move(self.engine_mask), move(self.score_mask))


def collate(samples: list[Sample], pad_token_id: int) -> Batch:
    lengths = [len(s.prompt.input_ids) + len(s.response_ids) for s in samples]
    width = max(lengths)
    ids = torch.full((len(samples), width), pad_token_id, dtype=torch.long)  # [B, L]
    attention = torch.zeros(len(samples), width, dtype=torch.long)  # [B, L]
    mm_types = torch.zeros(len(samples), width, dtype=torch.long)  # [B, L]
    loss_mask = torch.zeros(len(samples), width - 1)  # [B, L-1]
    engine_lp = torch.zeros(len(samples), width - 1)  # [B, L-1]
    engine_mask = torch.zeros(len(samples), width - 1)  # [B, L-1]
    score = torch.zeros(len(samples), width - 1, dtype=torch.bool)  # [B, L-1]
    for b, s in enumerate(samples):
        p, r = len(s.prompt.input_ids), len(s.response_ids)
        ids[b, : p + r] = torch.tensor(s.prompt.input_ids + s.response_ids)
        attention[b, : p + r] = 1
        mm_types[b, :p] = torch.tensor(s.prompt.mm_token_type_ids)
        loss_mask[b, p - 1 : p - 1 + r] = torch.tensor(s.loss_mask, dtype=torch.float)
        score[b, p - 1 : p - 1 + r] = True
        if s.engine_logprobs is not None:
            engine_lp[b, p - 1 : p - 1 + r] = torch.tensor(s.engine_logprobs)
            engine_mask[b, p - 1 : p - 1 + r] = 1.0
    media = concat_media([s.prompt for s in samples])
    return Batch(ids, attention, mm_types, media, loss_mask, engine_lp, engine_mask, score)


class SequenceLogprobs(torch.nn.Module):
    """Wraps the HF model so one `forward` returns per-token log-probs [B, L-1] (0 off the response).

    It builds the input embeddings itself: HF's Glm4v finds image *and* video placeholders by the
    same token id, so a batch mixing images and videos fails there; `mm_token_type_ids` (1 image,
    2 video) tells them apart. Being one module, it is what DDP wraps, and FSDP2's root unit.
    `always_run_vision`: a batch without media still runs the vision tower once on a dummy patch
    (times 0), so every rank's sharded vision unit takes part in every collective (FSDP2).
    """

    def __init__(self, model: torch.nn.Module, temperature: float = 1.0, chunk_size: int = 1024,
                 always_run_vision: bool = False):
        super().__init__()
        self.model = model
        # Rollouts sample from softmax(logits / T): score tokens under that same distribution, so
        # the PPO ratio compares the policy that actually produced the samples (as verl does).
        self.temperature = temperature
        self.chunk_size = chunk_size
        self.always_run_vision = always_run_vision

    @staticmethod
    def _vision_features(inner: torch.nn.Module, media: dict[str, Tensor], dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """Image and video features from ONE vision-tower call. Why one: under FSDP2 every call of the
        sharded vision blocks is a round of all-gathers, so a rank with images and videos (two calls
        through HF's get_image/get_video_features) would fall out of step with a rank holding one kind.
        Videos go in as frames of one temporal patch each, as HF's get_video_features passes them; the
        tower attends within each grid row, so batching the rows changes no feature."""
        pixels, grids, n_image = [], [], 0
        merge = inner.visual.spatial_merge_size
        if "pixel_values" in media:
            pixels.append(media["pixel_values"])
            grids.append(media["image_grid_thw"])  # [n_images, 3]
            n_image = int((media["image_grid_thw"].prod(-1) // merge**2).sum())
        if "pixel_values_videos" in media:
            grid = media["video_grid_thw"]  # [n_videos, 3] → one (1, h, w) row per temporal patch
            frames = torch.repeat_interleave(grid[:, 1:], grid[:, 0], dim=0)
            pixels.append(media["pixel_values_videos"])
            grids.append(torch.cat([frames.new_ones(frames.shape[0], 1), frames], dim=1))
        out = inner.visual(torch.cat(pixels).to(dtype), grid_thw=torch.cat(grids), return_dict=True).pooler_output
        return out[:n_image], out[n_image:]  # [N_image, H], [N_video, H]

    def forward(self, input_ids: Tensor, attention_mask: Tensor, mm_token_type_ids: Tensor,
                media: dict[str, Tensor], score_mask: Tensor, with_entropy: bool = False) -> tuple[Tensor, Tensor | None]:
        inner = self.model.model  # Glm4vModel: vision tower + language model
        dtype = next(inner.visual.parameters()).dtype
        embeds = inner.get_input_embeddings()(input_ids)  # [B, L, H]
        if media:
            image_feats, video_feats = self._vision_features(inner, media, dtype)
            for kind, feats in ((1, image_feats), (2, video_feats)):
                if feats.shape[0]:
                    embeds = embeds.masked_scatter((mm_token_type_ids == kind).unsqueeze(-1), feats.to(embeds.dtype))
        elif self.always_run_vision:
            embeds = embeds + 0.0 * self._dummy_vision(inner, dtype, embeds.device)
        positions = inner.compute_3d_position_ids(
            input_ids=input_ids, inputs_embeds=embeds, image_grid_thw=media.get("image_grid_thw"),
            video_grid_thw=media.get("video_grid_thw"), attention_mask=attention_mask,
            mm_token_type_ids=mm_token_type_ids)  # [3, B, L] (M-RoPE), or None for text-only
        hidden = inner(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=positions,
                       use_cache=False).last_hidden_state[:, :-1]  # [B, L-1, H]
        picked = hidden[score_mask]  # [N, H]: response positions only
        targets = input_ids[:, 1:][score_mask]  # [N]
        logps, ents = [], []
        for start in range(0, picked.shape[0], self.chunk_size):
            h, t = picked[start:start + self.chunk_size], targets[start:start + self.chunk_size]
            if torch.is_grad_enabled():  # keep no [chunk, V] block for backward: recompute it there
                logps.append(checkpoint(self._chunk_logprobs, h, t, use_reentrant=False))
            else:
                logps.append(self._chunk_logprobs(h, t))
            if with_entropy:
                ents.append(self._chunk_entropy(h.detach()))
        out = hidden.new_zeros(score_mask.shape, dtype=torch.float32)  # [B, L-1]
        out[score_mask] = torch.cat(logps) if logps else picked.new_zeros(0, dtype=torch.float32)
        entropy = None
        if with_entropy:
            entropy = torch.zeros_like(out)
            entropy[score_mask] = torch.cat(ents) if ents else entropy.new_zeros(0)
        return out, entropy

    def _logits(self, hidden: Tensor) -> Tensor:
        return self.model.lm_head(hidden).float() / self.temperature  # [n, V]

    def _chunk_logprobs(self, hidden: Tensor, targets: Tensor) -> Tensor:
        logits = self._logits(hidden)  # [n, V]
        # log_softmax via logsumexp: one [n, V] temporary fewer than log_softmax().gather().
        return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(dim=-1)  # [n]

    @torch.no_grad()
    def _chunk_entropy(self, hidden: Tensor) -> Tensor:
        logp = torch.log_softmax(self._logits(hidden), dim=-1)  # [n, V]
        return -(logp.exp() * logp).sum(-1)  # [n]

    def _dummy_vision(self, inner: torch.nn.Module, dtype: torch.dtype, device: torch.device) -> Tensor:
        vc = self.model.config.vision_config
        merge = getattr(vc, "spatial_merge_size", 2)
        grid = torch.tensor([[1, merge, merge]], device=device)
        width = vc.in_channels * vc.temporal_patch_size * vc.patch_size ** 2
        pixels = torch.zeros(merge * merge, width, dtype=dtype, device=device)
        return torch.cat(inner.get_image_features(pixels, grid).pooler_output).sum()


def token_logprobs(model: torch.nn.Module, batch: Batch, with_entropy: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """log p(token j+1 | tokens <= j) at response positions, 0 elsewhere: [B, L-1] float32 (and the
    entropy of each scored position when `with_entropy`). `model` is a `SequenceLogprobs`,
    possibly inside DDP or sharded by FSDP2."""
    logp, entropy = model(batch.input_ids, batch.attention_mask, batch.mm_token_type_ids, batch.media,
                          batch.score_mask, with_entropy)
    return (logp, entropy) if with_entropy else logp
