"""The pipeline as a notebook (`mlops-nb run`: papermill, a fresh kernel, the executed notebook, the HTML
report) against a plain Python script that calls the same package functions with the same parameters.
Both are whole processes, timed from the outside, alternating, on data generated beforehand so that both
do the same work.

1. Ratio at the default size (fraud, rf + nn, default parameters): median wall time of `mlops-nb run`
   over the plain script; the difference is the fixed cost of the kernel and the notebook.
2. Growth with the data: `mlops-nb run` at 1x, 4x and 16x the default fraud size (data_scale), wall time
   and peak memory (the largest resident set among the processes: the kernel), plus the time to
   generate the data at that size.

Writes bench/results/pipeline.md.
Usage: python bench/bench_pipeline.py [--repeats 3] [--scales 1,4,16]
       python bench/bench_pipeline.py --plain [-p NAME VALUE]...   (the plain script itself)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


def plain_pipeline(params: dict) -> Path:
    "The train notebook's steps as a script: the same functions, the same checked parameters and defaults."
    from mlops_nb.core import atomic_write_json
    from mlops_nb.monitor import reference_profile
    from mlops_nb.pipeline import (evaluate_models, finish_run, metrics_table, open_run, plot_models, prepare_data,
                                   save_outputs, train_models)
    run = open_run(params)  # checks the values as the command line does, and opens a new run
    data = prepare_data(run.params)
    print(data.summary())
    fitted = train_models(data, run.params)
    metrics = evaluate_models(fitted, data, run.params)
    print(metrics_table(metrics, data.task))
    plot_models(fitted, data, run)
    save_outputs(run, fitted, data, metrics)
    atomic_write_json(run.dir.reference_profile, reference_profile(data.X_train, data.schema))
    print(finish_run(run))
    print(run.path)
    return run.path


# Runs a command and reports its wall time and the peak resident set of its largest descendant.
WRAPPER = ("import json, resource, subprocess, sys, time\n"
           "start = time.perf_counter()\n"
           "done = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)\n"
           "wall = time.perf_counter() - start\n"
           "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
           "print(json.dumps({'rc': done.returncode, 'wall_s': wall, 'peak_rss_mb': usage.ru_maxrss / 1024,\n"
           "                  'cpu_s': usage.ru_utime + usage.ru_stime, 'last_line': (done.stdout.strip().splitlines() or [''])[-1],\n"
           "                  'stderr_tail': done.stderr[-2000:]}))\n")


def measure(command: list) -> dict:
    "Wall time, CPU time and peak memory of `command` run as its own process tree."
    done = subprocess.run([sys.executable, '-c', WRAPPER, *map(str, command)], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    if result['rc'] != 0: raise RuntimeError(f"{command} failed:\n{result['stderr_tail']}")
    return result


def notebook_command(runs_dir, data_dir, scale=1.0) -> list:
    return [BIN/'mlops-nb', 'run', '--no-progress', '--runs-dir', runs_dir, '-p', 'data_dir', data_dir,
            '-p', 'data_scale', scale]


def script_command(runs_dir, data_dir, scale=1.0) -> list:
    return [sys.executable, __file__, '--plain', '-p', 'runs_dir', runs_dir, '-p', 'data_dir', data_dir,
            '-p', 'data_scale', scale]


def generate_command(data_dir, scale) -> list:
    code = f"from mlops_nb.datasets import builtin_file; builtin_file('fraud', {str(data_dir)!r}, 0, {scale})"
    return [sys.executable, '-c', code]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--plain', action='store_true', help='run the plain-script pipeline (used by the benchmark)')
    parser.add_argument('-p', '--param', nargs=2, action='append', metavar=('NAME', 'VALUE'), default=[])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--scales', default='1,4,16')
    parser.add_argument('--out', default=str(ROOT/'bench'/'results'/'pipeline.md'))
    args = parser.parse_args()
    if args.plain:
        plain_pipeline(dict(args.param))
        return

    from mlops_nb.core import atomic_write_text
    from mlops_nb.datasets import FRAUD_DEFAULT_SIZE
    from mlops_nb.runs import read_manifest, read_metrics
    scales = [float(s) for s in args.scales.split(',')]
    work = Path(tempfile.mkdtemp(prefix='bench_pipeline_'))
    data_dir, runs_dir = work/'data', work/'runs'
    lines = []
    print('generating the data', flush=True)
    generation = {scale: measure(generate_command(data_dir, scale)) for scale in scales}

    # 1. notebook against script at the default size, alternating
    notebook_runs, script_runs = [], []
    for i in range(args.repeats):
        for name, command, results in (('notebook', notebook_command, notebook_runs), ('script', script_command, script_runs)):
            result = measure(command(runs_dir, data_dir))
            results.append(result)
            print(f"{name} {i + 1}: {result['wall_s']:.1f} s, peak {result['peak_rss_mb']:.0f} MB", flush=True)
    notebook_wall = statistics.median(r['wall_s'] for r in notebook_runs)
    script_wall = statistics.median(r['wall_s'] for r in script_runs)
    same = all(read_metrics(r['last_line']) == read_metrics(notebook_runs[0]['last_line']) for r in notebook_runs + script_runs)

    # 2. growth with the data size
    growth = []
    for scale in scales:
        result = notebook_runs[0] if scale == 1.0 else measure(notebook_command(runs_dir, data_dir, scale))
        manifest = read_manifest(result['last_line'])
        metrics = read_metrics(result['last_line'])
        growth.append((scale, manifest['data']['rows'], manifest['split']['train_rows'], manifest['split']['test_rows'],
                       generation[scale]['wall_s'], result['wall_s'], result['peak_rss_mb'], metrics['rf']['roc_auc'],
                       metrics['nn']['roc_auc']))
        print(f"scale {scale:g}: {result['wall_s']:.1f} s, peak {result['peak_rss_mb']:.0f} MB", flush=True)

    load = os.getloadavg()
    def each(runs): return ', '.join('%.1f' % r['wall_s'] for r in runs)
    lines += ['# Pipeline: notebook against plain script, and growth with the data', '',
              f"Measured by `bench/bench_pipeline.py` on {platform.node()} ({os.cpu_count()} cores, Python "
              f"{platform.python_version()}, {platform.platform()}); load average at the end {load[0]:.1f} / {load[1]:.1f} / "
              f"{load[2]:.1f} (the machine was shared with other jobs, so times carry their noise).", '',
              'Both sides are whole processes timed from the outside, on fraud data generated beforehand, with the '
              "train notebook's default parameters (models rf,nn; 200 trees; 128,64 network; 200 bootstrap resamples). "
              '`mlops-nb run` = parameter check, papermill, a fresh `python3` kernel, the executed notebook, '
              '`report.html`. The script (`bench_pipeline.py --plain`) calls the same package functions with the same '
              'checked parameters and writes the same run directory, without the notebook and report.', '',
              f"## Default size (fraud, data_scale 1: {FRAUD_DEFAULT_SIZE['n_customers']} customers, "
              f"{FRAUD_DEFAULT_SIZE['n_terminals']} terminals, {FRAUD_DEFAULT_SIZE['nb_days']} days), {args.repeats} alternating repeats", '',
              '| | wall s (each) | median wall s | peak RSS MB (median) |', '|---|---|---|---|',
              f"| `mlops-nb run` | {each(notebook_runs)} | {notebook_wall:.1f} | "
              f"{statistics.median(r['peak_rss_mb'] for r in notebook_runs):.0f} |",
              f"| plain script | {each(script_runs)} | {script_wall:.1f} | "
              f"{statistics.median(r['peak_rss_mb'] for r in script_runs):.0f} |", '',
              f"- ratio notebook / script: **{notebook_wall / script_wall:.2f}x** (goal <= 1.25x)",
              f"- fixed cost of the kernel, the notebook and the report: **{notebook_wall - script_wall:.1f} s** per run",
              f"- every run (notebook and script) gave the same metrics.json: {same}", '',
              '## Growth with the data (`mlops-nb run`, fraud)', '',
              '| data_scale | rows in file | train rows | test rows | generate data s | run wall s | peak RSS MB | rf ROC AUC | nn ROC AUC |',
              '|---|---|---|---|---|---|---|---|---|']
    for scale, rows, train, test, gen, wall, rss, rf_auc, nn_auc in growth:
        lines.append(f"| {scale:g}x | {rows:,} | {train:,} | {test:,} | {gen:.1f} | {wall:.1f} | {rss:.0f} | {rf_auc:.4f} | {nn_auc:.4f} |")
    if len(growth) > 1:
        base = growth[0]
        lines += ['', 'Relative to 1x: ' + '; '.join(
            f"{g[0]:g}x data -> {g[5] / base[5]:.1f}x time, {g[6] / base[6]:.1f}x memory" for g in growth[1:])]
    text = '\n'.join(lines) + '\n'
    atomic_write_text(args.out, text)
    print(text)


if __name__ == '__main__':
    main()
