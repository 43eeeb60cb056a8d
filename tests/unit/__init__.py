"""Unit layer: pure, in-process tests (no pytester, no subprocess, no real training or devices); `make test-fast`."""
