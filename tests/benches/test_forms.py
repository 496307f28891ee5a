"""benches.forms: the thought-form table by problem size and hint, on a real (tiny) policy folder."""

from __future__ import annotations

import shutil

from benches.forms import form_table, main
from budget.hint import BudgetHint, write_policy_hint
from tasks.records import load_records
from tasks.running_sums import _ITEM, _prompt_text, make_arith_dataset


def test_form_table_counts_every_record_by_size_and_hint(tmp_path, tiny_model_dir, capsys, monkeypatch):
    policy = tmp_path / "policy"
    shutil.copytree(tiny_model_dir, policy)
    write_policy_hint(policy, BudgetHint("Think for at most {budget} tokens."))
    records = load_records(make_arith_dataset(tmp_path / "data", n=4, seed=0))
    sizes = sorted({len(_ITEM.findall(_prompt_text(r))) for r in records})

    shown = []  # the prompts the policy was given: its recorded hint with each budget
    import training.prompts as prompts

    real = prompts.PromptEncoder.__call__
    monkeypatch.setattr(prompts.PromptEncoder, "__call__",
                        lambda self, record, budget=None: shown.append((self.hint.text(budget), budget)) or real(self, record, budget))
    table = form_table(str(policy), records, [8, 32])
    assert set(table) == {8, 32}
    for row in table.values():
        assert sorted(row) == sizes  # one row per problem size
        assert sum(n for _, n in row.values()) == len(records)
        assert all(0 <= s <= n for s, n in row.values())
    assert {t for t, _ in shown} == {"Think for at most 8 tokens.", "Think for at most 32 tokens."}

    assert main([str(policy), str(tmp_path / "data" / "train.jsonl"), "--hints", "8", "--limit", "2"]) == 0
    assert capsys.readouterr().out.startswith("hint 8: ")


def test_opened_table_scores_free_and_each_opened_form_per_size(tmp_path, tiny_model_dir, capsys):
    """One accuracy per problem size and in all, per budget and form (HF engine: no in-process vLLM engine in
    the test session, as the other bench tests)."""
    policy = tmp_path / "policy"
    shutil.copytree(tiny_model_dir, policy)
    write_policy_hint(policy, BudgetHint("Think for at most {budget} tokens."))
    path = make_arith_dataset(tmp_path / "data", n=3, seed=0)
    sizes = sorted({len(_ITEM.findall(_prompt_text(r))) for r in load_records(path)})
    assert main([str(policy), str(path), "--hints", "8,16", "--opened", "--engine", "hf"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("budget ")]  # not the engine's log
    assert [line.split(":")[0] for line in lines] == ["budget 8", "budget 16"]
    for line in lines:
        cells = line.split(": ", 1)[1].split(" | ")
        assert [c.split(":")[0] for c in cells] == ["free", "long", "short"]
        for cell in cells:  # one accuracy per problem size, then all
            keys = [kv.split("=")[0] for kv in cell.split(": ")[1].split()]
            assert keys == [str(n) for n in sizes] + ["all"]
