"""`local/<name>`: GGUF models run in-process with xllamacpp, registered with litellm.

Each model is loaded once per process (threads = cores) and reused; calls to one model run one
at a time in a worker thread, so the event loop stays free. The model's own chat template is
applied by llama.cpp; temperature, top_p, seed and max_tokens are honoured; usage is counted.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass, fields
from typing import Any

from margin.errors import BadRequest, ModelNotFound, ProviderError, margin_bug
from margin.providers.local_models import ModelFileError, model_file, model_info

LATENCY_KEY = "margin_latency_s"
"""Where an in-process provider puts the model's own time (its queueing and loading excluded)."""

CONTEXT_TOKENS = 4096
"""Context window given to every local model (long-context noise stays inside it)."""


CALL_ROLE: ContextVar[str] = ContextVar("margin_local_call_role", default="model")
"""Whose call this is (`model`, or `judge` while a judge validator asks): the timings count
each role apart. Set by the runner; a worker thread inherits it (`asyncio.to_thread`)."""


@dataclass
class LocalTimes:
    """Where the local models' time went in this process (totals, seconds and tokens): loading
    and warming the weights, and llama.cpp's own prompt and generation timings per call."""

    load_s: float = 0.0
    prompt_s: float = 0.0
    generation_s: float = 0.0
    calls: int = 0
    prompt_tokens: int = 0
    """Prompt tokens processed (the cached prefix excluded)."""
    cached_tokens: int = 0
    """Prompt tokens reused from the slot's cache (the shared prefix of earlier calls)."""
    generated_tokens: int = 0

    def add(self, other: LocalTimes) -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


_TIMES: dict[str, LocalTimes] = {}
"""By role: `load`, `model`, `judge`."""
_TIMES_LOCK = threading.Lock()


def local_times() -> dict[str, LocalTimes]:
    """A copy of this process's totals by role (`load`, `model`, `judge`)."""
    with _TIMES_LOCK:
        return {role: LocalTimes(**vars(times)) for role, times in _TIMES.items()}


def _count(role: str, times: LocalTimes) -> None:
    with _TIMES_LOCK:
        _TIMES.setdefault(role, LocalTimes()).add(times)


@dataclass(frozen=True)
class _Loaded:
    """A model loaded in this process: its xllamacpp Server and the calls it takes at once."""

    server: Any
    parallel: int
    slots: threading.Semaphore


_LOADED: dict[str, _Loaded] = {}
_LOADING = threading.Lock()
_WARMED: dict[str, Any] = {}
"""The server each model was last warmed up on (a model loaded anew is warmed again)."""


def runtime_available() -> bool:
    """Whether xllamacpp is installed (the `local` extra)."""
    return importlib.util.find_spec("xllamacpp") is not None


def load(name: str, parallel: int | None = None) -> Any:
    """The loaded xllamacpp Server for `local/<name>` (loaded on first use, then reused), with
    `parallel` slots decoded together (continuous batching; default 1, or as loaded)."""
    return _load(name, parallel).server


def _load(name: str, parallel: int | None = None) -> _Loaded:
    with _LOADING:
        loaded = _LOADED.get(name)
        if loaded is not None and parallel in (None, loaded.parallel):
            return loaded
        _LOADED.pop(name, None)  # asked again with another `parallel`: loaded anew
        slots = parallel or 1
        started = time.perf_counter()  # a first use joins and checks the file: loading's time
        info = model_info(name)
        path = model_file(info)
        if not runtime_available():
            raise ModelFileError(
                "the local runtime is not installed: run `pip install 'margin[local]'`"
            )
        import xllamacpp  # the optional `local` extra, and a large native library

        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = CONTEXT_TOKENS * slots  # llama.cpp shares the context among its slots
        params.n_parallel = slots
        params.cpuparams.n_threads = os.cpu_count() or 1
        params.cpuparams_batch.n_threads = os.cpu_count() or 1
        params.verbosity = -1
        params.warmup = False
        params.cache_prompt = True  # a slot reuses its last prompt's prefix (the task's system
        # prompt and fixed instructions, shared by every case of it): only the rest is processed
        server = xllamacpp.Server(params)
        _count("load", LocalTimes(load_s=time.perf_counter() - started))
        loaded = _LOADED[name] = _Loaded(server, slots, threading.Semaphore(slots))
        return loaded


