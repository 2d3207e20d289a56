"""JupyterLab as a user meets it, in a real browser (issue 9).

One JupyterLab server on 127.0.0.1 (random free port, a token, its own settings, workspace, runtime
and checkpoint folders in a temporary directory; root dir = the project) and Debian's Chromium driven
by Playwright. For every notebook in `nbs/` (chapters, then `pipelines/train.ipynb`, then
`pipelines/monitor.ipynb`), one after another: open it, Run > Run All Cells, wait until the kernel is
idle, read every output, shut the kernel down. A notebook fails on an error output, a text output
`<Figure size ...>` (a figure nobody displayed), or stderr not in `ALLOWED_STDERR`. Then:

- Run All on `pipelines/train.ipynb` created a run in the project's root `runs/` (not under `nbs/`);
- no notebook wrote anything under `nbs/` (files listed with size and mtime before and after);
- a run's `report.html` shows its plots as images (<img> with data: URIs that decode to PNG);
- `/docs` of `mlops-nb serve` renders the POST /predict operation, and its request example names the
  model's real input columns.

The browser is offline: Chromium resolves no host name (`--host-resolver-rules`), so a page that loads
its scripts from a CDN breaks here exactly as it does on a machine without internet.

Needs `/usr/bin/chromium` (`apt-get install chromium`; `scripts/setup.sh` installs it when it can) and
the `playwright` package (dev extra); no browser download. Skipped, with the reason, when either is
missing, unless MLOPS_NB_REQUIRE_BROWSER=1 (set by `.ci/run`), which turns the skip into a failure.
Per-notebook timings are printed at the end of the module. Screenshots of notebooks with problems go
to a temporary folder named in the failure message.
"""
import base64
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mlops_nb.prometheus import free_port

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-proxy-server",
                 # offline: every host name fails to resolve; the servers here are reached by IP
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"]
CHAPTERS = sorted((ROOT/"nbs").glob("*.ipynb"))
PIPELINES = [ROOT/"nbs"/"pipelines"/"train.ipynb", ROOT/"nbs"/"pipelines"/"monitor.ipynb"]
PIPELINES += sorted(set((ROOT/"nbs"/"pipelines").glob("*.ipynb")) - set(PIPELINES))
NOTEBOOKS = [str(p.relative_to(ROOT)) for p in CHAPTERS + PIPELINES if p.is_file()]
TRAIN = "nbs/pipelines/train.ipynb"
RUN_ALL_TIMEOUT_S = 900  # one notebook; the slowest (04b_models) takes about two minutes on two cores

# stderr a notebook may show. Each entry: a regular expression that a whole line of a stderr output
# must match, and why it is acceptable; every line of the output must match one. Keep this tiny: red
# text is something users see and read as a problem.
ALLOWED_STDERR: list[tuple[str, str]] = [
    (r"[^|\n]*: *100%\|█+\| (\d+)/\1 \[[^\]\n]*\]",
     "a finished tqdm progress bar: tqdm draws on stderr by design, and the package uses its plain text "
     "bar so that it works without ipywidgets (02a_fraud's make_fraud: days 183/183)"),
]


def browser_missing() -> str | None:
    "Why the browser test cannot run here, or None."
    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401  (the dev extra installs it)
    except ImportError:
        missing.append("the playwright package is missing (pip install -e '.[dev]')")
    return "; ".join(missing) or None


@pytest.fixture(scope="module")
def browser():
    reason = browser_missing()
    if reason:
        if os.environ.get("MLOPS_NB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"MLOPS_NB_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
        pytest.skip(f"browser test skipped: {reason}")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def wait_for_http(url: str, headers: dict, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    "Poll `url` until it answers 200; fail with the server's log if it exits or never answers."
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode} before answering {url}:\n{tail(log)}", pytrace=False)
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(f"no answer from {url} within {timeout} s:\n{tail(log)}", pytrace=False)


def tail(path: Path, n: int = 40) -> str:
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(lines[-n:])


def stop(proc: subprocess.Popen) -> None:
    "Stop a server started by this module (its own process group), politely first."
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    "Every file under `folder` (checkpoint folders left out) with its size and mtime."
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d != ".ipynb_checkpoints"]
        for name in filenames:
            p = Path(dirpath)/name
            st = p.stat()
            out[str(p.relative_to(ROOT))] = (st.st_size, st.st_mtime_ns)
    return out


def run_dirs() -> set[Path]:
    runs = ROOT/"runs"
    return {p for p in runs.iterdir() if p.is_dir()} if runs.is_dir() else set()


SETTINGS = {  # JupyterLab user settings for the test server (its own settings folder)
    # never write a notebook back: the test runs the sources in nbs/ and must leave them untouched
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    # no "would you like to receive news" toast over the outputs, no update check
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                       "checkForUpdates": False},
    # render every cell, so that every output is in the page to be read
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}

