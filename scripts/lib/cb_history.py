"""The nightly history folder: nights, their records, the lock, retention.

HISTORY/<YYYYMMDDTHHMMSSZ>/   one night: its -J files, reports, plots, night.json
HISTORY/failed-<stamp>/        a sweep without any result: its logs
HISTORY/.night-XXXXXX/         a night being made; renamed to its stamp when
                               complete, so a night is either all there or absent
HISTORY/.nightly.lock          held (flock) by the running nightly
"""
import fcntl
import json
import os
import re
import shutil
import tempfile

from cb_files import UserError, read_json, write_file

STAMP = re.compile(r"^\d{8}T\d{6}Z$")
FAILED = re.compile(r"^failed-\d{8}T\d{6}Z$")
RECORD = "night.json"
LOCK = ".nightly.lock"
WORK_PREFIX = ".night-"
# a night's status; ACCEPTED_STATUSES may serve as the reference of later nights
ACCEPTED_STATUSES = ("bootstrap", "accepted")


def acquire_lock(history_dir):
    """Hold HISTORY/.nightly.lock for the life of this process; UserError when another holds it."""
    path = os.path.join(history_dir, LOCK)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise UserError(f"cannot open the lock file {path}: {e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise LockHeld(f"another nightly (pid {holder}) is running on {history_dir} "
                       f"(it holds {path}); not starting a second") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd     # closed (and the lock released) when the process ends, however it ends


class LockHeld(Exception):
    """Another nightly holds the history's lock."""


def nights(history_dir):
    """Stamps of the recorded nights, oldest first."""
    return sorted(s for s in os.listdir(history_dir) if STAMP.match(s))


def remove_stale_work(history_dir):
    """Work folders of nights that were killed (SIGKILL, power loss): we hold the lock."""
    for entry in os.listdir(history_dir):
        if entry.startswith(WORK_PREFIX) or entry.startswith(".deleting-"):
            shutil.rmtree(os.path.join(history_dir, entry), ignore_errors=True)


def make_work_folder(history_dir):
    try:
        return tempfile.mkdtemp(prefix=WORK_PREFIX, dir=history_dir)
    except OSError as e:
        raise UserError(f"cannot write history folder {history_dir}: {e.strerror}") from None


def read_record(history_dir, stamp):
    """A night's record (dict), or None when it has none or it is unreadable."""
    path = os.path.join(history_dir, stamp, RECORD)
    if not os.path.exists(path):
        return None
    try:
        record = read_json(path)
    except UserError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("status"), str):
        return None
    return record


def write_record(folder, record):
    write_file(os.path.join(folder, RECORD), json.dumps(record, indent=1, sort_keys=True) + "\n")


def set_status(history_dir, stamp, status):
    """--accept: a night becomes a reference (the operator says it is the new normal)."""
    if not STAMP.match(stamp) or not os.path.isdir(os.path.join(history_dir, stamp)):
        raise UserError(f"no night {stamp} in {history_dir} (nights are named YYYYMMDDTHHMMSSZ)")
    record = read_record(history_dir, stamp) or {"stamp": stamp}
    record["status"] = status
    record["status_set_by_operator"] = True
    write_record(os.path.join(history_dir, stamp), record)


def _remove(history_dir, entry):
    """Rename away first, so a kill half-way leaves no half night under a night's name."""
    doomed = tempfile.mkdtemp(prefix=".deleting-", dir=history_dir)
    os.rename(os.path.join(history_dir, entry), os.path.join(doomed, entry))
    shutil.rmtree(doomed, ignore_errors=True)


def apply_retention(history_dir, keep, protected):
    """Keep the newest `keep` nights (and failed- folders), plus the stamps in protected."""
    removed = []
    stamps = nights(history_dir)
    for stamp in stamps[:max(0, len(stamps) - keep)]:
        if stamp not in protected:
            _remove(history_dir, stamp)
            removed.append(stamp)
    failed = sorted(e for e in os.listdir(history_dir) if FAILED.match(e))
    for entry in failed[:max(0, len(failed) - keep)]:
        _remove(history_dir, entry)
        removed.append(entry)
    return removed
