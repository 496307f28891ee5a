"""thinkcap's /metrics series with `--api-server-count 2`: two API-server processes each count the
requests they served, and every scrape (answered by either process) reports the sum of both.

The real server, not a simulation (tests/serving/test_metrics.py covers prometheus_client's
multiprocess mode in one process). `PROMETHEUS_MULTIPROC_DIR` is set by the test, which vLLM keeps
(`setup_multiprocess_prometheus` only creates a directory when none is set), so the per-process
files can be read to show that both processes served requests: otherwise the test would prove
nothing about aggregation.
"""

from __future__ import annotations

import glob
import os
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from evaluation.servers import ServerProcess, free_port

pytestmark = [pytest.mark.engine, pytest.mark.slow]
REQUESTS = 16  # both processes get some (all on one: 2 * 2**-16 if the kernel spreads them evenly)


def total(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples if s.name == name)


def per_process_counts(prom_dir: Path) -> dict[str, float]:
    """Choices counted in thinkcap_thinking_tokens per API-server pid, from the multiprocess files
    (which store a histogram's buckets, not cumulative, and no `_count`: their sum is the count)."""
    out = {}
    for path in glob.glob(str(prom_dir / "histogram_*.db")):
        values = MmapedDict(path, read_mode=True).read_all_values()
        n = sum(v for key, v, *_ in values if '"thinkcap_thinking_tokens_bucket"' in key)
        out[Path(path).stem.split("_")[-1]] = n
    return out


def test_every_scrape_sums_both_api_servers(tiny_model_dir: Path, tmp_path: Path):
    prom_dir = tmp_path / "prom"
    prom_dir.mkdir()
    port = free_port()
    cmd = [sys.executable, "-m", "thinkcap", "serve", str(tiny_model_dir), "--port", str(port),
           "--served-model-name", "tiny", "--max-model-len", "512", "--api-server-count", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PROMETHEUS_MULTIPROC_DIR": str(prom_dir)}
    proc = ServerProcess("thinkcap serve --api-server-count 2", cmd, env, tmp_path / "serve.log", port)
    proc.start()
    try:
        url = proc.base_url
        for i in range(REQUESTS):  # a new connection each: the kernel picks the process per connection
            body = {"model": "tiny", "messages": [{"role": "user", "content": f"hi {i}"}], "max_tokens": 24,
                    "temperature": 0, "think_budget": 2 + i % 4, "think_budget_grace": 2}
            with httpx.Client(timeout=120) as client:
                assert client.post(f"{url}/v1/chat/completions", json=body).status_code == 200
        counts = per_process_counts(prom_dir)
        assert sum(counts.values()) == REQUESTS and sum(1 for n in counts.values() if n) == 2, counts
        for _ in range(6):  # each scrape lands on either process: always the sum of both
            assert total(url, "thinkcap_thinking_tokens_count") == REQUESTS
            assert total(url, "thinkcap_closes_total") == REQUESTS
            assert total(url, "thinkcap_grace_tokens_count") == REQUESTS
    finally:
        proc.stop()