STATE_JS = r"""() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return null;
  const ind = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  const status = [...document.querySelectorAll('.jp-StatusBar-TextItem')].map(e => e.textContent).join(' | ');
  const st = {cells: 0, code: 0, busy: 0, ran: 0, unrun: [], status,
              indicator: ind ? (ind.getAttribute('data-status') || ind.textContent) : null,
              errors: [], stderr: [], figures_as_text: [], images: 0};
  panel.querySelectorAll('.jp-Cell').forEach((c, i) => {
    st.cells++;
    if (!c.classList.contains('jp-CodeCell')) return;
    st.code++;
    const p = c.querySelector('.jp-InputPrompt');
    const prompt = p ? p.textContent.trim() : '';
    if (prompt.includes('*')) st.busy++;
    else if (/\[\d+\]/.test(prompt)) st.ran++;
    else st.unrun.push(i);
    c.querySelectorAll('.jp-OutputArea-output').forEach(o => {
      const mime = o.getAttribute('data-mime-type') || '';
      const text = o.textContent || '';
      const item = {cell: i, prompt, mime, text: text.slice(0, 2000)};
      if (mime === 'application/vnd.jupyter.error' || /Traceback \(most recent call last\)/.test(text))
        st.errors.push(item);
      else if (mime === 'application/vnd.jupyter.stderr') st.stderr.push(item);
      if (/^<Figure size/.test(text.trim())) st.figures_as_text.push(item);
      st.images += o.querySelectorAll('img').length;
    });
  });
  return st;
}"""


class Lab:
    "A JupyterLab server for this module, and the results of Run All on each notebook (run once each)."

    def __init__(self, browser, workdir: Path):
        self.browser, self.workdir = browser, workdir
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.results: dict[str, dict] = {}
        self.shots = workdir/"screenshots"
        self.shots.mkdir()
        settings = workdir/"lab-settings"
        for name, value in SETTINGS.items():
            (settings/name).parent.mkdir(parents=True, exist_ok=True)
            (settings/name).write_text(json.dumps(value))
        env = {**os.environ,
               "JUPYTERLAB_SETTINGS_DIR": str(settings),
               "JUPYTERLAB_WORKSPACES_DIR": str(workdir/"workspaces"),
               "JUPYTER_RUNTIME_DIR": str(workdir/"runtime"),
               # no user-level config or kernelspec shadows the project's venv kernel `python3`
               "JUPYTER_CONFIG_DIR": str(workdir/"config"),
               "JUPYTER_DATA_DIR": str(workdir/"data"),
               "PYTHONUNBUFFERED": "1"}
        self.log = workdir/"jupyterlab.log"
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
               "--port-retries=0", f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={ROOT}",
               "--allow-root", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               # checkpoints (written when a notebook opens) go to the temporary folder, not nbs/
               f"--FileCheckpoints.checkpoint_dir={workdir/'checkpoints'}"]
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        wait_for_http(f"{self.base}/api/status", self.headers, self.proc, self.log)

    @property
    def headers(self) -> dict:
        return {"Authorization": f"token {self.token}"}

    def api(self, path: str, method: str = "GET"):
        req = urllib.request.Request(f"{self.base}{path}", method=method, headers=self.headers)
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shut_down_kernel(self, nb: str) -> bool:
        "Kernel > Shut Down for this notebook: delete its session (and kernel) on the server."
        for s in self.api("/api/sessions"):
            if s.get("path") == nb:
                self.api(f"/api/sessions/{s['id']}", method="DELETE")
                return True
        return False

    def close(self) -> None:
        stop(self.proc)

    def run_all(self, nb: str) -> dict:
        "Open `nb`, Run > Run All Cells, wait for idle; return what its outputs show (cached)."
        if nb not in self.results:
            before = run_dirs()
            self.results[nb] = self._run_all(nb)
            self.results[nb]["new_runs"] = sorted(run_dirs() - before)
        return self.results[nb]

    def _run_all(self, nb: str) -> dict:
        page = self.browser.new_page(viewport={"width": 1400, "height": 1000})
        dialogs = []
        try:
            t0 = time.time()
            # ?reset: a fresh workspace, so that only this notebook opens
            page.goto(f"{self.base}/lab/tree/{nb}?reset&token={self.token}", wait_until="domcontentloaded")
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
            self._wait(page, lambda st: st["cells"] > 0 and "Idle" in st["status"]
                       and "No Kernel" not in st["status"], 120, dialogs, "kernel to start")
            opened = time.time() - t0
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
            t1 = time.time()
            # at least one cell ran, nothing queued or running, and the kernel idle for 3 s in a row
            # (or dead: reported below)
            timed_out = not self._wait(page, lambda st: "Dead" in st["status"] or (
                                           st["ran"] > 0 and st["busy"] == 0
                                           and "idle" in str(st["indicator"]).lower()),
                                       RUN_ALL_TIMEOUT_S, dialogs, "Run All Cells", stable_s=3)
            run_s = time.time() - t1 - (0 if timed_out else 3)
            st = page.evaluate(STATE_JS)
            st.update(notebook=nb, open_s=round(opened, 1), run_s=round(run_s, 1), timed_out=timed_out,
                      dialogs=dialogs)
            st["stderr_not_allowed"] = [o for o in st["stderr"] if not allowed_stderr(o["text"])]
            if problems(st):
                shot = self.shots/(nb.replace("/", "__") + ".png")
                first = (st["errors"] or st["stderr_not_allowed"] or st["figures_as_text"] or [None])[0]
                if first is not None:
                    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").nth(
                        first["cell"]).scroll_into_view_if_needed()
                page.screenshot(path=str(shot))
                st["screenshot"] = str(shot)
            return st
        finally:
            try:
                self.shut_down_kernel(nb)
            finally:
                page.close()

    @staticmethod
    def _wait(page, done, timeout: float, dialogs: list, what: str, stable_s: float = 0) -> bool:
        "Poll the notebook until `done(state)` holds for `stable_s` seconds; accept dialogs on the way."
        t0, since = time.time(), None
        while time.time() - t0 < timeout:
            dialog = page.locator(".jp-Dialog")
            if dialog.count() and dialog.first.is_visible():
                dialogs.append(dialog.first.inner_text()[:300])
                dialog.locator("button.jp-mod-accept").first.click()
            st = page.evaluate(STATE_JS)
            if st and done(st):
                since = since or time.time()
                if time.time() - since >= stable_s:
                    return True
            else:
                since = None
            page.wait_for_timeout(500)
        if stable_s == 0:
            pytest.fail(f"timed out after {timeout} s waiting for the {what}", pytrace=False)
        return False


