"""The phase a configuration is in (bench/progress.py): told to the one listener there is, if any."""

from __future__ import annotations

import pytest

from bench import progress


@pytest.fixture(autouse=True)
def no_listener_after():
    yield
    progress.listen(None)


def test_phases_go_to_the_listener_in_order_and_nowhere_once_it_is_removed():
    heard = []
    progress.listen(heard.append)
    progress.phase("building")
    progress.phase("timing")
    progress.listen(None)
    progress.phase("after the worker")
    assert heard == ["building", "timing"]


def test_a_new_listener_replaces_the_old_one():
    first, second = [], []
    progress.listen(first.append)
    progress.listen(second.append)
    progress.phase("warming up")
    assert (first, second) == ([], ["warming up"])
