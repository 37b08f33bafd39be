"""Reading and writing files for the operator scripts, safely.

write_file is the one writer of every file the scripts write: a temporary file
with an unpredictable name (tempfile.mkstemp: O_CREAT|O_EXCL, so a planted
file or symlink is never followed) in the target's folder, written, fsynced,
then renamed over the target. A target that exists and is not a regular file
(a device, FIFO, symlink, folder) is refused. On any failure the temporary
file is removed and OSError propagates: the caller exits non-zero.

read_json is the one reader of JSON: strict (no NaN or Infinity, no number
that does not fit a double, bounded digits, nesting caught), with a UserError that
says in one line what was wrong.
"""
import json
import math
import os
import stat
import tempfile


class UserError(Exception):
    """A problem the user can fix; the message is one line that says what was wrong."""


MAX_NUMBER_CHARS = 40     # a double needs at most 24; integers we read fit 20


def check_target(path):
    """Refuse a target that exists and is not a regular file (OSError-free: UserError)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a symlink" if stat.S_ISLNK(st.st_mode) else "a folder" if stat.S_ISDIR(st.st_mode)
                else "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device or socket")
        raise UserError(f"refusing to write {path}: it exists and is {kind}, not a regular file")


def write_file(path, data):
    """Write data (str: UTF-8, or bytes) to path by temp file + fsync + rename."""
    check_target(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        check_target(path)      # nothing swapped in meanwhile
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _reject_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def _parse_float(text):
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number of {len(text)} characters")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is beyond the range of a double")
    return value


def _parse_int(text):
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number of {len(text)} digits")
    return int(text)


def parse_json(text, what):
    """The JSON document in text; UserError naming `what` when it is not strict JSON."""
    if not text.strip():
        raise UserError(f"{what} is empty")
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_parse_float,
                          parse_int=_parse_int)
    except json.JSONDecodeError as e:
        raise UserError(f"{what} is not valid JSON (line {e.lineno} column {e.colno}: "
                        f"{e.msg}); truncated, or not the file expected") from None
    except RecursionError:
        raise UserError(f"{what} nests deeper than the JSON reader allows: "
                        "not the file expected") from None
    except ValueError as e:
        raise UserError(f"{what} is not usable JSON: {e}") from None


def read_text(path, what=None):
    what = what or path
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise UserError(f"cannot read {what}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} is not UTF-8 text") from None


def read_json(path, what=None):
    """Read and strictly parse a JSON file; UserError says what was wrong, in one line."""
    what = what or path
    return parse_json(read_text(path, what), what)


def shown(text, limit=40):
    """A string from a file or the command line, safe to print: no escapes, bounded."""
    text = str(text)
    cut = text[:limit]
    safe = cut if cut.isprintable() else repr(cut)[1:-1]
    return safe + ("..." if len(text) > limit else "")


def finite_number(value):
    """A JSON number (not a boolean) that is finite."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))
