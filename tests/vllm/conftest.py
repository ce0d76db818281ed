"""One embedded vLLM for the whole test session (it takes half a minute to start)."""

from collections.abc import Iterator

import pytest

from agent.embedded import SERVED_NAME, EmbeddedLLM, Paths
from configs.settings import Settings


@pytest.fixture(scope="session")
def vllm_url() -> Iterator[str]:
    settings = Settings()
    if not Paths(settings.embedded.home).ready():
        pytest.fail("the embedded LLM is not set up: run ./install.sh (or `specvoice llm setup`)")
    settings.embedded.port = 8019  # not the default, so a running `specvoice` does not collide
    with EmbeddedLLM(settings.embedded, log=lambda m: None) as url:
        yield url


@pytest.fixture
def model_name() -> str:
    return SERVED_NAME
