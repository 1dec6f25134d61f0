#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: revision_fetch
short_description: Fetch a CodeDeploy revision from S3, git, an HTTP(S) URL or a local path into a cached bundle
version_added: 0.1.0
author:
  - fleetops maintainers (@fleetops)
description:
  - Runs on the controller. Fetches a revision once into a content-addressed cache, as a tar, tgz or zip
    bundle named by its sha256, and returns the bundle's path and sha256, the C(BUNDLE_*) variables its hooks
    get, and its AppSpec validated and normalised, before any host is touched.
  - The AppSpec is refused unread when it is larger than hosts accept (1 MiB), and its text is not returned.
  - "S3: the object O(revision.bucket)/O(revision.key), at O(revision.version) when given. When O(revision.etag)
    is given the object's ETag must match it, quotes ignored as the CodeDeploy agent does; the task fails
    otherwise, before the object is read."
  - "git: O(revision.commit_id), a full or abbreviated commit SHA, of O(revision.repository), packed with
    C(git archive) as a tar. The repository is mirrored under the cache and only fetched when the mirror does
    not hold the commit yet."
  - "url: the bundle O(revision.url) serves (an artifact repository: Nexus, Artifactory, any HTTP(S) server), with
    the standard library, streamed to disk, at most 2 GiB, tried again on 5xx answers and connection resets. When
    O(revision.sha256) is given, another bundle is refused and the revision is not downloaded again while its
    bundle is in the cache; without it, the digest is learnt from the download, every time."
  - "local: a directory is packed into a deterministic tar (members sorted, modes and whole-second mtimes
    kept, owner and group root), so the same tree always gives the same sha256; an archive file is taken as
    it is."
  - A source that cannot change (an S3 object pinned by O(revision.version) and/or O(revision.etag), a git
    commit) is indexed and not downloaded again while its bundle is in the cache. An S3 key that is not
    pinned is downloaded every time, since the object behind it may have been replaced; a local directory is
    packed every time and lands on the cached bundle when nothing changed.
