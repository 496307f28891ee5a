"""The running-sum task: records, worked thoughts (the long and the short form), the digit range."""

from __future__ import annotations

import json
import random

from tasks.records import load_records
from tasks.running_sums import make_arith_dataset, make_record, worked_thought


def test_records_and_worked_thoughts_are_correct(tmp_path):
    path = make_arith_dataset(tmp_path, n=50, seed=3)
    assert path.read_text() == make_arith_dataset(tmp_path / "again", n=50, seed=3).read_text()
    for raw, record in zip(map(json.loads, path.read_text().splitlines()), load_records(path)):
        steps = worked_thought(record).split()
        labels, totals = [x[0] for x in steps], [int(x.split("=")[1]) for x in steps]
        assert 3 <= len(labels) <= 6 and "".join(labels) == "abcdefgh"[:len(labels)]
        digits = [int(x[1:]) for x in raw["prompt"].split(": ")[1].split(". ")[0].split()]
        assert [int(x[1:x.index("=")]) for x in steps] == digits
        assert totals == [sum(digits[:k + 1]) for k in range(len(digits))]
        assert totals[-1] == raw["answer"] == record.answer and record.domain == "running_sum"


def test_make_record_digit_range():
    rec = make_record(random.Random(1), 7, items=(2, 2))
    assert rec["id"] == "running_sum-00007" and rec["prompt"].startswith("Add up: a") and 2 <= rec["answer"] <= 18
