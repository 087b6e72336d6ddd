"""Fixtures shared by the test modules: the shapes world, a small test set and an explainer of its model."""
import pytest
import torch

import conceptscope as cs


@pytest.fixture(scope="session")
def world():
    return cs.load_world("shapes")


@pytest.fixture(scope="module")
def data(world):
    return world.dataset("test", n=40)


@pytest.fixture(scope="module")
def xp(world):
    return cs.Explainer(world.model)


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for the module: atlas builds are bit-identical only at the same thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def close_figures():
    """Close the matplotlib figures a test drew (pyplot keeps every figure open until closed)."""
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
