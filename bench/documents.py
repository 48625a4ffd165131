"""Documents: a 50 MiB plan uploaded and downloaded through the daemon's HTTP API,
next to a plain file copy of the same bytes, and the daemon's peak RSS while it
takes the upload.

The file is a valid PDF of exactly N bytes (N = 52,428,800 = 50 MiB, the plan
kind's max_mb = 50 in the shipped config.toml, which takes a file of exactly
its limit; --small: 2 MiB): %PDF-1.4, a catalog, a page tree and one stream
object whose body is random (incompressible) bytes, an xref table, a trailer
and %%EOF. Each of the three runs uses its own file (new random bytes): the
store is content-addressed, and the same bytes sent again would not be
written again.

gongmo's side runs in a child process: `gongmo daemon`'s own Daemon (its
scheduler, its ticker, its mailer and its HTTP API on a socket bound as the
daemon binds it) on a throwaway database holding one draft application of
strong-small-2024, with the clock fixed inside the track's receipt window
(2024-05-28 10:00 KST; `gongmo daemon` itself refuses --now). An admin token
uploads with httpx, streaming the file from disk as multipart/form-data (field
`file`), then downloads the current plan with a streamed GET into a file.
Timed: the upload's request until its 201 answer is read, plus the download's
request until its last byte is written. Checked after the clock stops (not
timed): the 201's SHA-256 and size, the download's Content-Length, its ETag
and the downloaded file's SHA-256, all equal to the source file's.

The baseline, in the same run, on the same file: one write and one read-back
of the same bytes, the work an upload and a download have to do at least:
shutil.copyfileobj with a 1 MiB buffer from the source file to a copy, then
the copy read back into a second file (also 1 MiB at a time). No fsync on
either side.

Three rounds, each an upload + download then a baseline copy (alternating, so
a drift of the machine falls on both); each side's figure is its best of 3.

Memory: the daemon process's VmHWM (its peak RSS, /proc/<pid>/status), read
once it has served one warm-up request (the application's document list,
with the token: no upload yet) - idle - and again right after the first
upload's answer: the peak during the upload. VmHWM cannot be reset, so idle is
read in the same process before anything is uploaded. Target: peak <= 1.2 x
idle + 1 MiB (one chunk buffer), which shows the upload is streamed; the row's
ratio is peak / idle and its target 1.2 + 1 / idle.

    python -m bench.documents --serve --url URL --now ISO --maildir DIR   (the daemon child)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.db import Backend, Target
    from bench.report import Row

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
BUFFER = MIB  # the baseline's copy buffer, and the store's chunk
RUNS = 3
KIND = "plan"
RSS_FACTOR = 1.2  # peak <= RSS_FACTOR x idle + RSS_SLACK_MIB
RSS_SLACK_MIB = 1.0
SCENARIO = "documents: 50 MB upload + download vs file copy"
RSS_SCENARIO = "documents: daemon peak RSS uploading vs idle"
START_TIMEOUT_S = 60
REQUEST_TIMEOUT_S = 300


# -- the file ------------------------------------------------------------------------------


def write_pdf(path: Path, size: int, seed: int | None = None) -> str:
    """A valid PDF of exactly `size` bytes whose one stream holds random bytes; its SHA-256.
    Written 1 MiB at a time (never whole in memory)."""
    import random

    rng = random.Random(seed) if seed is not None else None
    header = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    objects = [
        b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n",
        b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n",
    ]
    stream_tail = b"\nendstream\nendobj\n"

    def layout(body: int) -> tuple[bytes, bytes]:
        """The bytes before the stream's body and after it, for a body of `body` bytes."""
        offsets, at = [], len(header)
        for o in objects:
            offsets.append(at)
            at += len(o)
        offsets.append(at)
        stream_head = b"3 0 obj\n<< /Length %d >>\nstream\n" % body
        xref_at = at + len(stream_head) + body + len(stream_tail)
        xref = b"xref\n0 4\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
        trailer = b"trailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref_at
        return header + b"".join(objects) + stream_head, stream_tail + xref + trailer

    body = size
    for _ in range(5):  # the digits of /Length and startxref settle in a step or two
        before, after = layout(body)
        body = size - len(before) - len(after)
    before, after = layout(body)
    if body < 0 or len(before) + body + len(after) != size:
        raise ValueError(f"cannot lay out a PDF of {size:,} bytes")
    digest = hashlib.sha256()
    with path.open("wb") as f:

        def put(data: bytes) -> None:
            digest.update(data)
            f.write(data)

        put(before)
        left = body
        while left:
            n = min(BUFFER, left)
            put(rng.randbytes(n) if rng is not None else os.urandom(n))
            left -= n
        put(after)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while piece := f.read(BUFFER):
            digest.update(piece)
    return digest.hexdigest()


# -- the baseline --------------------------------------------------------------------------


