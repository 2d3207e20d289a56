"""The ordered forests' row blocks run on a thread pool kept for the process (`models._block_pool`).

Threads do not survive `fork`: a child that reused its parent's pool would wait forever for a worker
that is not there. The scenario runs in a fresh interpreter, so that this test process never forks.
"""
import subprocess
import sys
import textwrap

SCENARIO = textwrap.dedent("""
    import os, signal, time
    import numpy as np
    from mlops_nb.models import OrderedForestRegressor
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 8)).astype(np.float32)
    forest = OrderedForestRegressor(n_estimators=20, n_jobs=2, random_state=0).fit(X, X[:, 0])
    expected = forest.predict(X)  # two blocks of 1,500 rows: the pool now has a thread
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # predicts with two blocks as well, then leaves without running any exit handler
        os.write(write, b'same' if np.array_equal(forest.predict(X), expected) else b'different')
        os._exit(0)
    os.close(write)
    deadline = time.monotonic() + 60
    while not os.waitpid(child, os.WNOHANG)[0]:
        if time.monotonic() > deadline:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
            break
        time.sleep(0.05)
    print('child:', os.read(read, 100).decode() or 'no answer (hung)')
""")


def test_a_forked_child_predicts_with_its_own_threads():
    done = subprocess.run([sys.executable, '-c', SCENARIO], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == 'child: same', done.stdout + done.stderr[-2000:]