def allowed_stderr(text: str) -> bool:
    "Whether every line of this stderr output is allowed by `ALLOWED_STDERR`."
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return all(any(re.fullmatch(pattern, line) for pattern, _ in ALLOWED_STDERR) for line in lines)


def problems(st: dict) -> list[str]:
    "What a user would see wrong in this notebook after Run All, one line each."
    out = []
    if st["timed_out"]:
        out.append(f"Run All did not finish within {RUN_ALL_TIMEOUT_S} s")
    if "Dead" in st["status"]:
        out.append(f"the kernel died (status bar: {st['status']!r})")
    for kind, label in (("errors", "error"), ("stderr_not_allowed", "stderr"),
                        ("figures_as_text", "figure shown as text")):
        for o in st[kind]:
            out.append(f"{label} in cell {o['cell']} {o['prompt']}: " + o["text"][:600].strip())
    if not st["errors"] and st["unrun"]:
        out.append(f"cells never ran: {st['unrun']}")
    if st["dialogs"]:
        out.append(f"dialogs appeared: {st['dialogs']}")
    return out


@pytest.fixture(scope="module")
def lab(browser, tmp_path_factory, terminal_summary):
    before_nbs, before_runs = listing(ROOT/"nbs"), run_dirs()
    before_dirs = {Path(d) for d, _, _ in os.walk(ROOT/"nbs")}
    lab = Lab(browser, tmp_path_factory.mktemp("jupyterlab"))
    lab.before_nbs = before_nbs
    yield lab
    lab.close()
    report_timings(terminal_summary, lab)
    # leave the project as it was: runs made here are test output, new files under nbs/ a failure
    # already reported (files that existed before are never touched)
    for run in run_dirs() - before_runs:
        shutil.rmtree(run, ignore_errors=True)
    for name in set(listing(ROOT/"nbs")) - set(before_nbs):
        (ROOT/name).unlink(missing_ok=True)
    for dirpath, _, _ in sorted(os.walk(ROOT/"nbs"), reverse=True):
        if Path(dirpath) not in before_dirs and not os.listdir(dirpath):
            os.rmdir(dirpath)


def report_timings(lines: list, lab: Lab) -> None:
    "Per-notebook timings for pytest's terminal summary."
    if not lab.results:
        return
    lines.append(("JupyterLab Run All Cells, one notebook after another (open = page load and kernel start)",))
    total = 0.0
    for nb, st in lab.results.items():
        total += st["open_s"] + st["run_s"]
        mark = "ok" if not problems(st) else f"{len(problems(st))} problem(s)"
        lines.append(f"{nb:30s} open {st['open_s']:5.1f} s  run all {st['run_s']:6.1f} s  "
                     f"{st['ran']:3d}/{st['code']:3d} cells  {st['images']:2d} images  {mark}")
    lines.append(f"{'total':30s} {total:.0f} s")


