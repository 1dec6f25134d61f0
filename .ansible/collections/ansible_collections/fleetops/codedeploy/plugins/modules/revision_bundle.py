#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: revision_bundle
short_description: Place and unpack a revision bundle in the CodeDeploy deployment root, safely
version_added: 0.1.0
author:
  - fleetops maintainers (@fleetops)
description:
  - Does on a host what the CodeDeploy agent's C(DownloadBundle) command does, in the agent's order.
  - Prunes the deployment group's old revision directories so that O(max_revisions) remain, counting the new one,
    oldest by directory modification time first, never the last successful install's directory.
  - Deletes with them the bundles the controller pushed to C(<deployment_root>/fleetops-bundles) that no revision
    still kept on the host uses, in any deployment group.
  - Copies O(src) to C(<deployment_root>/<deployment_group_id>/<deployment_id>/bundle.tar) (always that name,
    whatever the bundle type, as the agent does; O(src) itself is left in place) and unpacks it into
    C(deployment-archive) beside it, with modes, times and, when run as root, owners of tar members.
    With O(bundle_type=directory), O(src) is copied into C(deployment-archive) directly.
  - When the unpacked bundle holds a single top-level folder that contains an entry named like C(appspec)
    (any case), that folder's contents become C(deployment-archive), as the agent does.
  - Writes C(deployment-instructions/<deployment_group_id>_most_recent_install), appends its messages to
    C(deployment-logs/codedeploy-agent-deployments.log), and marks C(ongoing-deployment/<deployment_id>) while it
    works.
  - Unlike the agent, every member is checked before anything is written. A bundle with a member that has an
    absolute name or C(..), a name or link target holding a control character (a newline, a tab, ...), a symlink or
    hard link pointing outside the bundle, a member written through a symlink of the bundle, a device file or FIFO,
    or more unpacked bytes than O(max_unpacked_size), is refused whole, with a message naming the member. A
    O(bundle_type=directory) source with such entries is refused too.
  - Archives are read with Python's tarfile and zipfile; no shell, C(tar) or C(unzip) command is run.
  - Idempotent. The digest of the unpacked bundle is kept in C(deployment-archive.sha256) in the deployment's
    directory, so the same bundle for the same deployment is not unpacked twice.
extends_documentation_fragment:
  - fleetops.codedeploy.deployment
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports what would be pruned and unpacked and changes nothing.
  diff_mode:
    support: full
    details: Shows the deployment group's revision directories before and after.
  platform:
    platforms: posix
