"""A user model module that ends the process when imported (tests/hostile)."""

import sys

sys.exit("this module refuses to be imported")


def factory(num_classes: int) -> None:
    return None
