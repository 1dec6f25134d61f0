# -*- coding: utf-8 -*-
# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Push the bundle, when the host lacks it, and run the instance's lifecycle events: one task per instance.

The bundle goes over the task's own connection, as the login user: one file transfer into the push directory the
survey prepared (``bundle.push_dir``; no command before it), or, without one, into the remote temporary directory.
The module, run as root with ``become``, then checks its sha256 and stores it under its content address before
DownloadBundle.

Or the host pulls it (``bundle.pull``): from S3 through a URL presigned here for the object the controller validated,
made for this instance right before the module call that runs its DownloadBundle, or from an HTTP(S) revision's URL.
The URL reaches the module in its ``no_log`` option ``bundle_url`` and nowhere else: it is a credential.

With a load balancer (``traffic``), BlockTraffic and AllowTraffic are the controller's: the events are cut at
them, each run of host events is one module call, and the traffic events deregister (drain) or register (wait
until healthy) the instance from here, as the CodeDeploy service does it between the agent's commands.
"""
from __future__ import annotations

import os
import shlex
import uuid

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure, AnsibleError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.fleetops.codedeploy.plugins.module_utils.aws import (
    AWS_ERRORS, HAS_BOTO3, describe_aws_error, presigned_get_object_url)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.deployment_root import utc_timestamp
from ansible_collections.fleetops.codedeploy.plugins.module_utils.codedeploy_names import lifecycle_segments
from ansible_collections.fleetops.codedeploy.plugins.module_utils.errors import OperatorError
from ansible_collections.fleetops.codedeploy.plugins.module_utils.instance_lifecycle import (
    combine_segments, event_record, failure_message, skipped_after_failure)
from ansible_collections.fleetops.codedeploy.plugins.module_utils.traffic import (
    DEREGISTERED, REGISTERED, TrafficError, load_balancer_provider, load_balancer_target, outcome_summary, reconcile,
    timeout_message)
from ansible_collections.fleetops.codedeploy.plugins.plugin_utils.deployment_record import segment_not_run

MODULE = "fleetops.codedeploy.instance_lifecycle"
# How long an instance's presigned URL is valid: it is made right before the module call whose ApplicationStop
# scripts (an hour at most each, by default) run before DownloadBundle uses it; short enough that a URL that leaked
# into a log is soon worthless.
PRESIGNED_URL_EXPIRES_IN = 7200
display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False  # no temporary directory unless the push needs one (see _push)
    _pull: dict | None = None  # the task's bundle.pull: where the host downloads the bundle from

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        module_args = dict(self._task.args)
        bundle = dict(module_args.get("bundle") or {})
        controller_src = bundle.pop("controller_src", None)
        push_dir = bundle.pop("push_dir", None)
        self._pull = bundle.pop("pull", None)
        traffic = module_args.pop("traffic", None)
        push = None
        pushed_to_push_dir = None
        try:
            if controller_src:
                bundle["pushed"], push, in_push_dir = self._push(controller_src, os.path.basename(bundle["src"]),
                                                                 push_dir)
                pushed_to_push_dir = bundle["pushed"] if in_push_dir else None
            module_args["bundle"] = bundle
            if traffic:
                traffic = {**traffic, "target": load_balancer_target(
                    traffic["load_balancer_info"], task_vars or {}, task_vars["inventory_hostname"])}
                result.update(self._run_with_traffic(module_args, traffic, task_vars))
            else:
                result.update(self._execute_module(MODULE, module_args=self._with_bundle_url(module_args),
                                                   task_vars=task_vars))
        except PullUrlError as error:
            result.update(failed_before_download(module_args["events"], error.message), failed=True,
                          msg=f"DownloadBundle failed: {error.message}")
        finally:
            # DownloadBundle removes the pushed file; when it never ran (an earlier event failed, the host went
            # away), nothing would, outside a temporary directory.
            if pushed_to_push_dir and not download_bundle_ran(result):
                self._remove_pushed(pushed_to_push_dir)
            self._remove_tmp_path(self._connection._shell.tmpdir)
        if push:
            result["bundle_push"] = push
        return result

    def _with_bundle_url(self, module_args: dict) -> dict:
        """The module's arguments, with the URL the host pulls the bundle from when these events download it."""
        if not self._pull or "DownloadBundle" not in module_args["events"]:
            return module_args
        return {**module_args, "bundle_url": pull_url(self._pull)}

    def _push(self, controller_src: str, name: str, push_dir: str | None) -> tuple[str, dict, bool]:
        """Transfer the bundle to the host; return its path there, the transfer's times, and whether it is in the
        push directory (else in the task's temporary directory)."""
        if not os.path.isfile(controller_src):
            raise AnsibleActionFail(f"bundle.controller_src {controller_src} is not a file on the controller: "
                                    "fetch the revision again (fleetops.codedeploy.revision_fetch)")
        # A name no other push uses: the push directory may be shared (a home on NFS, several groups deploying).
        unique_name = f"{uuid.uuid4().hex}-{name}"
        if push_dir and not self._is_become_unprivileged():
            pushed = self._connection._shell.join_path(push_dir, unique_name)
            try:
                return pushed, self._timed_transfer(controller_src, pushed), True
            except AnsibleError as error:  # e.g. the directory went away since the survey
                display.vvv(f"push into {push_dir} failed ({error}); through a temporary directory instead",
                            host=self._play_context.remote_addr)
                self._remove_pushed(pushed)
        remote_tmp = self._connection._shell.tmpdir or self._make_tmp_path()
        pushed = self._connection._shell.join_path(remote_tmp, unique_name)
        push = self._timed_transfer(controller_src, pushed)
        self._fixup_perms2([remote_tmp, pushed], execute=False)
        return pushed, push, False

    def _timed_transfer(self, controller_src: str, remote_path: str) -> dict:
        start = utc_timestamp()
        self._transfer_file(controller_src, remote_path)
        return {"bytes": os.path.getsize(controller_src), "start_time": start, "end_time": utc_timestamp()}

    def _remove_pushed(self, remote_path: str) -> None:
        """Best effort: a host that cannot be reached keeps the file until a survey a day later removes it."""
        try:
            self._low_level_execute_command(f"rm -f -- {shlex.quote(remote_path)}", sudoable=False)
        except AnsibleError as error:
            display.vvv(f"could not remove {remote_path}: {error}", host=self._play_context.remote_addr)

    def _run_with_traffic(self, module_args: dict, traffic: dict, task_vars: dict) -> dict:
        parts: list[dict] = []
        providers: list = []  # opened at the first traffic event, kept for the next (one lookup of the groups)
        segments = lifecycle_segments(list(module_args["events"]))
        last_host_segment = max((position for position, (kind, _names) in enumerate(segments) if kind == "host"),
                                default=None)
        for position, (kind, names) in enumerate(segments):
            if any(part.get("failed_event") for part in parts):
                parts.append(skipped_after_failure(names))
            elif kind == "traffic":
                parts.append(traffic_event(names[0], traffic, providers))
            else:
                try:
                    result = self._execute_module(MODULE, module_args=self._with_bundle_url({
                        **module_args, "events": names, "final_segment": position == last_host_segment}),
                        task_vars=task_vars)
                except PullUrlError as error:
                    result = failed_before_download(names, error.message)
                except AnsibleConnectionFailure as error:
                    if not parts:
                        raise  # nothing ran: the task is unreachable, and the record says so for every event
                    result = {"unreachable": True, "msg": str(error)}
                if not isinstance(result.get("lifecycle_events"), list):
                    if not parts:
                        return result  # unreachable, or the module could not run: the record says so for every event
                    # After events that ran (a BlockTraffic that drained it included), which the record keeps.
                    result = segment_not_run(names, result)
                parts.append(result)
        combined = combine_segments(parts)
        if combined["failed_event"]:
            combined.update(failed=True, msg=failure_message(combined))
        return {"changed": True, **combined}


