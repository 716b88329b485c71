"""The event identity key ``chain_id:tx_hash:log_index``: the dedupe key of a chain event everywhere.

A module of its own, importing nothing: workflow types build the key too, and must not pull the
log decoder (eth-abi) into the workflow sandbox.
"""

from __future__ import annotations


def event_key(chain_id: int, tx_hash: str, log_index: int) -> str:
    """The key of one inclusion of an event; the hash is lower-cased, whoever wrote it down."""
    return f"{chain_id}:{tx_hash.lower()}:{log_index}"
