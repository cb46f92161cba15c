"""Method registry and plugin loading.

A method is a :class:`~hashbench.hasher.Hasher` subclass registered under a name
with :func:`register_method`. Methods come from three places, all through the
same decorator:

* the entry-point group ``hashbench.methods`` of every installed package
  (hashbench's own built-in methods in ``methods/`` are registered this way,
  exactly as a third-party package would be);
* a Python file given with ``--plugin path/to/file.py`` (:func:`load_plugin_file`);
* any module the user imports before calling :func:`create`.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, TypeVar

from .errors import ConfigError, PluginError
from .hasher import Hasher

ENTRY_POINT_GROUP = "hashbench.methods"

_METHODS: dict[str, type[Hasher]] = {}
_ORIGINS: dict[str, str] = {}
_entry_points_loaded = False

H = TypeVar("H", bound=type)


def _origin(cls: type) -> str:
    mod = sys.modules.get(cls.__module__)
    where = getattr(mod, "__file__", None) or cls.__module__
    return f"{where}:{cls.__qualname__}"


def register_method(name: str) -> Callable[[H], H]:
    """Class decorator: register a :class:`Hasher` subclass under ``name``.

    Registering the same class twice is harmless (a module imported twice);
    two different classes claiming one name is a :class:`PluginError`.
    """
    if not isinstance(name, str) or not name or name != name.strip() or "," in name or "/" in name:
        raise ConfigError(f"invalid method name {name!r}: use a non-empty name without ',' or '/'")

    def decorate(cls: H) -> H:
        if not (isinstance(cls, type) and issubclass(cls, Hasher)):
            raise PluginError(f"register_method({name!r}): {cls!r} is not a Hasher subclass")
        known = _METHODS.get(name)
        if known is not None and _same_class(known, cls) is False:
            raise PluginError(
                f"two plugins claim the method name {name!r}: "
                f"{_ORIGINS[name]} and {_origin(cls)}"
            )
        cls.name = name
        _METHODS[name] = cls
        _ORIGINS[name] = _origin(cls)
        return cls

    return decorate


def _same_class(a: type, b: type) -> bool:
    # A module re-executed (imported by path and by name) yields a new class
    # object with the same qualified name and file: treat it as the same one.
    return a is b or (_origin(a) == _origin(b))


def unregister_method(name: str) -> None:
    """Remove a method (for tests and interactive sessions)."""
    _METHODS.pop(name, None)
    _ORIGINS.pop(name, None)


def load_entry_points(force: bool = False) -> None:
    """Import every method advertised in the ``hashbench.methods`` entry-point group."""
    global _entry_points_loaded
    if _entry_points_loaded and not force:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:
            raise PluginError(
                f"entry point {ep.name!r} = {ep.value!r} (group {ENTRY_POINT_GROUP}) failed to import: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        # An entry point may name the class directly without decorating it.
        if isinstance(obj, type) and issubclass(obj, Hasher) and ep.name not in _METHODS:
            register_method(ep.name)(obj)


def load_plugin_file(path: str | Path) -> list[str]:
    """Import a user's plugin file; returns the method names it registered."""
    path = Path(path)
    if not path.is_file():
        raise PluginError(f"plugin file {path}: no such file")
    before = dict(_METHODS)
    mod_name = f"hashbench_plugin_{path.stem}_{abs(hash(str(path.resolve()))) % 10**8}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"plugin file {path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except PluginError:
        sys.modules.pop(mod_name, None)
        raise
    except BaseException as exc:
        sys.modules.pop(mod_name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        tb = traceback.extract_tb(exc.__traceback__)
        line = next((f" (line {fr.lineno})" for fr in reversed(tb) if fr.filename == str(path)), "")
        raise PluginError(f"plugin file {path} failed to import{line}: {type(exc).__name__}: {exc}") from exc
    added = [n for n in _METHODS if n not in before or _METHODS[n] is not before[n]]
    if not added:
        raise PluginError(
            f"plugin file {path} registered no method: decorate a Hasher subclass with "
            "@hashbench.register_method('name')"
        )
    _PLUGIN_FILES.setdefault(str(path.resolve()), added)
    return added


#: plugin files loaded in this process (resolved path -> the names they registered), so that
#: worker processes (hashbench.execution) can load them too
_PLUGIN_FILES: dict[str, list[str]] = {}


def loaded_plugin_files() -> dict[str, list[str]]:
    """The plugin files this process loaded, and the method names each registered."""
    return dict(_PLUGIN_FILES)


def available_methods() -> list[str]:
    """Names of every registered method, sorted."""
    load_entry_points()
    return sorted(_METHODS)


def get_method(name: str) -> type[Hasher]:
    """The class registered under ``name``, or a :class:`ConfigError` listing the known ones."""
    load_entry_points()
    try:
        return _METHODS[name]
    except KeyError:
        raise ConfigError(
            f"unknown method {name!r}; known methods: {', '.join(sorted(_METHODS)) or '(none)'}"
        ) from None


def split_variant(spec: str) -> tuple[str, str | None]:
    """``"udht@paper"`` -> ``("udht", "paper")``; ``"itq"`` -> ``("itq", None)``."""
    name, at, variant = spec.partition("@")
    if at and not variant:
        raise ConfigError(f"method {spec!r}: a named configuration is missing after '@'")
    return name, (variant if at else None)


def resolve_method(spec: str) -> tuple[type[Hasher], dict[str, Any]]:
    """The class of ``name[@configuration]`` and the parameters of that named configuration.

    An unknown configuration is a :class:`ConfigError` naming the known ones.
    """
    name, variant = split_variant(spec)
    cls = get_method(name)
    if variant is None:
        return cls, {}
    configs = getattr(cls, "configurations", {}) or {}
    if variant not in configs:
        raise ConfigError(
            f"method {name!r} has no configuration {variant!r}; known: {', '.join(sorted(configs)) or '(none)'}"
        )
    params = dict(configs[variant])
    unknown = sorted(set(params) - set(cls._param_names()))
    if unknown:  # a bug in the method's own declaration, caught when it is used
        raise ConfigError(f"{name}@{variant}: configuration names unknown parameters {unknown}")
    return cls, params


def method_origin(name: str) -> str:
    get_method(name)
    return _ORIGINS[name]


def create(name: str, **params: Any) -> Hasher:
    """Instantiate a registered method: ``create("itq", bits=32, seed=0)``, or a named
    configuration of it: ``create("udht-frozen@paper", bits=32)`` (``params`` override it)."""
    cls, preset = resolve_method(name)
    try:
        return cls(**{**preset, **params})
    except TypeError as exc:
        allowed = ", ".join(cls._param_names())
        raise ConfigError(f"{name}: bad parameters {sorted(params)} ({exc}); accepted: {allowed}") from exc
