"""``python -m tinymeta.exercises ...``: the same commands as ``tinymeta exercises ...``."""

import sys

from .cli import main

sys.exit(main(sys.argv[1:]))
