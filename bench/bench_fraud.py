"""make_fraud + fraud_features against the handbook's loop-style process, side by side in one run.

Run: nice .venv/bin/python bench/bench_fraud.py [--reference-fraction 5] [--reference-full]

Three measurements, each in its own Python process so that its peak resident memory (ru_maxrss)
is its own:
  1. vectorized (`mlops_nb.fraud`) at the handbook's size: 5,000 customers, 10,000 terminals, 183 days;
  2. vectorized at a proportional subset: customers and terminals divided by --reference-fraction,
     all 183 days;
  3. the reference (`bench/reference_fraud.py`: per customer, per day, per transaction generation and
     per-customer / per-terminal pandas rolling features, as the handbook writes them) at that subset,
     or at the full size with --reference-full.
The reference's work is linear in the number of customers and terminals at a fixed density
(transactions per terminal stay the same), so its full-size time is estimated as the subset time x
the fraction; the table says which numbers are measured and which are scaled. The ratio is also given
like for like at the subset size, where both are measured. As a cross-check the reference child
also runs `fraud_features` on the reference's own transactions and reports the largest feature
difference (rows where a card has two transactions in the same second are left out: their order,
which the reference's unstable sort picks, decides which one sees the other).
Writes bench/results/fraud.md.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HANDBOOK_SIZE = dict(n_customers=5000, n_terminals=10000, nb_days=183)


def peak_rss_mb() -> float:
    "Peak resident memory of this process so far, MB (Linux reports ru_maxrss in KiB)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(kind: str, n_customers: int, n_terminals: int, nb_days: int) -> dict:
    "Generate and featurize once; return timings, sizes and peak memory."
    import numpy as np
    import pandas as pd
    from mlops_nb.fraud import FRAUD_FEATURES, fraud_features, make_fraud
    sys.path.insert(0, str(HERE))
    from reference_fraud import handbook_features, reference_make_fraud
    baseline = peak_rss_mb()
    start = time.perf_counter()
    if kind == 'vectorized':
        transactions = make_fraud(n_customers=n_customers, n_terminals=n_terminals, nb_days=nb_days, seed=0)
        generated = time.perf_counter()
        featured = fraud_features(transactions)
    else:
        transactions = reference_make_fraud(n_customers=n_customers, n_terminals=n_terminals, nb_days=nb_days)
        generated = time.perf_counter()
        featured = handbook_features(transactions)
    done = time.perf_counter()
    result = dict(kind=kind, n_customers=n_customers, n_terminals=n_terminals, nb_days=nb_days,
                  transactions=len(transactions), frauds=int(transactions.TX_FRAUD.sum()),
                  generate_s=generated - start, features_s=done - generated, total_s=done - start,
                  peak_rss_mb=peak_rss_mb(), baseline_rss_mb=baseline)
    if kind == 'reference':  # cross-check, after the peak memory was read
        ours = fraud_features(transactions).set_index('TRANSACTION_ID').loc[featured.TRANSACTION_ID]
        tied = transactions.set_index('TRANSACTION_ID').loc[featured.TRANSACTION_ID]
        tied = tied.duplicated(['CUSTOMER_ID', 'TX_DATETIME'], keep=False).to_numpy()
        difference = max(float(np.abs(ours[c].to_numpy(float)[~tied] - featured[c].to_numpy(float)[~tied]).max())
                         for c in FRAUD_FEATURES)
        result.update(cross_check_max_abs_difference=difference, cross_check_rows=int((~tied).sum()),
                      cross_check_tied_rows_left_out=int(tied.sum()))
    return result


def run_child(kind: str, size: dict) -> dict:
    command = [sys.executable, __file__, '--child', kind, '--customers', str(size['n_customers']),
               '--terminals', str(size['n_terminals']), '--days', str(size['nb_days'])]
    print('running', kind, size, flush=True)
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        sys.exit(f"{kind} failed:\n{completed.stderr}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    print(f"  {result['total_s']:.1f} s, {result['transactions']:,} transactions, peak {result['peak_rss_mb']:.0f} MB", flush=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--reference-fraction', type=int, default=5,
                        help='run the reference on customers/terminals divided by this (all days)')
    parser.add_argument('--reference-full', action='store_true', help='run the reference at the full size instead')
    parser.add_argument('--out', default=str(HERE / 'results' / 'fraud.md'))
    parser.add_argument('--child', choices=['vectorized', 'reference'])
    parser.add_argument('--customers', type=int); parser.add_argument('--terminals', type=int)
    parser.add_argument('--days', type=int)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.customers, args.terminals, args.days)))
        return

    from mlops_nb.core import atomic_write_text
    fraction = 1 if args.reference_full else args.reference_fraction
    subset = dict(n_customers=HANDBOOK_SIZE['n_customers'] // fraction,
                  n_terminals=HANDBOOK_SIZE['n_terminals'] // fraction, nb_days=HANDBOOK_SIZE['nb_days'])
    full = run_child('vectorized', HANDBOOK_SIZE)
    small = run_child('vectorized', subset) if fraction > 1 else full
    reference = run_child('reference', subset)
    scaled = {k: reference[k] * fraction for k in ('generate_s', 'features_s', 'total_s')}

    def row(name, r, times=None, note=''):
        t = times or r
        return (f"| {name} | {r['n_customers']:,} / {r['n_terminals']:,} / {r['nb_days']} | {r['transactions']:,} | "
                f"{t['generate_s']:.2f} | {t['features_s']:.2f} | {t['total_s']:.2f} | {r['peak_rss_mb']:.0f} | {note} |")

    like_for_like = reference['total_s'] / small['total_s']
    full_ratio = scaled['total_s'] / full['total_s']
    lines = ['# make_fraud + fraud_features against the handbook-style reference', '',
             f"Machine: {platform.machine()}, Python {platform.python_version()}, one run of each, "
             "each in its own process (2 cores shared with other work; run niced).", '',
             '| implementation | customers / terminals / days | transactions | generate s | features s | total s | peak RSS MB | note |',
             '| --- | --- | --- | --- | --- | --- | --- | --- |',
             row('vectorized (mlops_nb.fraud)', full, note='measured')]
    if fraction > 1:
        lines.append(row('vectorized (mlops_nb.fraud)', small, note='measured'))
        lines.append(row('reference (bench/reference_fraud.py)', reference, note='measured'))
        lines.append(row('reference, scaled to full size', {**reference, **HANDBOOK_SIZE, 'transactions': full['transactions']},
                         scaled, note=f'estimated: subset time x {fraction}; RSS is the subset\'s'))
    else:
        lines.append(row('reference (bench/reference_fraud.py)', reference, note='measured'))
    lines += ['',
              f"Speed-up at the handbook's size (make_fraud + fraud_features): **{full_ratio:.0f}x** "
              f"({'reference measured' if fraction == 1 else f'reference estimated from a 1/{fraction} subset'}; goal: at least 20x).",
              ]
    if fraction > 1:
        lines.append(f"Speed-up like for like at the subset size, both measured: **{like_for_like:.0f}x**.")
    lines += ['',
              f"Peak resident memory (whole process, Python and imports included; after imports: vectorized "
              f"{full['baseline_rss_mb']:.0f} MB, reference {reference['baseline_rss_mb']:.0f} MB): vectorized at full size "
              f"{full['peak_rss_mb']:.0f} MB; reference at {reference['n_customers']:,} customers {reference['peak_rss_mb']:.0f} MB"
              + (f", vectorized at the same size {small['peak_rss_mb']:.0f} MB." if fraction > 1 else '.'),
              '',
              f"Cross-check: `fraud_features` on the reference's own {reference['transactions']:,} transactions differs from "
              f"the reference's features by at most {reference['cross_check_max_abs_difference']:.2e} "
              f"over {reference['cross_check_rows']:,} rows ({reference['cross_check_tied_rows_left_out']} rows of a card with two "
              "transactions in the same second left out: the reference's unstable sort orders them arbitrarily).",
              '',
              'The two generators share the process, not the random draws (the reference re-seeds numpy per customer as the '
              'handbook does; the vectorized one draws from one generator after the handbook-identical profiles), so their '
              f"transaction counts differ slightly: full size {full['transactions']:,} (handbook: 1,754,155).", '']
    text = '\n'.join(lines)
    print(text)
    atomic_write_text(args.out, text)


if __name__ == '__main__':
    main()
