"""The one seam to litellm: every model call goes through `complete`.

litellm is imported lazily (it takes seconds) with its environment set first, so it neither
fetches a price map, nor stalls on a tokenizer download, nor loads a `.env`. Calls never use
litellm's own retries, router or cache; its exceptions become margin's ProviderError here, and
the class decides whether the runner retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from margin.config import ModelSpec
from margin.errors import (
    AuthenticationFailed,
    BadRequest,
    ConnectionFailed,
    MalformedResponse,
    ModelNotFound,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    ServerError,
    margin_bug,
)
from margin.providers.custom import custom_providers
from margin.providers.local import LATENCY_KEY, preload
from margin.providers.local_models import ModelFileError
from margin.providers.prices import price_for

LITELLM_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "HF_HUB_OFFLINE": "1",
    "LITELLM_MODE": "PRODUCTION",
    "LITELLM_LOG": "ERROR",
}
"""Set before litellm is imported: no remote price map, no hub downloads, no `.env` loading."""

NO_KEY = "no-key"
"""Sent to a self-hosted `api_base` when the config names no key."""

MAX_RETRY_AFTER_S = 120.0
"""A provider asking us to wait longer than this is waited for this long, then tried again."""


SAMPLING_PARAMS = ("temperature", "top_p", "seed", "max_tokens")
"""The sampling parameters margin sends; the journal records which a provider dropped."""

NO_HTTP_TIMEOUT = frozenset({"local", "fake"})
"""Providers margin serves inside its own process: no HTTP client enforces their timeout."""


@dataclass(frozen=True)
class Completion:
    """A model's answer and what it cost in tokens and time."""

    text: str
    input_tokens: int
    output_tokens: int
    latency_s: float
    finish_reason: str | None = None
    """The provider's reason to stop: `stop`, `length` (cut off at max_tokens), …"""
    dropped_params: tuple[str, ...] = ()
    """Sampling parameters the provider does not take, so litellm did not send them."""


@lru_cache(maxsize=1)
def litellm_module() -> Any:
    """Import litellm once, configured, with margin's custom providers registered."""
    for key, value in LITELLM_ENV.items():
        os.environ.setdefault(key, value)
    import litellm  # on first call: it takes seconds, and a cache-hit run must never load it

    litellm.suppress_debug_info = True
    litellm.drop_params = False
    known = {item["provider"] for item in litellm.custom_provider_map}
    for item in custom_providers():
        if item["provider"] not in known:
            litellm.custom_provider_map.append(item)  # type: ignore[arg-type]
    litellm.utils.custom_llm_setup()  # type: ignore[no-untyped-call]
    return litellm


def warm(models: Sequence[ModelSpec]) -> None:
    """Import litellm and run each model's provider path once without a network call (litellm's
    `mock_response`), so the hundreds of modules a first call imports lazily are loaded here —
    in the parent, once — and not again in every worker process forked from it."""
    litellm = litellm_module()
    import openai  # loaded by litellm just above; named here to build its client classes

    openai.AsyncOpenAI(api_key=NO_KEY, base_url="http://127.0.0.1:9").chat.completions  # noqa: B018

    async def mocked(model: ModelSpec) -> None:
        await litellm.acompletion(
            model=model.model,
            messages=[{"role": "user", "content": "warm"}],
            mock_response="warm",
            api_base=model.api_base,
            api_key=NO_KEY,
            max_tokens=1,
            temperature=0.0,
            seed=0,
            max_retries=0,
            timeout=5,
            drop_params=True,
        )

    async def each() -> None:
        for model in {m.model: m for m in models}.values():
            if model.provider not in NO_HTTP_TIMEOUT:
                with contextlib.suppress(Exception):  # a warm-up is an optimisation, never a fault
                    await mocked(model)

    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop running here (the usual case): warm up
        asyncio.run(each())


