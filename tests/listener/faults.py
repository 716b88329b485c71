"""A fault-injecting httpx transport in front of a real anvil (lag, log limits, wrong hashes)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Faults:
    """What to get wrong; every answer not faked comes from the real node."""

    # Pretend the chain ends here: lower eth_blockNumber, null for later blocks.
    lag_head: int | None = None
    # eth_getLogs refuses more blocks than this ("block range" error, with a suggestion).
    max_log_blocks: int | None = None
    # eth_getLogs refuses answers with more logs than this ("more than N results").
    max_log_results: int | None = None
    # Blocks whose next N header reads return a made-up hash.
    wrong_hash_reads: Counter[int] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


class FaultyTransport(httpx.AsyncBaseTransport):
    """Forwards JSON-RPC to the real node, then bends the answer as `faults` says."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        method = body["method"]
        params = body.get("params") or []
        self.faults.calls[method] += 1
        refusal = self._refuse_logs(body, method, params)
        if refusal is not None:
            return httpx.Response(200, json=refusal)
        response = await self._inner.handle_async_request(request)
        await response.aread()
        answer = json.loads(response.content)
        answer = self._bend(method, params, answer)
        return httpx.Response(200, json=answer)

    def _refuse_logs(self, body: dict[str, Any], method: str, params: list[Any]) -> Any:
        if method != "eth_getLogs" or self.faults.max_log_blocks is None:
            return None
        low, high = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
        limit = self.faults.max_log_blocks
        if high - low + 1 <= limit:
            return None
        return _error(
            body["id"],
            -32005,
            f"block range too large; try with this block range [{hex(low)}, {hex(low + limit - 1)}]",
        )

    def _bend(self, method: str, params: list[Any], answer: dict[str, Any]) -> dict[str, Any]:
        lag = self.faults.lag_head
        result = answer.get("result")
        if method == "eth_blockNumber" and lag is not None:
            answer["result"] = hex(min(int(str(result), 16), lag))
        elif method == "eth_getBlockByNumber" and isinstance(result, dict):
            number = int(result["number"], 16)
            if lag is not None and number > lag:
                answer["result"] = None
            elif self.faults.wrong_hash_reads[number] > 0:
                self.faults.wrong_hash_reads[number] -= 1
                answer["result"] = {**result, "hash": "0x" + "ee" * 32}
        elif method == "eth_getLogs" and isinstance(result, list):
            cap = self.faults.max_log_results
            if cap is not None and len(result) > cap:
                return _error(answer["id"], -32005, f"query returned more than {cap} results")
            if lag is not None:
                answer["result"] = [e for e in result if int(e["blockNumber"], 16) <= lag]
        return answer

    async def aclose(self) -> None:
        await self._inner.aclose()
