"""Shared by the agents' tests that use the real embedded model."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def llm(embedded_model):
    """An engine over the real embedded model, in a thread of this process,
    one per test module."""
    from agents.inference import client_for
    model = client_for(embedded_model, runner="thread")
    yield model
    model.close()
