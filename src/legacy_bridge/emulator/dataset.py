"""Deterministic test data for the emulator, written to SQLite.

One seed gives one dataset, byte for byte, so tests, the demo and the
benchmarks can name records without shipping fixtures. The variety is
deliberate: learners in 1-3 programs (e-mails repeat across records), ties in
every sort key, nulls in every nullable field, an empty plan, records outside
any plan, and 0-6 assessment attempts per learner-program.

Every table carries a precomputed, non-null sort key per `orderBy` value
(`k_<name>`): nulls become a sentinel that sorts after every real value, which
gives "nulls last on ASC, first on DESC" and lets one `(key, id)` index serve
keyset pages in both directions.
"""

from __future__ import annotations

import random
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

DEMO_PLAN_ID = "fd6f0490-2072-43b0-b1d0-7ee82fe96df2"

# The learner of the migration guide's side-by-side example (seed 001): the
# demo plan always holds this exact record, so the golden test can find it.
SEED_001_LEARNER = {
    "user_email": "j.martinez@acmecorp.com",
    "first_name": "Julia",
    "last_name": "Martinez",
    "program_key": "nd00113",
    "program_version": "1.0.0",
    "enrollment_status": "ENROLLED",
    "projects_total": 5,
    "projects_completed": 3,
    "completion_percentage": 65.0,
    "last_active_at": "2026-03-10T14:30:00Z",
    "enrolled_at": "2025-11-01T09:00:00Z",
}

NULL_TEXT_KEY = "\uffff"  # sorts after every timestamp and e-mail
NULL_NUMBER_KEY = 1e18

# key, title, type, version, required projects, assessments
PROGRAMS: list[tuple[str, str, str, str, int, int]] = [
    ("nd00113", "Data Analyst", "NANODEGREE", "1.0.0", 5, 3),
    ("nd0044", "Full Stack Web Developer", "NANODEGREE", "2.1.0", 6, 4),
    ("nd025", "Data Scientist", "NANODEGREE", "3.0.2", 5, 3),
    ("nd089", "AI Programming with Python", "NANODEGREE", "1.4.0", 2, 2),
    ("nd9991", "Cloud DevOps Engineer", "NANODEGREE", "1.0.0", 5, 3),
    ("cd0000", "Intro to SQL", "COURSE", "1.0.0", 1, 1),
    ("cd0101", "Agile Foundations", "COURSE", "1.2.0", 1, 2),
    ("cd1818", "Data Analyst", "COURSE", "1.0.0", 2, 1),  # same title: ties
    ("cd2025", "Prompt Engineering", "COURSE", "1.0.1", 0, 1),
    ("pt0001", "Statistics Refresher", "PART", "1.0.0", 1, 1),
]
CATALOG_ONLY = [("nd0999", "Unreleased Program", "NANODEGREE")]

FIRST_NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivan",
               "Jo", "Kai", "Lena", "Maria", "Noor", "Omar", "Priya", "Quinn", "Rosa",
               "Sam", "Tariq", "Uma", "Vik", "Wen", "Yara", "Zoe"]
LAST_NAMES = ["Ali", "Brown", "Costa", "Diaz", "Evans", "Fischer", "Garcia", "Haddad",
              "Ito", "Jones", "Kim", "Lopez", "Martinez", "Nguyen", "Okafor", "Patel",
              "Quist", "Rossi", "Smith", "Tanaka"]
