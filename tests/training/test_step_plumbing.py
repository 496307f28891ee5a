"""A step's plumbing without a model: refill of filtered batches, media limits for vLLM, the progress
line, and a shutdown that leaves other owners' process groups alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from budget import BudgetParams, build_profile
from training.rollout.collect import RolloutContext, collect
from training.config import GRPOConfig
from training.curriculum import Curriculum, DynamicSampling
from tasks.records import Record
from training.prompts import EncodedPrompt
from scoring.rewards import build_reward_fns
from training.rollout.samples import Completion
from training.tracking import progress_line
from training.train import media_limits

BOX = "<|begin_of_box|>{}<|end_of_box|>"


class ScriptedEngine:
    """Answers every prompt of a record whose id is in `mixed` with a right and a wrong boxed
    answer (rewards differ: an informative group), every other with the same wrong answer."""

    def __init__(self, tokenizer, mixed: set[str]):
        self.tok, self.mixed, self.calls = tokenizer, mixed, []

    def generate(self, prompts, n, **kw):
        self.calls.append([p.text for p in prompts])
        out = []
        for p in prompts:
            answers = [3, 4] * (n // 2) if p.text in self.mixed else [4] * n
            out.append([Completion(p.input_ids, self.tok.encode(
                f"<think>count</think><answer>{BOX.format(a)}</answer>", add_special_tokens=False), "stop")
                for a in answers])
        return out


def records(n: int) -> list[Record]:
    return [Record(id=f"r{i}", task="t", domain="counting", messages=[], answer=3) for i in range(n)]


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def run_collect(tok, mixed: set[str], refill: int, n_records: int = 12):
    cfg = GRPOConfig(prompts_per_step=4, group_size=2, max_refill_rounds=refill, curriculum=False, max_new_tokens=64,
                     rollout_think_budget=16)
    recs = records(n_records)
    encode = lambda r, budget=None: EncodedPrompt(r.id, [1, 2], [0, 0], {}, {})  # noqa: E731
    engine = ScriptedEngine(tok, mixed)
    ctx = RolloutContext(cfg, engine, encode, build_profile(tok, model_type="glm4v"), tok, build_reward_fns(),
                         BudgetParams(think_budget=16), 16, 0, 1, torch.device("cpu"))
    got = collect(ctx, 1, Curriculum(recs, 3, False, seed=0), DynamicSampling(True, 0.9, 3.0))
    return got, engine


def test_filtered_batch_is_refilled_until_full(tok):
    mixed = {f"r{i}" for i in range(0, 12, 2)}  # half the prompts are informative
    got, engine = run_collect(tok, mixed, refill=5)
    assert sum(got.valid) >= 4 and len(got.kept(4, True)) == 4  # full batch of informative groups
    assert got.rounds == len(engine.calls) > 1
    drawn = [t for call in engine.calls for t in call]
    assert len(drawn) == len(set(drawn)) == got.drawn  # a refill draws prompts not used this step
    assert all(got.valid[g] for g in got.kept(4, True))


def test_refill_stops_at_its_bound(tok):
    got, engine = run_collect(tok, {"r0"}, refill=1)  # one informative prompt in the whole set
    assert got.rounds == 2 and len(engine.calls) == 2
    # Not full: train on the informative group if one came up, else on one group (no signal, no update).
    assert got.kept(4, True) == ([got.valid.index(True)] if any(got.valid) else [0])
    without, _ = run_collect(tok, {"r0"}, refill=0)
    assert without.rounds == 1


def test_media_limits_follow_the_data_unless_configured(tmp_path: Path):
    recs = records(3)
    recs[1].images = [tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"]
    assert media_limits(GRPOConfig(), recs) == {"image": 3, "video": 1}
    assert media_limits(GRPOConfig(vllm_max_images=5, vllm_max_videos=0), recs) == {"image": 5, "video": 0}


def test_progress_line():
    line = progress_line(3, 20, {"reward/mean": 0.41234, "reward/accuracy": 0.375, "rollout/think_len": 31.25,
                                 "rollout/forced_rate": 0.4375, "time/step_s": 12.34, "train/loss": 1.0})
    assert line == "step 3/20 | reward 0.412 | acc 0.375 | think 31.2 | forced 0.44 | s/step 12.3"


def test_shutdown_leaves_a_group_it_did_not_create(tmp_path: Path):
    import torch.distributed as tdist

    from training import dist

    tdist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        assert dist.init()[1] == 1
        dist.shutdown()  # vLLM's group in a single-process run: vLLM's exit handler destroys it
        assert tdist.is_initialized()
    finally:
        tdist.destroy_process_group()
