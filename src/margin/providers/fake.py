"""`fake/<name>`: a litellm custom provider answering from a Script, in-process.

For margin's tests and users' own: register a script under a name, then use the model id
`fake/<name>` in a config. `fake/echo` (answers with the prompt) is always there.

    from margin.providers.fake import Rule, Script, register_script
    register_script("router", Script(rules=[Rule("parcel", "shipping")], default="billing"))
"""

from __future__ import annotations

import asyncio
from typing import Any

from margin.errors import (
    ConnectionFailed,
    MalformedResponse,
    ModelNotFound,
    ProviderTimeout,
    RateLimited,
    ServerError,
)
from margin.providers.scripts import Rule, Script, scripted_answer

__all__ = ["Rule", "Script", "fake_handler", "register_script", "scripts"]

_SCRIPTS: dict[str, Script] = {"echo": Script()}


def register_script(name: str, script: Script) -> None:
    """Make `fake/<name>` answer from `script` in this process."""
    _SCRIPTS[name] = script


def scripts() -> dict[str, Script]:
    """The scripts registered in this process, by name."""
    return dict(_SCRIPTS)


def _script_for(model: str) -> Script:
    name = model.split("/", 1)[1] if "/" in model else model
    if name not in _SCRIPTS:
        raise ModelNotFound(f"no fake script named {name!r}; known: {sorted(_SCRIPTS)}")
    return _SCRIPTS[name]


async def _fake_call(
    model: str, messages: list[dict[str, Any]], timeout: float | None, max_tokens: int | None
) -> tuple[str, int, int, str]:
    script = _script_for(model)
    fault = script.draw_fault()
    if script.latency_s:
        await asyncio.sleep(script.latency_s)
    if fault == "429":
        raise RateLimited("fake rate limit", retry_after=script.retry_after_s)
    if fault in ("500", "503"):
        raise ServerError(f"fake HTTP {fault}")
    if fault == "timeout":
        await asyncio.sleep(timeout or 0.0)
        raise ProviderTimeout("fake timeout")
    if fault == "malformed":
        raise MalformedResponse("fake garbage body")
    if fault == "drop":
        raise ConnectionFailed("fake dropped connection")
    return scripted_answer(script, messages, max_tokens)


def fake_handler() -> Any:
    """A litellm CustomLLM instance serving `fake/<name>` (litellm imported by the caller)."""
    # litellm here, when gateway.litellm_module registers us: a cache-hit run never loads it
    from litellm.llms.custom_llm import CustomLLM
    from litellm.types.utils import Choices, Message, ModelResponse, Usage  # (the same reason)

    class FakeLLM(CustomLLM):
        async def acompletion(self, *args: Any, **kwargs: Any) -> ModelResponse:
            timeout = kwargs.get("timeout")
            max_tokens = (kwargs.get("optional_params") or {}).get("max_tokens")
            text, prompt_tokens, completion_tokens, finish = await _fake_call(
                kwargs["model"],
                kwargs["messages"],
                float(timeout) if timeout else None,
                int(max_tokens) if max_tokens is not None else None,
            )
            return ModelResponse(
                model=kwargs["model"],
                choices=[Choices(index=0, finish_reason=finish, message=Message(content=text))],
                usage=Usage(
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    total_tokens=prompt_tokens + completion_tokens,
                ),
            )

    return FakeLLM()
