"""`python -m bench` runs every benchmark; `python -m bench registry --rows 1000000` runs one.

Each benchmark is a module `bench/<name>_bench.py` with `main(argv: list[str]) -> None`;
arguments after the name go to it.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

SUFFIX = "_bench"


def available() -> list[str]:
    names = (m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]))
    return sorted(name.removesuffix(SUFFIX) for name in names if name.endswith(SUFFIX))


def main(argv: list[str]) -> None:
    names = available()
    if argv and argv[0] in ("-h", "--help"):
        print(f"usage: python -m bench [{'|'.join(names)}] [options of that benchmark]")
        return
    if argv and not argv[0].startswith("-"):
        chosen, rest = [argv[0]], argv[1:]
        if chosen[0] not in names:
            sys.exit(f"unknown benchmark {chosen[0]!r}; available: {', '.join(names)}")
    else:
        chosen, rest = names, argv
    for name in chosen:
        print(f"== {name} ==")
        importlib.import_module(f"bench.{name}{SUFFIX}").main(rest)


if __name__ == "__main__":
    main(sys.argv[1:])
