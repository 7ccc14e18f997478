"""Mail servers the inbound tests talk to: Debian's Dovecot as a private IMAP server on loopback.

The instance has a config of its own in a temporary directory (its sockets, state, log and
maildir there too), listens on 127.0.0.1 on a free port without TLS, and knows one user from a
passwd file. Run as root (as in CI), its login processes run as Debian's dovenull and the mail
processes as nobody, since Dovecot runs neither as root; otherwise all run as the current user.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from imapclient import IMAPClient

DOVECOT = Path("/usr/sbin/dovecot")
DOVEADM = Path("/usr/bin/doveadm")
USER = "replies"
PASSWORD = "mailbox-password"


def dovecot_missing() -> str | None:
    """Why Dovecot cannot be used here, or None."""
    if not DOVECOT.exists():
        return f"Dovecot not found at {DOVECOT} (apt-get install dovecot-imapd)"
    version = subprocess.run([DOVECOT, "--version"], capture_output=True, text=True).stdout
    if not version.startswith("2.3."):
        return f"the test configuration is written for Dovecot 2.3; this is {version.strip()}"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Dovecot:
    """One private Dovecot: start(), stop(), the settings the portal reads it with, and a
    client of its own for what a test puts into the mailbox."""

    def __init__(self):
        # Not under pytest's temporary directory: the mail processes run as another user,
        # and pytest's directories are open to their owner only.
        self.root = Path(tempfile.mkdtemp(prefix="portal-dovecot-"))
        self.root.chmod(0o755)
        self.port = _free_port()
        self.config = self.root / "dovecot.conf"
        self.log = self.root / "dovecot.log"
        self.process: subprocess.Popen | None = None
        # What the server says it can do once logged in, when not all of Dovecot's (no IDLE,
        # say); takes effect at the next start().
        self.capabilities: str | None = None

    @property
    def settings(self) -> dict:
        return {"IMAP_HOST": "127.0.0.1", "IMAP_PORT": self.port, "IMAP_SSL": False,
                "IMAP_USER": USER, "IMAP_PASSWORD": PASSWORD, "IMAP_FOLDER": "INBOX"}

    def start(self) -> None:
        self._write_config()
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", self.config],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as probe:
                    if probe.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Dovecot did not start:\n{self.log_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else "(no log)"

    def client(self) -> IMAPClient:
        """Logged in, INBOX selected."""
        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        client.login(USER, PASSWORD)
        client.select_folder("INBOX")
        return client

    def append(self, *messages: bytes) -> None:
        with self.client() as client:
            for raw in messages:
                client.append("INBOX", raw)

    def flags(self) -> dict[bytes, set[bytes]]:
        """Each message's flags, by its Message-ID."""
        with self.client() as client:
            found = client.fetch(client.search("ALL"),
                                 ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        return {
            data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].split(b":", 1)[1].strip():
                set(data[b"FLAGS"])
            for data in found.values()
        }

    def kick(self) -> None:
        """Drops every connection of the mailbox's user, as a server restart would."""
        subprocess.run([DOVEADM, "-c", self.config, "kick", USER], check=True,
                       capture_output=True)

    def _write_config(self) -> None:
        for directory in ("run", "state", "home"):
            (self.root / directory).mkdir(exist_ok=True)
        (self.root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            uid, gid = nobody.pw_uid, nobody.pw_gid
            os.chown(self.root / "home", uid, gid)
            # Dovecot's own users (the package creates them); login processes are chrooted.
            processes = "first_valid_uid = 1\n"
        else:
            uid, gid = os.getuid(), os.getgid()
            me = pwd.getpwuid(uid).pw_name
            processes = (f"first_valid_uid = {uid}\n"
                         f"default_login_user = {me}\ndefault_internal_user = {me}\n"
                         "service anvil {\n  chroot =\n}\n")
        chroot = "" if os.geteuid() == 0 else "  chroot =\n"
        self.config.write_text(f"""\
protocols = imap
listen = 127.0.0.1
base_dir = {self.root}/run
state_dir = {self.root}/state
instance_name = portal-test-{self.port}
log_path = {self.log}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
# A wrong password is answered at once (tests try one on purpose).
auth_failure_delay = 0
mail_location = maildir:~/Maildir
# New mail shows in IDLE at once (inotify); this is the fallback.
mailbox_idle_check_interval = 1 secs
{f"imap_capability = {self.capabilities}" if self.capabilities else ""}
{processes}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={self.root}/home/%u
}}
service imap-login {{
{chroot}  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
""")
