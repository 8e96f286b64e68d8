"""``sql``: execution match of the predicted query against the reference on a SQLite database.

The database is built in memory from ``meta.schema`` (SQL text: ``CREATE TABLE`` …) and
optional ``meta.data`` (``INSERT`` …), or opened read-only from ``meta.db_path``. The
reference query is the record's ``answer`` (or ``meta.gold_sql``). Both queries run under an
authorizer that allows reading only (``SELECT``, reads, functions, recursive CTEs: no
writes, ``ATTACH`` or ``PRAGMA``), a wall-clock limit (``query_timeout_s``, enforced by a
SQLite progress handler, so an endless recursive CTE is interrupted), a cap on result rows
(``max_rows``) and SQLite's own length limits; the check runs in a worker process.

Execution match (Reasoning-SQL's execution reward; Spider/BIRD execution accuracy): 1 when
the result sets are equal, else 0. ``compare``: ``auto`` compares rows as a list when the
reference query ends in a top-level ``ORDER BY`` and as a multiset otherwise; ``set`` (BIRD's
rule: duplicates ignored), ``multiset`` or ``list``. Floats are rounded to ``float_places``
(``float_places: null`` compares them exactly, as BIRD's and Spider's own evaluators do).
A query that fails (syntax error, unknown column, not read-only, too slow) scores 0 with
the reason in ``detail``.

Partial rewards [unverified] (Reasoning-SQL, Pourreza et al., 2025, §3: execution, syntax,
schema linking, n-gram similarity; their weights are not confirmed here): with ``weights``
the score is ``Σ w_k·r_k / Σ w_k`` over ``execution`` (0/1), ``syntax`` (1 if the predicted
query executes), ``schema`` (Jaccard of the table and column names each query mentions) and
``ngram`` (Jaccard of the token ``ngram_n``-grams). The default weights use execution only.

The query is taken from the last ```sql block, else ``<answer>…</answer>``, else the last
fenced block of any kind (order configurable with ``extract``).

    >>> from rewardsmith.verifiers.sql import SqlVerifier
    >>> v = SqlVerifier()
    >>> meta = {"schema": "CREATE TABLE t(x INT);", "data": "INSERT INTO t VALUES (1), (2), (2);"}
    >>> v.check(v.job("```sql\\nSELECT x FROM t WHERE x > 1\\n```", "SELECT x FROM t WHERE x = 2", meta)).score
    1.0
    >>> v.check(v.job("```sql\\nSELEC x FROM t\\n```", "SELECT x FROM t", meta)).detail
    'predicted query failed: near "SELEC": syntax error'
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections import Counter
from typing import Any, Literal

from pydantic import Field, field_validator

from ..registry import Options, register
from .base import BAD_REFERENCE, NO_ANSWER, OK, Job, Verdict, Verifier

Rule = Literal["sql_block", "answer_tag", "any_block"]
_SQL_BLOCK = re.compile(r"```[ \t]*sql[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_ANY_BLOCK = re.compile(r"```[^\n`]*\n(.*?)```", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
# Strings, quoted identifiers, comments, words, numbers, operators: a SQL tokeniser for the
# order check and the partial rewards (never for execution).
_TOKEN = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|\[[^\]]*\]|--[^\n]*|/\*.*?\*/|\w+|<=|>=|<>|!=|\|\||\S", re.DOTALL
)
_READ_ONLY = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    getattr(sqlite3, "SQLITE_RECURSIVE", 33),
}
_COMPONENTS = ("execution", "syntax", "schema", "ngram")


class QueryError(Exception):
    """A query that could not be run to completion (the message says why)."""


def sql_tokens(query: str) -> list[str]:
    """Tokens of ``query`` (lower-cased; comments dropped; identifier quotes removed)."""
    out = []
    for tok in _TOKEN.findall(query):
        if tok.startswith(("--", "/*")):
            continue
        if tok[0] in '"`[':
            tok = tok[1:-1]
        out.append(tok if tok.startswith("'") else tok.lower())
    return out


def has_top_level_order_by(query: str) -> bool:
    """True when ``ORDER BY`` appears outside parentheses (strings and comments ignored)."""
    depth, prev = 0, ""
    for tok in sql_tokens(query):
        if tok == "(":
            depth += 1
        elif tok == ")":
            depth -= 1
        elif depth == 0 and prev == "order" and tok == "by":
            return True
        prev = tok
    return False


def jaccard(a: set[Any], b: set[Any]) -> float:
    """|a ∩ b| / |a ∪ b|; 1.0 when both are empty."""
    return 1.0 if not a and not b else len(a & b) / len(a | b)


def ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(max(0, len(tokens) - n + 1))} or (
        {tuple(tokens)} if tokens else set()
    )


def build_database(meta: dict[str, Any]) -> sqlite3.Connection:
    """The in-memory database from ``schema``/``data`` (or ``db_path`` read-only)."""
    if meta.get("db_path"):
        conn = sqlite3.connect(f"file:{meta['db_path']}?mode=ro", uri=True)
    elif meta.get("schema"):
        conn = sqlite3.connect(":memory:")
        conn.executescript(str(meta["schema"]))
        if meta.get("data"):
            conn.executescript(str(meta["data"]))
    else:
        raise ValueError("meta needs 'schema' (and optional 'data') or 'db_path'")
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 10_000_000)
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, 1_000_000)
    conn.set_authorizer(lambda action, *_: sqlite3.SQLITE_OK if action in _READ_ONLY else sqlite3.SQLITE_DENY)
    return conn


def schema_names(conn: sqlite3.Connection) -> set[str]:
    """Lower-cased table and column names of the database."""
    conn.set_authorizer(None)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")]
        names = {t.lower() for t in tables}
        for t in tables:
            names.update(r[1].lower() for r in conn.execute(f"PRAGMA table_info({_quote(t)})"))
        return names
    finally:
        conn.set_authorizer(lambda action, *_: sqlite3.SQLITE_OK if action in _READ_ONLY else sqlite3.SQLITE_DENY)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def run_query(
    conn: sqlite3.Connection, query: str, timeout_s: float, max_rows: int, float_places: int | None
) -> list[tuple]:
    """Rows of ``query`` (floats rounded unless ``float_places`` is None); :class:`QueryError` on
    failure, timeout or too many rows."""
    deadline = time.monotonic() + timeout_s
    conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 1000)
    try:
        cur = conn.execute(query)
        rows: list[tuple] = []
        while True:
            chunk = cur.fetchmany(1000)
            if not chunk:
                break
            rows.extend(chunk)
            if len(rows) > max_rows:
                raise QueryError(f"more than {max_rows} rows")
    except sqlite3.OperationalError as exc:
        raise QueryError(f"timed out after {timeout_s:g}s" if str(exc) == "interrupted" else str(exc)) from None
    except (sqlite3.Error, sqlite3.Warning, MemoryError, OverflowError, ValueError) as exc:
        raise QueryError(str(exc) or type(exc).__name__) from None
    finally:
        conn.set_progress_handler(None, 0)
    if float_places is None:
        return [tuple(row) for row in rows]
    return [tuple(round(v, float_places) if isinstance(v, float) else v for v in row) for row in rows]


def results_match(pred: list[tuple], gold: list[tuple], how: str) -> bool:
    if how == "list":
        return pred == gold
    if how == "set":
        return set(pred) == set(gold)
    return Counter(pred) == Counter(gold)


class SqlOptions(Options):
    extract: list[Rule] = Field(
        default=["sql_block", "answer_tag", "any_block"],
        min_length=1,
        description="where the query is looked for, in order",
    )
    compare: Literal["auto", "set", "multiset", "list"] = Field(
        default="auto", description="auto: list if the reference has a top-level ORDER BY, else multiset"
    )
    float_places: int | None = Field(
        default=6,
        ge=0,
        le=15,
        description="decimal places floats are rounded to before comparing; null: no rounding (exact)",
    )
    query_timeout_s: float = Field(default=1.0, gt=0, description="wall-clock limit per query (progress handler)")
    max_rows: int = Field(default=100_000, ge=1, description="a query returning more rows fails")
    weights: dict[str, float] = Field(
        default={"execution": 1.0}, description="partial rewards [unverified]: execution, syntax, schema, ngram"
    )
    ngram_n: int = Field(default=2, ge=1, description="n of the n-gram reward [unverified]")

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = set(v) - set(_COMPONENTS)
        if unknown:
            raise ValueError(f"unknown reward component(s) {sorted(unknown)}; allowed: {', '.join(_COMPONENTS)}")
        if any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError("weights must be >= 0 with a positive sum")
        return v


@register(
    "verifier",
    "sql",
    "Text-to-SQL execution match on an in-memory SQLite database (read-only, time-bounded); optional partial rewards.",
    "Reasoning-SQL (Pourreza et al., 2025)",
)
class SqlVerifier(Verifier):
    Options = SqlOptions

    def extract(self, completion: str) -> str | None:
        for rule in self.options.extract:
            if rule == "answer_tag":
                found = _ANSWER.findall(completion)
                text = found[-1] if found else None
                if text is not None:
                    inner = _SQL_BLOCK.findall(text) or _ANY_BLOCK.findall(text)
                    text = inner[-1] if inner else text
            else:
                found = (_SQL_BLOCK if rule == "sql_block" else _ANY_BLOCK).findall(completion)
                text = found[-1] if found else None
            if text is not None and text.strip().rstrip(";").strip():
                return text.strip().rstrip(";").strip()
        return None

    def job(self, completion: str, reference: str | None, meta: dict[str, Any]) -> Job | None:
        db = {k: meta[k] for k in ("schema", "data", "db_path") if meta.get(k)}
        return Job(self.extract(completion) or "", reference or meta.get("gold_sql"), db)

    def check(self, job: Job) -> Verdict:
        o = self.options
        if not job.reference or not str(job.reference).strip():
            return Verdict(float("nan"), BAD_REFERENCE, "no reference query (answer or meta.gold_sql)")
        try:
            conn = build_database(job.meta or {})
        except (ValueError, sqlite3.Error) as exc:
            return Verdict(float("nan"), BAD_REFERENCE, f"database: {exc}")
        try:
            gold_query = str(job.reference).strip().rstrip(";")
            try:
                gold = run_query(conn, gold_query, o.query_timeout_s, o.max_rows, o.float_places)
            except QueryError as exc:
                return Verdict(float("nan"), BAD_REFERENCE, f"reference query failed: {exc}")
            if not job.prediction:
                return Verdict(0.0, NO_ANSWER, "no SQL query found")
            try:
                pred, failure = run_query(conn, job.prediction, o.query_timeout_s, o.max_rows, o.float_places), ""
            except QueryError as exc:
                pred, failure = None, f"predicted query failed: {exc}"
            how = o.compare if o.compare != "auto" else ("list" if has_top_level_order_by(gold_query) else "multiset")
            parts = {
                "execution": float(pred is not None and results_match(pred, gold, how)),
                "syntax": float(pred is not None),
            }
            if o.weights.get("schema"):
                names = schema_names(conn)
                parts["schema"] = jaccard(set(sql_tokens(job.prediction)) & names, set(sql_tokens(gold_query)) & names)
            if o.weights.get("ngram"):
                parts["ngram"] = jaccard(
                    ngrams(sql_tokens(job.prediction), o.ngram_n), ngrams(sql_tokens(gold_query), o.ngram_n)
                )
        finally:
            conn.close()
        score = sum(w * parts[k] for k, w in o.weights.items()) / sum(o.weights.values())
        summary = ", ".join(f"{k} {parts[k]:.4g}" for k in o.weights) if len(o.weights) > 1 else ""
        if not failure:
            failure = "results match" if parts["execution"] else f"results differ ({how})"
        detail = f"{failure}; {summary}" if summary else failure
        return Verdict(score, OK, detail)