class PullUrlError(OperatorError):
    """The URL a host would pull the bundle from could not be made."""


def pull_url(pull: dict) -> str:
    """The URL the host downloads the bundle from: the HTTP(S) revision's own, or a presigned GET of the S3 object
    the controller validated (its version when the bucket is versioned), for the hosts' endpoint."""
    if pull.get("url"):
        return pull["url"]
    if not HAS_BOTO3:
        raise PullUrlError("boto3 is required on the controller to presign the S3 bundle URL the hosts pull: "
                           "install boto3, or use codedeploy_bundle_transport: push")
    try:
        return presigned_get_object_url(pull.get("aws"), pull["bucket"], pull["key"], pull.get("version_id"),
                                        PRESIGNED_URL_EXPIRES_IN, pull.get("endpoint_url"))
    except AWS_ERRORS as error:
        raise PullUrlError(describe_aws_error(error, f"presigning s3://{pull['bucket']}/{pull['key']}")) from None


def failed_before_download(events: list[str], message: str) -> dict:
    """The result of events that did not run because the bundle URL could not be made: DownloadBundle Failed."""
    now = utc_timestamp()
    return {"status": "Failed", "failed_event": "DownloadBundle", "lifecycle_events": [
        event_record(name, "Failed", now, now, "UnknownError", message) if name == "DownloadBundle"
        else event_record(name, "Skipped", None, None) for name in events]}


def download_bundle_ran(result: dict) -> bool:
    """Whether the instance's DownloadBundle ran (and so took care of the pushed file), from the task's result."""
    return any(event.get("lifecycle_event_name") == "DownloadBundle" and event.get("status") in ("Succeeded", "Failed")
               for event in result.get("lifecycle_events") or [])


def traffic_event(name: str, traffic: dict, providers: list) -> dict:
    """BlockTraffic (deregister, wait until drained) or AllowTraffic (register, wait until healthy), from here.
    ``providers`` holds the instance's provider once opened, for its other traffic event."""
    start = utc_timestamp()
    wanted = DEREGISTERED if name == "BlockTraffic" else REGISTERED
    try:
        if not providers:
            providers.append(load_balancer_provider(traffic["load_balancer_info"], [traffic["target"]],
                                                    traffic.get("aws")))
        provider = providers[0]
        outcome = reconcile(provider, wanted, True, float(traffic.get("wait_timeout") or 3600), False)
    except TrafficError as error:
        return failed_traffic_event(name, start, error.message)
    except AWS_ERRORS as error:
        return failed_traffic_event(name, start, describe_aws_error(error, f"ELBv2 ({name})"))
    if outcome.timed_out:
        return failed_traffic_event(name, start, timeout_message(outcome, wanted, provider.place_key))
    return {"status": "Succeeded", "failed_event": None, "lifecycle_events": [event_record(
        name, "Succeeded", start, utc_timestamp(), message=outcome_summary(outcome, provider.place_key))]}


def failed_traffic_event(name: str, start: str, message: str) -> dict:
    return {"status": "Failed", "failed_event": name,
            "lifecycle_events": [event_record(name, "Failed", start, utc_timestamp(), "UnknownError", message)]}
