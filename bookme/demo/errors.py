"""What stops one booking of the demo, or the demo on a running stack.

Errors::

    Exception
     ├── DemoFailure      a step of one booking went wrong (the message says which)
     └── TimersTooLong    the running stack's booking timers would outlast the demo's budget
"""

from __future__ import annotations


class DemoFailure(Exception):
    """A step of one booking went wrong (the message says which)."""


class TimersTooLong(Exception):
    """The running stack's booking timers would outlast the demo's budget."""
