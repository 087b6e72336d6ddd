"""Fixtures shared by the test modules: the shapes world, a small test set and an explainer of its model."""
import pytest

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
