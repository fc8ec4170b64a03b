"""The runner tests' fixtures (a cache folder, a models config, the loopback key), shared."""

from tests.execute.conftest import _loop_key, cache_dir, models_config  # noqa: F401
