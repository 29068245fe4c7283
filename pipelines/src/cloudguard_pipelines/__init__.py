"""The CloudGuard training pipeline: one step list for Argo and the local runner."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cloudguard-pipelines")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"