options:
  revision:
    description:
      - The revision, as the role input C(codedeploy_revision).
      - Keys that do not belong to the O(revision.source) are an error.
    type: dict
    required: true
    suboptions:
      source:
        description: Where the revision is.
        type: str
        required: true
        choices: [s3, git, url, local]
      bucket:
        description: The S3 bucket. Required for V(s3).
        type: str
      key:
        description: The S3 object key. Required for V(s3).
        type: str
      bundle_type:
        description:
          - The archive type. Required for V(s3).
          - For V(local) and V(url), taken from the file name (C(.tar), C(.tgz), C(.tar.gz), C(.zip)) when left out;
            V(directory) or nothing for a directory.
          - Not for V(git), which is always V(tar).
        type: str
        choices: [tar, tgz, zip, directory]
      version:
        description: The S3 object version ID; the latest version when left out.
        type: str
      etag:
        description: The ETag the S3 object must have, with or without its quotes.
        type: str
      repository:
        description:
          - The git repository. Required for V(git).
          - V(owner/repo) means C(https://github.com/owner/repo.git); any other git URL (C(https://),
            C(ssh://), C(git@host:path), C(file://)) or a local repository path is used as it is. Write a
            relative local path that looks like V(owner/repo) as V(./owner/repo).
          - Credentials come from git's own configuration (credential helpers, SSH keys); git never prompts.
        type: str
      commit_id:
        description: The commit, a full or abbreviated SHA-1 (4 to 40 hexadecimal digits). Required for V(git).
        type: str
      path:
        description: A directory, or a tar, tgz or zip file, on the controller. Required for V(local).
        type: path
      url:
        description:
          - An C(http://) or C(https://) URL of the bundle. Required for V(url).
          - A user and password in it (C(https://user:token@host/...)) are sent as Basic authentication. Messages
            name the URL without them and without its query.
          - The bundle type is taken from the path's name (C(.tar), C(.tgz), C(.tar.gz), C(.zip)) unless
            O(revision.bundle_type) is given.
        type: str
      sha256:
        description: The SHA-256 the V(url) bundle must have, in hexadecimal.
        type: str
  cache_dir:
    description:
      - The cache of bundles, git mirrors and the index of pinned sources. Created with mode 0700.
    type: path
    default: ~/.fleetops-codedeploy/cache
  appspec_filename:
    description:
      - The AppSpec file name inside the revision. When it is absent, C(appspec.yaml) and then C(appspec.yml)
        are tried, in the bundle root or, as the agent strips it, in a single top-level folder.
    type: str
    default: appspec.yml
extends_documentation_fragment:
  - fleetops.codedeploy.aws
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: In check mode nothing is written to the cache; the revision is fetched into a temporary directory,
      measured and deleted. RV(path) is then where the bundle would be, and exists only when it was cached
      before.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - "Run it on the controller, with C(delegate_to: localhost) and C(run_once: true), or in a play on localhost."
  - C(changed) is true when a new bundle was written into the cache (in check mode, would be written).
seealso:
  - module: fleetops.codedeploy.revision_bundle
  - module: fleetops.codedeploy.appspec_info
"""

EXAMPLES = r"""
- name: Fetch a revision pinned by version and ETag from S3
  fleetops.codedeploy.revision_fetch:
    revision:
      source: s3
      bucket: releases-example
      key: webapp/webapp-1.4.2.zip
      bundle_type: zip
      version: 3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY
      etag: '"b0ccf3c1b0e7b7e1a1f2d5c8d2c9f8a1"'
    aws:
      region: eu-west-1
  delegate_to: localhost
  run_once: true
  register: webapp_revision

- name: Fetch a commit from GitHub
  fleetops.codedeploy.revision_fetch:
    revision:
      source: git
      repository: example-org/webapp
      commit_id: 5d41402a
  delegate_to: localhost
  run_once: true
  register: webapp_revision

- name: Fetch a bundle from an artifact repository
  fleetops.codedeploy.revision_fetch:
    revision:
      source: url
      url: https://nexus.example.com/repository/releases/webapp-1.4.2.tgz
      sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
  delegate_to: localhost
  run_once: true
  register: webapp_revision

- name: Pack a local directory
  fleetops.codedeploy.revision_fetch:
    revision:
      source: local
      path: "{{ playbook_dir }}/revisions/webapp"
  delegate_to: localhost
  run_once: true
  register: webapp_revision

- name: Show the scripts of its AfterInstall
  ansible.builtin.debug:
    var: webapp_revision.appspec.hooks.AfterInstall | default([])
  run_once: true
"""

RETURN = r"""
path:
  description: The bundle in the cache, named by its sha256 and type.
  returned: success
  type: str
  sample: /home/ops/.fleetops-codedeploy/cache/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.zip
sha256:
  description: The sha256 of the bundle file.
  returned: success
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
bundle_type:
  description: V(tar), V(tgz) or V(zip); a git revision or a local directory is V(tar).
  returned: success
  type: str
  sample: zip
size:
  description: The size of the bundle in bytes.
  returned: success
  type: int
  sample: 20480
etag:
  description: The S3 object's ETag as S3 returns it, with its quotes.
  returned: success, for an S3 revision
  type: str
  sample: '"b0ccf3c1b0e7b7e1a1f2d5c8d2c9f8a1"'
version_id:
  description: The S3 object's version ID, or V(null) when the bucket is not versioned.
  returned: success, for an S3 revision
  type: str
  sample: 3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY
bundle_env:
  description:
    - The bundle variables the revision's hook scripts get. A variable whose value is V(null) is left unset.
    - E(BUNDLE_ETAG) is the object's ETag without quotes, even when O(revision.etag) was not given (the agent
      1.8 leaves it unset then; the agent 2.x sets it from the download, as here).
  returned: success
  type: dict
  contains:
    BUNDLE_BUCKET:
      description: The S3 bucket (S3 revisions).
      returned: for an S3 revision
      type: str
      sample: releases-example
    BUNDLE_KEY:
      description: The S3 key (S3 revisions).
      returned: for an S3 revision
      type: str
      sample: webapp/webapp-1.4.2.zip
    BUNDLE_VERSION:
      description: The O(revision.version) given, or V(null) (S3 revisions).
      returned: for an S3 revision
      type: str
      sample: 3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY
    BUNDLE_ETAG:
      description: The object's ETag without quotes (S3 revisions).
      returned: for an S3 revision
      type: str
      sample: b0ccf3c1b0e7b7e1a1f2d5c8d2c9f8a1
    BUNDLE_COMMIT:
      description: The full commit SHA (git revisions).
      returned: for a git revision
      type: str
      sample: 5d41402abc4b2a76b9719d911017c592ae5d41aa
appspec:
  description:
    - The AppSpec, validated on the controller and normalised as M(fleetops.codedeploy.appspec_info) returns it,
      or V(null) when the bundle has none. An invalid AppSpec fails the task with the CodeDeploy agent's message,
      C(error_code), C(key_path), C(line) and C(column).
  returned: success
  type: dict
appspec_filename_found:
  description: The name of the AppSpec file found at the revision root, or V(null).
  returned: success
  type: str
  sample: appspec.yml
revision:
  description:
    - The revision, validated and normalised; the keys of its source only.
    - As it is recorded and shown, a user name, password or token in a URL and the values of secret query
      parameters (a presigned URL's signature, credential and token) replaced by C(***); they are used for the
      fetch only.
  returned: success
  type: dict
  contains:
    source:
      description: V(s3), V(git), V(url) or V(local).
      returned: success
      type: str
      sample: git
    bucket:
      description: The S3 bucket.
      returned: for an S3 revision
      type: str
      sample: releases-example
    key:
      description: The S3 key.
      returned: for an S3 revision
      type: str
      sample: webapp/webapp-1.4.2.zip
    version:
      description: The S3 version ID given, or V(null).
      returned: for an S3 revision
      type: str
      sample: 3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY
    etag:
      description: The ETag given, as given, or V(null).
      returned: for an S3 revision
      type: str
      sample: '"b0ccf3c1b0e7b7e1a1f2d5c8d2c9f8a1"'
    repository:
      description: The repository, as given, credentials in it replaced by C(***).
      returned: for a git revision
      type: str
      sample: example-org/webapp
    url:
      description: For a git revision, what git fetched from (a GitHub shorthand expanded, a local path made
        absolute); for a url revision, the URL given. Credentials in it are replaced by C(***).
      returned: for a git or a url revision
      type: str
      sample: https://github.com/example-org/webapp.git
    commit_id:
      description: The commit, resolved to its full SHA.
      returned: for a git revision
      type: str
      sample: 5d41402abc4b2a76b9719d911017c592ae5d41aa
    path:
      description: The local path, absolute.
      returned: for a local revision
      type: str
      sample: /home/ops/revisions/webapp
    sha256:
      description: The sha256 given, lower case, or V(null).
      returned: for a url revision
      type: str
      sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    bundle_type:
      description: The bundle type; V(directory) for a local directory (packed as V(tar)).
      returned: success
      type: str
      sample: zip
cached:
  description: True when the bundle was already in the cache and nothing was downloaded, cloned or copied in.
  returned: success
  type: bool
  sample: false
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetops.codedeploy.plugins.module_utils.appspec import AppSpecError, parse_appspec
from ansible_collections.fleetops.codedeploy.plugins.module_utils.aws import (
    AWS_ARGUMENT_SPEC,
    AWS_ERRORS,
    aws_client_from_options,
    describe_aws_error,
    require_boto3,
)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.revision_source import (
    Cache,
    Git,
    RevisionError,
    bundle_env,
    display_revision,
    fetch_revision,
    parse_revision,
    read_appspec,
    scratch_dir,
)

REVISION_OPTIONS = dict(
    source=dict(type="str", required=True, choices=["s3", "git", "url", "local"]),
    bucket=dict(type="str"),
    key=dict(type="str", no_log=False),
    bundle_type=dict(type="str", choices=["tar", "tgz", "zip", "directory"]),
    version=dict(type="str"),
    etag=dict(type="str"),
    repository=dict(type="str"),
    commit_id=dict(type="str"),
    path=dict(type="path"),
    url=dict(type="str"),
    sha256=dict(type="str"),
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            revision=dict(type="dict", required=True, options=REVISION_OPTIONS),
            cache_dir=dict(type="path", default="~/.fleetops-codedeploy/cache"),
            appspec_filename=dict(type="str", default="appspec.yml"),
            **AWS_ARGUMENT_SPEC,
        ),
        supports_check_mode=True,
    )
    aws_options = module.params["aws"]

    def open_s3():
        require_boto3(module, "to fetch S3 revisions")
        try:
            return aws_client_from_options("s3", aws_options)
        except AWS_ERRORS as error:
            raise RevisionError(describe_aws_error(error, "creating the S3 client")) from None

    revision_given = module.params["revision"]
    # The task result shows the arguments it was given (-vvv): there the revision is shown as it is recorded.
    module.params["revision"] = display_revision(revision_given)
    try:
        revision = parse_revision(revision_given)
        cache = Cache(module.params["cache_dir"])
        with scratch_dir(cache, module.check_mode) as scratch:
            fetched = fetch_revision(revision, cache, scratch, module.check_mode, open_s3,
                                     Git(module.get_bin_path("git"), module.run_command))
            appspec_text, appspec_name = read_appspec(fetched.readable, fetched.bundle_type,
                                                      module.params["appspec_filename"])
            size = os.path.getsize(fetched.readable)
    except (RevisionError, AppSpecError) as error:
        module.fail_json(msg=error.message)
    except OSError as error:
        module.fail_json(msg=f"cannot fetch the revision: {error}")
    appspec = None
    if appspec_text is not None:
        # Validated here, on the controller, before any host is touched.
        try:
            appspec, warnings = parse_appspec(appspec_text, source_name=appspec_name)
        except AppSpecError as error:
            module.fail_json(msg=error.message, error_code=error.error_code, key_path=error.key_path,
                             line=error.line, column=error.column, appspec_filename_found=appspec_name)
        for warning in warnings:
            module.warn(warning)
    result = dict(changed=fetched.written, path=fetched.path, sha256=fetched.sha256, bundle_type=fetched.bundle_type,
                  size=size, bundle_env=bundle_env(fetched.revision, fetched.s3_object and fetched.s3_object.etag),
                  appspec=appspec, appspec_filename_found=appspec_name,
                  revision=display_revision(fetched.revision),
                  cached=fetched.cached)
    if fetched.s3_object is not None:
        result.update(etag=fetched.s3_object.etag, version_id=fetched.s3_object.version_id)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
