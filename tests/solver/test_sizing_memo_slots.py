"""The sizing memo's bookkeeping on its own (:class:`~inferno.solver.sizing_memo.SizingMemo`):
slots never shared, least recently used evicted first, a change of key layout, threads."""

from __future__ import annotations

import threading

import numpy as np

from inferno.solver.sizing_memo import VALUES, SizingMemo


def rows(start: int, n: int, width: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` distinct key rows (numbered from ``start``), their hashes and values."""
    ids = np.arange(start, start + n, dtype=np.float64)
    keys = np.column_stack([ids + 0.5 * k for k in range(width)])
    hashes = (ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64(12345)
    values = np.repeat(ids[:, None], VALUES, axis=1)
    return keys, hashes, values


def found(memo: SizingMemo, start: int, n: int, width: int = 3) -> np.ndarray:
    keys, hashes, values = rows(start, n, width)
    hit, got, _ = memo.lookup(keys, hashes)
    assert (got[hit] == values[hit]).all()  # what is found is the row's own value
    return hit


def test_new_rows_never_share_a_slot_while_the_memo_grows_past_its_arrays() -> None:
    memo = SizingMemo(5000)
    memo.store(*rows(0, 1000))
    slots = memo.store(*rows(10_000, 4500))  # 500 of the first must go
    assert (slots >= 0).all() and np.unique(slots).size == slots.size
    assert len(memo) == 5000 and memo.stats().evictions == 500
    assert found(memo, 10_000, 4500).all()  # every new row is held
    assert int(found(memo, 0, 1000).sum()) == 500  # and exactly 500 of the old ones


def test_the_least_recently_used_go_first() -> None:
    memo = SizingMemo(100)
    memo.store(*rows(0, 100))
    found(memo, 50, 50)  # the second half used again: the first half is older
    memo.store(*rows(1000, 30))
    assert not found(memo, 0, 30).any()  # the 30 least recently used
    assert found(memo, 30, 70).all()
    assert found(memo, 1000, 30).all()


def test_another_key_layout_starts_again_and_keeps_working() -> None:
    memo = SizingMemo(2000)
    memo.store(*rows(0, 1500, width=3))
    assert found(memo, 0, 1500, width=3).all()
    memo.store(*rows(0, 200, width=4))  # e.g. another model's key
    assert len(memo) == 200 and found(memo, 0, 200, width=4).all()
    assert not found(memo, 0, 10, width=3).any()
    memo.store(*rows(500, 1800, width=4))  # and it grows and evicts as before
    assert len(memo) == 2000 and found(memo, 500, 1800, width=4).all()


def test_threads_sharing_a_memo_only_ever_read_their_own_values() -> None:
    memo = SizingMemo(300)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(40):
                start = 1000 * ((k + i) % 5)
                keys, hashes, values = rows(start, 120)
                hit, got, _ = memo.lookup(keys, hashes)
                assert (got[hit] == values[hit]).all()
                memo.store(keys[~hit], hashes[~hit], values[~hit])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(memo) <= 300


def test_two_requests_of_as_many_rows_are_both_recalled() -> None:
    """A tuned and a base solve have as many rows and other keys: each is found again."""
    memo = SizingMemo(100)
    options = np.array([7.0])
    requests = []
    for start in (0, 50):
        key = rows(start, 20, width=2)[0]
        widths = np.full(20, 8.0)
        stored = np.column_stack([key, widths, np.broadcast_to(options, (20, 1))])
        _, hashes, values = rows(start, 20)
        slots = memo.store(stored, hashes, values)
        memo.remember(np.arange(20), np.arange(20), widths, slots)
        requests.append((key, values))
    for key, values in requests:
        got = memo.recall(key, options)
        assert got is not None and (got[3] == values).all()
    changed = requests[0][0].copy()
    changed[3, 1] += 1.0  # one bit of one row differs: not this request
    assert memo.recall(changed, options) is None
