"""vLLM's own OpenAI server and `thinkcap serve` side by side on the tiny model: every probed
feature vLLM honours, thinkcap honours too, with and without a think budget.

The matrix (feature | vLLM | thinkcap | thinkcap + think_budget 8) is written to
`serving-parity.md` in the session's temp folder and printed with `-s`; the closing note of the
serving issue quotes it.
"""

from __future__ import annotations

import pytest

from tests.serving.parity_probes import BUDGET_PROBES, PROBES, Target

pytestmark = [pytest.mark.engine, pytest.mark.slow]


@pytest.fixture(scope="module")
def targets(server, vllm_server) -> dict[str, Target]:
    return {
        "vllm": Target(vllm_server.url, vllm_server.model),
        "thinkcap": Target(server.url, server.model, server.api_key),
        "thinkcap+budget": Target(server.url, server.model, server.api_key, {"think_budget": 8}),
    }


@pytest.fixture(scope="module")
def matrix(targets, tmp_path_factory) -> dict[str, dict[str, bool]]:
    results = {name: {t: probe(target) for t, target in targets.items()} for name, probe in PROBES.items()}
    # Budget rows set their own budget: an extra think_budget 8 would override it, so that column is skipped.
    results |= {name: {t: probe(targets[t]) if t != "thinkcap+budget" else None for t in targets}
                for name, probe in BUDGET_PROBES.items()}
    mark = {True: "yes", False: "no", None: "—"}
    lines = ["| feature | vLLM server | thinkcap | thinkcap + think_budget 8 |", "|---|---|---|---|"]
    lines += [f"| {name} | {mark[r['vllm']]} | {mark[r['thinkcap']]} | {mark[r['thinkcap+budget']]} |"
              for name, r in results.items()]
    counts = {t: sum(bool(r[t]) for r in results.values()) for t in targets}
    lines.append(f"| **honoured** | {counts['vllm']}/{len(results)} | {counts['thinkcap']}/{len(results)} "
                 f"| {counts['thinkcap+budget']}/{len(PROBES)} |")
    text = "\n".join(lines)
    (tmp_path_factory.getbasetemp() / "serving-parity.md").write_text(text + "\n")
    print("\n" + text)
    return results


@pytest.mark.parametrize("feature", list(PROBES))
def test_thinkcap_honours_what_vllm_honours(matrix, feature):
    row = matrix[feature]
    if row["vllm"]:
        assert row["thinkcap"], f"{feature}: vLLM's server honours it, thinkcap serve does not"
        assert row["thinkcap+budget"], f"{feature}: honoured by thinkcap without a budget but not with one"


@pytest.mark.parametrize("feature", list(BUDGET_PROBES))
def test_budget_rows_take_effect_on_thinkcap(matrix, feature):
    assert matrix[feature]["thinkcap"], f"{feature}: no effect on thinkcap serve"


def test_matrix_is_not_trivial(matrix):
    """The probes must pass on vLLM itself, or they prove nothing."""
    assert all(matrix[name]["vllm"] for name in PROBES)
