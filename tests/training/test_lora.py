"""LoRA on the policy: only adapters train, the engines and the export get W + scaling * B @ A under
the base names, the adapter folder round-trips, and a LoRA run resumes bit for bit."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

pytest.importorskip("peft")

from training.config import ConfigError, GRPOConfig  # noqa: E402
from training.learner.lora import apply_lora, load_adapter, lora_layers, merged_named_parameters, save_adapter  # noqa: E402
from training.learner.policy import load_policy  # noqa: E402


def lora_policy(model_dir: Path, rank: int = 4, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    policy = apply_lora(load_policy(str(model_dir)), GRPOConfig(lora_rank=rank, lora_alpha=8.0))
    with torch.no_grad():  # B starts at 0 (no delta): make the delta non-zero to see it merged
        for name, p in policy.named_parameters():
            if ".lora_B." in name:
                p.normal_(std=0.1)
    return policy


def test_only_adapters_train_and_merge_is_base_plus_delta(tiny_model_dir: Path):
    base = dict(load_policy(str(tiny_model_dir)).named_parameters())
    policy = lora_policy(tiny_model_dir)
    trainable = {n for n, p in policy.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert all("language_model" in n for n in trainable)  # the vision tower stays frozen
    merged = dict(merged_named_parameters(policy))
    assert set(merged) == set(base)  # the base names, no adapter tensors: what vLLM's reload_weights maps
    named = dict(policy.named_parameters())
    layers = lora_layers(policy)
    assert layers
    for owner in layers:
        a, b = named[f"{owner}.lora_A.default.weight"], named[f"{owner}.lora_B.default.weight"]  # [r, in], [out, r]
        expected = base[f"{owner}.weight"] + (8.0 / 4) * b @ a  # [out, in]
        torch.testing.assert_close(merged[f"{owner}.weight"], expected, rtol=0, atol=1e-6)
        assert not torch.equal(merged[f"{owner}.weight"], base[f"{owner}.weight"])
    untouched = [n for n in base if n.removesuffix(".weight") not in layers]
    assert all(torch.equal(merged[n], base[n]) for n in untouched)


def test_export_loads_as_plain_hf_and_adapter_round_trips(tiny_model_dir: Path, tmp_path: Path):
    from transformers import AutoModelForImageTextToText

    from training.checkpoint import save_policy

    policy = lora_policy(tiny_model_dir)
    merged = dict(merged_named_parameters(policy))
    save_policy(policy, tmp_path / "policy", tiny_model_dir, merged)
    save_adapter(policy, tmp_path / "policy_adapter", str(tiny_model_dir))
    exported = AutoModelForImageTextToText.from_pretrained(tmp_path / "policy", dtype=torch.float32)
    assert all(torch.equal(p, merged[n]) for n, p in exported.named_parameters())
    # PEFT's own loader takes the adapter folder and merges to the same weights.
    from peft import PeftModel

    base = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.float32)
    peft_merged = dict(PeftModel.from_pretrained(base, tmp_path / "policy_adapter").merge_and_unload().named_parameters())
    assert max((peft_merged[n] - merged[n]).abs().max().item() for n in merged) < 1e-6
    # load_adapter restores the adapter exactly onto a fresh injection (other seed = other A).
    other = apply_lora(load_policy(str(tiny_model_dir)), GRPOConfig(lora_rank=4, lora_alpha=8.0))
    load_adapter(other, tmp_path / "policy_adapter")
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(policy.named_parameters(), other.named_parameters()))
    wrong = apply_lora(load_policy(str(tiny_model_dir)), GRPOConfig(lora_rank=4, lora_target_modules="q_proj"))
    with pytest.raises(ConfigError, match="does not match"):
        load_adapter(wrong, tmp_path / "policy_adapter")


def test_config_refusals():
    with pytest.raises(ConfigError, match="lora_rank > 0 with distributed=fsdp"):
        GRPOConfig(lora_rank=8, distributed="fsdp")
    with pytest.raises(ConfigError, match="lora_alpha set but lora_rank is 0"):
        GRPOConfig(lora_alpha=32)
    with pytest.raises(ValueError, match="lora_rank must be >= 0"):
        GRPOConfig(lora_rank=-1)


def test_unknown_target_module_is_a_config_error(tiny_model_dir: Path):
    with pytest.raises(ConfigError, match="lora_target_modules='nope'"):
        apply_lora(load_policy(str(tiny_model_dir)), GRPOConfig(lora_rank=4, lora_target_modules="nope"))


@pytest.mark.slow
def test_lora_grpo_trains_adapters_pushes_merged_and_resumes_exactly(warm_model_dir: Path, synthetic_data: Path,
                                                                      tmp_path: Path):
    """4 GRPO steps with HF rollouts: only the adapters move, the rollout engine holds exactly the
    merged weights, the checkpoint exports a plain HF folder + the adapter, the optimizer holds state
    for the adapters alone, and a run stopped after step 3 resumes (from step 2) bit for bit."""
    from transformers import AutoModelForImageTextToText

    from tests.training.e2e_run import config, reward_fns, timeless
    from training.train import train

    initial = dict(load_policy(str(warm_model_dir)).named_parameters())
    cfg = lambda out: dataclasses.replace(  # noqa: E731
        config("hf", str(warm_model_dir), str(synthetic_data), str(tmp_path / out), lora_rank=8, lora_alpha=16.0), lr=1e-2)
    a = train(cfg("a"), reward_fns=reward_fns())
    named = dict(a["policy"].named_parameters())
    adapters = {n: p for n, p in named.items() if ".lora_" in n}
    assert any(p.abs().sum() > 0 for n, p in adapters.items() if ".lora_B." in n)  # B starts at 0: it learned
    frozen = {n.replace(".base_layer.", "."): p for n, p in named.items() if ".lora_" not in n}
    assert all(torch.equal(p, initial[n]) for n, p in frozen.items())  # the base did not move
    merged = dict(merged_named_parameters(a["policy"]))
    assert any(not torch.equal(merged[n], initial[n]) for n in merged)
    engine_weights = dict(a["engine"].model.named_parameters())  # the HF rollout copy took the merged push
    assert set(engine_weights) == set(merged) and all(torch.equal(engine_weights[n], merged[n]) for n in merged)

    ckpt = a["checkpoint"]
    exported = AutoModelForImageTextToText.from_pretrained(ckpt / "policy", dtype=torch.float32)
    assert all(torch.equal(p, merged[n]) for n, p in exported.named_parameters())
    assert (ckpt / "policy_adapter" / "adapter_config.json").is_file()
    state = torch.load(ckpt / "trainer_state.pt", weights_only=False)["optimizer"]["state"]
    moments = sum(v.numel() for s in state.values() for k, v in s.items() if k != "step")
    assert moments == 2 * sum(p.numel() for p in adapters.values())  # AdamW's two moments, adapters only

    train(cfg("b"), reward_fns=reward_fns(), stop_after=3)  # killed after step 3: resumes from step 2
    b = train(cfg("b"), reward_fns=reward_fns())
    assert all(torch.equal(p, dict(b["policy"].named_parameters())[n]) for n, p in named.items())
    assert timeless(b["history"]) == timeless(a["history"])


@pytest.mark.slow
def test_lora_under_ddp_with_heldout_eval_split_over_ranks(warm_model_dir: Path, synthetic_data: Path, tmp_path: Path):
    """2 torchrun ranks (gloo, HF rollouts): DDP averages the adapter gradients (both ranks end with the
    same adapters and merged weights), the base stays frozen, and the held-out set is split over the
    ranks and gathered (every record counted once per budget)."""
    import json
    import os
    import subprocess
    import sys

    from tests.training.test_kill_resume import heldout_file

    heldout = heldout_file(synthetic_data)
    script = Path(__file__).with_name("lora_run.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29523",
           str(script), "ddp", str(warm_model_dir), str(synthetic_data), str(heldout), str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    files = sorted(tmp_path.glob("result-rank*.json"))
    assert proc.returncode == 0 and len(files) == 2, proc.stderr[-5000:]
    r0, r1 = (json.loads(f.read_text()) for f in files)
    assert r0["base_frozen"] and r1["base_frozen"] and r0["merged_changed"]
    assert r0["adapter_sum"] == r1["adapter_sum"] and r0["merged_sum"] == r1["merged_sum"]
    assert 0 < r0["trainable"] < 0.1 * r0["total"]
    metrics = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    n_records = len(heldout.read_text().splitlines())
    evals = [m for m in metrics if "eval/accuracy@16" in m]
    assert [m["step"] for m in evals] == [2, 4]
    assert all(m["eval/responses@0"] == m["eval/responses@16"] == n_records for m in evals)


@pytest.mark.slow
@pytest.mark.engine
def test_lora_with_vllm_rollouts_gets_the_merged_weights(warm_model_dir: Path, synthetic_data: Path, tmp_path: Path):
    """vLLM CPU rollouts with LoRA: after 4 steps vLLM samples from the merged policy, its log-probs are
    near the trained LoRA policy's and clearly off the base model's; eval runs on the same engine."""
    import json
    import os
    import subprocess
    import sys

    from tests.training.test_kill_resume import heldout_file

    cmd = [sys.executable, str(Path(__file__).with_name("lora_run.py")), "vllm", str(warm_model_dir),
           str(synthetic_data), str(heldout_file(synthetic_data)), str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "VLLM_CPU_KVCACHE_SPACE": "1",
           "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    files = sorted(tmp_path.glob("result-rank*.json"))
    assert proc.returncode == 0 and files, proc.stderr[-5000:]
    res = json.loads(files[0].read_text())
    assert res["base_frozen"] and res["merged_changed"]
    assert res["mismatch_trained"] < 0.1 and 3 * res["mismatch_trained"] < res["mismatch_base"], res
    assert [h["step"] for h in res["history"] if "eval/accuracy@16" in h] == [2, 4]


def test_grads_reach_only_adapters_and_dropout_stays_out_of_old_logprobs(tiny_model_dir: Path):
    """With gradient checkpointing on, a backward fills the adapters' grads and no base grad; lora_dropout
    acts in the loss forward (train mode) but not in the old log-probs (`update.eval_mode`)."""
    from transformers import AutoProcessor

    from tasks.records import Record

    from training.prompts import PromptEncoder
    from training.learner.policy import SequenceLogprobs, collate, token_logprobs
    from training.rollout.samples import Outcome, Sample
    from training.learner.update import eval_mode

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    prompt = PromptEncoder(processor)(Record(id="t", task="t", domain="exact", answer="hi",
                                                messages=[{"role": "user", "content": [{"type": "text", "text": "Hi?"}]}]))
    ids = processor.tokenizer.encode("<think>so</think><answer>hi</answer>", add_special_tokens=False)
    batch = collate([Sample(group=0, prompt=prompt, response_ids=ids, loss_mask=[1] * len(ids), num_thinking_tokens=1,
                            outcome=Outcome.STOPPED)], processor.tokenizer.pad_token_id)
    policy = load_policy(str(tiny_model_dir))
    policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    torch.manual_seed(0)
    apply_lora(policy, GRPOConfig(lora_rank=4, lora_dropout=0.5))
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if ".lora_B." in name:
                p.normal_(std=0.1)
    scorer = SequenceLogprobs(policy.train())
    with torch.no_grad(), eval_mode(scorer):
        first, second = token_logprobs(scorer, batch), token_logprobs(scorer, batch)  # [1, L-1]
    assert torch.equal(first, second) and scorer.training  # deterministic, and train mode is back
    logp = token_logprobs(scorer, batch)  # [1, L-1], dropout on
    assert not torch.equal(logp.detach(), first)
    logp.sum().backward()
    grads = {n: p.grad for n, p in policy.named_parameters()}
    assert all(g is not None and g.abs().sum() > 0 for n, g in grads.items() if ".lora_A." in n)
    assert all(g is None for n, g in grads.items() if ".lora_" not in n)
