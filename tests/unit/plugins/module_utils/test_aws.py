# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The boto3 client factory and the one-line AWS error messages (no network: clients are only built)."""
from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
    ReadTimeoutError,
)

from ansible_collections.fleetops.codedeploy.plugins.module_utils.aws import (
    AWS_ARGUMENT_SPEC,
    DEFAULT_MAX_ATTEMPTS,
    MSG_NO_CREDENTIALS,
    aws_client,
    aws_client_from_options,
    describe_aws_error,
    presigned_get_object_url,
)


def test_client_honours_endpoint_region_and_retries():
    client = aws_client("s3", region="eu-west-1", endpoint_url="http://127.0.0.1:5999", max_attempts=2)
    assert client.meta.endpoint_url == "http://127.0.0.1:5999"
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 2}


def test_client_from_an_empty_option_falls_back_to_the_environment(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    client = aws_client_from_options("s3", {})
    assert client.meta.region_name == "ap-south-1"
    assert client.meta.config.retries["total_max_attempts"] == DEFAULT_MAX_ATTEMPTS


def test_unknown_profile_is_described():
    with pytest.raises(ProfileNotFound) as raised:
        aws_client("s3", profile="no-such-profile-here")
    assert describe_aws_error(raised.value, "S3 GetObject s3://b/k") == (
        "S3 GetObject s3://b/k failed: AWS profile 'no-such-profile-here' not found in the shared config or "
        "credentials files: fix aws.profile or AWS_PROFILE")


def test_argument_spec_is_one_dict_option_with_defaults_applied():
    spec = AWS_ARGUMENT_SPEC["aws"]
    assert (spec["type"], spec["apply_defaults"]) == ("dict", True)
    assert sorted(spec["options"]) == ["endpoint_url", "max_attempts", "profile", "region"]


@pytest.mark.parametrize("error, expected", [
    (ClientError({"Error": {"Code": "NoSuchKey", "Message": "The specified key does not exist."}}, "GetObject"),
     "S3 GetObject s3://b/k failed: NoSuchKey (The specified key does not exist.)"),
    (ClientError({"Error": {"Code": "404", "Message": ""}, "ResponseMetadata": {"HTTPStatusCode": 404}}, "HeadObject"),
     "S3 GetObject s3://b/k failed: 404 (404)"),
    (NoCredentialsError(), f"S3 GetObject s3://b/k failed: {MSG_NO_CREDENTIALS}"),
    (NoRegionError(), "S3 GetObject s3://b/k failed: no AWS region set: give aws.region, or set AWS_REGION or "
                      "AWS_DEFAULT_REGION"),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:1/b/k?versionId=1", error="Connection refused"),
     "S3 GetObject s3://b/k failed: cannot reach http://127.0.0.1:1: Connection refused"),
    (ReadTimeoutError(endpoint_url="https://s3.amazonaws.com/b/k"),
     "S3 GetObject s3://b/k failed: no answer in time from https://s3.amazonaws.com"),
    (ValueError("odd"), "S3 GetObject s3://b/k failed: ValueError: odd"),
])
def test_errors_become_one_line(error, expected):
    assert describe_aws_error(error, "S3 GetObject s3://b/k") == expected


def test_credentials_never_reach_a_message(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID0000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value")
    error = ClientError({"Error": {"Code": "InvalidAccessKeyId",
                                   "Message": "The AWS Access Key Id you provided does not exist in our records."}},
                        "GetObject")
    message = describe_aws_error(error, "S3 GetObject s3://b/k")
    assert "very-secret-value" not in message and "AKIAEXAMPLEKEYID0000" not in message


def test_a_client_with_a_timeout_waits_no_longer():
    client = aws_client("sns", region="eu-west-1", timeout=5)
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (5, 5)
    assert aws_client("sns", region="eu-west-1").meta.config.read_timeout == 60


def test_a_presigned_url_names_the_version_for_the_hosts_endpoint(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    options = {"region": "us-east-1", "endpoint_url": "http://127.0.0.1:5999"}
    url = presigned_get_object_url(options, "releases", "app/v1.tgz", "3HL4kqtJ", 7200,
                                   endpoint_url="http://s3.hosts.example:9000")
    assert url.startswith("http://s3.hosts.example:9000/releases/app/v1.tgz?")
    assert "versionId=3HL4kqtJ" in url and "X-Amz-Expires=7200" in url and "X-Amz-Signature=" in url
    unversioned = presigned_get_object_url(options, "releases", "app/v1.tgz", None, 60)
    assert unversioned.startswith("http://127.0.0.1:5999/releases/app/v1.tgz?") and "versionId" not in unversioned
