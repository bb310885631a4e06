"""Stacks previewed in forked processes: reports in stack order, each from its own process; failures named."""

from __future__ import annotations

import os
import time

import pytest

from infra.preview.side_by_side import ChildFailed, preview_side_by_side


def test_reports_come_in_stack_order_each_from_its_own_process():
    def preview_one(stack, index):
        return index, [f"{stack} {index} {os.getpid()}"]

    reports = list(preview_side_by_side(["dev", "staging", "prod"], preview_one))
    assert [code for code, _ in reports] == [0, 1, 2]
    stacks, indexes, pids = zip(*(lines[0].split() for _, lines in reports), strict=True)
    assert stacks == ("dev", "staging", "prod") and indexes == ("0", "1", "2")
    assert pids[0] == str(os.getpid()) and len(set(pids)) == 3


def test_a_large_report_arrives_whole():
    lines = [f"line {i} " + "x" * 200 for i in range(2000)]  # ~0.4 MB: more than one pipe buffer
    reports = list(preview_side_by_side(["a", "b"], lambda stack, index: (0, lines)))
    assert reports == [(0, lines), (0, lines)]


def test_an_exception_in_a_child_names_the_stack_and_carries_the_traceback():
    def preview_one(stack, index):
        if stack == "staging":
            raise KeyError("boom in staging")
        return 0, [stack]

    reports = preview_side_by_side(["dev", "staging"], preview_one)
    assert next(reports) == (0, ["dev"])
    with pytest.raises(ChildFailed, match=r"preview of stack staging failed in process \d+") as err:
        next(reports)
    assert "KeyError: 'boom in staging'" in str(err.value)


def test_a_child_that_dies_without_a_report_is_an_error():
    def preview_one(stack, index):
        if index:
            os._exit(3)
        return 0, [stack]

    with pytest.raises(ChildFailed, match=r"preview of stack prod: its process \d+ ended without a report"):
        list(preview_side_by_side(["dev", "prod"], preview_one))


def test_children_are_reaped_when_this_process_fails(monkeypatch):
    forked = []
    real_fork = os.fork

    def fork():
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)

    def preview_one(stack, index):
        if index == 0:
            raise RuntimeError("parent's own stack failed")
        time.sleep(0.2)  # still running when the parent fails
        return 0, [stack]

    with pytest.raises(RuntimeError, match="parent's own stack failed"):
        list(preview_side_by_side(["dev", "staging", "prod"], preview_one))
    assert len(forked) == 2
    for pid in forked:  # finished and reaped: no zombie, nothing left running
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_one_stack_runs_here_without_forking():
    assert list(preview_side_by_side(["dev"], lambda stack, index: (0, [str(os.getpid())]))) == [
        (0, [str(os.getpid())])]
