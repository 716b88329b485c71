"""Chain listener: confirmed escrow events become workflow signals exactly once.

``python -m listener`` (see ``listener.app``) builds a ``Listener`` (``listener.service``)
from Settings. The core takes its dependencies: a ``ChainClient``, an ``AsyncEngine`` and a
``SignalSink`` (``listener.sink``; ``TemporalSignalSink`` in production, a fake in tests).

Modules: ``config`` (knobs), ``ranges`` + ``fetch`` (adaptive, consistency-checked
eth_getLogs), ``events`` (decoded log -> signal payload), ``store`` (blockchain_events,
chain_cursor, recent_blocks), ``delivery`` (store, then signal in bounded per-booking
batches), ``reorg`` (hash checks, fork point), ``heads`` (newHeads wake-ups), ``lock``
(advisory-lock leadership and fencing), ``sightings`` (unconfirmed payments forwarded as
``payment_seen``, withdrawn by reorgs), ``metrics``.
"""
