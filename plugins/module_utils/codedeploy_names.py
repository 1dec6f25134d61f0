# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The names CodeDeploy gives things, defined once: lifecycle events (and how the load balancer's cut an instance's
events into module calls), creators, statuses and error codes.

Each value is spelled as CodeDeploy spells it (docs/codedeploy-agent.md, docs/codedeploy-service.md). Standard
library only: hosts import this module too.
"""
from __future__ import annotations

# ----- lifecycle events (docs/codedeploy-agent.md, 2) -----------------------------------------------------------------
BLOCK_TRAFFIC_EVENTS = ("BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic")
INSTALL_EVENTS = ("ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall",
                  "ApplicationStart", "ValidateService")
ALLOW_TRAFFIC_EVENTS = ("BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic")
# The in-place order of the agent's DEFAULT_ORDERED_LIFECYCLE_EVENTS.
LIFECYCLE_EVENTS = BLOCK_TRAFFIC_EVENTS + INSTALL_EVENTS + ALLOW_TRAFFIC_EVENTS
# Events no AppSpec script runs for: the agent's own (DownloadBundle, Install) and the load balancer's.
RESERVED_EVENTS = ("DownloadBundle", "Install", "BlockTraffic", "AllowTraffic")
TRAFFIC_EVENTS = ("BlockTraffic", "AllowTraffic")
# The events whose scripts come from the last successful revision; ignore_application_stop_failures covers them.
STOP_EVENTS = ("ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic")


def lifecycle_segments(events: list[str]) -> list[tuple[str, list[str]]]:
    """The events cut at the load balancer's: runs of host events (``"host"``, one module call each) and the
    traffic events (``"traffic"``, done by the controller), in order."""
    segments: list[tuple[str, list[str]]] = []
    for name in events:
        if name in TRAFFIC_EVENTS:
            segments.append(("traffic", [name]))
        elif segments and segments[-1][0] == "host":
            segments[-1][1].append(name)
        else:
            segments.append(("host", [name]))
    return segments


# ----- who created a deployment (docs/codedeploy-service.md, 4.1) -----------------------------------------------------
CREATOR_USER = "user"
CREATOR_ROLLBACK = "codeDeployRollback"
CREATOR_AUTOSCALING = "autoscaling"  # a catch-up deployment to instances that lack the group's last revision
CREATORS = (CREATOR_USER, CREATOR_ROLLBACK, CREATOR_AUTOSCALING)

# ----- deployment types (docs/codedeploy-service.md, 2) ---------------------------------------------------------------
IN_PLACE, BLUE_GREEN = "IN_PLACE", "BLUE_GREEN"
DEPLOYMENT_TYPES = (IN_PLACE, BLUE_GREEN)

# ----- statuses (docs/codedeploy-service.md, 5.1) ---------------------------------------------------------------------
CREATED, QUEUED, IN_PROGRESS, BAKING = "Created", "Queued", "InProgress", "Baking"
SUCCEEDED, FAILED, STOPPED, READY = "Succeeded", "Failed", "Stopped", "Ready"
PENDING, SKIPPED, UNKNOWN = "Pending", "Skipped", "Unknown"
DEPLOYMENT_STATUSES = (CREATED, QUEUED, IN_PROGRESS, BAKING, SUCCEEDED, FAILED, STOPPED, READY)
INSTANCE_STATUSES = (PENDING, IN_PROGRESS, SUCCEEDED, FAILED, SKIPPED, UNKNOWN, READY)
LIFECYCLE_EVENT_STATUSES = (PENDING, IN_PROGRESS, SUCCEEDED, FAILED, SKIPPED, UNKNOWN)

# ----- an event's diagnostics (docs/codedeploy-agent.md, 3.5) ---------------------------------------------------------
SUCCESS = "Success"
SCRIPT_MISSING = "ScriptMissing"
SCRIPT_NOT_EXECUTABLE = "ScriptNotExecutable"
SCRIPT_TIMED_OUT = "ScriptTimedOut"
SCRIPT_FAILED = "ScriptFailed"
UNKNOWN_ERROR = "UnknownError"
OUTPUTS_LEFT_OPEN = "OutputsLeftOpen"
DIAGNOSTIC_ERROR_CODES = (SUCCESS, SCRIPT_MISSING, SCRIPT_NOT_EXECUTABLE, SCRIPT_TIMED_OUT, SCRIPT_FAILED,
                          UNKNOWN_ERROR, OUTPUTS_LEFT_OPEN)

# ----- a deployment's error codes (docs/codedeploy-service.md, 5.3) ---------------------------------------------------
ALARM_ACTIVE = "ALARM_ACTIVE"
HEALTH_CONSTRAINTS = "HEALTH_CONSTRAINTS"
HEALTH_CONSTRAINTS_INVALID = "HEALTH_CONSTRAINTS_INVALID"
INTERNAL_ERROR = "INTERNAL_ERROR"
MANUAL_STOP = "MANUAL_STOP"
NO_INSTANCES = "NO_INSTANCES"
REVISION_MISSING = "REVISION_MISSING"
TIMEOUT = "TIMEOUT"
DEPLOYMENT_ERROR_CODES = (ALARM_ACTIVE, HEALTH_CONSTRAINTS, HEALTH_CONSTRAINTS_INVALID, INTERNAL_ERROR, MANUAL_STOP,
                          NO_INSTANCES, REVISION_MISSING, TIMEOUT)
