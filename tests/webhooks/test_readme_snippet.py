"""The README's verification snippet, run as written, against a request the relay delivered."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.webhooks.flows import drain, paid_booking

pytestmark = pytest.mark.integration
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_verify() -> Callable[..., bool]:
    """`verify` from the first Python block of README's "### Webhooks" subsection."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n### Webhooks\n", 1)[1]
    section = re.split(r"\n#{2,3} ", section, maxsplit=1)[0]
    block = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the Webhooks subsection has no python block"
    namespace: dict[str, object] = {}
    exec(compile(block.group(1), str(README), "exec"), namespace)  # noqa: S102 - our own README
    verify = namespace["verify"]
    assert callable(verify)
    return verify


def test_the_snippet_is_found_and_refuses_garbage():
    verify = readme_verify()
    assert verify("whsec_x", "", b"{}") is False
    assert verify("whsec_x", "t=abc,v1=00", b"{}") is False


async def test_a_receiver_written_from_the_readme_verifies_a_delivered_request(
    store, receiver, dispatcher, add_endpoint
):
    verify = readme_verify()
    _, secret = await add_endpoint(receiver.url)
    await paid_booking(store)
    await drain(dispatcher, lambda: len(receiver.delivered()) == 1, "delivered")
    request = receiver.received[0]
    header = request.headers["BookMe-Signature"]

    assert verify(secret, header, request.body)
    assert not verify(secret, header, request.body.replace(b"PAID", b"PAIE"))
    assert not verify(secret + "x", header, request.body)
    assert not verify(secret, header, request.body, tolerance=-1)  # a stale timestamp
