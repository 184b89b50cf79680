"""promptctl: prompts versioned in Git, resolved at runtime, and linked to every trace.

``import promptctl`` stays light: the runtime loader's names are imported on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "Registry": ("promptctl.runtime", "Registry"),
    "ResolvedPrompt": ("promptctl.runtime", "ResolvedPrompt"),
    "instrument": ("promptctl.runtime", "instrument"),
    "PromptctlError": ("promptctl.errors", "PromptctlError"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'promptctl' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value
