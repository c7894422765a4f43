"""Shared fixtures of the engine tests: the real embedded model, loaded once."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"          # no test may reach a model hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def loaded(embedded_model):
    """The embedded model in float32 (exact comparisons against transformers),
    the session's one load (tests/conftest.py)."""
    return embedded_model


@pytest.fixture
def drain():
    return _drain


@pytest.fixture
def reference_greedy():
    return _reference_greedy


def _drain(llm, handles, max_steps: int = 10_000) -> None:
    """Step an inline-runner LLM until every handle is done."""
    for _ in range(max_steps):
        if all(h.done() for h in handles):
            return
        llm.step()
    raise AssertionError("engine did not finish")


def _reference_greedy(loaded, prompt: str, n: int) -> list[int]:
    import torch
    ids = loaded.tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        out = loaded.model.generate(**ids, max_new_tokens=n, do_sample=False)
    return out[0, ids["input_ids"].shape[1]:].tolist()
