"""Readiness tells the truth: a ``promptd serve`` whose appends fail (its disk is full) is
not ready, and becomes ready again by itself once they can succeed."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.contract.ids import uuid7
from tests.support import start_process

PROMPT = "disk/prompt"
DISK = "size=8m"  # room for the database and a few MiB of WAL, filled up by the test
MAX_BATCHES = 400  # a bound on the posting loop besides the disk
RECOVERY_S = 15.0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs to fill up (needs root: CI runs as root; otherwise skipped, saying so)."""
    if os.geteuid() != 0:
        pytest.skip("the full-disk case mounts a small tmpfs, which needs root (CI runs as root)")
    if shutil.which("mount") is None:
        pytest.skip("the full-disk case needs mount(8) to make a small tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", DISK, "tmpfs", str(disk)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path) -> Path:
    """Write a file until the disk is full; return it."""
    filler = disk / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(chunk)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def _batch() -> dict[str, object]:
    return {"events": [{"type": "execution", "event_id": uuid7(), "prompt": PROMPT,
                        "version": 1, "success": True, "input_text": "x" * 200}
                       for _ in range(200)]}


@pytest.mark.slow
def test_readyz_is_503_while_appends_fail_on_a_full_disk_and_recovers_by_itself(
    tmp_path: Path, small_disk: Path,
) -> None:
    proc = start_process(tmp_path, extra_env={
        "PROMPTD_DATABASE_URL": f"sqlite:///{small_disk / 'promptd.db'}"})
    try:
        admin = httpx.Client(base_url=proc.url, timeout=30,
                             headers={"Authorization": f"Bearer {proc.admin_token}"})
        admin.post("/v1/prompts", json={"name": PROMPT, "template": "Hi {{ x }}"}
                   ).raise_for_status()
        assert httpx.get(f"{proc.url}/readyz", timeout=10).status_code == 200
        filler = _fill(small_disk)
        failed = None
        for _ in range(MAX_BATCHES):
            r = admin.post("/v1/events", json=_batch())
            if r.status_code != 200:
                failed = r
                break
        assert failed is not None, "the disk never filled up"
        assert failed.status_code == 503 and failed.json()["error"]["code"] == "log_unavailable"
        ready = httpx.get(f"{proc.url}/readyz", timeout=10)
        assert ready.status_code == 503, ready.text
        assert "appends are failing" in ready.json()["error"]["message"]
        time.sleep(2.5)  # the writer's probes meanwhile fail too: still not ready
        assert httpx.get(f"{proc.url}/readyz", timeout=10).status_code == 503
        filler.unlink()
        # No traffic comes back to a daemon that is not ready: it must notice by itself.
        deadline = time.monotonic() + RECOVERY_S
        while (ready := httpx.get(f"{proc.url}/readyz", timeout=10)).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.25)
        assert admin.post("/v1/events", json=_batch()).status_code == 200
        admin.close()
    finally:
        proc.terminate()
