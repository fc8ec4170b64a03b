"""An OpenAI-compatible chat server on 127.0.0.1 with scripted answers, latency and faults.

Tests and `bench/` start it to drive litellm's real HTTP path; users can start it for their
own tests: `python -m margin.providers.fake_server --latency 0.2 --fault-rate 0.3`.
It prints `http://127.0.0.1:PORT/v1` on its first line once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from aiohttp import web

from margin.providers.scripts import FAULT_KINDS, Rule, Script, scripted_answer

TIMEOUT_SLEEP_S = 3600.0
"""How long a `timeout` fault keeps the client waiting (the client's timeout ends it first)."""


def build_app(script: Script) -> web.Application:
    """The aiohttp application answering `/v1/chat/completions` from `script`."""
    server = _Server(script)
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server.chat)
    app.router.add_post("/chat/completions", server.chat)
    app.router.add_get("/stats", server.get_stats)
    app.router.add_post("/release", server.release)
    return app


class _Server:
    """One application's state — its counters and the `hold_after` and `gather` gates — and its
    request handlers."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.stats: Counter[str] = Counter()
        self.released = asyncio.Event()  # `hold_after`: set by POST /release
        self.gathered = asyncio.Event()  # `gather`: set once that many calls were in flight
        if script.hold_after is None:
            self.released.set()
        if script.gather <= 1:
            self.gathered.set()

    async def chat(self, request: web.Request) -> web.StreamResponse:
        stats, script = self.stats, self.script
        stats["requests"] += 1
        number = stats["requests"]
        stats["in_flight"] += 1
        stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
        if stats["in_flight"] >= script.gather:
            self.gathered.set()
        try:
            try:
                await asyncio.wait_for(self.gathered.wait(), script.gather_wait_s)
            except TimeoutError:
                self.gathered.set()  # held once, for gather_wait_s: the later calls go straight on
            if number > (script.hold_after or 0) and not self.released.is_set():
                stats["held"] += 1
                await self.released.wait()
            return await self.answer(request)
        finally:
            stats["in_flight"] -= 1

    async def release(self, request: web.Request) -> web.Response:
        self.released.set()
        return web.json_response({"released": True})

    async def answer(self, request: web.Request) -> web.StreamResponse:
        stats, script = self.stats, self.script
        body = await request.json()
        if script.require_key is not None:
            sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if sent != script.require_key:
                stats["fault:401"] += 1
                message = f"Incorrect API key provided: {sent}"
                return web.json_response(_error(message, "invalid_api_key"), status=401)
        fault = script.draw_fault()
        if script.latency_s:
            await asyncio.sleep(script.latency_s)
        if fault is not None:
            stats[f"fault:{fault}"] += 1
            return await _fault(request, fault, script)
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        text, prompt_tokens, completion_tokens, finish = scripted_answer(
            script, body.get("messages", []), int(max_tokens) if max_tokens else None
        )
        stats["ok"] += 1
        return web.json_response(
            {
                "id": f"chatcmpl-fake-{stats['requests']}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": finish,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(dict(self.stats))


async def _fault(request: web.Request, fault: str, script: Script) -> web.StreamResponse:
    if fault == "429":
        retry = f"{script.retry_after_s:g}"
        headers = {"retry-after": retry, "retry-after-ms": str(int(script.retry_after_s * 1000))}
        return web.json_response(
            _error("rate limited", "rate_limit_error"), status=429, headers=headers
        )
    if fault in ("500", "503"):
        return web.json_response(_error("server fault", "server_error"), status=int(fault))
    if fault == "timeout":
        await asyncio.sleep(TIMEOUT_SLEEP_S)
    if fault == "malformed":
        return web.Response(
            status=200, text='{"id": "x", "choices": [', content_type="application/json"
        )
    # "drop": cut the connection without an answer.
    if request.transport is not None:
        request.transport.abort()
    raise ConnectionResetError("dropped by the fake server")


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": kind}}


@contextmanager
def serve_in_thread(script: Script, port: int = 0) -> Iterator[str]:
    """Serve `script` on 127.0.0.1 in a background thread; yields the base URL (`.../v1`)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def start() -> None:
        runner = web.AppRunner(build_app(script), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
        await site.start()
        holder["runner"] = runner
        holder["port"] = runner.addresses[0][1]
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()
        loop.run_until_complete(holder["runner"].cleanup())
        pending = asyncio.all_tasks(loop)  # handlers still sleeping in a `timeout` fault
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()

    thread = threading.Thread(target=run, name="margin-fake-server", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the fake server did not start")
    try:
        yield f"http://127.0.0.1:{holder['port']}/v1"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def main(argv: list[str] | None = None) -> None:
    """Serve a script from the command line until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--faults", default=",".join(FAULT_KINDS))
    parser.add_argument("--rule", action="append", default=[], metavar="REGEX=OUTPUT")
    parser.add_argument("--default", default="{prompt}")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rules = [Rule(*item.split("=", 1)) for item in args.rule]
    script = Script(
        rules=rules,
        default=args.default,
        latency_s=args.latency,
        fault_rate=args.fault_rate,
        faults=tuple(f for f in args.faults.split(",") if f),
        seed=args.seed,
    )

    async def serve() -> None:
        runner = web.AppRunner(build_app(script), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=4096)
        await site.start()
        print(f"http://127.0.0.1:{runner.addresses[0][1]}/v1", flush=True)
        await asyncio.Event().wait()

    with suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
