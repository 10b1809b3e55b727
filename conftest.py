"""Test-wide environment, set before any notebook kernel starts (kernels inherit it).

Tests never touch the network, and the chapters run in fast mode unless the caller chose
otherwise (``make test-gpu`` sets ZOO_MODE=full).
"""
import os

os.environ["ZOO_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("ZOO_MODE", "fast")
