"""The weight push to the vLLM engine: bucket sizes on the tiny model, sleep/wake order around the
push (a fake LLM), the CPU refusal of sleep mode, and the tensor-parallel layout checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training.config import ConfigError, GRPOConfig
from training.rollout.weight_sync import (
    BucketStats, EngineMemory, bucketed_weights, check_sleep_mode, flatten, weight_buckets,
)


@pytest.fixture(scope="module")
def tiny_policy(tiny_model_dir: Path) -> torch.nn.Module:
    from training.learner.policy import load_policy

    return load_policy(str(tiny_model_dir), "float32")


def test_buckets_cover_the_model_in_order_and_stay_under_the_limit(tiny_policy: torch.nn.Module):
    named = list(tiny_policy.named_parameters())
    sizes = {n: p.numel() * p.element_size() for n, p in named}
    limit = max(sizes.values()) // 2  # some tensors exceed it: they must get a bucket of their own
    stats = BucketStats()
    buckets = [list(b) for b in weight_buckets(named, limit, stats)]
    assert [n for b in buckets for n, _ in b] == [n for n, _ in named]  # every weight once, in module order
    assert all(t is not None and t.data_ptr() == dict(named)[n].data_ptr() for b in buckets for n, t in b)  # no copies
    for b in buckets:
        size = sum(sizes[n] for n, _ in b)
        assert size <= limit or len(b) == 1
    assert stats.buckets == len(buckets) > 2
    assert stats.peak_bytes == max(sum(sizes[n] for n, _ in b) for b in buckets)
    assert stats.total_bytes == sum(sizes.values())
    # A bucket is only filled up to the limit: the next tensor would have overflowed it.
    for b, nxt in zip(buckets, buckets[1:]):
        assert sum(sizes[n] for n, _ in b) + sizes[nxt[0][0]] > limit
    # Large enough: one bucket, the whole model.
    one = BucketStats()
    assert len(list(weight_buckets(named, stats.total_bytes, one))) == 1 and one.peak_bytes == stats.total_bytes


def test_bucketed_stream_of_a_wrapped_policy(tiny_policy: torch.nn.Module):
    """The trainer hands over SequenceLogprobs(policy): the stream names are the HF names, and a
    finished bucket is emptied as it is handed out (the trainer keeps no reference to it)."""
    from training.learner.policy import SequenceLogprobs

    stats = BucketStats()
    got = list(bucketed_weights(SequenceLogprobs(tiny_policy), 0.05, stats))  # 0.05 MB buckets
    assert [n for n, _ in got] == [n for n, _ in tiny_policy.named_parameters()]
    assert stats.buckets > 1 and stats.peak_bytes <= max(0.05 * (1 << 20), max(t.numel() * 4 for _, t in got))
    bucket = [("a", torch.zeros(1)), ("b", torch.ones(1))]
    stream = flatten(iter([bucket]))
    assert next(stream)[0] == "a" and [n for n, _ in bucket] == ["b"]  # handed out = dropped here
    with pytest.raises(ValueError, match="max_bytes"):
        next(weight_buckets([], 0))


class FakeLLM:
    """Records the calls the engine makes; checks weights are only read while the weights are awake."""

    def __init__(self):
        self.calls: list[str] = []
        self.weights_awake = True
        self.llm_engine = self

    def sleep(self, level: int) -> None:
        self.calls.append(f"sleep({level})")
        self.weights_awake = False

    def wake_up(self, tags: list[str]) -> bool:
        self.calls.append(f"wake_up({','.join(tags)})")
        self.weights_awake = self.weights_awake or "weights" in tags
        return "kv_cache" in tags

    def collective_rpc(self, method: str, kwargs: dict) -> None:
        assert self.weights_awake, "weights pushed into a sleeping engine"
        names = [n for n, _ in kwargs["weights_iterator"]]  # consumed here, lazily, like vLLM does
        self.calls.append(f"{method}({len(names)})")

    def reset_prefix_cache(self) -> None:
        self.calls.append("reset_prefix_cache")

    def reset_encoder_cache(self) -> None:
        self.calls.append("reset_encoder_cache")

    def reset_mm_cache(self) -> None:
        self.calls.append("reset_mm_cache")


def test_sleep_and_wake_around_the_push():
    llm = FakeLLM()
    memory = EngineMemory(llm, sleep_mode=True)
    weights = [("w", torch.zeros(2)), ("b", torch.zeros(1))]
    memory.push(iter(weights))  # awake (the first push at start-up): no wake-up calls
    memory.sleep()
    memory.sleep()  # already asleep: vLLM is not asked twice
    memory.push(iter(weights))
    caches = ["reset_prefix_cache", "reset_encoder_cache", "reset_mm_cache"]
    assert llm.calls == ["reload_weights(2)", *caches,
                         "sleep(1)", "wake_up(weights)", "reload_weights(2)", "wake_up(kv_cache)", *caches]
    assert not memory.asleep


def test_sleep_needs_sleep_mode():
    with pytest.raises(RuntimeError, match="without vllm_sleep_mode"):
        EngineMemory(FakeLLM(), sleep_mode=False).sleep()


def test_sleep_mode_refused_on_cpu():
    if torch.cuda.is_available():
        pytest.skip("GPU: vLLM's sleep mode is available")
    pytest.importorskip("vllm")
    with pytest.raises(ConfigError, match="Sleep mode is not supported on current platform"):
        check_sleep_mode()
    from training.rollout.vllm_engine import VLLMEngine

    with pytest.raises(ConfigError, match="vllm_sleep_mode=true"):  # before any engine is started
        VLLMEngine("unused", seed=0, max_model_len=64, gpu_memory_utilization=0.1, sleep_mode=True)


def test_tensor_parallel_size_must_divide_the_world():
    from training.rollout.vllm_engine import VLLMEngine, gather_requests

    with pytest.raises(ConfigError, match=r"rollout_tensor_parallel_size \(2\) must divide .* \(3\)"):
        VLLMEngine("unused", seed=0, max_model_len=64, gpu_memory_utilization=0.1, world_size=3,
                   tensor_parallel_size=2)
    assert gather_requests(None, ["a", "b"]) == (["a", "b"], slice(0, 2))  # TP 1: this rank's own


@pytest.mark.parametrize("kw, match", [
    ({"rollout_tensor_parallel_size": 0}, "rollout_tensor_parallel_size must be >= 1"),
    ({"weight_sync_bucket_mb": 0}, "weight_sync_bucket_mb must be > 0"),
    ({"rollout_engine": "hf", "rollout_tensor_parallel_size": 2}, "vLLM settings"),
    ({"rollout_engine": "hf", "vllm_sleep_mode": True}, "vLLM settings"),
])
def test_config_refuses(kw: dict, match: str):
    with pytest.raises(ConfigError, match=match):
        GRPOConfig(train_data="x.jsonl", **kw)


def test_rank_without_prompts_still_joins_its_group_call(tiny_model_dir: Path):
    """A refill round can leave a rank without prompts; with a tensor-parallel engine it must still
    call generate (the group's ranks generate together), with nothing of its own to add."""
    from transformers import AutoTokenizer

    from budget import BudgetParams, build_profile
    from training.rollout.collect import Collected, RolloutContext, _roll

    calls = []

    class Engine:
        def generate(self, prompts, n, **kw):
            calls.append((list(prompts), kw["seeds"]))
            return []

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    cfg = GRPOConfig(train_data="x.jsonl", max_new_tokens=64, rollout_think_budget=16)
    ctx = RolloutContext(cfg, Engine(), None, build_profile(tok, model_type="glm4v"), tok, {},
                         BudgetParams(think_budget=16), 16, 1, 2, torch.device("cpu"))
    out = Collected()
    assert _roll(ctx, 1, 0, [], out) == [] and calls == [([], [])]
    assert out.samples == [] and out.valid == []
