"""Import a promptfoo config into a margin suite, a models config and gate limits.

promptfoo runs prompts × tests × providers once each; margin runs tasks × cases × models
repeatedly, under paraphrases and noise. The mapping:

- each prompt becomes a task (`prompts_as="tasks"`), or the first prompt a task with the others
  as its paraphrases (`prompts_as="paraphrases"`, when they share their variables); each test
  becomes a case of it: its vars, the values its assertions compare with in `expect` (rendered
  with the test's vars, as promptfoo renders them), and its assertions as the case's own
  validators (`cases[].validators`); `defaultTest`'s assertions are the task's validators;
- assertions become validators with promptfoo's semantics (case sensitivity included; see
  `convert_assertion`); `latency` becomes the task's `max_p95_s` and the gate's, `cost` the
  gate's `max_cost_per_1k`;
- providers become models with litellm ids, keys as `${VAR}` references, never values.

What cannot convert is never dropped silently: every loss is a `Loss` (where, what, why), and
every conversion whose meaning shifts is listed too.

The package, in the order a config flows through it: `files` (file:// references, `$ref`s,
prompts, vars, Nunjucks → Jinja), `assertions` (assertions → validators), `cases` (tests →
cases with their own validators), `tasks` (cases → tasks per prompt, and gate limits),
`providers` (providers → models), `importer` (`import_config`, the whole config), `output` (the
YAML files and their header); `common` holds the result and loss types they share.
"""

from __future__ import annotations

from margin.integrations.promptfoo.assertions import (
    PHRASES,
    UNSUPPORTED,
    Check,
    assertion_from_string,
    convert_assertion,
)
from margin.integrations.promptfoo.common import (
    DEFAULT_TARGET,
    Imported,
    Loss,
    PromptfooError,
    slug,
)
from margin.integrations.promptfoo.files import MAX_EXPANDED_CASES, to_jinja
from margin.integrations.promptfoo.importer import import_config
from margin.integrations.promptfoo.output import dump_yaml, header
from margin.integrations.promptfoo.providers import PROVIDERS, convert_providers, litellm_id

__all__ = [
    "DEFAULT_TARGET",
    "MAX_EXPANDED_CASES",
    "PHRASES",
    "PROVIDERS",
    "UNSUPPORTED",
    "Check",
    "Imported",
    "Loss",
    "PromptfooError",
    "assertion_from_string",
    "convert_assertion",
    "convert_providers",
    "dump_yaml",
    "header",
    "import_config",
    "litellm_id",
    "slug",
    "to_jinja",
]
