"""Helpers shared by checker.py and corpus.py, the Python halves of test_cli.sh."""
import math
import sys


def fail(message):
    """Prints `message` and exits 1: the check it stands for failed."""
    print(message)
    sys.exit(1)


def same_value(got, want):
    """Equal values of the same JSON type, recursively; floats also by the sign of zero."""
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(same_value, got, want))
    if isinstance(want, float):
        return type(got) is float and got == want and math.copysign(1, got) == math.copysign(1, want)
    return type(got) is type(want) and got == want


def unique_keys(pairs):
    """object_pairs_hook for json.loads: a dict, or a failed check if a key repeats."""
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        fail(f"duplicate key in {keys}")
    return dict(pairs)
