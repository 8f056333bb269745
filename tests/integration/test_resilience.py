"""A NATS server restart in the middle of 1,000 changes loses no event and duplicates none."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

SPEC = {"base": "python:3.12-slim", "python": {"version": "3.12", "requirements": ["pandas>=2.2"]}}

CHANGES = 1000


def test_nats_restart_mid_stream_keeps_every_event_once(running, course) -> None:
    ws, (_, teacher), _ = course
    url = f"{running.platform.url}/api/v1/workspaces/{ws}/environments"
    headers = teacher.http.headers
    accepted: list[int] = []
    retried = Counter()
    restarted = threading.Event()

    def change(i: int) -> None:
        body = {"name": f"c{i:04d}", "spec": SPEC}
        deadline = time.monotonic() + 120
        with httpx.Client(headers=headers, timeout=30) as http:
            while True:
                try:
                    r = http.post(url, json=body)
                except httpx.HTTPError:
                    r = None
                if r is not None and r.status_code == 201:
                    break
                if r is not None and r.status_code == 409 and retried[i]:
                    break  # an earlier attempt was applied but its answer was lost in the restart
                assert r is None or r.status_code == 503, (r.status_code, r.text)
                assert time.monotonic() < deadline, f"change {i} never went through"
                retried[i] += 1
                time.sleep(0.1)
        accepted.append(i)

    def restart_when_a_third_is_done() -> None:
        while len(accepted) < CHANGES // 3:
            time.sleep(0.01)
        running.platform.nats.restart()
        restarted.set()

    restarter = threading.Thread(target=restart_when_a_third_is_done)
    restarter.start()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(change, range(CHANGES)))
    restarter.join()
    assert restarted.is_set() and len(accepted) == CHANGES
    assert sum(1 for n in retried.values() if n) > 0, "the restart did not interrupt any request"

    envs = [e["name"] for e in teacher.get(f"/workspaces/{ws}/environments")["items"]]
    assert sorted(envs) == [f"c{i:04d}" for i in range(CHANGES)]

    # every created environment has exactly one environment.created entry in the activity log
    deadline = time.monotonic() + 60
    while True:
        entries, after = [], 0
        while True:
            page = teacher.get(f"/workspaces/{ws}/activity",
                               params={"type": "environment.created", "limit": 1000, "after": after})["items"]
            entries += page
            if len(page) < 1000:
                break
            after = page[-1]["seq"]
        if len(entries) >= CHANGES or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    subjects = Counter(e["subject"] for e in entries)
    assert len(entries) == CHANGES, f"{len(entries)} environment.created entries for {CHANGES} changes"
    assert max(subjects.values()) == 1, [s for s, n in subjects.items() if n > 1][:5]
    assert len({e["event_id"] for e in entries}) == CHANGES
    seqs = [e["seq"] for e in teacher.get(f"/workspaces/{ws}/activity", params={"limit": 1000})["items"]]
    assert seqs == list(range(1, len(seqs) + 1)), "the chain has gaps"
