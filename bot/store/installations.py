"""Installations of the App and the repositories each grants."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select

from bot.store.database import Database
from bot.store.tables import Installation, InstallationRepository


class Installations:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record(
        self, *, installation_id: int, account_login: str, account_type: str, status: str
    ) -> None:
        now = self._db.now()
        with self._db.write() as session:
            row = session.get(Installation, installation_id)
            if row is None:
                row = Installation(
                    id=installation_id,
                    account_login=account_login,
                    account_type=account_type,
                    status=status,
                    updated_at=now,
                )
            else:
                row.account_login, row.status, row.updated_at = account_login, status, now
            session.add(row)

    def get(self, installation_id: int) -> Installation | None:
        with self._db.read() as session:
            return session.get(Installation, installation_id)

    def set_repositories(
        self, installation_id: int, *, added: Sequence[str], removed: Sequence[str]
    ) -> None:
        now = self._db.now()
        with self._db.write() as session:
            for name in removed:
                row = session.get(InstallationRepository, (installation_id, name))
                if row is not None:
                    session.delete(row)
            for name in added:
                if session.get(InstallationRepository, (installation_id, name)) is None:
                    session.add(
                        InstallationRepository(
                            installation_id=installation_id, repo_full_name=name, added_at=now
                        )
                    )

    def repositories(self, installation_id: int) -> list[str]:
        with self._db.read() as session:
            rows = session.exec(
                select(InstallationRepository.repo_full_name)
                .where(InstallationRepository.installation_id == installation_id)
                .order_by(col(InstallationRepository.repo_full_name))
            ).all()
            return list(rows)
