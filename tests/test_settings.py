"""The one settings object (zhizao.settings)."""

from __future__ import annotations

import pytest

import zhizao
from zhizao.errors import InputError
from zhizao.settings import Settings


def test_defaults_and_validation():
    s = Settings()
    assert s.minor_stop_threshold == 300.0 and dict(s.kgce) == {}
    assert Settings(minor_stop_threshold="240").minor_stop_threshold == 240.0
    for bad in (0, -5, float("nan"), float("inf"), "x", None):
        with pytest.raises(InputError) as e:
            Settings(minor_stop_threshold=bad)
        assert e.value.code == "settings.bad_value"
    with pytest.raises(InputError):
        Settings(kgce={"electricity": -0.1})


def test_settings_are_immutable_and_replace_validates():
    s = Settings(kgce={"electricity": 0.1})
    with pytest.raises(AttributeError):
        s.minor_stop_threshold = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.kgce["electricity"] = 2  # type: ignore[index]
    t = s.replace(minor_stop_threshold=120)
    assert t.minor_stop_threshold == 120 and t.kgce == {"electricity": 0.1} and s.minor_stop_threshold == 300
    with pytest.raises(InputError) as e:
        s.replace(minor_stop=1)
    assert e.value.code == "settings.unknown"


def test_settings_pickle_for_process_pools():
    import pickle

    s = Settings(minor_stop_threshold=200, kgce={"steam": 0.03})
    assert pickle.loads(pickle.dumps(s)) == s


def test_from_file(tmp_path):
    p = tmp_path / "zhizao.toml"
    p.write_text('minor_stop_threshold = 240\n[kgce]\nelectricity = 0.1229\n', encoding="utf-8")
    s = Settings.from_file(p)
    assert s.minor_stop_threshold == 240 and s.kgce == {"electricity": 0.1229}
    p.write_text("minor_stop_threshold = \n", encoding="utf-8")
    with pytest.raises(InputError) as e:
        Settings.from_file(p)
    assert e.value.code == "settings.bad_file"
    p.write_text("colour = 'red'\n", encoding="utf-8")
    with pytest.raises(InputError):
        Settings.from_file(p)


def test_the_package_exports_the_one_settings_class():
    assert zhizao.Settings is Settings
    from zhizao.kpi import elements

    assert elements.Settings is Settings
