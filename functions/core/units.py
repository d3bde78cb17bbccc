"""The unit of work, as the services see it: entities to write together, committed all or
nothing. The services know only these Protocols; ``functions.core.persistence.DynamoUnits``
writes them to DynamoDB (one item: a put conditional on the version read; several: one
transaction) and ``tests/fakes.py`` keeps them in memory.

    with self.units() as uow:      # one commit
        uow.save(tenant)
        uow.save(account)

    self.units.save(product)       # one entity, one commit

A failed version condition (a concurrent change) raises ``ConcurrentUpdate`` (409) at commit;
an exception inside the ``with`` block writes nothing.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol


class UnitOfWork(Protocol):
    def save(self, entity: object) -> None:
        """Write ``entity`` at commit, conditional on the version it was read at (a new entity
        has none: it must not exist)."""

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None: ...


class Units(Protocol):
    def __call__(self) -> UnitOfWork:
        """A new, empty unit of work."""

    def save(self, entity: object) -> None:
        """One entity in a unit of its own, committed at once."""
