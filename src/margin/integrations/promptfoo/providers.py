"""promptfoo providers as margin models: litellm ids, and keys as `${VAR}` references, never
values."""

from __future__ import annotations

from typing import Any

from margin.integrations.promptfoo.common import Loss, short, slug, unique

PROVIDERS: dict[str, tuple[str, str | None]] = {
    # promptfoo prefix: (litellm prefix, the key's usual environment variable)
    "openai:chat": ("openai", "OPENAI_API_KEY"),
    "openai:responses": ("openai", "OPENAI_API_KEY"),
    "openai:completion": ("text-completion-openai", "OPENAI_API_KEY"),
    "openai": ("openai", "OPENAI_API_KEY"),
    "anthropic:messages": ("anthropic", "ANTHROPIC_API_KEY"),
    "anthropic": ("anthropic", "ANTHROPIC_API_KEY"),
    "ollama:chat": ("ollama_chat", None),
    "ollama:completion": ("ollama", None),
    "ollama": ("ollama", None),
    "azure:chat": ("azure", "AZURE_API_KEY"),
    "azureopenai:chat": ("azure", "AZURE_API_KEY"),
    "azure": ("azure", "AZURE_API_KEY"),
    "vertex": ("vertex_ai", None),
    "google": ("gemini", "GEMINI_API_KEY"),
    "gemini": ("gemini", "GEMINI_API_KEY"),
    "bedrock": ("bedrock", None),
    "mistral": ("mistral", "MISTRAL_API_KEY"),
    "groq": ("groq", "GROQ_API_KEY"),
    "openrouter": ("openrouter", "OPENROUTER_API_KEY"),
    "togetherai": ("together_ai", "TOGETHERAI_API_KEY"),
    "fireworks": ("fireworks_ai", "FIREWORKS_API_KEY"),
    "deepseek": ("deepseek", "DEEPSEEK_API_KEY"),
    "xai": ("xai", "XAI_API_KEY"),
    "perplexity": ("perplexity", "PERPLEXITYAI_API_KEY"),
    "cohere": ("cohere", "COHERE_API_KEY"),
    "vllm": ("hosted_vllm", None),
    "huggingface:text-generation": ("huggingface", "HF_TOKEN"),
}


def litellm_id(provider: str) -> tuple[str, str | None]:
    """promptfoo's provider id as litellm's model id and the key's environment variable."""
    for prefix in sorted(PROVIDERS, key=len, reverse=True):
        if provider.startswith(prefix + ":"):
            name = provider[len(prefix) + 1 :]
            if not name:
                break
            target, key = PROVIDERS[prefix]
            return f"{target}/{name}", key
    raise ValueError(
        "not a provider litellm serves (custom providers, scripts and HTTP "
        "endpoints are not converted)"
    )


def convert_providers(raw: Any, lost: list[Loss], changed: list[Loss]) -> list[dict[str, Any]]:
    """promptfoo's `providers` as margin models (litellm ids, keys as `${VAR}` references); a
    provider that does not convert is a loss, a key written in the config a change."""
    items = raw if isinstance(raw, list) else [raw] if raw else []
    models: list[dict[str, Any]] = []
    taken: set[str] = set()
    for index, item in enumerate(items):
        where = f"providers[{index}]"
        spec: dict[str, Any] = (
            {"id": item} if isinstance(item, str) else dict(item) if isinstance(item, dict) else {}
        )
        provider = str(spec.get("id", ""))
        try:
            model, key = litellm_id(provider)
        except ValueError as exc:
            lost.append(Loss(where, provider or short(item), str(exc)))
            continue
        config = spec.get("config") or {}
        base = config.get("apiBaseUrl") or config.get("apiHost") or config.get("baseUrl")
        label = str(spec.get("label") or model.split("/", 1)[1])
        entry: dict[str, Any] = {
            "name": unique(slug(label, f"model-{index + 1}"), taken),
            "model": model,
        }
        if base:
            base = str(base)
            entry["api_base"] = base if base.startswith("http") else f"https://{base}"
        if config.get("apiKeyEnvar"):
            entry["api_key"] = "${" + str(config["apiKeyEnvar"]) + "}"
        elif key is not None:
            entry["api_key"] = "${" + key + "}"
        if config.get("apiKey"):
            changed.append(
                Loss(
                    where,
                    "apiKey",
                    "a key written in the config is never copied: "
                    "the model reads " + entry.get("api_key", "its provider's variable"),
                )
            )
        sampling = {k: config[k] for k in ("temperature", "top_p", "max_tokens") if k in config}
        if sampling:
            entry["sampling"] = sampling
        models.append(entry)
    return models