async def complete(
    model: ModelSpec,
    messages: Sequence[dict[str, str]],
    *,
    seed: int,
    max_tokens: int,
    api_key: str | None,
) -> Completion:
    """One call, no retries: the answer, or a ProviderError saying what went wrong."""
    litellm = litellm_module()
    kwargs: dict[str, Any] = {
        "model": model.model,
        "messages": list(messages),
        "temperature": model.sampling.temperature,
        "max_tokens": max_tokens,
        "seed": seed,
        "timeout": model.timeout,
        "max_retries": 0,
        "drop_params": True,  # providers without `seed` (or `top_p`) accept the call anyway
    }
    if model.sampling.top_p is not None:
        kwargs["top_p"] = model.sampling.top_p
    price = price_for(model)
    if price.source in ("config", "nominal", "local"):
        # litellm prices every answer itself; told margin's price (its documented custom
        # pricing) it skips the price-map lookups that fail for a model the map does not know.
        kwargs["input_cost_per_token"] = price.input
        kwargs["output_cost_per_token"] = price.output
    dropped = _dropped(model.model, tuple(k for k in SAMPLING_PARAMS if k in kwargs))
    if model.api_base:
        kwargs["api_base"] = model.api_base
    if api_key:
        kwargs["api_key"] = api_key
    elif model.api_base:
        kwargs["api_key"] = NO_KEY  # local OpenAI-compatible servers need none; litellm wants one
    started = time.perf_counter()
    try:
        response = await asyncio.wait_for(litellm.acompletion(**kwargs), longest_call_s(model))
    except TimeoutError:
        raise ProviderTimeout(f"no answer within {model.timeout:g} s") from None
    except Exception as exc:
        bug = margin_bug(exc)
        if bug is not None:
            raise bug from exc  # a bug in margin keeps its traceback; not a provider fault
        raise map_exception(exc) from None
    latency = time.perf_counter() - started
    return _read_response(response, latency, dropped)


def longest_call_s(model: ModelSpec) -> float:
    """How long one call to `model` can last before `complete` gives up on it: its timeout, plus
    for HTTP calls a grace that lets litellm's own timeout error, with its status, arrive first
    (an in-process call has only margin's timeout)."""
    return model.timeout + (0.0 if model.provider in NO_HTTP_TIMEOUT else 5.0)


def dropped_params(model: ModelSpec, sent: Sequence[str]) -> tuple[str, ...]:
    """Which of `sent` the model's provider does not take (litellm's drop_params drops them)."""
    return _dropped(model.model, tuple(sent))


@lru_cache(maxsize=256)
def _dropped(model_id: str, sent: tuple[str, ...]) -> tuple[str, ...]:
    litellm = litellm_module()
    provider = model_id.split("/", 1)[0] if "/" in model_id else None
    name = model_id.split("/", 1)[1] if "/" in model_id else model_id
    try:
        supported = litellm.get_supported_openai_params(model=name, custom_llm_provider=provider)
    except Exception:  # an unknown provider: litellm cannot say, so nothing is claimed dropped
        return ()
    if not supported:
        return ()
    return tuple(p for p in sent if p not in supported)


async def prepare(model: ModelSpec) -> None:
    """Get a model ready before its first timed call: an in-process model loads (and checks)
    its weights here, so that time is never counted as the first call's latency. A model that
    cannot load is left to fail on its calls, where the failure is recorded."""
    if model.provider == "local":
        try:
            await preload(model.model.split("/", 1)[1], model.parallel)
        except ModelFileError:
            return


def forget_clients() -> None:
    """Drop litellm's cached HTTP clients without closing them (in a freshly forked process)."""
    if "litellm" in sys.modules:
        sys.modules["litellm"].in_memory_llm_clients_cache.flush_cache()


async def close_clients() -> None:
    """Close and forget litellm's cached HTTP clients (they belong to this event loop); a run
    that never called a model (every answer from the cache) never imports litellm for it."""
    if "litellm" not in sys.modules:
        return
    litellm = litellm_module()
    await litellm.close_litellm_async_clients()
    litellm.in_memory_llm_clients_cache.flush_cache()


