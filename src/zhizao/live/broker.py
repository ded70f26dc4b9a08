"""A local Eclipse Mosquitto for tests, demonstrations and benchmarks (never a system service).

:class:`Mosquitto` writes a configuration for one loopback port with a persistence file in its own folder,
so that persistent sessions and their queued QoS 1 messages survive a restart of the broker
(:meth:`Mosquitto.restart`: SIGTERM saves the persistence file, the new process loads it).

The configuration is the one zhizao's no-loss guarantee needs from any Mosquitto (see docs/live.md):
``persistence true``, unlimited ``max_queued_messages`` (the default of 1000 drops messages of a listener
that is away for longer), and no inflight limit (for MQTT 5 clients the client's receive maximum applies).
``autosave_interval`` is 60 s: a SIGTERM saves everything; saving a large queue every second stalls the
broker.
"""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

CONF = """\
listener {port} 127.0.0.1
user {user}
{security}persistence true
persistence_location {dir}/
persistence_file mosquitto.db
autosave_interval 60
max_queued_messages 0
max_queued_bytes 0
max_inflight_messages 0
max_inflight_bytes 0
message_size_limit 0
persistent_client_expiration 7d
log_dest file {dir}/mosquitto.log
log_type error
log_type warning
log_type notice
"""


def mosquitto_binary() -> str | None:
    """Path of the ``mosquitto`` binary (Debian installs it in /usr/sbin), or None."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """A Mosquitto process on ``127.0.0.1:port`` with its persistence in ``workdir``.

    Raises
    ------
    FileNotFoundError
        If no ``mosquitto`` binary is installed (Debian: ``apt-get install mosquitto``).
    """

    def __init__(self, workdir: str | Path, port: int | None = None, binary: str | None = None, *,
                 certfile: str | Path | None = None, keyfile: str | Path | None = None,
                 users: dict[str, str] | None = None):
        self.binary = binary or mosquitto_binary()
        if not self.binary:
            raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")
        self.dir = Path(workdir).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = self.dir / "mosquitto.conf"
        security = ""
        if certfile:
            security += f"certfile {Path(certfile).resolve()}\nkeyfile {Path(keyfile).resolve()}\n"
        if users:
            pw = self.dir / "passwd"
            pw.unlink(missing_ok=True)
            pw.touch(mode=0o600)
            tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
            for user, password in users.items():
                subprocess.run([tool, "-b", str(pw), user, password], check=True, capture_output=True)
            security += f"allow_anonymous false\npassword_file {pw}\n"
        else:
            security += "allow_anonymous true\n"
        # started as root, mosquitto would switch to the user 'mosquitto', who cannot write the persistence file
        # into this folder: stay the user who starts it
        self.conf.write_text(CONF.format(port=self.port, dir=self.dir, user=getpass.getuser(), security=security))
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> Mosquitto:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: "
                                   f"{self.proc.stderr.read().decode(errors='replace')[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"mosquitto did not listen on port {self.port} within {timeout} s")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (Mosquitto saves its persistence file), then wait."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        self.stop()
        # the port is free again once the old process has exited; a restart on the same port may need a retry
        for _ in range(50):
            try:
                self.start()
                return
            except RuntimeError:
                time.sleep(0.1)
        self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
