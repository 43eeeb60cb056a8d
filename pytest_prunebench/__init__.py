"""pytest-prunebench: pruning configurations as pytest cases measured on an OpenVINO device."""

__version__ = "0.1.0"
