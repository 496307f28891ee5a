"""End to end on the tiny model: vLLM CPU rollouts with forced answering, weight sync, exact resume;
the HF-generate fallback; and data parallel under torchrun (gloo, 2 CPU processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from budget import build_profile

SCRIPT = Path(__file__).with_name("e2e_run.py")
ENV = {"OMP_NUM_THREADS": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1",
       "TOKENIZERS_PARALLELISM": "false"}


def run(cmd: list[str], cwd: Path) -> list[dict]:
    env = {**os.environ, **ENV, "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    files = sorted(cwd.glob("result-rank*.json"))  # OUT_DIR is cwd in every caller
    assert proc.returncode == 0 and files, proc.stdout[-3000:] + proc.stderr[-6000:]
    # Exit handlers (vLLM's engine shutdown) must not trip over a process group we destroyed.
    assert "Invalid process group specified" not in proc.stderr, proc.stderr[-3000:]
    return [json.loads(f.read_text()) for f in files]


def check_forced_tokens_masked(samples: list[dict], model_dir: Path, budget: int = 16) -> None:
    from transformers import AutoTokenizer

    profile = build_profile(AutoTokenizer.from_pretrained(model_dir), model_type="glm4v")
    forced = [s for s in samples if s["forced"]]
    assert forced, "no sample hit the budget: the test would not see forced answering"
    for s in forced:
        zeros = [i for i, m in enumerate(s["mask"]) if m == 0]
        # Exactly the closing sequence is masked, right after `budget` thinking tokens.
        assert [s["ids"][i] for i in zeros] == list(profile.closing_ids)
        mine = s.get("budget") or budget  # a drawn budget where the run drew one
        assert zeros[0] == s["ids"].index(profile.think_open_id) + 1 + mine and s["think"] == mine
        assert zeros == list(range(zeros[0], zeros[0] + len(profile.closing_ids)))
    assert all(0 not in s["mask"] for s in samples if not s["forced"])


@pytest.mark.slow
@pytest.mark.engine
def test_vllm_rollouts_sync_mask_and_resume(warm_model_dir: Path, synthetic_data: Path, tmp_path: Path):
    (res,) = run([sys.executable, str(SCRIPT), "vllm", str(warm_model_dir), str(synthetic_data), str(tmp_path)], tmp_path)
    assert res["changed"] > 0  # the policy learned something
    # The rollout engine got the new weights: tensors vLLM keeps as-is equal the policy's in bf16, and
    # its log-probs match the trained policy much better than the initial one.
    assert res["embed_equal"] and res["lm_head_equal"]
    assert res["token_prompt_continues"]  # ids-only prompts (anytime answers) reach vLLM as ids, images kept
    assert res["mismatch_trained"] < 0.1 and 5 * res["mismatch_trained"] < res["mismatch_initial"]
    check_forced_tokens_masked(res["samples"], warm_model_dir)
    # Killed after step 3 (last checkpoint: step 2) and resumed: bit-identical to the uninterrupted run.
    assert res["resume_diff"] == 0.0
    assert res["history_b"] == res["history_a"]
    ckpt = Path(res["checkpoint"])
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja",
            "preprocessor_config.json"} <= {p.name for p in (ckpt / "policy").iterdir()}
    assert (tmp_path / "a" / "reward_curve.png").stat().st_size > 0
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "a" / "tb").iterdir())
    metrics = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]
    for key in ("reward/mean", "reward/format", "reward/accuracy", "reward/repetition", "reward/language_mix",
                "pass/rate", "rollout/response_len", "rollout/think_len", "rollout/forced_rate", "train/clip_frac",
                "curriculum/tier0_weight", "rollout/logprob_mismatch"):
        assert key in metrics[-1], key


@pytest.mark.slow
def test_hf_generate_fallback_masks_and_resumes(warm_model_dir: Path, synthetic_data: Path, tmp_path: Path):
    (res,) = run([sys.executable, str(SCRIPT), "hf", str(warm_model_dir), str(synthetic_data), str(tmp_path)], tmp_path)
    assert res["changed"] > 0
    check_forced_tokens_masked(res["samples"], warm_model_dir)
    assert res["resume_diff"] == 0.0 and res["history_b"] == res["history_a"]


@pytest.mark.slow
def test_torchrun_two_cpu_processes(warm_model_dir: Path, synthetic_data: Path, tmp_path: Path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           str(SCRIPT), "ddp", str(warm_model_dir), str(synthetic_data), str(tmp_path)]
    results = run(cmd, tmp_path)
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert all(r["changed"] > 0 for r in results)
    sums = results[0]["rank_param_sums"]
    assert sums[0] == sums[1]  # DDP kept the replicas identical
    samples = [s for r in results for s in r["samples"]]
    check_forced_tokens_masked(samples, warm_model_dir)
    assert {s["budget"] for s in samples} == {8, 16}  # drawn per group
    metrics = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]  # rank 0 logs metrics pooled over both ranks
    assert (tmp_path / "a" / "checkpoints" / "step-000004" / "rng-rank1.pt").exists()
    weights = [{k: v for k, v in m.items() if k.endswith("/balance_weight")} for m in metrics]
    assert all(w and set(w) <= {"budget/8/balance_weight", "budget/16/balance_weight"} for w in weights)


@pytest.mark.slow
def test_torchrun_fsdp2_micro_batches_dcp_resume(warm_model_dir: Path, synthetic_data: Path, tmp_path: Path):
    """FSDP2 (gloo, 2 CPU ranks) with micro-batches of 1 and gradient checkpointing trains; the
    checkpoint holds DCP shards plus a plain HF policy/ folder; a run stopped after step 3 and
    resumed from step 2's DCP checkpoint ends bit-identical to the uninterrupted one."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29519",
           str(SCRIPT), "fsdp", str(warm_model_dir), str(synthetic_data), str(tmp_path)]
    results = run(cmd, tmp_path)
    assert sorted(r["rank"] for r in results) == [0, 1]
    res = results[0]
    assert res["changed"] > 0 and res["resume_diff"] == 0.0 and res["history_b"] == res["history_a"]
    check_forced_tokens_masked([s for r in results for s in r["samples"]], warm_model_dir)
    ckpt = tmp_path / "a" / "checkpoints" / "step-000004"
    assert (ckpt / "dcp" / ".metadata").exists() and len(list((ckpt / "dcp").glob("*.distcp"))) == 2
    assert (ckpt / "policy" / "model.safetensors").exists()
    from transformers import AutoModelForImageTextToText

    exported = AutoModelForImageTextToText.from_pretrained(ckpt / "policy")  # a plain HF folder
    assert sum(p.numel() for p in exported.parameters()) > 0
    metrics = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4] and "rollout/entropy" in metrics[-1]


