"""A local S3 (moto's server) on a free loopback port, and the Airflow ``aws`` Connection that points at it."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.support.airflow_env import free_port

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


@contextmanager
def moto_server(timeout: float = 30.0) -> Iterator[str]:
    """``python -m moto.server`` on 127.0.0.1 and a free port; yields its endpoint URL; stopped by its pid."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    # Its request log goes to a file: a pipe nobody reads would fill up and block the server.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                        break
                except OSError:
                    if process.poll() is not None:
                        log.seek(0)
                        raise AssertionError(f"moto server exited: {log.read().decode()[-2000:]}") from None
                    if time.monotonic() > deadline:
                        raise AssertionError(f"moto server not answering on {endpoint} after {timeout}s") from None
                    time.sleep(0.1)
            yield endpoint
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def aws_connection(endpoint: str) -> str:
    """``AIRFLOW_CONN_<ID>`` JSON of an ``aws`` Connection to the moto server at ``endpoint``."""
    extra = {"endpoint_url": endpoint, "region_name": CREDENTIALS["region_name"]}
    return json.dumps({"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra})


def s3_client(endpoint: str) -> Any:
    """A boto3 S3 client for the moto server."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS)