def file_copy(source: Path, copy: Path, back: Path) -> float:
    """Seconds to copy `source` to `copy` and read `copy` back into `back` (1 MiB buffers)."""
    started = time.perf_counter()
    with source.open("rb") as src, copy.open("wb") as dst:
        shutil.copyfileobj(src, dst, BUFFER)
    with copy.open("rb") as src, back.open("wb") as dst:
        shutil.copyfileobj(src, dst, BUFFER)
    seconds = time.perf_counter() - started
    copy.unlink()
    back.unlink()
    return seconds


# -- the daemon child ----------------------------------------------------------------------


def status_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (KiB) of a process, from /proc (Linux)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    if len(out) != 2:
        raise RuntimeError(f"no VmRSS/VmHWM in /proc/{pid}/status (Linux only)")
    return out


@dataclass
class Child:
    proc: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def rss(self) -> dict[str, int]:
        return status_kib(self.proc.pid)

    def stop(self) -> None:
        """Close its stdin (the child stops its daemon), then wait; kill it only if it hangs."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)


def start_child(url: str, now: str, workdir: Path) -> Child:
    log = workdir / "daemon.log"
    command = [sys.executable, "-m", "bench.documents", "--serve", "--url", url, "--now", now]
    command += ["--maildir", str(workdir / "maildir")]
    with log.open("wb") as err:
        proc = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # {"port": N} once the API listens, or EOF if the child failed
    if not line:
        proc.wait(timeout=30)
        raise RuntimeError(f"the daemon child exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
    port = int(json.loads(line)["port"])
    return Child(proc, f"http://127.0.0.1:{port}", log)


def serve(url: str, now: str, maildir: str) -> None:
    """The child: the daemon (ticker, mailer, HTTP API on a free port), until stdin closes."""
    import asyncio
    from datetime import datetime

    from gongmo.workflow.api import create_api
    from gongmo.workflow.core.clock import FixedClock
    from gongmo.workflow.core.config import Api, Mail
    from gongmo.workflow.runtime.daemon import Daemon
    from gongmo.workflow.runtime.wiring import open_app

    app = open_app(ROOT / "config.toml", FixedClock(datetime.fromisoformat(now)), database_url=url)
    config = app.loaded.config.model_copy(update={"mail": Mail(transport="maildir", maildir=maildir)})
    app.loaded = app.loaded.model_copy(update={"config": config})
    app.moves.loaded = app.loaded
    daemon = Daemon(app, worker="bench-documents", api=Api(host="127.0.0.1", port=0), api_app=create_api)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def watch_stdin() -> None:
            sys.stdin.buffer.read()  # returns at EOF: the parent is done
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=watch_stdin, name="bench-stdin", daemon=True).start()
        serving = asyncio.create_task(daemon.serve(stop))
        while daemon.api_server is None or not daemon.api_server.started:
            if serving.done():
                serving.result()
                raise RuntimeError("the daemon stopped before its API started")
            await asyncio.sleep(0.01)
        print(json.dumps({"port": daemon.api_server.port}), flush=True)
        await serving

    asyncio.run(main())
    app.db.dispose()


# -- gongmo's side ---------------------------------------------------------------------------


def upload(client: Any, auth: dict[str, str], app_id: int, source: Path) -> tuple[float, dict[str, Any]]:
    """Seconds to upload `source` (streamed from disk as multipart), and the 201's body."""
    started = time.perf_counter()
    with source.open("rb") as f:
        response = client.post(
            f"/applications/{app_id}/documents/{KIND}",
            headers=auth,
            files={"file": (source.name, f, "application/pdf")},
        )
    seconds = time.perf_counter() - started
    if response.status_code != 201:
        raise RuntimeError(f"upload of {source.name}: {response.status_code} {response.text[:2000]}")
    return seconds, dict(response.json())


def download(client: Any, auth: dict[str, str], app_id: int, out: Path) -> tuple[float, dict[str, str]]:
    """Seconds to download the current plan into `out` (streamed), and the answer's headers."""
    started = time.perf_counter()
    with client.stream("GET", f"/applications/{app_id}/documents/{KIND}", headers=auth) as got, out.open("wb") as dst:
        if got.status_code != 200:
            got.read()
            raise RuntimeError(f"download: {got.status_code} {got.text[:2000]}")
        for piece in got.iter_bytes(BUFFER):
            dst.write(piece)
        headers = dict(got.headers)
    return time.perf_counter() - started, headers


def check(answer: dict[str, Any], headers: dict[str, str], source: Path, sha: str, out: Path) -> None:
    """What came back is the source's bytes: the upload's answer, the download's headers and file."""
    size = source.stat().st_size
    got = {
        "upload sha256": answer.get("sha256"),
        "upload size": answer.get("size"),
        "upload file_type": answer.get("file_type"),
        "download Content-Length": headers.get("content-length"),
        "download ETag": headers.get("etag"),
        "downloaded file sha256": sha256_of(out),
        "downloaded file size": out.stat().st_size,
    }
    want = {
        "upload sha256": sha,
        "upload size": size,
        "upload file_type": "pdf",
        "download Content-Length": str(size),
        "download ETag": f'"{sha}"',
        "downloaded file sha256": sha,
        "downloaded file size": size,
    }
    wrong = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    if wrong:
        raise RuntimeError(f"{source.name}: what came back differs (got, expected): {wrong}")


