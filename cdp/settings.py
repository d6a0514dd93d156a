"""Runtime settings, read once from the environment so that jobs, DAGs, the CLI and the web service agree
on them. ``Settings.from_env`` is the one place that reads ``CDP_*`` and ``SPARK_REMOTE`` variables; other
modules take a ``Settings`` (or one of its fields) as a parameter, or call ``Settings.from_env()``.

Every setting has a laptop-friendly default: a lake under ``./data/lake``, packs under ``./data/packs``
and the embedded Sail engine. A cluster deployment overrides them with environment variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

ENGINE_MODES = ("embedded", "remote", "classic")


class SettingsError(ValueError):
    """A setting has a value the pipeline cannot use."""


def _path_or_uri(value: str) -> str:
    """Keep object-store URIs as they are; make local paths absolute so every process agrees on them."""
    if "://" in value:
        return value.rstrip("/")
    return str(Path(value).expanduser().resolve())


def _paths(env: dict[str, str], name: str) -> tuple[str, ...]:
    """An ``os.pathsep``-separated list of folders, empty entries dropped."""
    return tuple(p for p in env.get(name, "").split(os.pathsep) if p)


def _mebibytes(env: dict[str, str], name: str, default: int) -> int:
    """A size in MiB: a number of MiB, or a number with a ``m``/``g`` suffix (``4g``, ``4096m``)."""
    value = (env.get(name) or "").strip().lower().removesuffix("b")
    if not value:
        return default
    scale = {"m": 1, "g": 1024}.get(value[-1], 0)
    try:
        return int(float(value[:-1]) * scale) if scale else int(value)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a size in MiB or like 4g, not {env[name]!r}") from exc


def _int(env: dict[str, str], name: str, default: int) -> int:
    try:
        return int(env.get(name) or default)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a positive integer, not {env[name]!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Where data lives and which engine runs the jobs.

    Attributes:
        data_root: parent of the default lake, packs, landing and truth folders.
        lake_root: root of the Delta lake (``bronze|silver|gold|quarantine/<table>``).
        packs_root: where audience packs are written.
        landing_root: where source files are dropped, one folder per source.
        truth_root: the demo population's ground truth (never read by the pipeline).
        engine: ``embedded`` (in-process Sail), ``remote`` (``SPARK_REMOTE``) or ``classic`` (JVM Spark).
        spark_remote: the Spark Connect URL used in remote mode.
        shuffle_partitions: ``spark.sql.shuffle.partitions`` for sessions this package creates.
        engine_memory_mb: the memory pool of the embedded Sail engine in MiB (``CDP_ENGINE_MEMORY``, e.g.
            ``4g``; 0 for no pool): its sorts, aggregates and joins spill to disk past it, and the process
            peaks at about twice it. None by default: Sail 0.7.2's pool (marked experimental) is shared by
            every query of the process and failed a small aggregation in a long test process with "Failed to
            allocate" (the pool nearly all reserved), so it is for one-stage batch runs (``make bench-1m``).
        pii_key: secret for keyed hashes of personal identifiers; never stored in the repository.
        spark_master: the master URL of a classic session this package creates (``CDP_SPARK_MASTER``).
        classic_delta: add the Delta extension and catalog to a classic session (``CDP_CLASSIC_DELTA=1``),
            for a local JVM with ``delta-spark`` jars; under ``spark-submit`` pass them with ``--conf``.
        contract_paths: extra folders searched for contract files, after the packaged ``schemas/``
            (``CDP_CONTRACT_PATH``).
        suite_paths: folders searched for expectation suites before the packaged ``quality/suites``
            (``CDP_SUITE_PATH``).
        tag_paths: extra folders of tag definitions, after the packaged ``tags/catalog`` (``CDP_TAG_PATH``).
        web_tokens: access tokens of the web service injected as ``role:token[:name],...``
            (``CDP_WEB_TOKENS``); a secret, kept out of ``repr``.
        web_tokens_file: the web service's token file (``CDP_WEB_TOKENS_FILE``); ``<data root>/web/
            tokens.json`` when unset.
        min_pack_size: k-anonymity minimum of an audience pack, in people (``CDP_MIN_PACK_SIZE``).
        min_seed_size: smallest lookalike seed, in consented profiled members (``CDP_MIN_SEED_SIZE``).
        min_group_size: the smallest group size an estimate, insight, overlap, TGI or seed match shows as a
            number; smaller groups read ``< k`` (``CDP_MIN_GROUP_SIZE``).
        sql_timeout_seconds: wall-time limit of one analyst SQL statement (``CDP_SQL_TIMEOUT``).
        sql_max_rows: most rows one analyst SQL statement returns (``CDP_SQL_MAX_ROWS``).
        max_request_bytes: largest web request body accepted (``CDP_MAX_REQUEST_BYTES``).
        erasure_retention_hours: how long erased rows stay in old Delta file versions before ``cdp privacy
            erase`` vacuums them (``CDP_ERASURE_RETENTION_HOURS``; 0 vacuums at once).
        ingest_parallel: how many sources one process ingests at a time (``CDP_INGEST_PARALLEL``), as the
            daily DAG's mapped ingest tasks run side by side; each source writes its own tables.
    """

    data_root: str = field(default_factory=lambda: _path_or_uri("data"))
    lake_root: str = ""
    packs_root: str = ""
    landing_root: str = ""
    truth_root: str = ""
    engine: str = "embedded"
    spark_remote: str | None = None
    shuffle_partitions: int = 8
    engine_memory_mb: int = 0
    pii_key: str | None = None
    spark_master: str | None = None
    classic_delta: bool = False
    contract_paths: tuple[str, ...] = ()
    suite_paths: tuple[str, ...] = ()
    tag_paths: tuple[str, ...] = ()
    web_tokens: str | None = field(default=None, repr=False)
    web_tokens_file: str | None = None
    min_pack_size: int = 1000
    min_seed_size: int = 50
    min_group_size: int = 50
    sql_timeout_seconds: int = 30
    sql_max_rows: int = 10_000
    max_request_bytes: int = 16 * 2**20
    erasure_retention_hours: int = 168
    ingest_parallel: int = 2

    def __post_init__(self) -> None:
        for name, sub in (
            ("lake_root", "lake"),
            ("packs_root", "packs"),
            ("landing_root", "landing"),
            ("truth_root", "truth"),
        ):
            if not getattr(self, name):
                object.__setattr__(self, name, f"{self.data_root}/{sub}")
        if self.engine not in ENGINE_MODES:
            raise SettingsError(f"CDP_ENGINE={self.engine!r}: use one of {', '.join(ENGINE_MODES)}")
        if self.engine == "remote" and not self.spark_remote:
            raise SettingsError("CDP_ENGINE=remote needs SPARK_REMOTE=sc://host:port")
        if self.shuffle_partitions < 1:
            raise SettingsError("CDP_SHUFFLE_PARTITIONS must be a positive integer")
        if self.engine_memory_mb < 0:
            raise SettingsError("CDP_ENGINE_MEMORY must be 0 (no pool) or more")
        for name, var in (
            ("min_pack_size", "CDP_MIN_PACK_SIZE"),
            ("min_seed_size", "CDP_MIN_SEED_SIZE"),
            ("min_group_size", "CDP_MIN_GROUP_SIZE"),
            ("sql_timeout_seconds", "CDP_SQL_TIMEOUT"),
            ("sql_max_rows", "CDP_SQL_MAX_ROWS"),
            ("max_request_bytes", "CDP_MAX_REQUEST_BYTES"),
            ("ingest_parallel", "CDP_INGEST_PARALLEL"),
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"{var} must be a positive integer")
        if self.erasure_retention_hours < 0:
            raise SettingsError("CDP_ERASURE_RETENTION_HOURS must be 0 or more")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Build settings from environment variables (``CDP_*`` and ``SPARK_REMOTE``).

        Args:
            env: the mapping to read; ``os.environ`` when omitted.

        Returns:
            The settings. ``SPARK_REMOTE`` alone selects remote mode unless ``CDP_ENGINE`` says otherwise.

        Raises:
            SettingsError: a value is out of range or inconsistent.
        """
        env = dict(os.environ if env is None else env)
        remote = env.get("SPARK_REMOTE") or None
        engine = env.get("CDP_ENGINE") or ("remote" if remote else "embedded")
        partitions = _int(env, "CDP_SHUFFLE_PARTITIONS", 8)
        opt = {
            k: _path_or_uri(env[v])
            for k, v in (
                ("lake_root", "CDP_LAKE_ROOT"),
                ("packs_root", "CDP_PACKS_ROOT"),
                ("landing_root", "CDP_LANDING_ROOT"),
                ("truth_root", "CDP_TRUTH_ROOT"),
            )
            if env.get(v)
        }
        return cls(
            data_root=_path_or_uri(env.get("CDP_DATA_ROOT", "data")),
            engine=engine,
            spark_remote=remote,
            shuffle_partitions=partitions,
            engine_memory_mb=_mebibytes(env, "CDP_ENGINE_MEMORY", 0),
            pii_key=env.get("CDP_PII_KEY") or None,
            spark_master=env.get("CDP_SPARK_MASTER") or None,
            classic_delta=env.get("CDP_CLASSIC_DELTA") == "1",
            contract_paths=_paths(env, "CDP_CONTRACT_PATH"),
            suite_paths=_paths(env, "CDP_SUITE_PATH"),
            tag_paths=_paths(env, "CDP_TAG_PATH"),
            web_tokens=env.get("CDP_WEB_TOKENS") or None,
            web_tokens_file=env.get("CDP_WEB_TOKENS_FILE") or None,
            min_pack_size=_int(env, "CDP_MIN_PACK_SIZE", 1000),
            min_seed_size=_int(env, "CDP_MIN_SEED_SIZE", 50),
            min_group_size=_int(env, "CDP_MIN_GROUP_SIZE", 50),
            sql_timeout_seconds=_int(env, "CDP_SQL_TIMEOUT", 30),
            sql_max_rows=_int(env, "CDP_SQL_MAX_ROWS", 10_000),
            max_request_bytes=_int(env, "CDP_MAX_REQUEST_BYTES", 16 * 2**20),
            erasure_retention_hours=_int(env, "CDP_ERASURE_RETENTION_HOURS", 168),
            ingest_parallel=_int(env, "CDP_INGEST_PARALLEL", 2),
            **opt,
        )

    @property
    def pii_key_file(self) -> Path:
        """Where ``cdp demo`` keeps a generated key when ``CDP_PII_KEY`` is not set (never in the repo)."""
        return Path(self.data_root) / ".pii_key"

    def require_pii_key(self) -> str:
        """The secret for keyed hashes and bronze encryption: ``CDP_PII_KEY``, else the local key file.

        Raises:
            SettingsError: neither is set.
        """
        if self.pii_key:
            return self.pii_key
        if self.pii_key_file.is_file():
            return self.pii_key_file.read_text().strip()
        raise SettingsError(
            "no PII key: set CDP_PII_KEY (a long random secret from your secret store), or run "
            f"'cdp init-key' to create {self.pii_key_file} for local use"
        )

    def ensure_local_pii_key(self) -> str:
        """Return the PII key, creating a random one in ``pii_key_file`` (mode 600) when none is set."""
        try:
            return self.require_pii_key()
        except SettingsError:
            import secrets

            self.pii_key_file.parent.mkdir(parents=True, exist_ok=True)
            self.pii_key_file.write_text(secrets.token_hex(32))
            self.pii_key_file.chmod(0o600)
            return self.require_pii_key()

    def with_data_root(self, data_root: str | Path) -> Settings:
        """The same settings with every data folder placed under another root (tests, demos)."""
        root = _path_or_uri(str(data_root))
        return replace(
            self,
            data_root=root,
            lake_root=f"{root}/lake",
            packs_root=f"{root}/packs",
            landing_root=f"{root}/landing",
            truth_root=f"{root}/truth",
        )
