"""file_md5 against md5sum on a 200 MB file: throughput ratio, measured side by side.

Run: .venv/bin/python bench/bench_md5.py [--size-mb 200] [--repeats 5]
Both read the same file from the page cache (it is read once before timing), alternating, and the
median of the repeats is compared. Writes bench/results/md5.md.
"""
import argparse, os, statistics, subprocess, tempfile, time
from pathlib import Path

from mlops_nb.core import atomic_write_text, file_md5


def time_call(fn):
    start = time.perf_counter(); result = fn(); return time.perf_counter() - start, result


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--size-mb', type=int, default=200)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'md5.md'))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / 'blob.bin'
        with open(path, 'wb') as f:
            for _ in range(args.size_mb): f.write(os.urandom(1 << 20))
        size_mb = path.stat().st_size / 1e6
        md5sum = lambda: subprocess.run(['md5sum', str(path)], capture_output=True, text=True, check=True).stdout.split()[0]
        ours = lambda: file_md5(path)
        assert md5sum() == ours()  # also warms the page cache
        times = {'file_md5': [], 'md5sum': []}
        for _ in range(args.repeats):
            for name, fn in (('file_md5', ours), ('md5sum', md5sum)):
                elapsed, _ = time_call(fn); times[name].append(elapsed)
    median = {k: statistics.median(v) for k, v in times.items()}
    ratio = median['md5sum'] / median['file_md5']  # throughput of ours relative to md5sum
    lines = ['# file_md5 against md5sum', '',
             f'File: {size_mb:.0f} MB of random bytes, read from the page cache; {args.repeats} alternating repeats, median.', '',
             '| tool | median seconds | MB/s |', '| --- | --- | --- |']
    for name in ('file_md5', 'md5sum'):
        lines.append(f'| {name} | {median[name]:.3f} | {size_mb / median[name]:.0f} |')
    lines += ['', f'Throughput ratio file_md5 / md5sum: **{ratio:.2f}x** (goal: at least 0.9x)', '']
    text = '\n'.join(lines)
    print(text)
    atomic_write_text(args.out, text)


if __name__ == '__main__':
    main()
