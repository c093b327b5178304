"""Call the student's function on one case and record what the grader needs to judge it.

The same code runs in the check process of :mod:`tinymeta.exercises.child` (a file handed in)
and in the caller's process (:func:`tinymeta.exercises.check` on a function in a notebook).
Nothing here compares with a right answer: that happens in the grading process.

Recorded per case: the output, the exception (type, message, the student's file:line), the
first floating-point problems (overflow, invalid value, ...) with the student's line, whether
an input array was changed in place, and the *probes* a case asks for:

* ``"calls"``: the number of gradient, Hessian-vector and loss evaluations, counted by handing
  the student a :class:`CountingNet` in place of the network (the first argument);
* ``"memory"``: the peak of the memory allocated during the call (``tracemalloc``; NumPy
  reports its array buffers to it), in bytes.
"""

from __future__ import annotations

import copy
import time
import tracemalloc
import warnings

import numpy as np

from .trace import FloatingPointLog, exception_info

OK, RAISED, NOT_ATTEMPTED = "ok", "raised", "not attempted"


class CountingNet:
    """An :class:`~tinymeta.MLP` that counts calls of its derivative methods (probe ``"calls"``)."""

    COUNTED = ("loss_and_grad", "hvp", "loss", "forward")

    def __init__(self, net):
        self._net = net
        self.calls = dict.fromkeys(self.COUNTED, 0)

    def __getattr__(self, name):
        attr = getattr(self._net, name)
        if name not in self.COUNTED:
            return attr

        def counted(*args, **kwargs):
            self.calls[name] += 1
            return attr(*args, **kwargs)

        return counted

    def __repr__(self):
        return repr(self._net)


def _arrays(obj):
    if isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for x in obj:
            yield from _arrays(x)


def call_case(fn, args, *, path=None, probes=(), catch_interrupt=True) -> dict:
    """Run ``fn(*copy_of_args)`` once; never raises for what ``fn`` does (but see below).

    Parameters
    ----------
    fn : the student's function
    args : tuple, the case's inputs (``fn`` gets deep copies)
    path : the student's file, used to find the line of an exception or of the first NaN
    probes : subset of ``{"calls", "memory"}``
    catch_interrupt : if False, ``KeyboardInterrupt`` propagates (Ctrl-C in a notebook)

    Returns
    -------
    dict with ``status`` (``"ok"``, ``"raised"``, ``"not attempted"``), ``out``, ``error``,
    ``fp`` (floating-point events), ``inplace``, ``measured`` and ``seconds``.
    """
    given = copy.deepcopy(args)
    net = CountingNet(given[0]) if "calls" in probes else None
    call_args = (net, *given[1:]) if net is not None else given
    log = FloatingPointLog(path)
    result = {"status": OK, "out": None, "error": None, "fp": log.events, "measured": {}}
    tracing = "memory" in probes and not tracemalloc.is_tracing()
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(), np.errstate(all="call", under="ignore", call=log):
            warnings.simplefilter("ignore")
            if tracing:
                tracemalloc.start()
            result["out"] = fn(*call_args)
    except NotImplementedError as e:
        result.update(status=NOT_ATTEMPTED, error=exception_info(e, path))
    except (Exception, SystemExit) as e:
        result.update(status=RAISED, error=exception_info(e, path))
    except BaseException as e:  # KeyboardInterrupt, GeneratorExit: a failed check in a check process
        if not catch_interrupt:
            raise
        result.update(status=RAISED, error=exception_info(e, path))
    finally:
        if tracing:
            result["measured"]["peak_bytes"] = int(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
    result["seconds"] = time.perf_counter() - start
    if net is not None:
        result["measured"]["calls"] = dict(net.calls)
    pairs = zip(_arrays(args), _arrays(given), strict=False)
    result["inplace"] = not all(a.shape == b.shape and np.array_equal(a, b, equal_nan=True) for a, b in pairs)
    return result