options:
  src:
    description:
      - The bundle file on the host, for example copied there by the role. It is copied, never moved.
      - With O(bundle_type=directory), a directory on the host holding the revision.
      - With O(url), where the downloaded bundle is kept.
    type: path
    required: true
  url:
    description:
      - An HTTP(S) URL the host downloads the bundle from into O(src) first, for example an S3 presigned URL or an
        artifact repository's URL (a user and password in it are sent as Basic authentication). Requires O(sha256).
      - Nothing is downloaded when O(src) already holds the bundle of O(sha256).
      - The download streams to disk, stops past O(max_unpacked_size) bytes, is tried again up to 4 times with a
        growing pause on 5xx answers and refused, reset or cut connections, and replaces O(src) only when its
        sha256 is O(sha256); a 4xx answer fails at once with the server's reason (S3's error code and message).
      - The URL is a credential; it is never logged nor returned, and messages name it without its query.
      - In check mode the bundle is downloaded into a temporary directory, inspected and deleted.
    type: str
  bundle_type:
    description:
      - How O(src) is packed. V(tar) and V(tgz) are both read as tar with any compression, as the agent's
        C(tar) does.
    type: str
    required: true
    choices: [tar, tgz, zip, directory]
  sha256:
    description:
      - The bundle file's expected SHA-256, in hexadecimal. A different file is refused before anything is written.
      - Not for O(bundle_type=directory).
    type: str
  etag:
    description:
      - The S3 ETag of the bundle object, compared with quotes ignored, as the agent does. A single-part ETag is
        the MD5 of the file and is checked.
      - A multipart ETag (C(<md5-of-md5s>-<parts>)) cannot be recomputed from the file; the module then warns and
        relies on O(sha256).
      - Not for O(bundle_type=directory).
    type: str
  max_revisions:
    description:
      - How many revision directories the deployment group keeps, counting the one being deployed (the agent's
        C(:max_revisions:)). The last successful install's directory is never deleted, so one more may remain.
      - Must be 1 or more.
    type: int
    default: 5
  max_unpacked_size:
    description:
      - The most bytes the bundle may unpack to (the sum of its files' sizes). A larger bundle is refused before
        anything is written. V(0) means no limit.
    type: int
    default: 2147483648
notes:
  - Run it with C(become) set to C(true) to keep the owners recorded in a tar bundle, as the agent does as
    root.
"""

EXAMPLES = r"""
- name: Copy the bundle to the host
  ansible.builtin.copy:
    src: "{{ revision.bundle_path }}"
    dest: /var/tmp/d-A1B2C3D4E.tar
    mode: "0600"

- name: Place and unpack the revision (DownloadBundle)
  fleetops.codedeploy.revision_bundle:
    deployment_id: d-A1B2C3D4E
    deployment_group_id: 4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d
    deployment_group_name: web-production
    application_name: web
    src: /var/tmp/d-A1B2C3D4E.tar
    bundle_type: tar
    sha256: "{{ revision.sha256 }}"
    max_revisions: 3
  become: true
  register: bundle

- name: Deploy a revision directory that is already on the host
  fleetops.codedeploy.revision_bundle:
    deployment_id: d-B2C3D4E5F
    deployment_group_id: 4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d
    deployment_group_name: web-production
    application_name: web
    src: /srv/revisions/web
    bundle_type: directory
  become: true
"""

RETURN = r"""
deployment_dir:
  description: The deployment's directory, C(<deployment_root>/<deployment_group_id>/<deployment_id>).
  returned: success
  type: str
  sample: /opt/codedeploy-agent/deployment-root/4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d/d-A1B2C3D4E
archive_dir:
  description: Where the revision is unpacked, the C(deployment-archive) of RV(deployment_dir).
  returned: success
  type: str
  sample: /opt/codedeploy-agent/deployment-root/4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d/d-A1B2C3D4E/deployment-archive
bundle_path:
  description: Where the bundle is kept, C(bundle.tar) in the deployment's directory; null for a directory.
  returned: success
  type: str
  sample: /opt/codedeploy-agent/deployment-root/4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d/d-A1B2C3D4E/bundle.tar
bundle_sha256:
  description:
    - The SHA-256 of the bundle file.
    - For O(bundle_type=directory), a SHA-256 over the directory's paths, types, modes and contents.
  returned: success
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
unpacked_size:
  description: The bytes the bundle unpacks to, as checked against O(max_unpacked_size).
  returned: success
  type: int
  sample: 20480
pruned:
  description: The old revision directories deleted (or, in check mode, that would be).
  returned: success
  type: list
  elements: str
  sample: [/opt/codedeploy-agent/deployment-root/4b3c2a1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d/d-Z9Y8X7W6V]
pruned_bundles:
  description:
    - The bundles deleted (or, in check mode, that would be) from C(<deployment_root>/fleetops-bundles), where the
      controller pushes them, because no kept revision of any deployment group on the host uses them any more.
    - Also copies into that directory that never finished (C(*.partial)), and bundles no revision uses, once an
      hour old.
  returned: success
  type: list
  elements: str
  sample: [/opt/codedeploy-agent/deployment-root/fleetops-bundles/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.tar]
stripped_top_folder:
  description: The single top-level folder whose contents became the archive root, or null.
  returned: success
  type: str
  sample: my-app
unpacked:
  description: Whether the bundle was (or, in check mode, would be) unpacked by this run.
  returned: success
  type: bool
  sample: true
bundle_pull:
  description: The download of O(url), when there was one.
  returned: when O(url) was downloaded
  type: dict
  contains:
    bytes:
      description: The bundle's size.
      type: int
    start_time:
      description: ISO 8601 UTC.
      type: str
    end_time:
      description: ISO 8601 UTC.
      type: str
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetops.codedeploy.plugins.module_utils.bundle import (
    BUNDLE_TYPES,
    DEFAULT_MAX_REVISIONS,
    DEFAULT_MAX_UNPACKED_SIZE,
    BundleError,
    DownloadPlan,
    apply_download_bundle,
    file_digests,
    list_group_entries,
    plan_download_bundle,
)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.bundle_download import DownloadError, download_bundle
from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import (
    DEPLOYMENT_ARGUMENT_SPEC,
    DeploymentRoot,
    DeploymentRootError,
    utc_timestamp,
    validate_identifiers,
)


def revision_listing(plan: DownloadPlan, after: bool) -> str:
    names = {name for name, mtime in list_group_entries(plan.layout.group_dir)}
    if after:
        names = (names - {os.path.basename(path) for path in plan.pruned}) | {plan.deployment_id}
    return "".join(f"{name}\n" for name in sorted(names))


def holds_bundle(path: str, sha256: str) -> bool:
    return os.path.isfile(path) and file_digests(path)[0] == sha256.lower()


def pull_bundle(module: AnsibleModule, scratch: str) -> tuple[str, dict | None]:
    """Download O(url) (into a scratch directory in check mode) unless O(src) holds it; return where the bundle is
    and the download's record."""
    params = module.params
    if params["bundle_type"] == "directory" or not params["sha256"]:
        module.fail_json(msg="url needs sha256 (the bundle's expected digest) and a bundle_type other than directory")
    if holds_bundle(params["src"], params["sha256"]):
        return params["src"], None
    target = os.path.join(scratch, os.path.basename(params["src"])) if module.check_mode else params["src"]
    start = utc_timestamp()
    downloaded = download_bundle(params["url"], target, params["sha256"], params["max_unpacked_size"])
    return target, {"bytes": downloaded.bytes, "start_time": start, "end_time": utc_timestamp()}


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            DEPLOYMENT_ARGUMENT_SPEC,
            src=dict(type="path", required=True),
            bundle_type=dict(type="str", required=True, choices=list(BUNDLE_TYPES)),
            sha256=dict(type="str"),
            etag=dict(type="str"),
            max_revisions=dict(type="int", default=DEFAULT_MAX_REVISIONS),
            max_unpacked_size=dict(type="int", default=DEFAULT_MAX_UNPACKED_SIZE),
            url=dict(type="str", no_log=True),
        ),
        supports_check_mode=True,
    )
    # A check-mode download goes here; removed on every exit (exit_json and fail_json unwind it).
    with tempfile.TemporaryDirectory(prefix="fleetops-bundle-") as scratch:
        run(module, scratch)


