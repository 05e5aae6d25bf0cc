"""The test suite, laid out as the source is (tests/models, tests/kernels, tests/bench).

A package, so that test modules of the same name in different directories do not collide and
each directory's helpers are imported by their full name (``tests.kernels.helpers``)."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
