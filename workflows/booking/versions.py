"""Which behaviour a booking's history was written with, at one marker per booking.

Every behaviour change goes through ``workflow.patched(id)`` so recorded histories replay. Each
id a new booking reaches costs its history two events: the marker and the SDK's upsert of the
``TemporalChangeVersion`` search attribute. A booking started by this code records a single
``compact-history`` marker that stands for the patches before it
(``IMPLIED_BY_COMPACT_HISTORY``); a history without that marker is asked about each patch as
before. Sound because ``patched`` answers once per run: a history that answered no to
``compact-history`` (replayed from before it) keeps asking the older ids.

A patch added later is not implied: gate it with ``workflow.patched`` itself.
"""

from __future__ import annotations

from temporalio import workflow

from workflows import constants as c


def applies(patch: str) -> bool:
    """``workflow.patched(patch)``, answered by ``compact-history`` where that implies it."""
    if patch in c.IMPLIED_BY_COMPACT_HISTORY and workflow.patched(c.PATCH_COMPACT_HISTORY):
        return True
    return workflow.patched(patch)
