"""The shapes at which the ops occur in the models.

Benchmark cases are never invented: :func:`capture_cases` builds the named models on the meta
device, runs one forward, and asks each op about every call of the modules its kernel replaces
(input shapes and the module's arguments), keeping every distinct case once.
"""

from __future__ import annotations

import functools

import torch

from ._registry import get_op


@functools.lru_cache(maxsize=None)
def meta_model(model_name: str) -> torch.nn.Module:
    """The model on the meta device, built once: its initialisation costs as much as a forward."""
    import models

    with torch.device("meta"):
        return models.create(model_name).eval()


@functools.lru_cache(maxsize=None)
def module_calls(model_name: str, batch_size: int) -> tuple:
    """Every module call of one forward of ``model_name`` on the meta device at its native input
    size, as ``(module, args, kwargs)`` in the order the calls finish. Cached: a suite asks for
    the same model and batch size once per op and matrix."""
    import models

    model = meta_model(model_name)
    size = models.get_entry(model_name).input_size
    calls = []
    handles = [module.register_forward_hook(lambda m, args, kwargs, output: calls.append((m, args, kwargs)),
                                            with_kwargs=True) for module in model.modules()]
    try:
        with torch.no_grad():
            model(torch.empty(batch_size, 3, size, size, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return tuple(calls)


class CaseSet:
    """Cases in order of first appearance, each (op, shape string) once, with every model it comes from."""

    def __init__(self):
        self._cases: dict[tuple, dict] = {}

    def add(self, case: dict, source: str) -> None:
        """Add ``case`` (its ``op`` and the op's own fields), found in ``source``; its shape string
        is the op's :meth:`~bench.ops.Op.describe`."""
        case = {**case, "shape": get_op(case["op"]).describe(case)}
        self._cases.setdefault((case["op"], case["shape"]), {**case, "models": []})["models"].append(source)

    def cases(self) -> list[dict]:
        return [{**case, "models": sorted(set(case["models"]))} for case in self._cases.values()]


def capture_cases(ops: list[str], model_names: list[str], batch_size: int) -> list[dict]:
    """Distinct calls of each op in the named models at ``batch_size``, in order of appearance."""
    chosen = [get_op(name) for name in ops]
    cases = CaseSet()
    for model_name in model_names:
        for module, args, kwargs in module_calls(model_name, batch_size):
            for op in chosen:
                case = op.capture(module, args, kwargs) if op.matches(module) else None
                if case is not None:
                    cases.add({**case, "op": op.name}, model_name)
    return cases.cases()
