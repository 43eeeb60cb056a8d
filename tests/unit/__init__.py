"""Unit layer: in-process tests, no pytester, no subprocess, no device, training only a few steps of tiny nets.

`make test-fast` runs this layer alone; keep it under a minute (move a test that takes a second or more to
tests/e2e).
"""
