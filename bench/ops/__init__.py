"""The hot-path ops the harness measures, one file per op, and the shapes at which they occur in
the models.

Each op file (``bench/ops/bn_relu.py``, ...) registers one :class:`Op` with :func:`register_op`;
:func:`get_op` and :func:`list_ops` find them. :func:`capture_cases` traces the named models on
the meta device and returns every distinct case of the asked ops, with its shape string.
"""

import importlib
import pkgutil

from ._capture import CaseSet, capture_cases, meta_model, module_calls
from ._registry import Op, get_op, list_ops, numel, random_tensor, register_op, shape_text



def _import_op_files() -> None:
    """Importing an op file registers its op: every module here without a leading underscore is
    one, so that a new op is one new file."""
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_import_op_files()

__all__ = ["Op", "register_op", "get_op", "list_ops", "capture_cases", "CaseSet", "module_calls", "meta_model",
           "numel", "shape_text", "random_tensor"]
