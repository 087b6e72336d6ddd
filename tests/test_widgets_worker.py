"""The widgets' worker thread: jobs in order, the latest job per key wins, failures reported."""

import logging
import threading

from conceptscope.widgets._worker import Worker


def collect():
    done = []
    return done, lambda result, exc: done.append((result, exc))


def test_jobs_run_in_order_and_finish_with_their_result():
    worker, (done, finish) = Worker(), collect()
    for i in range(3):
        worker.submit(("k", i), lambda i=i: i * 10, finish)
    assert worker.wait_idle(5)
    assert done == [(0, None), (10, None), (20, None)]


def test_superseded_jobs_are_skipped_or_dropped_and_other_keys_are_kept():
    worker, (done, finish) = Worker(), collect()
    started, release = threading.Event(), threading.Event()
    computed = []

    def slow():
        started.set()
        release.wait(5)
        computed.append("slow")
        return "stale"

    worker.submit("a", slow, finish)
    started.wait(5)  # "slow" is running now
    worker.submit("a", lambda: computed.append("queued") or "skipped", finish)
    worker.submit("b", lambda: "other key", finish)
    worker.submit("a", lambda: "latest", finish)
    release.set()
    assert worker.wait_idle(5)
    assert computed == ["slow"]  # the queued "a" job never ran
    assert done == [("other key", None), ("latest", None)]  # the running one's result was dropped


def test_exceptions_reach_finish_and_the_worker_keeps_going(caplog):
    worker, (done, finish) = Worker(), collect()
    worker.submit("a", lambda: 1 / 0, finish)
    assert worker.wait_idle(5)
    [(result, exc)] = done
    assert result is None and isinstance(exc, ZeroDivisionError)

    def broken_finish(result, exc):
        raise RuntimeError("cannot apply")

    with caplog.at_level(logging.ERROR, logger="conceptscope.widgets"):
        worker.submit("b", lambda: 1, broken_finish)
        worker.submit("c", lambda: 2, finish)
        assert worker.wait_idle(5)
    assert done[-1] == (2, None)
    assert "applying the result of job 'b' failed" in caplog.text


def test_wait_idle_times_out_while_a_job_runs():
    worker, release = Worker(), threading.Event()
    worker.submit("a", lambda: release.wait(5), lambda r, e: None)
    assert not worker.wait_idle(0.05)
    release.set()
    assert worker.wait_idle(5)


def test_delayed_jobs_let_later_immediate_jobs_go_first_and_can_be_superseded_while_waiting():
    worker, (done, finish) = Worker(), collect()
    computed = []
    worker.submit("tree", lambda: computed.append("old tree") or "old tree", finish, delay=0.2)
    worker.submit("heatmap", lambda: "heatmap", finish)
    worker.submit("tree", lambda: computed.append("tree") or "tree", finish, delay=0.2)
    assert worker.wait_idle(5)
    assert done == [("heatmap", None), ("tree", None)] and computed == ["tree"]
