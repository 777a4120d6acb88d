"""Where studies live: Optuna's RDB storage (SQLite by default, any SQLAlchemy URL) and a blob table.

Owns: the default storage URL (a SQLite file in the project's data folder), opening a storage with
heartbeats so a killed worker's trial is detected and retried, and :class:`BlobStore`, a
content-addressed table in the SAME database that carries a study's model and data to every
worker, on any machine (never a local path). A blob is fetched by its SHA-256 and checked
against it, so a worker runs exactly the bytes the study was created with.

Example:
    >>> storage = open_storage()                     # sqlite:///.../data/studies.db
    >>> digest = BlobStore(storage).put(b"...")
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..data import default_data_home

DEFAULT_FILE = "studies.db"
# A worker beats every HEARTBEAT_SECONDS; a trial whose worker was silent for GRACE_SECONDS is failed
# and, through RetryHeartbeatStaleTrialCallback, queued again (at most MAX_RETRY times).
HEARTBEAT_SECONDS = 5
GRACE_SECONDS = 20
MAX_RETRY = 3


def default_storage_url() -> str:
    """``sqlite:///<data folder>/studies.db``: nothing new runs for a single user."""
    return f"sqlite:///{Path(default_data_home()) / DEFAULT_FILE}"


def storage_url(storage=None) -> str:
    """The URL of ``storage`` (None: the default SQLite file; an RDBStorage: its URL; a text: itself)."""
    if storage is None:
        return default_storage_url()
    if isinstance(storage, (str, os.PathLike)):
        text = os.fspath(storage)
        if "://" not in text:  # a bare file path means a SQLite file
            return f"sqlite:///{Path(text).expanduser().resolve()}"
        return text
    url = getattr(storage, "url", None)
    if isinstance(url, str):
        return url
    raise TypeError(f"storage is a {type(storage).__name__}; give None (the default SQLite file), a database URL "
                    "such as sqlite:///studies.db or postgresql+psycopg2://user@host/db, or a storage from "
                    "open_storage()")


def open_storage(storage=None, *, heartbeat_seconds: int | None = HEARTBEAT_SECONDS,
                 grace_seconds: int = GRACE_SECONDS, max_retry: int = MAX_RETRY):
    """An Optuna ``RDBStorage`` with heartbeats and automatic retry of trials whose worker died.

    Args:
        storage: None (default SQLite file), a URL, a file path (SQLite) or an existing storage
            (returned as it is).
        heartbeat_seconds: how often a running trial's worker records that it is alive (None: no
            heartbeats, for studies whose trials are asked and told by one process, like autocompress).
        grace_seconds: silence after which a running trial counts as dead.
        max_retry: how many times a dead trial is queued again.

    Raises:
        ValueError: an URL SQLAlchemy cannot use (names the URL and what is accepted).
    """
    from .study import _optuna

    optuna = _optuna()

    if isinstance(storage, optuna.storages.RDBStorage):
        return storage
    url = storage_url(storage)
    engine_kwargs = {}
    if url.startswith("sqlite:"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Several local processes share one SQLite file: wait for its lock instead of failing at once.
        engine_kwargs = {"connect_args": {"timeout": 60}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    beats = {} if heartbeat_seconds is None else {
        "heartbeat_interval": heartbeat_seconds, "grace_period": grace_seconds,
        "heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **beats)
    except Exception as error:  # noqa: BLE001  (SQLAlchemy/driver errors have many types; name the URL)
        raise ValueError(f"cannot open study storage {_redact(url)}: {error}. Give sqlite:///path/to/file.db "
                         "or a PostgreSQL URL postgresql+psycopg2://user@host:port/database") from error


def _redact(url: str) -> str:
    """The URL without its password, for error messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
    return url


class BlobStore:
    """Content-addressed bytes in the study database (table ``compresslab_blobs``).

    ``put`` stores bytes once under their SHA-256 (a second put of the same bytes is free);
    ``get`` returns them after checking the digest.
    """

    TABLE = "compresslab_blobs"

    def __init__(self, storage):
        import sqlalchemy as sa

        self.engine = open_storage(storage).engine
        self._metadata = sa.MetaData()
        self.table = sa.Table(self.TABLE, self._metadata,
                              sa.Column("digest", sa.String(64), primary_key=True),
                              sa.Column("size", sa.BigInteger, nullable=False),
                              sa.Column("content", sa.LargeBinary, nullable=False))
        self._metadata.create_all(self.engine, checkfirst=True)

    def put(self, content: bytes) -> str:
        """Store ``content``; returns its SHA-256 hex digest."""
        import sqlalchemy as sa

        digest = hashlib.sha256(content).hexdigest()
        with self.engine.begin() as connection:
            present = connection.execute(sa.select(self.table.c.digest).where(self.table.c.digest == digest)).first()
            if present is None:
                try:
                    connection.execute(self.table.insert().values(digest=digest, size=len(content),
                                                                  content=content))
                except sa.exc.IntegrityError:  # another process stored the same bytes meanwhile
                    pass
        return digest

    def get(self, digest: str) -> bytes:
        """The bytes stored under ``digest``.

        Raises:
            KeyError: nothing is stored under that digest.
            ValueError: the stored bytes do not match their digest (a damaged database).
        """
        import sqlalchemy as sa

        with self.engine.connect() as connection:
            row = connection.execute(sa.select(self.table.c.content).where(self.table.c.digest == digest)).first()
        if row is None:
            raise KeyError(f"no blob {digest[:12]}... in the study storage: the study was created elsewhere "
                           "without its inputs, or the database was cleared")
        content = bytes(row[0])
        if hashlib.sha256(content).hexdigest() != digest:
            raise ValueError(f"blob {digest[:12]}... in the study storage is damaged (its SHA-256 does not match)")
        return content


__all__ = ["default_storage_url", "storage_url", "open_storage", "BlobStore", "HEARTBEAT_SECONDS",
           "GRACE_SECONDS", "MAX_RETRY"]