@pytest.mark.slow
@pytest.mark.engine
def test_torchrun_vllm_engine_per_rank_with_fsdp2(warm_model_dir: Path, synthetic_data: Path, tmp_path: Path):
    """2 torchrun ranks (gloo), each with its own colocated vLLM CPU engine (external launcher, data
    parallel 2): budgets forced in both, weights pushed from the FSDP2 shards (vLLM's log-probs match
    the trained policy's), and the DCP resume bit-exact."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29521",
           str(SCRIPT), "vllm-fsdp", str(warm_model_dir), str(synthetic_data), str(tmp_path)]
    results = run(cmd, tmp_path)
    assert sorted(r["rank"] for r in results) == [0, 1]
    res = results[0]
    assert res["changed"] > 0 and res["resume_diff"] == 0.0 and res["history_b"] == res["history_a"]
    check_forced_tokens_masked([s for r in results for s in r["samples"]], warm_model_dir)
    metrics = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]
    # Both engines hold the gathered trained weights (tensors vLLM keeps as-is equal the policy's in bf16),
    # and vLLM's sampled-token log-probs stay near the trainer's (bf16 noise: 0.05-0.07 per step measured).
    assert all(r["embed_equal"] and r["lm_head_equal"] for r in results)
    assert sum(m["rollout/logprob_mismatch"] for m in metrics) / len(metrics) < 0.1


@pytest.mark.slow
@pytest.mark.engine
def test_torchrun_vllm_tensor_parallel_engine(warm_model_dir: Path, synthetic_data: Path, tmp_path: Path):
    """2 torchrun ranks (gloo) form ONE vLLM CPU engine with tensor parallel 2 (external launcher)
    while FSDP2 shards the policy: each rank still rolls out and trains on its own prompts (the
    group's requests are gathered and each rank keeps its outputs), budgets are forced with masks
    as with one engine per rank, and the weights reach each rank's vocabulary shard through
    0.05 MB buckets gathered from the FSDP2 shards."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29523",
           str(SCRIPT), "vllm-tp", str(warm_model_dir), str(synthetic_data), str(tmp_path)]
    results = run(cmd, tmp_path)
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert all(r["changed"] > 0 for r in results)
    check_forced_tokens_masked([s for r in results for s in r["samples"]], warm_model_dir)
    for step in ("1", "2"):  # no prompt rolled out (and trained on) by both ranks
        mine, theirs = (set(r["prompts"][step]) for r in results)
        assert mine and theirs and not mine & theirs
    # Each rank's engine holds its half of the vocabulary (TP shards), equal to the trained weights in bf16.
    assert sorted(tuple(r["embed_rows"]) for r in results) == [(0, 512, 1024), (512, 1024, 1024)]
    assert all(r["embed_equal"] and r["lm_head_equal"] for r in results)
    metrics = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2]
    assert all(m["rollout/logprob_mismatch"] < 0.1 for m in metrics)  # measured 0.02-0.035
    assert all(m["sync/buckets"] > 10 for m in metrics)  # the push really went in many buckets
