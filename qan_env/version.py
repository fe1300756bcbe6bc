"""The package's one version: ``qan_env.__version__`` and pyproject.toml read it from here."""

__version__ = "0.2.0"