@pytest.mark.parametrize("nb", NOTEBOOKS)
def test_run_all_cells(lab, nb):
    st = lab.run_all(nb)
    found = problems(st)
    where = f"\n(screenshot: {st['screenshot']})" if st.get("screenshot") else ""
    assert not found, f"{nb} after Run All Cells:\n" + "\n".join(found) + where
    assert st["ran"] == st["code"] > 0


def test_train_writes_its_run_to_root_runs(lab):
    st = lab.run_all(TRAIN)
    assert not st["errors"], f"{TRAIN} failed; see test_run_all_cells[{TRAIN}]"
    assert st["new_runs"], (f"Run All on {TRAIN} created no run in {ROOT/'runs'} "
                            f"(files it wrote under nbs/: {new_files_under_nbs(lab)[:10]})")
    from mlops_nb.runs import read_manifest
    assert read_manifest(st["new_runs"][-1])["status"] == "complete"


def new_files_under_nbs(lab: Lab) -> list[str]:
    now = listing(ROOT/"nbs")
    return sorted(k for k in now if k not in lab.before_nbs) + sorted(
        f"{k} (changed)" for k in now if k in lab.before_nbs and now[k] != lab.before_nbs[k])


def test_nothing_written_under_nbs(lab):
    for nb in NOTEBOOKS:
        lab.run_all(nb)
    now = listing(ROOT/"nbs")
    removed = sorted(set(lab.before_nbs) - set(now))
    assert not new_files_under_nbs(lab) and not removed, (
        f"Run All wrote under nbs/: {new_files_under_nbs(lab)[:20]}; removed: {removed[:20]}")


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    "A run made by `mlops-nb run` (the path that writes report.html), in a temporary runs folder."
    runs = tmp_path_factory.mktemp("cli-runs")
    cmd = [str(Path(sys.executable).parent/"mlops-nb"), "run", "-p", "dataset", "maintenance",
           "-p", "models", "rf", "-p", "runs_dir", str(runs)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{' '.join(cmd)} exited {out.returncode}:\n{out.stderr[-3000:]}"
    return Path(out.stdout.strip().splitlines()[-1])


def test_report_html_shows_plots_as_images(browser, cli_run):
    report = cli_run/"report.html"
    assert report.is_file(), f"{cli_run} has no report.html"
    page = browser.new_page()
    try:
        page.goto(report.as_uri(), wait_until="load", timeout=60_000)
        srcs = page.eval_on_selector_all("img", "els => els.map(e => e.getAttribute('src') || '')")
        text = page.inner_text("body")
    finally:
        page.close()
    pngs = [s for s in srcs if s.startswith("data:image/png;base64,")]
    assert pngs, f"{report}: no <img> with a data:image/png URI ({len(srcs)} <img> in all)"
    for src in pngs:
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n", f"{report}: an <img> is not a PNG"
    assert "<Figure size" not in text, f"{report}: a figure is shown as text"


@pytest.fixture(scope="module")
def served(cli_run, tmp_path_factory):
    "`mlops-nb serve` on the CLI run's best model, on a free port; yields its base URL."
    port = free_port()
    log = tmp_path_factory.mktemp("serve")/"serve.log"
    cmd = [str(Path(sys.executable).parent/"mlops-nb"), "serve", str(cli_run), "--port", str(port)]
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/health", {}, proc, log)
        yield base
    finally:
        stop(proc)


def test_docs_render_predict_with_real_columns(browser, served):
    with urllib.request.urlopen(f"{served}/model", timeout=30) as r:
        columns = json.loads(r.read())["input_schema"]["columns"]
    assert columns
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    failed = []
    page.on("requestfailed", lambda req: failed.append(f"{req.url} ({req.failure})"))
    try:
        page.goto(f"{served}/docs", wait_until="load", timeout=60_000)
        predict = page.locator(".opblock.opblock-post", has=page.locator(".opblock-summary-path[data-path='/predict']"))
        try:
            predict.first.wait_for(timeout=30_000)
        except Exception:
            pytest.fail(f"{served}/docs did not render POST /predict offline; failed requests: {failed[:5]}; "
                        f"page text: {page.inner_text('body')[:300]!r}", pytrace=False)
        predict.first.locator(".opblock-summary").first.click()
        body = predict.first.locator(".opblock-section-request-body")
        body.wait_for(timeout=15_000)
        example = body.inner_text()
    finally:
        page.close()
    missing = [c for c in columns if f'"{c}"' not in example]
    assert not missing, (f"/docs request example lacks the model's columns {missing[:5]} "
                         f"(of {len(columns)}); it shows: {example[:400]!r}")
