# Copyright: fleetops.codedeploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What converge left on each fleet host, checked on the host itself."""
import json


def test_each_host_is_its_own_machine(host):
    assert host.check_output("hostname") == host.backend.get_hostname()


def test_revision_copied_with_executable_scripts(host):
    script = host.file("/srv/example-revision/scripts/start.sh")
    assert script.is_file
    assert script.mode & 0o111
    assert host.file("/srv/example-revision/appspec.yml").contains("version: 0.0")


def test_appspec_validated_on_the_host(host):
    hooks = json.loads(host.file("/etc/fleet-app/validated-hooks.json").content_string)
    assert [h["location"] for h in hooks["ApplicationStart"]] == ["scripts/start.sh"]
    assert hooks["AfterInstall"][0]["runas"] == "deploy"
    assert hooks["ValidateService"][0]["timeout"] == 30


def test_host_python_has_no_pyyaml(host):
    assert host.run("/usr/bin/python3 -c 'import yaml'").rc != 0
