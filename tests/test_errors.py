"""One exception type per kind of error, exported from the package, still caught as the builtin raised before."""
import pytest

import conceptscope as cs
from conceptscope import engine, errors, semantics, widgets
from conceptscope.atlas import store


def test_errors_are_exported_from_the_package():
    assert cs.AtlasMismatchError is errors.AtlasMismatchError
    assert cs.UnknownLayerError is errors.UnknownLayerError
    assert cs.UntraceableModelError is engine.UntraceableModelError
    assert cs.UnsupportedRuleError is engine.UnsupportedRuleError
    assert cs.MissingBundleError is widgets.MissingBundleError
    assert cs.ProtocolError is widgets.ProtocolError
    assert cs.FoundationUnavailableError is semantics.FoundationUnavailableError
    assert all(name in cs.__all__ for name in ("AtlasMismatchError", "UnknownLayerError", "UntraceableModelError",
                                                "MissingBundleError", "WeightsUnavailableError"))


def test_an_unknown_layer_is_caught_as_keyerror_and_valueerror_with_a_plain_message():
    error = errors.UnknownLayerError("the atlas has no layer 'x'; its layers: a, b")
    assert isinstance(error, KeyError) and isinstance(error, ValueError)
    assert str(error) == "the atlas has no layer 'x'; its layers: a, b"  # not KeyError's quoted repr


def test_an_atlas_mismatch_is_a_valueerror_raised_by_the_store(tmp_path):
    (tmp_path / store.MANIFEST).write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="format"):
        store.read_manifest(tmp_path)
    with pytest.raises(cs.AtlasMismatchError):
        store.read_manifest(tmp_path)
