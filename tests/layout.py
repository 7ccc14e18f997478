"""The portal laid out as README.md's "Several hosts" says, on this machine: a private
PostgreSQL cluster and Redis, an S3 protocol server, two gunicorn servers behind nginx with TLS,
and notification workers, each a process of its own, run with the environment and the commands
the README gives (read from it, not copied here)."""

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from io import BytesIO
from pathlib import Path

import requests

from portal import create_app
from portal.extensions import db
from portal.models import Business, Role
from portal.services import accounts, clients

from .helpers import certificate_for, free_port

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)
NGINX = Path("/usr/sbin/nginx")


def layout_missing() -> str | None:
    if POSTGRES_BIN is None:
        return "PostgreSQL's server programs are not installed (/usr/lib/postgresql)"
    if not NGINX.exists():
        return "nginx is not installed (apt-get install nginx-light)"
    if not shutil.which("redis-server"):
        return "redis-server is not installed"
    return None


def readme_block(language: str, heading: str = "### Several hosts") -> str:
    """The first ```language block of the README's section."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(heading):]
    return re.search(rf"```{language}\n(.*?)```", section, re.S)[1]


def readme_command(starting: str) -> list[str]:
    """A command of the README's section, as written (its comment left out)."""
    for line in readme_block("sh", "Then, in this order:").splitlines():
        if line.startswith(starting):
            return line.split("#")[0].split()
    raise LookupError(starting)


def _wait_for_port(port: int, process: subprocess.Popen | None = None, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{process.args[0]} stopped at start") from None
            time.sleep(0.1)
    raise RuntimeError(f"nothing listened on {port} within {seconds} s")


class Postgres:
    """A cluster of its own (it is restarted by the tests), run by the postgres user."""

    def __init__(self, root: Path):
        self.data = root / "postgres"
        self.port = free_port()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/portal"

    def _pg_ctl(self, *arguments: str) -> None:
        # The server's output goes to its log (-l), never to a pipe of ours: the server keeps
        # what it inherits open, and reading a pipe to its end would wait for it to stop.
        subprocess.run([*self.as_postgres, str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data),
                        "-w", "-l", str(self.data / "server.log"), *arguments],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=60)

    def start(self) -> None:
        self.data.mkdir()
        if self.as_postgres:
            shutil.chown(self.data, "postgres", "postgres")
        subprocess.run([*self.as_postgres, str(POSTGRES_BIN / "initdb"), "-D", str(self.data),
                        "-U", "postgres", "-A", "trust", "--no-sync"],
                       check=True, capture_output=True)
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c fsync=off "
                   "-c max_connections=200 -c synchronous_commit=off")
        self._pg_ctl("-o", options, "start")
        subprocess.run([*self.as_postgres, str(POSTGRES_BIN / "createdb"), "-h", "127.0.0.1",
                        "-p", str(self.port), "-U", "postgres", "portal"], check=True)

    def restart(self) -> None:
        self._pg_ctl("-m", "fast", "restart")

    def stop(self) -> None:
        self._pg_ctl("-m", "immediate", "stop")


