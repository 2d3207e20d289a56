"""TorchMLPClassifier.fit throughput against a minimal hand-written PyTorch loop and sklearn's MLPClassifier.

Run: .venv/bin/python bench/bench_neural.py [--rows 100000] [--epochs 2] [--repeats 3] [--threads 1]

All three train the same architecture (30 -> 128 -> 64 -> 1 or 2 outputs, ReLU), batch size 256,
Adam(W) at learning rate 1e-3, weight decay / alpha 1e-4, for the same number of epochs with no early
stopping, on a synthetic make_classification table (float32). The hand-written loop is what one
would type from the PyTorch tutorial: tensors from numpy, `torch.randperm` per epoch, index batches,
the same `nn.Sequential` with dropout, `BCEWithLogitsLoss`, `AdamW`. The estimator's time includes
everything `fit` does (input validation, label encoding, tensor building, seeding, history).
sklearn's MLPClassifier has no dropout and uses Adam with an L2 penalty (alpha); it is reported for
scale, not as an identical computation. Fits alternate within each repeat (the order rotates) and
the median per method is compared. Throughput = rows x epochs / seconds.
Writes bench/results/neural.md.
"""
import argparse, os, platform, statistics, time, warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from torch import nn

from mlops_nb.core import atomic_write_text
from mlops_nb.neural import TorchMLPClassifier

HIDDEN, BATCH, LR, WD, DROPOUT = (128, 64), 256, 1e-3, 1e-4, 0.1


def hand_written_fit(X, y, epochs, seed=0):
    "A minimal PyTorch training loop with the estimator's architecture and settings."
    torch.manual_seed(seed)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y.astype(np.float32))[:, None]
    model = nn.Sequential(nn.Linear(X.shape[1], HIDDEN[0]), nn.ReLU(), nn.Dropout(DROPOUT),
                          nn.Linear(HIDDEN[0], HIDDEN[1]), nn.ReLU(), nn.Dropout(DROPOUT),
                          nn.Linear(HIDDEN[1], 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD)
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(X_t))
        for start in range(0, len(X_t), BATCH):
            idx = order[start:start + BATCH]
            optimizer.zero_grad()
            loss = loss_fn(model(X_t[idx]), y_t[idx])
            loss.backward()
            optimizer.step()
    return model


def estimator_fit(X, y, epochs):
    return TorchMLPClassifier(hidden_layer_sizes=HIDDEN, dropout=DROPOUT, learning_rate=LR, weight_decay=WD,
                              batch_size=BATCH, max_epochs=epochs, early_stopping=False, random_state=0).fit(X, y)


def sklearn_fit(X, y, epochs):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', ConvergenceWarning)  # max_iter=epochs is reached on purpose
        return MLPClassifier(hidden_layer_sizes=HIDDEN, solver='adam', learning_rate_init=LR, alpha=WD,
                             batch_size=BATCH, max_iter=epochs, early_stopping=False, n_iter_no_change=10**6,
                             tol=0.0, shuffle=True, random_state=0).fit(X, y)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--rows', type=int, default=100_000)
    parser.add_argument('--features', type=int, default=30)
    parser.add_argument('--epochs', type=int, default=5)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=1, help='torch threads (1: the shared 2-core machine; 0: leave as is)')
    parser.add_argument('--skip-sklearn', action='store_true')
    parser.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'neural.md'))
    args = parser.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    X, y = make_classification(n_samples=args.rows, n_features=args.features, n_informative=15, random_state=0)
    X = X.astype(np.float32)
    methods = {'TorchMLPClassifier.fit': lambda: estimator_fit(X, y, args.epochs),
               'hand-written PyTorch loop': lambda: hand_written_fit(X, y, args.epochs)}
    if not args.skip_sklearn: methods['sklearn MLPClassifier.fit'] = lambda: sklearn_fit(X, y, args.epochs)
    estimator_fit(X[:2000], y[:2000], 1); hand_written_fit(X[:2000], y[:2000], 1)  # warm up (allocator, kernels)
    times = {name: [] for name in methods}
    names = list(methods)
    for repeat in range(args.repeats):
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:  # rotate who goes first
            start = time.perf_counter(); methods[name](); times[name].append(time.perf_counter() - start)
            print(f'repeat {repeat}: {name} {times[name][-1]:.2f} s', flush=True)
    load = os.getloadavg()[0]  # the machine may be shared: say how busy it was
    median = {name: statistics.median(t) for name, t in times.items()}
    samples = args.rows * args.epochs
    ours = median['TorchMLPClassifier.fit']
    lines = ['# TorchMLPClassifier.fit throughput', '',
             f'Table: make_classification {args.rows:,} rows x {args.features} features (float32); '
             f'hidden layers {HIDDEN}, batch {BATCH}, {args.epochs} epochs, no early stopping; '
             f'{args.repeats} alternating repeats, median.', '',
             f'Machine: {platform.processor() or platform.machine()}, torch {torch.__version__} '
             f'({torch.get_num_threads()} thread(s)), scikit-learn {sklearn.__version__}, numpy {np.__version__}; '
             f'load average at the end {load:.1f} on {os.cpu_count()} CPUs.', '',
             '| method | median seconds | samples / second | all runs (s) |', '| --- | --- | --- | --- |']
    for name in methods:
        runs = ', '.join(f'{t:.2f}' for t in times[name])
        lines.append(f'| {name} | {median[name]:.3f} | {samples / median[name]:,.0f} | {runs} |')
    lines += ['', f'Throughput ratio TorchMLPClassifier.fit / hand-written loop: '
              f'**{median["hand-written PyTorch loop"] / ours:.2f}x** (goal: at least 0.9x)']
    if 'sklearn MLPClassifier.fit' in median:
        lines.append(f'Throughput ratio TorchMLPClassifier.fit / sklearn MLPClassifier.fit: '
                     f'**{median["sklearn MLPClassifier.fit"] / ours:.2f}x** (sklearn: no dropout, Adam + L2)')
    lines.append('')
    text = '\n'.join(lines)
    print(text)
    atomic_write_text(args.out, text)


if __name__ == '__main__':
    main()
