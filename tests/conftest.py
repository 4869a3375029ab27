"""Shared test set-up: offline hub, the reference fixtures, and single-threaded parity runs."""

import json
import os
from pathlib import Path

import pytest

# A hub lookup must fail fast, never hang on retries: the tests run with no network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
# CI checks ../shared out beside the repository; MASKGCT_FIXTURES points elsewhere if needed.
FIXTURES = Path(os.environ.get("MASKGCT_FIXTURES", REPO.parent / "shared" / "fixtures" / "amphion"))


@pytest.fixture(scope="session")
def fixtures() -> Path:
    """The Amphion reference fixtures folder. Fails (never skips) when it is missing."""
    if not (FIXTURES / "tiny_config.json").is_file():
        pytest.fail(
            f"reference fixtures not found at {FIXTURES}: check out ../shared beside the repository "
            "or set MASKGCT_FIXTURES to the fixtures/amphion folder",
            pytrace=False,
        )
    return FIXTURES


@pytest.fixture(scope="session")
def reference_case(fixtures):
    """``reference_case(name) -> (tensors, meta)``: the fixtures' ``cases/<name>.{safetensors,json}``."""
    from safetensors.torch import load_file

    def load(name: str) -> tuple[dict, dict]:
        cases = fixtures / "cases"
        return load_file(cases / f"{name}.safetensors"), json.loads((cases / f"{name}.json").read_text())

    return load


@pytest.fixture(scope="session")
def tiny_checkpoint(fixtures, tmp_path_factory) -> Path:
    """The tiny snapshot converted once for the whole run (``pipeline_support.convert_tiny``).

    Shared: read it, never write into it (copy it to a test's own folder first).
    """
    from pipeline_support import convert_tiny

    return convert_tiny(fixtures, tmp_path_factory.mktemp("tiny_checkpoint"))


@pytest.fixture
def one_thread():
    """Run a parity test with one torch thread, as the reference fixtures were made."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
