"""Campaign definition files in the DAG bundle, validated by the installed factory the dag-processor runs."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

SUFFIX = ".yaml"
LOADER_FILE = "campaigns.py"  # dags/campaigns/campaigns.py: the one loader of every campaign file beside it


@dataclass(frozen=True)
class SpecProblem:
    """Where a definition is wrong: the field (dotted, empty for the whole file) and what is wrong with it."""

    field: str
    message: str


class SpecRejected(ValueError):
    """The factory refused a definition."""

    def __init__(self, problem: SpecProblem) -> None:
        super().__init__(f"{problem.field}: {problem.message}" if problem.field else problem.message)
        self.problem = problem


def dags_folder() -> Path:
    """Airflow's ``[core] dags_folder``."""
    from airflow.configuration import conf

    return Path(conf.get("core", "dags_folder")).expanduser()


def definitions_folder(configured: str) -> Path:
    """Where New and Configure write campaign files: ``[campaign_runs] definitions_folder`` or the shipped folder."""
    return Path(configured).expanduser() if configured else shipped_folder()


def shipped_folder() -> Path:
    """The campaigns folder of the DAG bundle, ``<dags_folder>/campaigns``, beside its loader."""
    return dags_folder() / "campaigns"


def campaign_folders(written: Path) -> list[Path]:
    """Every folder whose campaign files Airflow loads: ``written`` (New and Configure's) first, then the shipped one.

    The shipped folder's loader also loads ``written`` when that folder has no loader of its own
    (``campaign_runs.factory.loader``); the shipped folder counts only while its loader is there.
    """
    shipped = shipped_folder()
    if _same(shipped, written) or not (shipped / LOADER_FILE).is_file():
        return [written]
    return [written, shipped]


def _same(first: Path, second: Path) -> bool:
    return first.resolve() == second.resolve()


def holders(folders: list[Path], dag_id: str) -> list[Path]:
    """The folders of ``folders`` that have an entry named after campaign ``dag_id`` (a link or a folder too)."""
    return [folder for folder in folders if os.path.lexists(path_of(folder, dag_id))]


def factory() -> tuple[ModuleType, ModuleType]:
    """The campaign factory's ``spec`` and ``schedule`` modules: the installed package the DAGs' loader imports.

    The plugin validates with the very code the dag-processor runs, so a definition it accepts loads; no code
    from the DAGs folder is imported into the API server.
    """
    from campaign_runs.factory import schedule, spec

    return spec, schedule


def parse(data: Any, file_name: str) -> Any:
    """A validated ``CampaignSpec`` of ``data``, or ``SpecRejected`` naming the field."""
    spec_module, _ = factory()
    try:
        return spec_module.parse_spec(data, Path(file_name))
    except spec_module.CampaignSpecError as error:
        field = str(getattr(error, "field_name", "") or "")
        message = str(getattr(error, "message", "") or error)
        raise SpecRejected(SpecProblem(field, message)) from error


def describe_cron(expression: str) -> str:
    """The schedule in plain words (cron-descriptor), as the DAG's About shows it."""
    _, schedule_module = factory()
    return str(schedule_module.describe_schedule(expression))


def path_of(folder: Path, dag_id: str) -> Path:
    """The file of campaign ``dag_id``."""
    return folder / f"{dag_id}{SUFFIX}"


class NotRegularFile(OSError):
    """A definition's name is a symbolic link, a folder, a pipe or a device: it is not read."""


def read(path: Path) -> str | None:
    """The text of a definition file, None when there is none; ``NotRegularFile`` unless it is a regular file."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)  # a pipe must not block
    try:
        handle = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
            raise NotRegularFile(f"{path.name} is a symbolic link") from error
        raise
    with os.fdopen(handle, "rb") as stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            raise NotRegularFile(f"{path.name} is not a regular file")
        return stream.read().decode("utf-8")


def listing(folder: Path) -> list[Path]:
    """The campaign files of ``folder`` (hidden temporary files excluded)."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.glob(f"*{SUFFIX}") if not path.name.startswith("."))


def writable(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (not a read-only mount or a git bundle's checkout)."""
    if not folder.is_dir():
        return False
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".campaign-runs-probe-", suffix=".tmp"):
            return True
    except OSError:
        return False


def write_atomically(path: Path, text: str) -> None:
    """Write ``path`` through a hidden temporary file and a rename: readers see the old file or the new one."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def paused_at_creation() -> bool:
    """Airflow's ``[core] dags_are_paused_at_creation``: whether a new campaign starts paused."""
    from airflow.configuration import conf

    return conf.getboolean("core", "dags_are_paused_at_creation", fallback=True)


def write_not_before(folder: Path, dag_id: str, instant: datetime) -> None:
    """Write campaign ``dag_id``'s "not before" instant beside its file (``factory.schedule_state``), atomically."""
    from campaign_runs.factory.schedule_state import state_path, state_text

    path = state_path(folder, dag_id)
    path.parent.mkdir(mode=0o755, exist_ok=True)
    if path.parent.is_symlink():
        raise OSError(errno.ELOOP, "the campaign state folder is a symbolic link; it is not written through", path)
    write_atomically(path, state_text(instant))


def touch_loader(folder: Path) -> None:
    """Mark the loader of ``folder`` as changed: the dag-processor (sorted by modified time) re-parses it next.

    A folder without a loader of its own (``[campaign_runs] definitions_folder`` outside the DAG bundle) is read by
    the shipped folder's loader: that one is touched.
    """
    loader = folder / LOADER_FILE
    if not loader.exists():
        loader = shipped_folder() / LOADER_FILE
    try:
        os.utime(loader)
    except OSError:  # no loader beside the files, or not ours to touch: Airflow re-parses on its own interval
        return


def dag_file_of(dag_id: str, session: Session) -> tuple[bool, str | None, datetime | None]:
    """Whether Airflow knows DAG ``dag_id``, the file that defines it, and when the dag-processor last parsed it."""
    from airflow.models.dag import DagModel

    found = session.execute(
        select(DagModel.fileloc, DagModel.last_parsed_time).where(DagModel.dag_id == dag_id)
    ).one_or_none()
    if found is None:
        return False, None, None
    return True, found.fileloc, found.last_parsed_time


def parsed_times(dag_ids: list[str], session: Session) -> dict[str, datetime | None]:
    """When the dag-processor last parsed each of these DAGs that Airflow knows."""
    from airflow.models.dag import DagModel

    if not dag_ids:
        return {}
    rows = session.execute(select(DagModel.dag_id, DagModel.last_parsed_time).where(DagModel.dag_id.in_(dag_ids)))
    return {row.dag_id: row.last_parsed_time for row in rows}


def fire_times(cron: str, timezone: str, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` times after ``after`` at which Airflow's cron timetable fires (aware, UTC)."""
    import pendulum
    from airflow.timetables.base import TimeRestriction
    from airflow.timetables.trigger import CronTriggerTimetable

    timetable = CronTriggerTimetable(cron, timezone=timezone)
    restriction = TimeRestriction(earliest=pendulum.instance(after), latest=None, catchup=True)
    times: list[datetime] = []
    info = timetable.next_dagrun_info_v2(last_dagrun_info=None, restriction=restriction)
    while info is not None and len(times) < count:
        if info.run_after > after:
            times.append(info.run_after)
        info = timetable.next_dagrun_info_v2(last_dagrun_info=info, restriction=restriction)
    return times
