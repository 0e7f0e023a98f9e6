"""The signing service sets asn1crypto's classes up on one thread before serving: the first build
of a class is not thread-safe (a second thread can see its name map half-built)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
from asn1crypto import cms, core, tsp
from services.signing.crypto.asn1_classes import _subclasses, set_up_all_classes

assert cms.CMSVersion._reverse_map is None, "already set up: the check would prove nothing"
count = set_up_all_classes()
missing = [
    cls.__name__ for cls in _subclasses(core.Asn1Value)
    if getattr(cls, "_map", None) and not set(cls._reverse_map or {}) >= set(cls._map.values()) - {None}
]
assert not missing, missing
assert cms.CMSVersion._reverse_map["v1"] == 1 and tsp.PKIStatus._reverse_map["granted"] == 0
print(count)
"""


def test_every_named_value_map_is_complete_before_the_first_concurrent_call() -> None:
    # a fresh interpreter: in this one other tests may already have set the classes up
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 300  # asn1crypto's and pyHanko's classes, not a handful
