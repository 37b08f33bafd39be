"""Run a launcher (mpirun and its ranks) so that all of it can be stopped.

The launcher starts in a session of its own. Stopping it (time limit,
SIGTERM/SIGINT to us) sends SIGTERM to every process of that session, wherever
its process group (mpirun's local ranks may have their own), waits
GRACE_S for them to go (mpirun uses the time to stop its remote daemons),
then sends SIGKILL to whatever is left.
"""
import os
import signal
import subprocess
import time

GRACE_S = 5.0


class Interrupted(Exception):
    """SIGTERM, SIGINT or SIGHUP arrived; .signum says which."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum, _frame):
    # the first stop signal wins: further ones must not cut the clean-up short
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def install_stop_handlers():
    """From now on SIGTERM, SIGINT and SIGHUP raise Interrupted in the main thread."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _raise_interrupted)


class signals_deferred:
    """Within the block, stop signals wait (blocked); they arrive when it ends."""

    def __enter__(self):
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    def __exit__(self, *exc):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        return False


def session_members(sid):
    """Pids of live (not zombie) processes whose session is sid."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()   # after "pid (comm) "
        if len(fields) > 3 and fields[0] != "Z" and fields[3] == str(sid):
            pids.append(int(entry))
    return pids


def _signal_all(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_gone(proc, sid, seconds):
    """Until no process of the session is left (True), or seconds have passed (False)."""
    deadline = time.monotonic() + seconds
    while True:
        proc.poll()           # reap the launcher itself: a zombie is gone
        if not session_members(sid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def stop_session(proc, grace_s=GRACE_S):
    """SIGTERM every process of proc's session, SIGKILL what is left after grace_s;
    returns when all of them are gone (or after another grace_s: unkillable)."""
    sid = proc.pid
    _signal_all(session_members(sid) or [sid], signal.SIGTERM)
    if not _wait_gone(proc, sid, grace_s):
        _signal_all(session_members(sid), signal.SIGKILL)
        _wait_gone(proc, sid, grace_s)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass


def run(command, stdout, stderr, timeout_s, env=None):
    """Run command in a new session: its exit status, or None when timeout_s ran out.

    Interrupted (a stop signal) stops the whole session before propagating."""
    proc = subprocess.Popen(command, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                            start_new_session=True, env=env)
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stop_session(proc)
        return None
    except BaseException:
        stop_session(proc)
        raise
    finally:
        if proc.returncode is not None and session_members(proc.pid):
            # ranks that outlived the launcher (it exited first): no strays
            stop_session(proc)


def launcher_env():
    """Our environment; as root, with OpenMPI's consent to run as root (unless set)."""
    env = dict(os.environ)
    if os.geteuid() == 0:
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    return env
