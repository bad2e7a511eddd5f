"""The lazy top-level exports of ``inforidge`` (PEP 562)."""

import importlib
import subprocess
import sys

import pytest

import inforidge


@pytest.mark.parametrize("name", sorted(inforidge._EXPORTS))
def test_every_export_is_the_defining_modules_object(name):
    module = importlib.import_module(inforidge._EXPORTS[name])
    assert getattr(inforidge, name) is getattr(module, name)
    assert name in dir(inforidge)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'no_such_thing'"):
        inforidge.no_such_thing  # noqa: B018


def test_import_inforidge_is_light():
    code = "import inforidge, sys; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
