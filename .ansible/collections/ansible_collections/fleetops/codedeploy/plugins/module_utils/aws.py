# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place the collection makes boto3 clients, and turns AWS failures into one clear line.

Every AWS call of the collection goes through :func:`aws_client`, so that ``region``, ``endpoint_url`` (moto,
LocalStack, a VPC endpoint), ``profile`` and the retry policy are honoured the same way everywhere. Modules take
these as one dict option ``aws`` (:data:`AWS_ARGUMENT_SPEC`, documented by the ``fleetops.codedeploy.aws`` doc
fragment), the same shape as the role input ``codedeploy_aws``. Anything left unset falls to boto3's own
resolution: ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, the shared config and
credentials files, an instance role.

boto3 is imported guarded: it is needed on the controller only, and a module without it fails with
:func:`require_boto3`'s message instead of a traceback. Credentials are never put into a message.
"""
from __future__ import annotations

import traceback
from typing import Any, Optional
from urllib.parse import urlsplit

from ansible.module_utils.basic import missing_required_lib

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError as BotoConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
        ReadTimeoutError,
    )
    from botocore.parsers import ResponseParserError
except ImportError:
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR: Optional[str] = traceback.format_exc()
    AWS_ERRORS: tuple[type[BaseException], ...] = ()
else:
    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None
    # What an AWS call raises for any AWS reason (``except AWS_ERRORS`` catches nothing without boto3).
    # ResponseParserError: the endpoint answered, but not as AWS does (a wrong endpoint_url, a proxy's error page).
    AWS_ERRORS = (BotoCoreError, ClientError, ResponseParserError)

DEFAULT_MAX_ATTEMPTS = 5
# Short enough that an unreachable endpoint fails a task in seconds, not minutes, even with retries.
DEFAULT_CONNECT_TIMEOUT = 10

AWS_OPTIONS_SPEC = dict(
    region=dict(type="str"),
    endpoint_url=dict(type="str"),
    profile=dict(type="str"),
    max_attempts=dict(type="int", default=DEFAULT_MAX_ATTEMPTS),
)

# The ``aws`` option of every module that calls AWS; documented by the fleetops.codedeploy.aws doc fragment.
AWS_ARGUMENT_SPEC = dict(
    aws=dict(type="dict", default={}, apply_defaults=True, options=AWS_OPTIONS_SPEC),
)

MSG_NO_CREDENTIALS = ("no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, "
                      "or an instance role")
MSG_NO_REGION = "no AWS region set: give aws.region, or set AWS_REGION or AWS_DEFAULT_REGION"


def require_boto3(module: Any, purpose: str) -> None:
    """Fail ``module`` with a clear message when boto3 cannot be imported on the controller."""
    if not HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3", reason=f"on the controller {purpose}"),
                         exception=BOTO3_IMPORT_ERROR)


def aws_client(service: str, region: Optional[str] = None, endpoint_url: Optional[str] = None,
               profile: Optional[str] = None, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
               signature_version: Optional[str] = None, timeout: Optional[float] = None,
               **client_kwargs: Any) -> Any:
    """A boto3 client for ``service``; unset values fall to boto3's own resolution (environment, config files).

    Retries use botocore's ``standard`` mode (throttling, 5xx and connection errors, with backoff) up to
    ``max_attempts`` attempts in all. ``timeout``: seconds to connect and to wait for an answer, for calls nothing
    should wait long on. Extra keyword arguments go to ``Session.client``.
    """
    session = boto3.session.Session(profile_name=profile) if profile else boto3.session.Session()
    timeouts = {"connect_timeout": timeout, "read_timeout": timeout} if timeout else {
        "connect_timeout": DEFAULT_CONNECT_TIMEOUT}
    config = Config(retries={"mode": "standard", "total_max_attempts": max_attempts},
                    signature_version=signature_version, **timeouts)
    return session.client(service, region_name=region or None, endpoint_url=endpoint_url or None, config=config,
                          **client_kwargs)


def aws_client_from_options(service: str, options: Optional[dict[str, Any]], **client_kwargs: Any) -> Any:
    """A client from a module's ``aws`` option (or the role's ``codedeploy_aws``): a dict, possibly empty."""
    options = options or {}
    return aws_client(service, region=options.get("region"), endpoint_url=options.get("endpoint_url"),
                      profile=options.get("profile"),
                      max_attempts=options.get("max_attempts") or DEFAULT_MAX_ATTEMPTS, **client_kwargs)


def presigned_get_object_url(options: Optional[dict[str, Any]], bucket: str, key: str, version_id: Optional[str],
                             expires_in: int, endpoint_url: Optional[str] = None) -> str:
    """A presigned GET of one S3 object (of ``version_id`` when given), valid ``expires_in`` seconds, signed by the
    controller's credentials for ``endpoint_url`` (the endpoint the URL's user reaches S3 through) when given, else
    the ``aws`` options' own. Signing is local: no request is made. The URL is a credential until it expires."""
    options = dict(options or {})
    if endpoint_url:
        options["endpoint_url"] = endpoint_url
    params = {"Bucket": bucket, "Key": key}
    if version_id:
        params["VersionId"] = version_id
    # Signature version 4 always: botocore would sign for a custom endpoint with version 2, which AWS retired.
    client = aws_client_from_options("s3", options, signature_version="s3v4")
    return client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)


def describe_aws_error(error: BaseException, what: str) -> str:
    """One line saying what failed and why, e.g. ``S3 GetObject s3://b/k failed: NoSuchKey (The specified ...)``.

    ``what`` names the call and its target. The service's error code and message are shown as returned;
    credential, region, profile and connection problems get a message that says how to fix them.
    """
    if not isinstance(error, AWS_ERRORS):
        return f"{what} failed: {type(error).__name__}: {error}"
    if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        return f"{what} failed: {MSG_NO_CREDENTIALS}"
    if isinstance(error, NoRegionError):
        return f"{what} failed: {MSG_NO_REGION}"
    if isinstance(error, ProfileNotFound):
        return (f"{what} failed: AWS profile {error.kwargs.get('profile')!r} not found in the shared config or "
                "credentials files: fix aws.profile or AWS_PROFILE")
    if isinstance(error, BotoConnectionError):
        url = error.kwargs.get("endpoint_url") or error.kwargs.get("proxy_url") or ""
        cause = error.kwargs.get("error")
        return f"{what} failed: cannot reach {_origin(url)}: {cause or error}"
    if isinstance(error, ReadTimeoutError):
        return f"{what} failed: no answer in time from {_origin(error.kwargs.get('endpoint_url') or '')}"
    if isinstance(error, ResponseParserError):
        return (f"{what} failed: the endpoint's answer is not an AWS response (check endpoint_url): "
                f"{str(error).splitlines()[0]}")
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = details.get("Code") or "Unknown"
        message = details.get("Message") or error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"{what} failed: {code} ({message})" if message else f"{what} failed: {code}"
    return f"{what} failed: {error}"


def _origin(url: str) -> str:
    """``scheme://host:port`` of a request URL: the endpoint, without the bucket, key or query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else url
