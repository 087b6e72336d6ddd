"""The benchmarks' one timing helper: sides run in turn after a warm-up round, their own seconds count when given."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
from _common import OwnSeconds, Timing, in_turn, speedup  # noqa: E402


def test_sides_take_turns_after_a_warm_up_round():
    calls = []
    seconds = iter([3.0, 1.0, 2.0, 5.0])

    def b():
        calls.append("b")
        return OwnSeconds(next(seconds))
    times = in_turn({"a": lambda: calls.append("a"), "b": b}, rounds=3, warmup=1)
    assert calls == ["a", "b"] * 4  # one warm-up round, then three rounds, never one side's runs in a row
    b = times["b"]  # the warm-up's 3.0 is left out; the side's own seconds count
    assert b.times == [1.0, 2.0, 5.0] and (b.best, b.median, b.spread) == (1.0, 2.0, 4.0)
    assert len(times["a"].times) == 3 and all(t >= 0 for t in times["a"].times)


def test_columns_and_speedup():
    slow, fast = Timing([8.0, 12.0, 10.0]), Timing([2.0, 4.0, 5.0])
    assert fast.columns("ours") == {"ours best s": 2.0, "ours median s": 4.0, "ours spread s": 3.0}
    assert fast.columns("") == {"best s": 2.0, "median s": 4.0, "spread s": 3.0}
    assert speedup(slow, fast) == {"speedup (best)": 4.0, "speedup (median)": 2.5}