def chat(
    name: str,
    messages: list[dict[str, Any]],
    options: dict[str, Any],
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """One blocking chat completion on `local/<name>` (OpenAI-shaped dict).

    The answer is streamed token by token so that `stop`, once set, ends the generation at the
    next token (a timed-out call frees its core at once instead of generating to the end);
    a stopped call raises `GenerationStopped`."""
    loaded = _load(name)
    request: dict[str, Any] = {
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        "cache_prompt": options.get("cache_prompt", True),
    }
    for key in ("temperature", "top_p", "seed", "max_tokens"):
        if options.get(key) is not None:
            request[key] = options[key]
    stream = _Stream(stop)
    with loaded.slots:
        started = time.perf_counter()
        loaded.server.handle_chat_completions(request, stream.take)
        took = time.perf_counter() - started
    _count(CALL_ROLE.get(), stream.times())
    answer = stream.answer(name)
    answer[LATENCY_KEY] = took  # the model's own time: no loading, no waiting
    return answer


class GenerationStopped(Exception):
    """A local generation ended early because its caller gave up on it."""


class _Stream:
    """Collects a streamed chat completion into one OpenAI-shaped answer; asks llama.cpp to stop
    (the callback returns True) as soon as `stop` is set."""

    def __init__(self, stop: threading.Event | None) -> None:
        self.stop = stop
        self.parts: list[str] = []
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] = {}
        self.timings: dict[str, Any] = {}
        self.error: Any = None
        self.stopped = False
        self.chunks = 0

    def take(self, chunk: Any) -> bool:
        self.chunks += 1
        if not isinstance(chunk, dict):
            self.error = chunk
            return True
        if "error" in chunk:
            self.error = chunk["error"]
            return True
        for choice in chunk.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if content:
                self.parts.append(content)
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
        self.usage = chunk.get("usage") or self.usage
        self.timings = chunk.get("timings") or self.timings
        if self.stop is not None and self.stop.is_set():
            self.stopped = True
            return True
        return False

    def times(self) -> LocalTimes:
        """llama.cpp's timings of this call (`timings` on its last chunk; zeros if absent)."""
        t = self.timings
        return LocalTimes(
            prompt_s=float(t.get("prompt_ms", 0.0)) / 1000,
            generation_s=float(t.get("predicted_ms", 0.0)) / 1000,
            calls=1,
            prompt_tokens=int(t.get("prompt_n", 0)),
            cached_tokens=int(t.get("cache_n", 0)),
            generated_tokens=int(t.get("predicted_n", 0)),
        )

    def answer(self, name: str) -> dict[str, Any]:
        if self.error is not None:
            message = (
                self.error.get("message", self.error)
                if isinstance(self.error, dict)
                else self.error
            )
            raise BadRequest(f"local model {name} refused the request: {str(message)[:300]}")
        if self.stopped:
            raise GenerationStopped(name)
        return {
            "choices": [
                {
                    "index": 0,
                    "finish_reason": self.finish_reason or "stop",
                    "message": {"role": "assistant", "content": "".join(self.parts)},
                }
            ],
            "usage": self.usage,
        }


async def achat(
    name: str, messages: list[dict[str, Any]], options: dict[str, Any]
) -> dict[str, Any]:
    """`chat` in a worker thread.

    A call cancelled (by its timeout) asks its generation to stop at the next token and waits
    for the thread to end, so the caller's CPU slot is free again within a token and the next
    call's latency never includes the rest of this one.
    """
    stop = threading.Event()
    thread = asyncio.ensure_future(asyncio.to_thread(chat, name, messages, options, stop))
    try:
        return await asyncio.shield(thread)
    except asyncio.CancelledError:
        stop.set()
        await asyncio.wait([thread])
        if not thread.cancelled():
            thread.exception()  # retrieved: a stopped generation's GenerationStopped is expected
        raise
    except ModelFileError as exc:
        raise ModelNotFound(exc.one_line()) from None
    except ProviderError:
        raise
    except Exception as exc:
        if margin_bug(exc, deep=False) is not None:
            raise
        raise ProviderError(f"local runtime: {type(exc).__name__}: {exc}") from None


async def preload(name: str, parallel: int | None = None) -> None:
    """Load `local/<name>` (and check its file) and warm it up before any call is timed.

    A model's first generation after loading pays for paging its weights in and setting up its
    buffers (about 1–4 s here against 0.1 s for the next): one token of a throw-away chat takes
    that cost here, so no case's latency carries it."""
    await asyncio.to_thread(_load_warm, name, parallel)


def _load_warm(name: str, parallel: int | None) -> None:
    server = load(name, parallel)
    if _WARMED.get(name) is server:
        return  # warmed already (an earlier round of the run): a warm-up would only evict
        # the slot's cached prompt prefix
    _WARMED[name] = server
    token = CALL_ROLE.set("load")  # the warm-up's time is loading's, not a case's
    try:
        chat(name, [{"role": "user", "content": "Hi"}], {"max_tokens": 1, "temperature": 0.0})
    finally:
        CALL_ROLE.reset(token)


def local_handler() -> Any:
    """A litellm CustomLLM serving `local/<name>` (litellm imported by the caller)."""
    # litellm here, when gateway.litellm_module registers us: a cache-hit run never loads it
    from litellm.llms.custom_llm import CustomLLM
    from litellm.types.utils import Choices, Message, ModelResponse, Usage  # (the same reason)

    class LocalLLM(CustomLLM):
        async def acompletion(self, *args: Any, **kwargs: Any) -> ModelResponse:
            model = str(kwargs["model"])
            name = model.split("/", 1)[1] if "/" in model else model
            options = dict(kwargs.get("optional_params") or {})
            answer = await achat(name, list(kwargs["messages"]), options)
            usage = answer.get("usage", {})
            text = answer["choices"][0]["message"].get("content") or ""
            response: ModelResponse = ModelResponse(
                model=model,
                choices=[
                    Choices(
                        index=0,
                        finish_reason=answer["choices"][0].get("finish_reason", "stop"),
                        message=Message(content=text),
                    )
                ],
                usage=Usage(
                    prompt_tokens=int(usage.get("prompt_tokens", 0)),
                    completion_tokens=int(usage.get("completion_tokens", 0)),
                    total_tokens=int(usage.get("total_tokens", 0)),
                ),
            )
            response._hidden_params[LATENCY_KEY] = answer.get(LATENCY_KEY)
            return response

    return LocalLLM()
