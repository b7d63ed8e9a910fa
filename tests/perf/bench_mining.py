"""Benchmark: mine 200,000 corrections of one prompt.

Targets (2-core machine): at most 20 s and at most 1 GiB peak RSS. Run as
``.venv/bin/python tests/perf/bench_mining.py``; exits non-zero when a target is missed.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from analytics.mining import MiningConfig, mine_patterns
from analytics.mining.synthetic import generate_corpus

N_RECORDS = 200_000
TARGET_SECONDS = 20.0
TARGET_PEAK_MIB = 1024.0
NOW = 1_700_000_000.0


def _rss_mib() -> float:
    """Return this process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> int:
    """Print time and peak memory next to their targets; return 1 if either is missed."""
    config = MiningConfig()
    # 8 failure modes x 3 paraphrase families, 10% one-off noise, and Zipf-distributed
    # made-up words from a 50k lexicon so the vocabulary grows like real text does.
    corpus = generate_corpus(seed=7, n_records=N_RECORDS, now=NOW, rare_words=50_000,
                             window_seconds=config.window_seconds, n_windows=config.n_windows)
    baseline = _rss_mib()
    start, cpu_start = time.perf_counter(), time.process_time()
    result = mine_patterns(corpus.records, now=NOW, executions_in_window=N_RECORDS,
                           config=config, window_executions=[N_RECORDS // 7] * 7)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    peak = _rss_mib()
    print(f"records mined          {N_RECORDS:>10,}")
    print(f"patterns found         {len(result.patterns):>10,}   "
          f"(unclustered records {result.unclustered:,})")
    print(f"mining time            {elapsed:>10.2f} s     target <= {TARGET_SECONDS:.0f} s")
    print(f"mining CPU time        {cpu:>10.2f} s     (all threads; wall time is the target)")
    print(f"RSS before mining      {baseline:>10.0f} MiB   (records + interpreter)")
    print(f"peak RSS               {peak:>10.0f} MiB   target <= {TARGET_PEAK_MIB:.0f} MiB")
    print(f"peak RSS - baseline    {peak - baseline:>10.0f} MiB")
    for p in result.patterns[:8]:
        print(f"  {p.size:>7,}  {p.label:<32}  {p.pattern_id}")
    ok = elapsed <= TARGET_SECONDS and peak <= TARGET_PEAK_MIB
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
