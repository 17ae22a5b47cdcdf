"""How often control returns to the host: the IPU kit's ``--logs-per-epoch`` rule.

On an IPU, many steps run in one device loop before the host logs or saves. Keras
has the same knob, ``steps_per_execution``: that many weight updates are compiled
into one call. The rule is the IPU kit's: control may only return after a whole
weight update, so

* ``logs_per_epoch = n`` (an integer) needs ``n`` to divide the weight updates of
  an epoch; otherwise the closest ``n`` that does is used, with a warning;
* ``logs_per_epoch = 1/k`` means one log every ``k`` epochs; ``k`` must divide the
  number of epochs, or it is an error, because a run cannot end inside an execution;
* ``logs_per_epoch = 0`` runs the whole training in one execution (with a warning:
  nothing is seen until the end).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction


@dataclass(frozen=True)
class HostEvents:
    steps_per_execution: int  # weight updates per device call (Keras's steps_per_execution)
    logs_per_epoch: Fraction  # what is actually done
    executions: int  # device calls in the whole run
    warnings: tuple[str, ...] = field(default=())


def parse_logs_per_epoch(value) -> Fraction:
    """``"2"``, ``"1/3"``, ``0.5`` or ``Fraction`` to a Fraction; a clear error otherwise."""
    try:
        fraction = Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"logs_per_epoch={value!r}: accepted a whole number (2), a fraction "
                         f"of one epoch as 1/k (1/3) or 0 (one execution for the whole run).") from None
    if fraction < 0:
        raise ValueError(f"logs_per_epoch={value!r}: it must be >= 0.")
    if fraction and fraction < 1 and fraction.numerator != 1:
        raise ValueError(f"logs_per_epoch={value!r}: below 1 it must be 1/k (one log every k "
                         f"epochs), e.g. 1/2.")
    if fraction > 1 and fraction.denominator != 1:
        raise ValueError(f"logs_per_epoch={value!r}: above 1 it must be a whole number.")
    return fraction


def host_events(logs_per_epoch, updates_per_epoch: int, epochs: int) -> HostEvents:
    """Weight updates per execution for a requested logging frequency (see the module doc)."""
    if not (isinstance(updates_per_epoch, int) and updates_per_epoch >= 1):
        raise ValueError(f"updates_per_epoch={updates_per_epoch!r}: it must be an integer >= 1.")
    if not (isinstance(epochs, int) and epochs >= 1):
        raise ValueError(f"epochs={epochs!r}: it must be an integer >= 1.")
    wanted = parse_logs_per_epoch(logs_per_epoch)
    total = updates_per_epoch * epochs
    if wanted == 0:
        return HostEvents(total, Fraction(1, epochs), 1, (
            f"logs_per_epoch=0: the whole run ({total} weight updates) is one execution; "
            "nothing is logged or saved until it ends.",))
    if wanted < 1:
        epochs_per_log = wanted.denominator
        if epochs % epochs_per_log:
            raise ValueError(f"It is not possible to log {epochs_per_log} epochs at a time for "
                             f"{epochs} epochs: {epochs_per_log} must divide the number of epochs.")
        return HostEvents(updates_per_epoch * epochs_per_log, wanted, epochs // epochs_per_log)
    # Among the divisors of the updates per epoch, the closest to the request
    # (the smaller one on a tie: fewer host interruptions).
    divisors = [d for d in range(1, updates_per_epoch + 1) if updates_per_epoch % d == 0]
    chosen = min(divisors, key=lambda d: (abs(d - wanted), d))
    warnings = ()
    if chosen != wanted:
        warnings = (f"logs_per_epoch={wanted}: an epoch has {updates_per_epoch} weight updates, "
                    f"which {wanted} logs cannot split evenly; logging {chosen} times per epoch "
                    f"(every {updates_per_epoch // chosen} updates) instead.",)
    return HostEvents(updates_per_epoch // chosen, Fraction(chosen), chosen * epochs, warnings)
