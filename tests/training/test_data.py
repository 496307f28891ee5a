"""Prompt encoding and the policy's log-prob forward (records and the synthetic set: tests/tasks/)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tasks.records import load_records

from training.prompts import PromptEncoder
from training.learner.policy import SequenceLogprobs, collate, load_policy, token_logprobs
from training.rollout.samples import Outcome, Sample


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_model_dir)


def test_prompt_encoding_expands_media(processor, synthetic_data: Path):
    records = load_records(synthetic_data, system_prompt="Be brief.")
    encode = PromptEncoder(processor)
    image = encode(next(r for r in records if r.images))
    video = encode(next(r for r in records if r.videos))
    image_token = processor.tokenizer.convert_tokens_to_ids("<|image|>")
    assert image.input_ids.count(image_token) == 16 and sum(image.mm_token_type_ids) == 16  # type 1 = image
    assert image.text.startswith("[gMASK]<sop><|system|>\nBe brief.") and image.text.endswith("<|assistant|>\n")
    assert set(video.mm_token_type_ids) == {0, 2} and "video_grid_thw" in video.tensors
    assert encode(records[0]) is encode(records[0])  # cached


def test_prompt_cache_keys_on_content_not_id(processor, tmp_path: Path):
    """Two files from one generator share ids (the training and held-out running sums both start at
    `running_sum-00000`); one encoder serving both must not hand one file's prompt to the other."""
    from tasks.running_sums import make_arith_dataset

    train = load_records(make_arith_dataset(tmp_path / "train", n=3, seed=0))
    held = load_records(make_arith_dataset(tmp_path / "held", n=3, seed=1))
    assert train[0].id == held[0].id and train[0].messages != held[0].messages
    encode = PromptEncoder(processor)
    first, second = encode(train[0]), encode(held[0])
    assert "Add up:" in second.text and held[0].messages[-1]["content"][-1]["text"].split(".")[0] in second.text
    assert first.text != second.text


def test_sequence_logprobs_match_hf_and_survive_mixed_batches(tiny_model_dir, processor, synthetic_data: Path):
    """Our forward (own embedding scatter, M-RoPE positions) equals HF's for an image row, and a row's
    log-probs do not change when it shares a right-padded batch with a video row."""
    model = load_policy(str(tiny_model_dir)).eval()
    records = load_records(synthetic_data)
    encode = PromptEncoder(processor)
    image, video = encode(next(r for r in records if r.images)), encode(next(r for r in records if r.videos))
    rows = [Sample(group=0, prompt=image, response_ids=[5, 6, 7], loss_mask=[1, 1, 1], num_thinking_tokens=0,
                   outcome=Outcome.STOPPED),
            Sample(group=1, prompt=video, response_ids=[8, 9, 10, 11, 12], loss_mask=[1, 0, 1, 1, 1],
                   num_thinking_tokens=0, outcome=Outcome.STOPPED)]
    scorer = SequenceLogprobs(model)
    with torch.no_grad():
        alone = token_logprobs(scorer, collate(rows[:1], 0))  # [1, L-1]
        mixed = token_logprobs(scorer, collate(rows, 0))  # [2, L'-1]
        ids = torch.tensor([image.input_ids + [5, 6, 7]])
        hf = model(input_ids=ids, mm_token_type_ids=torch.tensor([image.mm_token_type_ids + [0, 0, 0]]),
                   **image.tensors).logits[0, :-1].log_softmax(-1)
        hf = hf.gather(-1, ids[0, 1:, None])[:, 0]
    width = alone.shape[1]
    scored = collate(rows[:1], 0).score_mask[0]  # [L-1]: the 3 response positions only
    assert scored.sum().item() == 3 and (alone[0][~scored] == 0).all()
    torch.testing.assert_close(alone[0][scored], hf[scored], atol=1e-5, rtol=0)
    torch.testing.assert_close(mixed[0, :width], alone[0], atol=1e-5, rtol=0)
    # At temperature T the scores are those of softmax(logits / T), the distribution rollouts sample from.
    with torch.no_grad():
        hot = token_logprobs(SequenceLogprobs(model, temperature=0.7), collate(rows[:1], 0))  # [1, L-1]
        hf_hot = (model(input_ids=ids, mm_token_type_ids=torch.tensor([image.mm_token_type_ids + [0, 0, 0]]),
                        **image.tensors).logits[0, :-1].float() / 0.7).log_softmax(-1)
        hf_hot = hf_hot.gather(-1, ids[0, 1:, None])[:, 0]
    torch.testing.assert_close(hot[0][scored], hf_hot[scored], atol=1e-5, rtol=0)
    assert not torch.allclose(hot, alone)
    batch = collate(rows, 0)
    p = len(video.input_ids)
    assert batch.loss_mask[1, p - 1: p + 4].tolist() == [1, 0, 1, 1, 1]  # forced token masked on the grid
    assert batch.loss_mask.sum().item() == 3 + 4


def test_chunked_scoring_same_values_and_grads(tiny_model_dir, processor, synthetic_data: Path):
    """Scoring 2 tokens per chunk (each chunk recomputed in backward) gives the log-probs and
    gradients of one big chunk, and the entropy of the full softmax."""
    model = load_policy(str(tiny_model_dir)).train()
    prompt = PromptEncoder(processor)(load_records(synthetic_data)[0])
    batch = collate([Sample(group=0, prompt=prompt, response_ids=[5, 6, 7, 8, 9], loss_mask=[1, 1, 0, 1, 1],
                            num_thinking_tokens=0, outcome=Outcome.STOPPED)], 0)
    results = []
    for chunk in (1024, 2):
        model.zero_grad()
        logp, ent = token_logprobs(SequenceLogprobs(model, chunk_size=chunk), batch, with_entropy=True)
        (logp * batch.loss_mask).sum().backward()
        results.append((logp.detach(), ent, {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}))
    (a, ent_a, ga), (b, ent_b, gb) = results
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    # Entropies near log(1024) ~ 6.9 summed in another order: a few float32 ulps (2.4e-6 seen on AVX-512).
    torch.testing.assert_close(ent_a, ent_b, atol=1e-5, rtol=0)
    assert ga.keys() == gb.keys() and "lm_head.weight" in ga
    for k in ga:
        torch.testing.assert_close(ga[k], gb[k], atol=1e-5, rtol=1e-4)  # summation order differs
    with torch.no_grad():
        full = model(input_ids=batch.input_ids, mm_token_type_ids=batch.mm_token_type_ids, **prompt.tensors).logits[0, :-1]
    logq = full.log_softmax(-1)
    torch.testing.assert_close(ent_a[0][batch.score_mask[0]], -(logq.exp() * logq).sum(-1)[batch.score_mask[0]],
                               atol=1e-4, rtol=0)