DOMAINS = ["acmecorp.com", "globex.example", "initech.example"]

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 1, tzinfo=UTC)

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE plans (id TEXT PRIMARY KEY, name TEXT NOT NULL, steps_total INTEGER NOT NULL);
CREATE TABLE programs (key TEXT PRIMARY KEY, title TEXT NOT NULL, type TEXT NOT NULL);
CREATE TABLE program_progress (
  id INTEGER PRIMARY KEY, plan_id TEXT, user_id TEXT NOT NULL, user_email TEXT NOT NULL,
  first_name TEXT NOT NULL, last_name TEXT NOT NULL, enrollment_status TEXT NOT NULL,
  enrolled_at TEXT NOT NULL, unenrolled_at TEXT, graduated_at TEXT, completed_at TEXT,
  program_key TEXT NOT NULL, program_title TEXT NOT NULL, program_version TEXT NOT NULL,
  program_type TEXT NOT NULL, last_active_at TEXT, learner_hours REAL NOT NULL,
  completion_percentage REAL NOT NULL, projects_total INTEGER NOT NULL,
  projects_completed INTEGER NOT NULL, on_track_status TEXT NOT NULL,
  k_last_active TEXT NOT NULL
);
CREATE TABLE learning_plan_progress (
  id INTEGER PRIMARY KEY, plan_id TEXT NOT NULL, user_id TEXT NOT NULL,
  user_email TEXT NOT NULL, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
  subscription_status TEXT NOT NULL, subscribed_at TEXT NOT NULL, unsubscribed_at TEXT,
  completed_at TEXT, steps_total INTEGER NOT NULL, steps_completed INTEGER NOT NULL,
  last_active_at TEXT, k_last_active TEXT NOT NULL
);
CREATE TABLE assessment_attempts (
  id INTEGER PRIMARY KEY, attempt_id TEXT NOT NULL, plan_id TEXT, user_id TEXT NOT NULL,
  user_email TEXT NOT NULL, assessment_id TEXT NOT NULL, assessment_title TEXT NOT NULL,
  program_key TEXT, attempt_number INTEGER NOT NULL, status TEXT NOT NULL, score REAL,
  passing_score REAL NOT NULL, started_at TEXT NOT NULL, submitted_at TEXT,
  graded_at TEXT, k_submitted TEXT NOT NULL, k_score REAL NOT NULL
);
"""

# (table, sort column) pairs that get a keyset index; the id tie-break is last.
INDEXED_KEYS = {
    "program_progress": ["id", "user_email", "program_title", "enrollment_status",
                         "k_last_active", "projects_completed", "learner_hours"],
    "learning_plan_progress": ["id", "user_email", "k_last_active", "steps_completed",
                               "subscribed_at"],
    "assessment_attempts": ["id", "started_at", "k_submitted", "user_email", "k_score"],
}


@dataclass(frozen=True)
class DatasetSpec:
    """What to generate: the same spec always yields the same data."""

    seed: int = 42
    learners: int = 1000
    plans: int = 3  # non-empty plans; an empty plan is always added


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    span = max(int((end - start).total_seconds()), 60)
    # Whole minutes, so distinct records share timestamps now and then (ties).
    return start + timedelta(minutes=rng.randrange(span // 60))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def plan_ids(spec: DatasetSpec) -> list[str]:
    """The plans of a dataset: the demo plan first, the empty plan last."""
    rng = random.Random(f"plans-{spec.seed}")
    others = [_uuid(rng) for _ in range(max(spec.plans, 1))]
    return [DEMO_PLAN_ID, *others[1:], others[0]]


def empty_plan_id(spec: DatasetSpec) -> str:
    return plan_ids(spec)[-1]


class _Writer:
    def __init__(self, spec: DatasetSpec) -> None:
        self.rng = random.Random(spec.seed)
        self.spec = spec
        self.progress: list[tuple[object, ...]] = []
        self.plan_rows: list[tuple[object, ...]] = []
        self.attempts: list[tuple[object, ...]] = []
        self.attempt_serial = 0

    def learner(self, index: int) -> tuple[str, str, str, str]:
        rng = self.rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first[0].lower()}.{last.lower()}{index}@{rng.choice(DOMAINS)}"
        return _uuid(rng), email, first, last

    def enrollment(self, plan: str | None, user: tuple[str, str, str, str],
                   program: tuple[str, str, str, str, int, int],
                   fixed: dict[str, object] | None = None) -> datetime | None:
        rng = self.rng
        key, title, ptype, version, projects, _ = program
        status = rng.choices(["ENROLLED", "UNENROLLED", "GRADUATED", "STATIC_ACCESS"],
                             [55, 15, 20, 10])[0]
        enrolled = _between(rng, EPOCH, NOW - timedelta(days=30))
        unenrolled = graduated = completed = None
        if status == "UNENROLLED":
            unenrolled = _between(rng, enrolled, NOW)
        if status == "GRADUATED":
            graduated = completed = _between(rng, enrolled, NOW)
        elif rng.random() < 0.1:
            # Completed without graduating: the Data API's graduated_at
            # falls back to completedAt for these.
            completed = _between(rng, enrolled, NOW)
        last_active = None if rng.random() < 0.12 else _between(rng, enrolled, NOW)
        if status == "GRADUATED":
            done, percent = projects, 100.0
        else:
            done = rng.randint(0, projects)
            percent = round(rng.choice([0.0, 12.5, 25.0, 50.0, 65.0, 80.0])
                            if rng.random() < 0.5 else rng.uniform(0, 99.9), 1)
        hours = round(rng.choice([0.0, 1.5, 10.0]) if rng.random() < 0.3
                      else rng.uniform(0, 300), 1)
        on_track = ("GRADUATED" if status == "GRADUATED"
                    else rng.choice(["ON_TRACK", "OFF_TRACK", "MONITOR", "COMPLETED",
                                     "READY_TO_GRADUATE"]))
        row: dict[str, object] = {
            "plan_id": plan, "user_id": user[0], "user_email": user[1],
            "first_name": user[2], "last_name": user[3], "enrollment_status": status,
            "enrolled_at": _ts(enrolled), "unenrolled_at": unenrolled and _ts(unenrolled),
            "graduated_at": graduated and _ts(graduated),
            "completed_at": completed and _ts(completed), "program_key": key,
            "program_title": title, "program_version": version, "program_type": ptype,
            "last_active_at": last_active and _ts(last_active), "learner_hours": hours,
            "completion_percentage": percent, "projects_total": projects,
            "projects_completed": done, "on_track_status": on_track,
        }
        if fixed:
            row.update(fixed)
        row["k_last_active"] = row["last_active_at"] or NULL_TEXT_KEY
        self.progress.append(tuple(row.values()))
        la = row["last_active_at"]
        return datetime.strptime(str(la), "%Y-%m-%dT%H:%M:%S%z") if la else None

    def attempts_for(self, plan: str | None, user: tuple[str, str, str, str],
                     program_key: str | None, assessments: int) -> None:
        rng = self.rng
        tries: dict[str, int] = {}
        for _ in range(rng.randint(0, 6)):
            n = rng.randrange(assessments) + 1
            assessment = f"asm-{program_key or 'general'}-{n}"
            tries[assessment] = tries.get(assessment, 0) + 1
            status = rng.choices(["IN_PROGRESS", "SUBMITTED", "PASSED", "FAILED"],
                                 [15, 10, 45, 30])[0]
            started = _between(rng, EPOCH, NOW)
            submitted: datetime | None = None
            graded: datetime | None = None
            score = None
            if status != "IN_PROGRESS":
                submitted = started + timedelta(minutes=rng.randint(5, 180))
            passing = rng.choice([70.0, 80.0])
            if submitted is not None and status in ("PASSED", "FAILED"):
                graded = submitted + timedelta(hours=rng.randint(1, 72))
                score = (round(rng.uniform(passing, 100), 1) if status == "PASSED"
                         else round(rng.uniform(0, passing - 0.1), 1))
            self.attempt_serial += 1
            title = f"{program_key or 'General'} assessment {n}"
            self.attempts.append((
                f"att-{self.attempt_serial:08d}", plan, user[0], user[1], assessment, title,
                program_key, tries[assessment], status, score, passing, _ts(started),
                submitted and _ts(submitted), graded and _ts(graded),
                _ts(submitted) if submitted else NULL_TEXT_KEY,
                score if score is not None else NULL_NUMBER_KEY,
            ))

    def membership(self, plan: str | None, user: tuple[str, str, str, str],
                   steps_total: int, fixed: dict[str, object] | None = None) -> None:
        rng = self.rng
        programs = rng.sample(PROGRAMS, rng.randint(1, 3))
        if fixed is not None:
            programs = [p for p in programs if p[0] != fixed["program_key"]]
            programs.insert(0, next(p for p in PROGRAMS if p[0] == fixed["program_key"]))
        actives = []
        for i, program in enumerate(programs):
            actives.append(self.enrollment(plan, user, program, fixed if i == 0 else None))
            self.attempts_for(plan, user, program[0], program[5])
        if rng.random() < 0.08:
            self.attempts_for(plan, user, None, 2)
        if plan is None:
            return
        status = rng.choices(["SUBSCRIBED", "UNSUBSCRIBED", "COMPLETED"], [70, 15, 15])[0]
        subscribed = _between(rng, EPOCH, NOW - timedelta(days=30))
        unsub = _between(rng, subscribed, NOW) if status == "UNSUBSCRIBED" else None
        done_at = _between(rng, subscribed, NOW) if status == "COMPLETED" else None
        steps = steps_total if status == "COMPLETED" else rng.randint(0, steps_total)
        seen = [a for a in actives if a is not None]
        last = _ts(max(seen)) if seen else None
        self.plan_rows.append((
            plan, user[0], user[1], user[2], user[3], status, _ts(subscribed),
            unsub and _ts(unsub), done_at and _ts(done_at), steps_total, steps, last,
            last or NULL_TEXT_KEY,
        ))


def _insert(db: sqlite3.Connection, table: str, rows: list[tuple[object, ...]]) -> None:
    if not rows:
        return
    columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")][1:]
    marks = ",".join("?" * len(columns))
    db.executemany(f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})", rows)
    rows.clear()


def _batches(spec: DatasetSpec, writer: _Writer, plans: list[str],
             steps: dict[str, int]) -> Iterator[None]:
    rng = writer.rng
    filled = plans[:-1]  # the last plan stays empty
    seed_user = (_uuid(rng), str(SEED_001_LEARNER["user_email"]),
                 str(SEED_001_LEARNER["first_name"]), str(SEED_001_LEARNER["last_name"]))
    fixed = {k: v for k, v in SEED_001_LEARNER.items() if k not in ("first_name", "last_name")}
    fixed["graduated_at"] = fixed["unenrolled_at"] = None
    writer.membership(DEMO_PLAN_ID, seed_user, steps[DEMO_PLAN_ID], fixed)
    for index in range(spec.learners):
        user = writer.learner(index)
        roll = rng.random()
        if roll < 0.03:
            writer.membership(None, user, 0)  # a learner outside every plan
            continue
        first = rng.choice(filled)
        writer.membership(first, user, steps[first])
        if len(filled) > 1 and roll > 0.95:
            second = rng.choice([p for p in filled if p != first])
            writer.membership(second, user, steps[second])
        if len(writer.progress) > 20_000:
            yield


def generate(spec: DatasetSpec, path: Path) -> Path:
    """Write the dataset of `spec` to a new SQLite file at `path`."""
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    db = sqlite3.connect(tmp)
    db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + SCHEMA)
    plans = plan_ids(spec)
    writer = _Writer(spec)
    steps = {p: writer.rng.randint(8, 20) for p in plans}
    db.executemany("INSERT INTO plans VALUES (?,?,?)",
                   [(p, f"Plan {i + 1}", steps[p]) for i, p in enumerate(plans)])
    db.executemany("INSERT INTO programs VALUES (?,?,?)",
                   [(p[0], p[1], p[2]) for p in PROGRAMS] + CATALOG_ONLY)
    for _ in _batches(spec, writer, plans, steps):
        _flush(db, writer)
    _flush(db, writer)
    for table, keys in INDEXED_KEYS.items():
        for key in keys:
            tail = "" if key == "id" else ", id"
            db.execute(f"CREATE INDEX ix_{table}_{key} ON {table} (plan_id, {key}{tail})")
    db.execute("CREATE INDEX ix_attempt_user ON assessment_attempts (user_id, plan_id)")
    db.executemany("INSERT INTO meta VALUES (?,?)",
                   [("seed", str(spec.seed)), ("learners", str(spec.learners)),
                    ("plans", str(spec.plans))])
    db.commit()
    db.execute("ANALYZE")
    db.close()
    tmp.replace(path)
    return path


def _flush(db: sqlite3.Connection, writer: _Writer) -> None:
    _insert(db, "program_progress", writer.progress)
    _insert(db, "learning_plan_progress", writer.plan_rows)
    _insert(db, "assessment_attempts", writer.attempts)


def ensure(spec: DatasetSpec, directory: Path) -> Path:
    """The dataset file for `spec` in `directory`, generated on first use."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"dataset-s{spec.seed}-l{spec.learners}-p{spec.plans}.sqlite3"
    if not path.exists():
        generate(spec, path)
    return path
