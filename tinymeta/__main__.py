"""``python -m tinymeta ...`` is the ``tinymeta`` command."""

from .cli import main

raise SystemExit(main())
