"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_openai import FakeOpenAIServer

from synth_empathy.lm.endpoint import forget_endpoints


@pytest.fixture(autouse=True, scope="session")
def _model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Converted models (lm/requantize.py) go to a folder of this test session, not the user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SYNTH_EMPATHY_CACHE", str(tmp_path_factory.mktemp("model-cache")))
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def _fresh_endpoints() -> Iterator[None]:
    """Each test learns its endpoints anew: a fake server's port may be reused by a later test's server."""
    forget_endpoints()
    yield
    forget_endpoints()


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    """A started fake OpenAI-compatible server (tests/fake_openai.py), stopped after the test.

    Point clients at ``fake_openai.base_url`` ("http://127.0.0.1:PORT/v1"). OPENAI_API_KEY is set to a
    dummy key; OPENAI_API_BASE/OPENAI_BASE_URL are removed so nothing is routed to a real gateway and
    dspy.LM keeps its native engine selection.
    """
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-fake")
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with FakeOpenAIServer() as server:
        yield server


REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
CATALOG = DATA / "catalog"


@pytest.fixture
def small_catalog_overrides() -> dict:
    """RunConfig overrides that point at the small test catalog (3 personas, 4 situations)."""
    return {"personas_dir": str(CATALOG / "personas"), "scenarios_dir": str(CATALOG / "scenarios")}


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance (2 CPUs) for one test module, shut down after it so no later test runs beside Ray."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
