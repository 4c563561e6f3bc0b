"""A local S3 (moto's server) on a free loopback port, and the Airflow ``aws`` Connection that points at it."""

from __future__ import annotations

from typing import Any

from tests.support.moto_server import CREDENTIALS as CREDENTIALS
from tests.support.moto_server import aws_connection as aws_connection
from tests.support.moto_server import moto_server as moto_server


def s3_client(endpoint: str) -> Any:
    """A boto3 S3 client for the moto server."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS)
