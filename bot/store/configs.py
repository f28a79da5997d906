"""Each repository's last good `.bosun/` config commit, served while a newer one is broken."""

from __future__ import annotations

from bot.store.database import Database
from bot.store.tables import RepoConfigRecord


class Configs:
    def __init__(self, db: Database) -> None:
        self._db = db

    def remember_good(self, repo_full_name: str, sha: str) -> None:
        """Record `sha` as the repository's last good config commit (one upsert)."""
        statement = self._db.insert(RepoConfigRecord).values(
            repo_full_name=repo_full_name, good_sha=sha, accepted_at=self._db.now()
        )
        statement = statement.on_conflict_do_update(
            index_elements=["repo_full_name"],
            set_={
                "good_sha": statement.excluded.good_sha,
                "accepted_at": statement.excluded.accepted_at,
            },
        )
        with self._db.write() as session:
            session.execute(statement)

    def last_good(self, repo_full_name: str) -> str | None:
        """The commit of the repository's last good config, if one was ever accepted."""
        with self._db.read() as session:
            record = session.get(RepoConfigRecord, repo_full_name)
            return None if record is None else record.good_sha
