"""margin's exceptions: user mistakes (exit 2, one line) and provider faults (data, not crashes)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


_PACKAGE_ROOT = Path(__file__).resolve().parent
"""margin's own source folder: a frame whose file is under it is margin's code."""


class MarginError(Exception):
    """Base of every exception margin raises on purpose."""


class UserError(MarginError):
    """A mistake in what the user gave us: printed as one line, exit code 2, no traceback.

    `where` is the file (and line) the mistake is in, `field` the dotted path inside it.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field

    def one_line(self) -> str:
        """`file:line: field: message`, the form editors and CI logs link to."""
        parts = []
        if self.path is not None:
            parts.append(self.path if self.line is None else f"{self.path}:{self.line}")
        if self.field:
            parts.append(self.field)
        parts.append(" ".join(self.message.split()))
        return ": ".join(parts)

    def __str__(self) -> str:
        return self.one_line()


def not_utf8(
    path: Path | str, data: bytes, exc: UnicodeDecodeError, first_line: int = 1
) -> UserError:
    """A file margin reads back (the journal, results.json, run.json) that is not UTF-8: the
    line and column of the first bad byte (`data` starts at line `first_line`)."""
    start = exc.start
    column = start - data.rfind(b"\n", 0, start)
    return UserError(
        f"not UTF-8 text (byte 0x{data[start]:02x} at column {column}); the file is damaged",
        path=path,
        line=first_line + data.count(b"\n", 0, start),
    )


def invalid_data(
    exc: ValidationError, what: str, path: Path | str, line: int | None = None
) -> UserError:
    """A file margin reads back whose data does not fit its model: the field at fault, and what
    the file should have been (`not a margin journal record`)."""
    problem = exc.errors(include_url=False)[0]
    return UserError(
        f"{what}: {problem['msg']}", path=path, line=line, field=format_loc(problem["loc"]) or None
    )


def format_loc(loc: Iterable[str | int]) -> str:
    """`('tasks', 0, 'prompt')` → `tasks[0].prompt`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class SuiteError(UserError):
    """A suite file that cannot be loaded: bad YAML, wrong shape, bad template or validator."""


class ConfigError(UserError):
    """A config file (models, run settings) that cannot be loaded."""


def margin_bug(exc: BaseException, *, deep: bool = True) -> BaseException | None:
    """The exception in `exc`'s chain that came out of margin's own code — a bug to show with
    its traceback, not a provider fault to record — or None.

    litellm wraps whatever a custom provider raises, so a deliberate ProviderError is looked for
    in the chain first. `deep` looks at every frame below the one that caught each exception
    (a fault inside `re`, called by margin's code, is still margin's); otherwise only at the
    frame that raised it.
    """
    root = _PACKAGE_ROOT

    def ours(frame_tb: TracebackType) -> bool:
        try:
            return Path(frame_tb.tb_frame.f_code.co_filename).resolve().is_relative_to(root)
        except (OSError, ValueError):
            return False

    seen: BaseException | None = exc
    for _ in range(16):
        # Only errors: a cancellation (a timeout's, say) passing through margin is not a bug.
        if seen is None or isinstance(seen, ProviderError) or not isinstance(seen, Exception):
            return None
        frames = []
        tb = seen.__traceback__.tb_next if seen.__traceback__ is not None else None
        while tb is not None:
            frames.append(tb)
            tb = tb.tb_next
        if any(ours(frame) for frame in (frames if deep else frames[-1:])):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class ProviderError(MarginError):
    """A model call failed for reasons outside the model: an infra error, never a model failure.

    `retryable` says whether trying again may help (rate limits, 5xx, timeouts, dropped
    connections, garbage bodies); the rest (bad key, unknown model) are recorded at once.
    """

    retryable: bool = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def error_class(self) -> str:
        """The name recorded in the journal's `error` field."""
        return type(self).__name__


class RateLimited(ProviderError):
    """HTTP 429: the provider asked us to slow down (honour Retry-After)."""

    retryable = True


class ProviderTimeout(ProviderError):
    """The call did not finish within its timeout (or the provider answered 408)."""

    retryable = True


class ServerError(ProviderError):
    """HTTP 5xx from the provider."""

    retryable = True


class ConnectionFailed(ProviderError):
    """The connection was refused or dropped before an answer arrived."""

    retryable = True


class MalformedResponse(ProviderError):
    """The provider answered with a body we could not read."""

    retryable = True


class AuthenticationFailed(ProviderError):
    """HTTP 401/403: the key is missing or wrong. Not retried."""


class ModelNotFound(ProviderError):
    """HTTP 404 or an unknown model id. Not retried."""


class BadRequest(ProviderError):
    """HTTP 400 and kin (context window exceeded, bad parameter). Not retried."""
