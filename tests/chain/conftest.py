"""Clients and deployments on the session's anvil for the chain package's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from bookme.embedded.anvil import AnvilNode
from chain.client import ChainClient
from chain.keys import TransactionKey
from chain.sender import SenderConfig, TransactionSender
from tests.contracts.harness import EscrowHarness


@pytest.fixture
async def client(fresh_chain: AnvilNode) -> AsyncIterator[ChainClient]:
    async with ChainClient(
        [fresh_chain.http_url], registry=CollectorRegistry(), expected_chain_id=fresh_chain.chain_id
    ) as chain_client:
        yield chain_client


@pytest.fixture
def escrow(fresh_chain: AnvilNode) -> EscrowHarness:
    return EscrowHarness(fresh_chain)


def sender_for(
    client: ChainClient, node: AnvilNode, index: int, **config: object
) -> TransactionSender:
    settings = {"poll_interval_seconds": 0.02, "replace_after_seconds": 60.0, **config}
    return TransactionSender(
        client,
        TransactionKey(node.accounts[index].private_key),
        chain_id=node.chain_id,
        config=SenderConfig(**settings),  # type: ignore[arg-type]
    )
