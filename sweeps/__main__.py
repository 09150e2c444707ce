"""``python -m sweeps``: the ``ablate`` command."""
import sys

from .cli.main import main

sys.exit(main())
