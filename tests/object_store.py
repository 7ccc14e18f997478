"""An S3 protocol server on loopback for the bucket backend's tests: moto's server mode, in a
process of its own (the portal reaches it over HTTP, as it would AWS S3 or MinIO)."""

import socket
import subprocess
import sys
import time
import uuid

import boto3
from botocore.config import Config

from .helpers import free_port

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"
REGION = "us-east-1"


class S3Server:
    """start(), stop(); buckets made with new_bucket(); settings() for the portal."""

    def __init__(self):
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("moto's server stopped at start") from None
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto's server did not start within 30 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def client(self):
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}),
        )

    def new_bucket(self, name: str | None = None) -> str:
        name = name or f"portal-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def settings(self, bucket: str, prefix: str = "attachments") -> dict:
        return {
            "STORAGE_URL": f"s3://{bucket}/{prefix}", "STORAGE_ENDPOINT_URL": self.endpoint,
            "STORAGE_REGION": REGION, "STORAGE_ACCESS_KEY_ID": ACCESS_KEY,
            "STORAGE_SECRET_ACCESS_KEY": SECRET_KEY, "STORAGE_TIMEOUT_SECONDS": 2,
        }

    def object_names(self, bucket: str) -> list[str]:
        answer = self.client().list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in answer.get("Contents", []))
