"""Optional dependencies: which extra of ``pip install 'latentmim[...]'`` brings a package.

``pip install latentmim`` brings what pre-training, export and loading need. The evaluation
suites' packages (scikit-learn, SciPy, matplotlib), TensorBoard, submitit and wandb come with
extras (pyproject.toml). A feature that needs one calls :func:`require` before it starts, so a
missing package is one line naming the extra that brings it, not a traceback halfway through:

    latentmim: error: eval fewshot needs scikit-learn: pip install 'latentmim[eval]'

Presence is checked with :func:`importlib.util.find_spec`: nothing is imported, so checking is
cheap enough for ``--help`` paths and the package is imported where it is used.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

from latentmim.config.errors import ConfigError

# Import name -> the name of its distribution, as pip spells it.
PACKAGES: dict[str, str] = {
    "sklearn": "scikit-learn",
    "scipy": "SciPy",
    "matplotlib": "matplotlib",
    "tensorboard": "TensorBoard",
    "submitit": "submitit",
    "wandb": "wandb",
}


def available(module: str) -> bool:
    """Whether ``module`` (an import name, e.g. ``sklearn``) is installed."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken parent package, or a module without a spec
        return False


def install_hint(module: str, extra: str, feature: str) -> str:
    """``"{feature} needs {package}: pip install 'latentmim[{extra}]'"``."""
    return f"{feature} needs {PACKAGES.get(module, module)}: pip install 'latentmim[{extra}]'"


def require(module: str, extra: str, feature: str) -> None:
    """Fail with one line when ``feature`` cannot run for want of ``module``.

    Args:
        module: import name of the package (``sklearn``, ``matplotlib``, ...).
        extra: the extra of latentmim that installs it (``eval``, ``viz``, ...).
        feature: what needs it, as the user asked for it (``eval fewshot``, ``log.curves=true``).

    Raises:
        ConfigError: the package is not installed.
    """
    if not available(module):
        raise ConfigError(install_hint(module, extra, feature))


def require_all(modules: Iterable[str], extra: str, feature: str) -> None:
    """:func:`require` for each of ``modules``; the first missing one is reported."""
    for module in modules:
        require(module, extra, feature)