class Process:
    """A server or worker process, its output kept in a file."""

    def __init__(self, name: str, command: list[str], environment: dict, log_folder: Path):
        self.name, self.command, self.environment = name, command, environment
        self.log = log_folder / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    def start(self) -> "Process":
        with self.log.open("a") as log:
            self.popen = subprocess.Popen(self.command, cwd=ROOT, env=self.environment,
                                          stdout=log, stderr=log, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: nothing of it runs on, as when its machine is gone."""
        self.signal(signal.SIGKILL)
        self.popen.wait(10)

    def signal(self, number: int) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, number)

    def stop(self, seconds: float = 30) -> int | None:
        if self.popen is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(seconds)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            return self.popen.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def nginx_config(folder: Path, port: int, upstreams: list[int]) -> Path:
    """The README's server block, on this machine's ports, certificate and folders."""
    cert_file, key_file = certificate_for("127.0.0.1", folder)
    block = readme_block("nginx")
    servers = "".join(f"    server 127.0.0.1:{upstream} max_fails=1 fail_timeout=5s;\n"
                      for upstream in upstreams)
    block = re.sub(r"(upstream portal \{\n)(?:    server .*\n)+", rf"\g<1>{servers}", block)
    block = block.replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    block = block.replace("/etc/ssl/portal.crt", cert_file)
    block = block.replace("/etc/ssl/portal.key", key_file)
    temp = "".join(f"{kind}_temp_path {folder}/{kind};\n    "
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    config = folder / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""
    config.write_text(
        f"{user}worker_processes 1;\nerror_log {folder}/error.log;\npid {folder}/nginx.pid;\n"
        f"events {{ worker_connections 1024; }}\n"
        f"http {{\n    log_format upstreams '$upstream_addr $request $status';\n"
        f"    access_log {folder}/access.log upstreams;\n    {temp}\n{block}}}\n")
    return config


class Layout:
    """Everything started by start(), stopped by stop()."""

    def __init__(self, smtp_port: int, s3_settings: dict, *, web_servers: int = 2,
                 workers: int = 3, extra: dict | None = None):
        self.root = Path(tempfile.mkdtemp(prefix="portal-layout-"))
        self.root.chmod(0o755)
        self.postgres = Postgres(self.root)
        self.redis_port = free_port()
        self.web_ports = [free_port() for _ in range(web_servers)]
        self.https_port = free_port()
        self.smtp_port, self.s3_settings = smtp_port, s3_settings
        self.worker_count = workers
        self.extra = extra or {}
        self.redis: Process | None = None
        self.web: list[Process] = []
        self.workers: list[Process] = []
        self.nginx: Process | None = None

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def access_log(self) -> str:
        """nginx's log: the upstream that answered, the request line and the status."""
        return (self.root / "access.log").read_text()

    def environment(self) -> dict:
        """What README.md's "Several hosts" sets, with this machine's services."""
        environment = {key: value for key, value in os.environ.items()
                       if not key.startswith(("PORTAL_", "DATABASE_", "STORAGE_", "MAIL_"))}
        names = set(re.findall(r"\b([A-Z][A-Z0-9_]+)=", readme_block("sh")))
        given = {
            "PORTAL_ENV": "production", "SECRET_KEY": "9f2c1e8d7b6a5f4e3d2c1b0a9f8e7d6c" * 2,
            "DATABASE_URL": self.postgres.url,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "STORAGE_URL": self.s3_settings["STORAGE_URL"],
            "STORAGE_REGION": self.s3_settings["STORAGE_REGION"],
            "STORAGE_ACCESS_KEY_ID": self.s3_settings["STORAGE_ACCESS_KEY_ID"],
            "STORAGE_SECRET_ACCESS_KEY": self.s3_settings["STORAGE_SECRET_ACCESS_KEY"],
            "STORAGE_ENDPOINT_URL": self.s3_settings["STORAGE_ENDPOINT_URL"],
            "PORTAL_BASE_URL": self.base_url,
            "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(self.smtp_port), "MAIL_USE_TLS": "0",
            "MAIL_USERNAME": "", "MAIL_PASSWORD": "",
            "MAIL_DEFAULT_SENDER": "portal@happytails.example",
            "VAPID_PRIVATE_KEY": "", "VAPID_PUBLIC_KEY": "",
            "TRUSTED_PROXIES": "1",
        }
        missing = names - set(given)
        assert not missing, f"the README sets {missing}, which the layout does not"
        return {**environment, **given, **self.extra}

    def flask(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *arguments],
                              cwd=ROOT, env=self.environment(), capture_output=True, text=True,
                              check=check)

    def start(self) -> None:
        self.postgres.start()
        self.redis = Process("redis", ["redis-server", "--port", str(self.redis_port),
                                       "--bind", "127.0.0.1", "--save", ""],
                             dict(os.environ), self.root).start()
        _wait_for_port(self.redis_port, self.redis.popen)
        check = self.flask(*readme_command("flask --app wsgi check")[3:], check=False)
        assert "has no tables yet" in check.stdout, check.stdout + check.stderr
        self.flask(*readme_command("flask --app wsgi db upgrade")[3:])

    def serve(self) -> None:
        check = self.flask(*readme_command("flask --app wsgi check")[3:], check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        gunicorn = readme_command("gunicorn")
        for n, port in enumerate(self.web_ports):
            command = [str(Path(sys.executable).parent / "gunicorn"), *gunicorn[1:]]
            command[command.index("0.0.0.0:8000")] = f"127.0.0.1:{port}"
            command[command.index("--workers") + 1] = "2"
            # Two servers on one machine: each without gunicorn's control socket, whose one
            # path per user they would otherwise share.
            command.append("--no-control-socket")
            self.web.append(Process(f"web{n}", command, self.environment(), self.root).start())
        for process, port in zip(self.web, self.web_ports, strict=True):
            _wait_for_port(port, process.popen)
        config = nginx_config(self.root, self.https_port, self.web_ports)
        self.nginx = Process("nginx", [str(NGINX), "-c", str(config), "-g", "daemon off;"],
                             dict(os.environ), self.root).start()
        _wait_for_port(self.https_port, self.nginx.popen)
        for _ in range(self.worker_count):
            self.start_worker()

    def start_worker(self) -> Process:
        command = [sys.executable, "-m", "flask",
                   *readme_command("flask --app wsgi notifications work")[1:],
                   "--interval", "0.5"]
        worker = Process(f"worker{len(self.workers)}", command, self.environment(), self.root)
        self.workers.append(worker.start())
        return worker

    def stop(self) -> None:
        for process in [*self.workers, *self.web, self.nginx, self.redis]:
            if process is not None:
                process.stop()
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.postgres.stop()
        if os.environ.get("PORTAL_TEST_KEEP_LAYOUT") == "1":
            print(f"The layout's logs are kept in {self.root}", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)


# --- what the tests and the bench do with a layout ----------------------------------------

PASSWORD = "a long and unusual password 42"
ADMIN = "admin@happytails.example"
CSRF = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')


def seed(layout: Layout, households: int = 50) -> dict[int, str]:
    """The business, its admin and households, each with a login: client id to login email."""
    app = app_of(layout)
    with app.app_context():
        business = Business(name="Happy Tails")
        db.session.add(business)
        db.session.commit()
        accounts.create_user(business, role=Role.ADMIN, email=ADMIN, name="Ada Admin",
                             password=PASSWORD)
        logins = {}
        for n in range(households):
            client = clients.create_client(business, None, name=f"Household {n}",
                                           pets=[("Rex", "Dog")])
            email = f"client{n}@example.com"
            accounts.create_user(business, role=Role.CLIENT, email=email, name=f"Client {n}",
                                 password=PASSWORD, client_id=client.id)
            logins[client.id] = email
        db.engine.dispose()
    return logins


def app_of(layout: Layout):
    return create_app({"TESTING": True, "SECRET_KEY": "seed",
                       "SQLALCHEMY_DATABASE_URI": layout.postgres.url,
                       "PASSWORD_HASH_METHOD": "scrypt:1024:8:1"})


def read(layout: Layout, statement):
    app = app_of(layout)
    with app.app_context():
        try:
            return db.session.execute(statement).all()
        finally:
            db.session.remove()
            db.engine.dispose()


class Browser:
    """A person's browser through the proxy, over TLS."""

    def __init__(self, layout: Layout, email: str = ADMIN):
        self.layout = layout
        self.session = requests.Session()
        # Per request: a session's own `verify` gives way to REQUESTS_CA_BUNDLE when set.
        self.certificate = str(layout.root / "cert.pem")
        # As a browser sends it: over https, Flask-WTF wants the page's own origin as Referer.
        self.session.headers["Referer"] = layout.base_url + "/"
        answer = self.request("POST", "/login", data={
            "csrf_token": self.token("/login"), "email": email, "password": PASSWORD})
        assert answer.status_code == 302, answer.text[:300]
        self.csrf = self.token("/")  # a login starts a new session, with a token of its own

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.layout.base_url + path, timeout=60,
                                    allow_redirects=False, verify=self.certificate, **kwargs)

    def token(self, path: str) -> str:
        page = self.session.get(self.layout.base_url + path, timeout=60, verify=self.certificate)
        return CSRF.search(page.text)[1]

    def post_message(self, client_id: int, text: str, files=()) -> requests.Response:
        return self.request(
            "POST", f"/clients/{client_id}/feeds/conversation/messages",
            data={"csrf_token": self.csrf, "text": text},
            files=[("files", (name, BytesIO(data))) for name, data in files] or None)
