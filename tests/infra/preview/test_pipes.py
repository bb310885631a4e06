"""Messages larger than a pipe's buffer cross whole; a writer that closes early is an EOFError."""

from __future__ import annotations

import os
import threading

import pytest

from infra.preview.pipes import read_exact, read_to_end, write_all

BIG = bytes(range(256)) * 4096  # 1 MiB: many times a pipe buffer


def test_a_large_write_is_read_back_whole():
    read_end, write_end = os.pipe()

    def writer():
        write_all(write_end, BIG)
        os.close(write_end)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert read_exact(read_end, 10) == BIG[:10]
        assert read_to_end(read_end) == BIG[10:]
    finally:
        thread.join()
        os.close(read_end)


def test_read_exact_names_an_early_close():
    read_end, write_end = os.pipe()
    os.write(write_end, b"abc")
    os.close(write_end)
    with pytest.raises(EOFError, match="closed"):
        read_exact(read_end, 4)
    os.close(read_end)
