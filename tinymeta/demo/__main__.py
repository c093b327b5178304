"""``python -m tinymeta.demo ...`` is ``tinymeta demo ...``."""

from .cli import main

raise SystemExit(main())
