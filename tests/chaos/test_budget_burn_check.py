"""The chaos check of the provider's budget burn: what may still be answered 200 past the bound.

Seen in a soak and a full run: the provider's 101st repeat was refused, then the next request
answered 200 with a new authorization (the last one had neared its expiry under load). That is
a change within the bound of 4 authorizations, not an attack that worked; a repeat of a known
authorization, or a fifth one, still is.
"""

from __future__ import annotations

from bench.chaos.adversary import fresh_authorization
from workflows.constants import MAX_CANCELLATION_AUTHORIZATIONS


def _answer(nonce: int) -> dict[str, object]:
    return {"authorization": {"nonce": nonce}}


def test_a_new_authorization_within_the_bound_is_allowed() -> None:
    assert fresh_authorization(200, _answer(7), {"5"}) == "7"


def test_a_known_authorization_past_the_bound_is_a_repeat_that_should_have_been_refused() -> None:
    assert fresh_authorization(200, _answer(5), {"5"}) is None


def test_one_authorization_more_than_the_bound_is_not_allowed() -> None:
    seen = {str(n) for n in range(MAX_CANCELLATION_AUTHORIZATIONS)}
    assert fresh_authorization(200, _answer(99), seen) is None


def test_a_refusal_is_not_an_authorization() -> None:
    assert fresh_authorization(409, {}, {"5"}) is None
    assert fresh_authorization(None, {}, set()) is None


def test_an_answer_without_an_authorization_is_not_one() -> None:
    # A cancellation answered 200 with "authorization": null crashed the burn flow
    # (AttributeError: 'NoneType' object has no attribute 'get'), seen in a full run.
    assert fresh_authorization(200, {"authorization": None}, set()) is None
    assert fresh_authorization(200, {}, set()) is None
