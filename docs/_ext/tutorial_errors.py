"""Make a tutorial that fails to execute fail the docs build, with its traceback on the console.

myst-nb can stop the build at the first failing notebook (``nb_execution_raise_on_error``), but
then the console shows only ``ExecutionError: <path>`` and the cell's traceback goes to a log file
in a temporary folder. With this extension loaded (and ``nb_execution_raise_on_error = False``,
``nb_execution_show_tb = True`` in conf.py):

- myst-nb prints the failing cell's traceback as a warning as soon as the tutorial has run,
  without IPython's colour codes, so that it reads in a CI log;
- the build goes on and executes the remaining tutorials, so one build reports every failure;
- at the end the build fails (exit status 1, with or without ``-W``) and lists each failed tutorial
  with the last line of its traceback; the next build runs it again.
"""

from __future__ import annotations

import logging
import re

from sphinx.util import logging as sphinx_logging

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
logger = sphinx_logging.getLogger(__name__)


class StripColours(logging.Filter):
    """Remove terminal colour codes (IPython colours its tracebacks) from log messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "\x1b[" in record.msg:
            record.msg = ANSI.sub("", record.msg)
        return True


def failed_tutorials(env) -> list[tuple[str, str]]:
    """(docname, last line of the traceback) of every document whose execution failed."""
    failed = []
    for docname, data in sorted(getattr(env, "nb_metadata", {}).items()):
        result = data.get("exec_data")
        if result and not result.get("succeeded", True):
            lines = [
                line for line in ANSI.sub("", result.get("traceback") or "").splitlines() if line.strip()
            ]
            failed.append((docname, lines[-1].strip() if lines else str(result.get("error"))))
    return failed


def report_failures(app, exception) -> None:
    if exception is not None:
        return
    failed = failed_tutorials(app.env)
    if failed:
        listing = "\n".join(f"  {docname}: {last}" for docname, last in failed)
        logger.error(
            "%d tutorial(s) failed to execute (each traceback is printed above):\n%s", len(failed), listing
        )
        app.statuscode = 1


def reread_failed(app, env, added, changed, removed) -> list[str]:
    """Run a failed tutorial again on the next build even if its source has not changed (the data
    it was missing may be there now)."""
    return [docname for docname, _ in failed_tutorials(env)]


def setup(app):
    for handler in logging.getLogger("sphinx").handlers:
        handler.addFilter(StripColours())
    app.connect("env-get-outdated", reread_failed)
    app.connect("build-finished", report_failures)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