def seed(target: Target) -> tuple[int, str, str]:
    """One draft application of the track and an admin token: (application id, token, 'now')."""
    from bench.db import SEED_AT, open_bench_app, seed_applications
    from gongmo.workflow.core import tokens

    app = open_bench_app(target)
    try:
        [app_id] = seed_applications(target, app, 1, "announcement")
        _, token = tokens.create(app, "admin", "bench", "bench")
    finally:
        app.db.dispose()
    return app_id, token, SEED_AT.isoformat()


@dataclass
class Measured:
    uploads: list[float] = field(default_factory=list)  # s
    downloads: list[float] = field(default_factory=list)  # s
    copies: list[float] = field(default_factory=list)  # s
    rss: dict[str, dict[str, int]] = field(default_factory=dict)  # KiB, by moment


def measure(target: Target, n: int, work: Path) -> Measured:
    import httpx

    app_id, token, now = seed(target)
    sources = [work / f"사업계획서-{i + 1}.pdf" for i in range(RUNS)]
    shas = [write_pdf(p, n) for p in sources]
    got = Measured()
    child = start_child(target.url, now, work)
    try:
        auth = {"Authorization": f"Bearer {token}"}
        got.rss["started"] = child.rss()
        with httpx.Client(base_url=child.base_url, timeout=REQUEST_TIMEOUT_S) as client:
            warm = client.get(f"/applications/{app_id}/documents", headers=auth)
            if warm.status_code != 200 or warm.json() != []:
                raise RuntimeError(f"warm-up: {warm.status_code} {warm.text[:500]}")
            got.rss["idle"] = child.rss()
            for i, source in enumerate(sources):
                seconds, answer = upload(client, auth, app_id, source)
                got.uploads.append(seconds)
                got.rss[f"after_upload_{i + 1}"] = child.rss()
                out = work / f"downloaded-{i + 1}.pdf"
                seconds, headers = download(client, auth, app_id, out)
                got.downloads.append(seconds)
                got.rss[f"after_download_{i + 1}"] = child.rss()
                check(answer, headers, source, shas[i], out)
                out.unlink()
                got.copies.append(file_copy(source, work / "copy.pdf", work / "copy-back.pdf"))
    finally:
        child.stop()
    if child.proc.returncode:
        raise RuntimeError(f"the daemon child exited {child.proc.returncode}:\n{child.log.read_text()[-3000:]}")
    return got


def run(backend: Backend, n: int = 50 * MIB) -> list[Row]:
    from bench.db import database

    with database(backend) as target, tempfile.TemporaryDirectory(prefix="gongmo-bench-documents-") as tmp:
        got = measure(target, n, Path(tmp))
    return rows(backend.kind, n, got)


def rows(db: str, n: int, got: Measured) -> list[Row]:
    from bench.report import Goal, row

    ms = [round(1000 * s, 1) for s in (*got.uploads, *got.downloads, *got.copies)]
    ups, downs, copies = ms[:RUNS], ms[RUNS : 2 * RUNS], ms[2 * RUNS :]
    totals = [round(u + d, 1) for u, d in zip(ups, downs, strict=True)]
    best, best_copy = min(totals), min(copies)
    mib = n / MIB
    idle_kib, peak_kib = got.rss["idle"]["VmHWM"], got.rss["after_upload_1"]["VmHWM"]
    idle, peak = idle_kib / 1024, peak_kib / 1024
    allowed = RSS_FACTOR * idle + RSS_SLACK_MIB
    return [
        row(
            SCENARIO,
            db,
            n,
            best,
            best_copy,
            "ms",
            Goal("<=", 3.0),
            note=(
                f"best of {RUNS} runs each; gongmo = POST /applications/{{id}}/documents/plan (multipart,"
                " streamed from disk) + GET of it into a file, over HTTP to the daemon, SHA-256 checked"
                " after the clock; baseline = shutil.copyfileobj (1 MiB buffer) of the same file to a copy"
                " + the copy read back into a second file"
            ),
            file_bytes=n,
            runs_ms={"upload": ups, "download": downs, "upload+download": totals, "copy+read-back": copies},
            best_upload_mib_s=round(mib / (min(ups) / 1000), 1),
            best_download_mib_s=round(mib / (min(downs) / 1000), 1),
        ),
        row(
            RSS_SCENARIO,
            db,
            n,
            peak,
            idle,
            "MiB",
            Goal("<=", round(RSS_FACTOR + RSS_SLACK_MIB / idle, 4), f"peak ≤ 1.2x idle + 1 MiB (≤ {allowed:.1f} MiB)"),
            note=(
                "the daemon process's VmHWM: baseline = after one warm-up request (idle), gongmo = right"
                " after the first upload's answer (its peak, VmHWM being a high-water mark)"
            ),
            allowed_mib=round(allowed, 1),
            rss_kib=got.rss,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", action="store_true", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--now", required=True)
    parser.add_argument("--maildir", required=True)
    args = parser.parse_args()
    serve(args.url, args.now, args.maildir)


if __name__ == "__main__":
    main()
