"""The ``ablate`` console script's module (pyproject ``[project.scripts]``): importing it sets the Ctrl-C handler.

pip's generated ``ablate`` wrapper imports this module, then calls ``re.sub`` and ``main``.
The handler goes in at import, the earliest line of ablate's own code that runs, so a
SIGINT in the wrapper's remaining lines or in the CLI's imports (argparse, torch, Ray,
MLflow) exits 130 with one line (``signals.interrupted``).  A SIGINT that lands even
earlier, while CPython itself starts (``init_sys_streams``, ``site``) or inside the
``import signal`` below, is caught as the KeyboardInterrupt Python's default handler
raises where that is possible, and otherwise ends the process as Python does (killed by
SIGINT, or its own fatal-error message): no ablate code has run yet.  Nothing but the
console script imports this module, so library users and tests keep their own handlers.
"""
# No `from __future__ import`: at run time it is an import, outside the try below.
try:
    import signal

    from .signals import interrupted

    signal.signal(signal.SIGINT, interrupted)
except KeyboardInterrupt:        # raised by Python's default handler before ours was in place
    from .signals import interrupted

    interrupted()


def main() -> int:
    from .main import main as cli_main

    return cli_main()
