"""Repo-level pytest configuration. The prunebench plugin itself loads through its pytest11 entry point."""
