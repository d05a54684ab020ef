"""portal.gc_pause: the collector is off inside, back on after the outermost block, and left
off when something else had turned it off (the benches, timeit)."""
from __future__ import annotations

import gc
import threading

from portal.gc_pause import collection_paused, with_collection_paused


def test_nested_blocks_turn_the_collector_back_on_once():
    assert gc.isenabled()
    with collection_paused():
        assert not gc.isenabled()
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer block still runs
    assert gc.isenabled()


def test_an_exception_still_turns_it_back_on():
    @with_collection_paused
    def boom():
        assert not gc.isenabled()
        raise ValueError("x")

    try:
        boom()
    except ValueError:
        pass
    assert gc.isenabled()


def test_a_collector_already_off_stays_off():
    gc.disable()
    try:
        with collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_concurrent_blocks_share_one_count():
    inside, release = threading.Event(), threading.Event()

    def other():
        with collection_paused():
            inside.set()
            release.wait(5)

    t = threading.Thread(target=other)
    t.start()
    inside.wait(5)
    with collection_paused():
        pass
    assert not gc.isenabled()  # the other thread's block has not ended
    release.set()
    t.join(5)
    assert gc.isenabled()
