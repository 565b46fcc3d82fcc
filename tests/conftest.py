"""Suite-wide guards.

A test (or the code under test) that changes torch's process-wide default dtype and does not
restore it silently changes every later test in the same process, as float64 weights meeting
float32 inputs. The guard restores float32 after every test and fails the test that leaked.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _default_dtype_is_restored():
    yield
    leaked = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    assert leaked == torch.float32, f"the test left torch's default dtype at {leaked}"
