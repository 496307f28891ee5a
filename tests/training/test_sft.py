"""Cold-start SFT demonstrations: the worked thought where the task has one, its short form, the schedule."""

from __future__ import annotations

import random

from tasks.records import load_records
from tasks.running_sums import make_arith_dataset, worked_thought
from training.sft import cosine_lr, demonstration


def test_demonstration_uses_the_worked_thought_only_for_its_task(tmp_path, synthetic_data):
    record = load_records(make_arith_dataset(tmp_path, n=1, seed=0))[0]
    text = demonstration(record, random.Random(0), (2, 3), 0.0)
    assert text == (f"<think>{worked_thought(record)}</think><answer><|begin_of_box|>{record.answer}"
                    "<|end_of_box|></answer>")
    image_record = load_records(synthetic_data)[0]
    assert worked_thought(image_record) is None
    assert "<think>" in demonstration(image_record, random.Random(0), (2, 3), 0.0)


def test_short_thought_writes_only_the_totals(tmp_path):
    record = load_records(make_arith_dataset(tmp_path, n=1, seed=0))[0]
    long, short = worked_thought(record).split(), worked_thought(record, short=True).split()
    assert short == [f"{step[0]}{step.split('=')[1]}" for step in long]  # a3=3 b5=8 -> a3 b8
    texts = {demonstration(record, random.Random(i), (2, 3), 0.0, short_thoughts=0.5) for i in range(20)}
    assert {t.split("</think>")[0].removeprefix("<think>") for t in texts} == {" ".join(long), " ".join(short)}


def test_cold_start_schedule_warms_up_then_decays_to_the_floor():
    factors = [cosine_lr(step, steps=100) for step in range(100)]
    assert factors[0] == 0.2 and factors[4] == 1.0  # 5 % linear warm-up
    assert all(a >= b for a, b in zip(factors[4:], factors[5:]))  # then never rises
    assert 0.1 <= factors[-1] < 0.11