def run(module: AnsibleModule, scratch: str) -> None:
    params = module.params
    try:
        validate_identifiers(params["deployment_id"], params["deployment_group_id"])
        layout = DeploymentRoot(params["deployment_root"], params["deployment_group_id"])
        src, pulled = pull_bundle(module, scratch) if params["url"] else (params["src"], None)
        plan = plan_download_bundle(layout, params["deployment_id"], src, params["bundle_type"],
                                    params["max_revisions"], params["max_unpacked_size"], params["sha256"],
                                    params["etag"])
    except (BundleError, DeploymentRootError, DownloadError) as error:
        module.fail_json(msg=str(error))
    for warning in plan.warnings:
        module.warn(warning)
    result = dict(
        changed=plan.changed or bool(pulled),
        deployment_dir=plan.deployment_dir,
        archive_dir=plan.archive_dir,
        bundle_path=plan.bundle_path,
        bundle_sha256=plan.inspection.sha256,
        unpacked_size=plan.inspection.unpacked_size,
        pruned=plan.pruned,
        pruned_bundles=plan.pruned_bundles,
        stripped_top_folder=plan.inspection.stripped_top_folder,
        unpacked=plan.unpack,
    )
    if pulled:
        result["bundle_pull"] = pulled
    if module._diff and plan.changed:
        result["diff"] = dict(before_header=plan.layout.group_dir, after_header=plan.layout.group_dir,
                              before=revision_listing(plan, after=False), after=revision_listing(plan, after=True))
    if not module.check_mode:
        try:
            apply_download_bundle(plan)
        except (BundleError, OSError) as error:
            module.fail_json(msg=f"DownloadBundle failed in {plan.deployment_dir}: {error}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