def _read_response(response: Any, latency: float, dropped: tuple[str, ...] = ()) -> Completion:
    try:
        choice = response.choices[0]
        text = choice.message.content
        finish = getattr(choice, "finish_reason", None)
        usage = getattr(response, "usage", None)
        input_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        output_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
    except (AttributeError, IndexError, TypeError, ValueError, OverflowError) as exc:
        raise MalformedResponse(f"unreadable response: {type(exc).__name__}") from None
    if input_tokens < 0 or output_tokens < 0:
        # Negative usage would lower recorded spend and let a run pass its budget.
        raise MalformedResponse(f"negative token usage ({input_tokens}, {output_tokens})")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise MalformedResponse(f"response content is {type(text).__name__}, not text")
    own = (getattr(response, "_hidden_params", None) or {}).get(LATENCY_KEY)
    if isinstance(own, int | float) and 0 <= own <= latency:
        latency = float(own)
    return Completion(
        clean_text(text),
        input_tokens,
        output_tokens,
        latency,
        str(finish) if finish is not None else None,
        dropped,
    )


def clean_text(text: str) -> str:
    """`text` with lone surrogates (not encodable, so not storable) replaced by U+FFFD; a
    surrogate pair split by a broken decoder is joined back into its character."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


_BY_STATUS: dict[int, type[ProviderError]] = {
    400: BadRequest,
    401: AuthenticationFailed,
    402: BadRequest,
    403: AuthenticationFailed,
    404: ModelNotFound,
    408: ProviderTimeout,
    413: BadRequest,
    422: BadRequest,
    429: RateLimited,
}


def map_exception(exc: BaseException) -> ProviderError:
    """litellm's (and asyncio's) exceptions → margin's ProviderError classes."""
    cause: BaseException | None = exc
    for _ in range(8):  # custom providers' errors arrive wrapped in litellm's APIConnectionError
        if cause is None:
            break
        if isinstance(cause, ProviderError):
            return cause
        cause = cause.__cause__ or cause.__context__
    name = type(exc).__name__
    message = f"{name}: {_first_line(exc)}"
    if isinstance(exc, asyncio.TimeoutError | TimeoutError) or name in (
        "Timeout",
        "APITimeoutError",
    ):
        return ProviderTimeout(message)
    status = getattr(exc, "status_code", None)
    if name == "APIConnectionError" or isinstance(exc, ConnectionError | OSError):
        return _connection_or_garbage(message)
    if isinstance(status, int):
        if status in _BY_STATUS:
            cls = _BY_STATUS[status]
            retry_after = _retry_after(exc) if cls is RateLimited else None
            return cls(message, retry_after=retry_after)
        if status >= 500:
            return _connection_or_garbage(message) if status == 500 else ServerError(message)
    if name in ("APIResponseValidationError", "JSONDecodeError", "JSONSchemaValidationError"):
        return MalformedResponse(message)
    if name in ("ContextWindowExceededError", "BadRequestError", "UnsupportedParamsError"):
        return BadRequest(message)
    if name in ("NotFoundError", "LiteLLMUnknownProvider"):
        return ModelNotFound(message)
    return ProviderError(message)


def _connection_or_garbage(message: str) -> ProviderError:
    """litellm reports dropped connections and garbage bodies as 500s: tell them apart."""
    lowered = message.lower()
    if "missing credentials" in lowered or "api_key" in lowered:
        return AuthenticationFailed(message)
    if "connection" in lowered or "disconnect" in lowered or "reset" in lowered:
        return ConnectionFailed(message)
    if "expecting" in lowered or "json" in lowered or "decode" in lowered:
        return MalformedResponse(message)
    return ServerError(message)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


def _retry_after(exc: BaseException) -> float | None:
    """Seconds from Retry-After (or retry-after-ms) on the provider's answer, if it sent one."""
    for attr in ("litellm_response_headers", "headers"):
        headers = getattr(exc, attr, None)
        if headers:
            break
    else:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return min(float(millis) / 1000, MAX_RETRY_AFTER_S)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        if when is None:
            return None
        return min(max(when.timestamp() - time.time(), 0.0), MAX_RETRY_AFTER_S)
