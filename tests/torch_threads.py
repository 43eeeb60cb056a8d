"""An autouse fixture for modules whose models see one or two images per forward; import it to use it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()  # one or two images per forward: a second thread only contends
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
