"""The result of checking one piece of input: a normalised value or the violations found."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from kit.errors import FieldViolation, ViolationCollector

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True)
class Checked(Generic[T_co]):
    """`value` is the normalised input when `violations` is empty, else None."""

    value: T_co | None
    violations: tuple[FieldViolation, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.violations

    def unwrap(self) -> T_co:
        """The value; only call after the violations were raised, so a None here is a bug."""
        if self.violations:
            raise RuntimeError(f"unwrap() on a failed check: {self.violations}")
        return self.value  # type: ignore[return-value]  # None is legitimate for optional fields


def good(value: T) -> Checked[T]:
    if value is None:  # an optional field left blank: one shared result (Checked is immutable)
        return _GOOD_NONE  # type: ignore[return-value]
    return Checked(value)


def bad(field: str, description: str) -> Checked[T]:
    return Checked(None, (FieldViolation(field, description),))


def raise_if_invalid(*checks: Checked[object]) -> None:
    """Raise one InvalidArgument naming every violation of every check."""
    if not any(check.violations for check in checks):  # the usual case: nothing to collect
        return
    collector = ViolationCollector()
    for check in checks:
        collector.violations.extend(check.violations)
    collector.raise_if_any()


_GOOD_NONE: Checked[None] = Checked(None)
