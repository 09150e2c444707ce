"""A small harness around Debian's headless chromium for the report's and the
MLflow UI's browser checks (a helper module, not a test file).

* ``load_page``: one chromium run that dumps the DOM after scripts ran, takes
  a screenshot and writes a net log (``--log-net-log``); ``page_requests`` reads
  the URLs the *page* asked for from it.  A page's requests carry a document
  initiator (``null`` for a file: page); chromium's own background requests
  (network time, account checks) carry ``"not an origin"`` and are left out.
  file: and data: loads never reach the network stack, so a self-contained
  page has no page requests at all.
* ``external_refs``: the static side: every src/href/srcset/url()/@import of
  an HTML text that points outside the file.
* ``mlflow_server`` + ``ui_nesting``: start ``mlflow server`` on a free
  127.0.0.1 port and ask its runs table whether a parent run is listed with
  its children nested under it (see ``ui_nesting`` for how).

Chromium runs as root here, hence ``--no-sandbox``; the background-networking
flags matter on a closed network, which otherwise refuses many connections.
"""
from __future__ import annotations

import fcntl
import html.parser
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from tests.helpers import free_port

INSTALL_HINT = ("chromium is not installed; install it with `apt-get update && apt-get install -y chromium` "
                "(Debian; .ci/run does this when it is missing)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def chromium() -> Optional[str]:
    """Path of the chromium binary, or None when it is not installed."""
    return shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


@dataclass
class PageLoad:
    """What one headless load of a page produced.

    Args:
        dom: the serialised DOM after the page's scripts ran (``--dump-dom``).
        screenshot: the PNG path, or None when none was asked for.
        requests: URLs the page itself requested from the network (net log).
        browser_requests: chromium's own background requests (not the page's).
    """

    dom: str
    screenshot: Optional[Path]
    requests: List[str]
    browser_requests: List[str]


def load_page(path: os.PathLike, *, screenshot: Optional[os.PathLike] = None, window_size=(1400, 3000),
              timeout: float = 60) -> PageLoad:
    """Open a local HTML file once: DOM, optional screenshot and net log."""
    exe = chromium()
    if exe is None:
        raise RuntimeError(INSTALL_HINT)
    with tempfile.TemporaryDirectory(prefix="chr") as d:
        net = Path(d) / "net.json"
        args = [exe, *FLAGS, f"--user-data-dir={d}/profile", f"--window-size={window_size[0]},{window_size[1]}",
                f"--log-net-log={net}", "--dump-dom"]
        if screenshot is not None:
            args.append(f"--screenshot={Path(screenshot).resolve()}")
        out = subprocess.run(args + [Path(path).resolve().as_uri()], capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0 or not out.stdout.strip():
            raise RuntimeError(f"chromium failed ({out.returncode}): {out.stderr[-2000:]}")
        page, browser = page_requests(net)
    return PageLoad(out.stdout, Path(screenshot) if screenshot is not None else None, page, browser)


def page_requests(net_log: os.PathLike) -> Tuple[List[str], List[str]]:
    """(page's URLs, chromium's own URLs) of every URL_REQUEST_START_JOB in a
    net log; the page's are those with a document initiator."""
    d = json.loads(Path(net_log).read_text() or "{}")
    if not d:
        raise RuntimeError(f"empty net log {net_log}: chromium did not write it")
    start = d["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    page, browser = [], []
    for e in d.get("events", []):
        p = e.get("params") or {}
        if e["type"] == start and "url" in p:
            (browser if p.get("initiator") == "not an origin" else page).append(p["url"])
    return page, browser


@dataclass
class Ref:
    """One reference of an HTML text to a resource: tag, attribute (or "css"), URL."""

    tag: str
    attr: str
    url: str


_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""", re.I)


class _Refs(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: List[Ref] = []
        self._tag = ""

    def handle_starttag(self, tag, attrs):
        self._tag = tag
        for k, v in attrs:
            if v is None:
                continue
            if k in ("src", "href", "poster", "data", "action", "formaction", "background", "xlink:href"):
                self.refs.append(Ref(tag, k, v.strip()))
            elif k == "srcset":
                self.refs += [Ref(tag, k, part.split()[0]) for part in v.split(",") if part.strip()]
            elif k == "style":
                self.refs += [Ref(tag, "css", a or b) for a, b in _CSS_URL.findall(v)]

    def handle_data(self, data):
        if self._tag == "style":
            self.refs += [Ref("style", "css", a or b) for a, b in _CSS_URL.findall(data)]


def external_refs(text: str) -> List[Ref]:
    """Every reference in ``text`` to something outside the file: any URL or
    relative path except data: URIs, in-page ``#`` anchors and mailto:."""
    p = _Refs()
    p.feed(text)
    return [r for r in p.refs if not r.url.lower().startswith(("data:", "#", "mailto:"))]


@dataclass
class Table:
    """An HTML table: its class list, header cells and body rows, each cell as (attributes, text)."""

    classes: List[str]
    header: List[Tuple[Dict[str, str], str]] = field(default_factory=list)
    rows: List[List[Tuple[Dict[str, str], str]]] = field(default_factory=list)
    row_attrs: List[Dict[str, str]] = field(default_factory=list)


class _Tables(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables: List[Table] = []
        self._stack: List[Table] = []
        self._cell: Optional[Tuple[Dict[str, str], List[str]]] = None
        self._in_head = False

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "table":
            self._stack.append(Table(a.get("class", "").split()))
        elif not self._stack:
            return
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr" and not self._in_head:
            self._stack[-1].rows.append([])
            self._stack[-1].row_attrs.append(a)
        elif tag in ("td", "th"):
            self._cell = (a, [])

    def handle_endtag(self, tag):
        if tag == "table" and self._stack:
            self.tables.append(self._stack.pop())
        elif tag == "thead":
            self._in_head = False
        elif tag in ("td", "th") and self._cell is not None and self._stack:
            cell = (self._cell[0], " ".join("".join(self._cell[1]).split()))
            t = self._stack[-1]
            (t.header if self._in_head else t.rows[-1]).append(cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1].append(data)


def parse_tables(text: str) -> List[Table]:
    """Every <table> of an HTML text (thead cells → header, other rows → rows)."""
    p = _Tables()
    p.feed(text)
    return p.tables


@contextmanager
def mlflow_server(uri: str, *, timeout: float = 90) -> Iterator[str]:
    """``mlflow server`` on a free 127.0.0.1 port against ``uri`` (job execution
    off: 2 processes instead of ~10); yields its base URL once /health answers
    (~10–15 s) and stops its whole process group afterwards."""
    port = free_port()
    work = tempfile.mkdtemp(prefix="mlflow-ui-")          # its ./mlartifacts default lands here
    log = open(Path(work) / "server.log", "w+")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host",
                             "127.0.0.1", "--port", str(port)], cwd=work, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"mlflow server did not answer on {base}: {log.read()[-3000:]}")
            time.sleep(0.5)
        yield base
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)       # the group this call started (server + its workers)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(work, ignore_errors=True)


class DevTools:
    """Chrome DevTools Protocol over ``--remote-debugging-pipe`` (fds 3 and 4,
    NUL-separated JSON): enough to evaluate JavaScript in the page, without a
    websocket library.  Use as a context manager."""

    def __init__(self, url: str, window_size=(1600, 1200)):
        exe = chromium()
        if exe is None:
            raise RuntimeError(INSTALL_HINT)
        self._dir = tempfile.mkdtemp(prefix="cdp")
        to_chr, from_chr = os.pipe(), os.pipe()
        # chromium wants the pipe on fds 3 (commands in) and 4 (replies out); bash (dash
        # takes single-digit fds only) moves the ends there from fds >= 10, clobbering nothing
        r, w = fcntl.fcntl(to_chr[0], fcntl.F_DUPFD, 10), fcntl.fcntl(from_chr[1], fcntl.F_DUPFD, 10)
        self.proc = subprocess.Popen(
            [shutil.which("bash") or "/bin/bash", "-c", f'exec "$0" "$@" 3<&{r} 4>&{w} {r}<&- {w}>&-', exe, *FLAGS,
             f"--user-data-dir={self._dir}", f"--window-size={window_size[0]},{window_size[1]}",
             "--remote-debugging-pipe", url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(r, w))
        for fd in (*to_chr[:1], from_chr[1], r, w):
            os.close(fd)
        self._w, self._r, self._buf, self._id = to_chr[1], from_chr[0], b"", 0
        page = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self._session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        # the first target may still be about:blank: wait until the URL asked for has loaded
        if not self.wait_for("location.href !== 'about:blank' && document.readyState === 'complete'", timeout=30):
            self.close()
            raise TimeoutError(f"chromium did not load {url} within 30 s")

    def call(self, method: str, timeout: float = 30, session: Optional[str] = None, **params):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply["result"]
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError(f"no DevTools reply to {method} within {timeout} s")
            chunk = os.read(self._r, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk

    def eval(self, expression: str, timeout: float = 30):
        """The JSON value of ``expression`` in the page (promises awaited)."""
        r = self.call("Runtime.evaluate", timeout, session=self._session, expression=expression,
                      returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"page script failed: {r['exceptionDetails'].get('text')}")
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 45, every: float = 0.25):
        """Poll ``expression`` until it is truthy; returns its value or None on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                v = self.eval(expression)
            except RuntimeError:        # the context went away mid-navigation: ask again
                v = None
            if v:
                return v
            time.sleep(every)
        return None

    def close(self):
        for fd in (self._w, self._r):
            os.close(fd)
        try:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass
class UiNesting:
    """What the MLflow runs table showed.

    Args:
        parent_listed: the parent run has a row.
        expander: the parent row had an expand button (MLflow draws it only for runs with children).
        children: run ids indented one step deeper than the parent, right after it, in row order.
        rows: every (run id, indent in px of its Run Name cell) after expanding, in row order.
    """

    parent_listed: bool
    expander: bool
    children: List[str]
    rows: List[Tuple[str, float]]

    def nests(self, child_ids: Sequence[str]) -> bool:
        """True when the parent is listed and exactly ``child_ids`` are nested under it."""
        return self.parent_listed and bool(child_ids) and sorted(self.children) == sorted(child_ids)


# Per row: [run id, indent of the Run Name cell's leading spacer (px), row index].  The
# css-* class names are generated, so the spacer is found by its inline width.
_ROWS_JS = """(() => { const seen = new Map();
  document.querySelectorAll('.ag-row[row-id]').forEach(r => {
    const sp = r.querySelector('[col-id*="Run Name"] .ag-cell-value div[style*="width"]');
    if (!sp && seen.has(r.getAttribute('row-id'))) return;
    seen.set(r.getAttribute('row-id'), [r.getAttribute('row-id'), sp ? parseFloat(sp.style.width) : -1,
                                        +r.getAttribute('row-index')]); });
  return Array.from(seen.values()).sort((a, b) => a[2] - b[2]); })()"""


def ui_nesting(base_url: str, experiment_id: str, parent_run_id: str, *, timeout: float = 60) -> UiNesting:
    """Whether MLflow's UI lists ``parent_run_id`` with child runs nested under it.

    How (MLflow 3.17's runs table at ``#/experiments/ID/runs``, an ag-grid with
    the Run Name column pinned left): a parent's row is collapsed at first and
    its Run Name cell holds an expand ("+") button, rendered only for runs that
    have children; the children are not in the DOM until it is clicked.  Nesting
    is not an ag-grid tree (every row is ``ag-row-level-0``): MLflow indents the
    Run Name cell with a leading spacer, 24 px per level (a parent 24 px, its
    children 48 px), and lists the children directly after the parent in
    ``row-index`` order; ``row-id`` is the run id.  So this opens the page in
    headless chromium driven over the DevTools pipe, waits for the parent's row,
    clicks its expander when there is one and reads every row's id and indent.
    In a flat store no row has an expander and all indents are equal: no nesting.
    """
    url = f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs"
    sel = f'.ag-row[row-id="{parent_run_id}"]'
    with DevTools(url) as page:
        if not page.wait_for(f"!!document.querySelector('{sel}')", timeout=timeout):
            return UiNesting(False, False, [], [(r[0], r[1]) for r in page.eval(_ROWS_JS) or []])
        button = f"document.querySelector('{sel} [col-id*=\"Run Name\"] button')"
        expander = bool(page.eval(f"!!{button}"))
        if expander:
            before = len(page.eval(_ROWS_JS))
            page.eval(f"{button}.click(), true")
            page.wait_for(f"{_ROWS_JS}.length > {before}", timeout=15)
            time.sleep(0.5)                            # let a page of children finish rendering
        rows = [(r[0], float(r[1])) for r in page.eval(_ROWS_JS)]
    i = [r for r, _ in rows].index(parent_run_id)
    deeper = []
    for rid, indent in rows[i + 1:]:
        if indent <= rows[i][1]:
            break
        deeper.append((rid, indent))
    step = min((ind for _, ind in deeper), default=None)
    return UiNesting(True, expander, [rid for rid, ind in deeper if ind == step], rows)
