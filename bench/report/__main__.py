"""``python -m bench.report RESULTS… [-o FILE]``, as ``python -m bench report``."""

import argparse
import sys

from . import __doc__ as description
from .command import add_arguments, main

parser = add_arguments(argparse.ArgumentParser(prog="python -m bench.report", description=description.splitlines()[0]))
try:
    sys.exit(main(parser.parse_args()))
except ValueError as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
