"""Static checks of the Azure deployment: Bicep templates, host.json, azure.yaml.

Nothing here reaches Azure. Checkov scans the templates, and the other tests
read the files and check the settings that the app and the queue share.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BICEP = ROOT / "bicep"
MODULES = BICEP / "modules"
DEFAULT_CHECKOV = Path("/tmp/checkov-venv/bin/checkov")

# Keeps Checkov offline: no vendor API calls, no update check on PyPI.
CHECKOV_ENV = {
    "BC_SKIP_MAPPING": "TRUE",
    "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE",
    "CKV_PARSE_ERROR_FAIL": "true",
}

APP_SETTINGS_READ_BY_CODE = (
    "DATABASE_URL",
    "NIVODA_ENDPOINT",
    "NIVODA_USERNAME",
    "NIVODA_PASSWORD",
    "RESEND_API_KEY",
    "ALERT_EMAIL_TO",
    "ALERT_EMAIL_FROM",
    "WATERMARK_ACCOUNT_URL",
    "WATERMARK_CONTAINER",
    "WORK_ITEMS_QUEUE",
    "SERVICEBUS_NAMESPACE",
    "FEED",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "SYNC_SCHEDULE",
    "MAX_DELIVERY_COUNT",
    "DATABASE_POOL_MAX_SIZE",
)
SECRET_SETTINGS = ("DATABASE_URL", "NIVODA_PASSWORD", "RESEND_API_KEY", "HMAC_SECRETS")
# Flex Consumption rejects these app settings because functionAppConfig sets them.
SETTINGS_REJECTED_BY_FLEX = (
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "AzureWebJobsStorage",
)


def find_checkov() -> str | None:
    """Return the Checkov executable: $CHECKOV, /tmp/checkov-venv, or PATH."""
    candidate = os.environ.get("CHECKOV")
    if candidate:
        if shutil.which(candidate) is None:
            pytest.fail(f"CHECKOV={candidate} is not an executable; fix or unset it")
        return candidate
    if DEFAULT_CHECKOV.exists():
        return str(DEFAULT_CHECKOV)
    return shutil.which("checkov")


@pytest.fixture(scope="module")
def checkov_report() -> dict:
    checkov = find_checkov()
    if checkov is None:
        pytest.skip(
            "checkov not installed: python -m venv /tmp/checkov-venv && "
            "/tmp/checkov-venv/bin/pip install checkov==3.3.30, or set CHECKOV"
        )
    completed = subprocess.run(
        [checkov, "-d", str(BICEP), "--framework", "bicep", "--skip-download"]
        + ["--output", "json"],
        capture_output=True,
        text=True,
        env={**os.environ, **CHECKOV_ENV},
        timeout=300,
        check=False,
    )
    assert completed.stdout, f"checkov printed nothing; stderr:\n{completed.stderr}"
    report = json.loads(completed.stdout)
    # Checkov prints one object for one framework and a list for several.
    if isinstance(report, list):
        report = next(item for item in report if item.get("check_type") == "bicep")
    report["exit_code"] = completed.returncode
    return report


def read_bicep(name: str) -> str:
    return (BICEP / name).read_text(encoding="utf-8")


def bicep_object_entries(source: str, opening: str) -> dict[str, str]:
    """Return `key: value` lines of the one-level object that starts at `opening`."""
    start = source.index(opening) + len(opening)
    end = source.index("\n}", start)
    entries = {}
    for line in source[start:end].splitlines():
        match = re.match(r"\s+'?([\w.-]+)'?:\s*(.+)$", line)
        if match:
            entries[match.group(1)] = match.group(2).strip()
    return entries


def queue_properties() -> dict[str, str]:
    source = read_bicep("modules/servicebus.bicep")
    block = source[source.index("resource queue ") :]
    return bicep_object_entries(block, "properties: {")


def app_settings() -> dict[str, str]:
    return bicep_object_entries(
        read_bicep("modules/functionapp.bicep"), "var appSettings = {"
    )


def role_assignments() -> set[tuple[str, str]]:
    """Return (role, scope) of each role assignment in roles.bicep."""
    source = read_bicep("modules/roles.bicep")
    blocks = source.split("Microsoft.Authorization/roleAssignments@")[1:]
    pairs = set()
    for block in blocks:
        scope = re.search(r"scope: (\w+)", block).group(1)
        role = re.search(r"roleDefinitionId: .*roleIds\.(\w+)\)", block).group(1)
        pairs.add((role, scope))
    return pairs


def load_host_json() -> dict:
    return json.loads((ROOT / "host.json").read_text(encoding="utf-8"))


# Checkov


def test_checkov_exit_code_zero(checkov_report):
    assert checkov_report["exit_code"] == 0, checkov_report["summary"]


def test_checkov_no_failed_checks(checkov_report):
    failed = [
        f"{check['check_id']} {check['resource']} {check['file_path']}"
        for check in checkov_report["results"]["failed_checks"]
    ]
    assert failed == []


def test_checkov_no_parse_errors(checkov_report):
    assert checkov_report["results"]["parsing_errors"] == []
    assert checkov_report["summary"]["parsing_errors"] == 0


def test_checkov_scans_resources(checkov_report):
    # A template that stops parsing silently would also report zero failures.
    assert checkov_report["summary"]["passed"] >= 30
    assert checkov_report["summary"]["resource_count"] >= 40


def test_checkov_skips_all_carry_reasons():
    pattern = re.compile(r"//\s*checkov:skip=(CKV\w+):\s*(.*)$")
    skips = []
    for path in sorted(BICEP.rglob("*.bicep")):
        for line in path.read_text(encoding="utf-8").splitlines():
            match = pattern.search(line)
            if match:
                skips.append((path.name, match.group(1), match.group(2)))
    assert skips, "expected the documented suppressions"
    for file_name, check_id, reason in skips:
        assert len(reason) >= 40, f"{file_name}: {check_id} needs a reason"


# Service Bus queue


def test_queue_max_delivery_count_default_ten():
    source = read_bicep("modules/servicebus.bicep")
    assert re.search(r"param maxDeliveryCount int = 10\b", source)
    assert queue_properties()["maxDeliveryCount"] == "maxDeliveryCount"
    assert re.search(r"param maxDeliveryCount int = 10\b", read_bicep("main.bicep"))


def test_queue_duplicate_detection_one_hour():
    properties = queue_properties()
    assert properties["requiresDuplicateDetection"] == "true"
    assert properties["duplicateDetectionHistoryTimeWindow"] == "'PT1H'"


def test_queue_dead_letters_expired_messages():
    properties = queue_properties()
    assert properties["deadLetteringOnMessageExpiration"] == "true"
    assert properties["defaultMessageTimeToLive"] == "'P1D'"


def test_queue_lock_duration_set():
    assert queue_properties()["lockDuration"] == "'PT2M'"


def test_queue_namespace_standard_without_sas():
    source = read_bicep("modules/servicebus.bicep")
    assert "name: 'Standard'" in source
    assert "disableLocalAuth: true" in source


def test_delivery_count_shared_by_queue_and_app():
    source = read_bicep("main.bicep")
    assert source.count("maxDeliveryCount: maxDeliveryCount") == 2
    assert app_settings()["MAX_DELIVERY_COUNT"] == "string(maxDeliveryCount)"


# Function App settings


@pytest.mark.parametrize("name", APP_SETTINGS_READ_BY_CODE)
def test_app_setting_present(name):
    assert name in app_settings()


@pytest.mark.parametrize("name", SECRET_SETTINGS)
def test_secret_setting_is_key_vault_reference(name):
    assert app_settings()[name].startswith("format(keyVaultReference, secretUris.")
    source = read_bicep("modules/functionapp.bicep")
    assert "var keyVaultReference = '@Microsoft.KeyVault(SecretUri={0})'" in source


@pytest.mark.parametrize("name", SETTINGS_REJECTED_BY_FLEX)
def test_app_setting_absent_on_flex(name):
    assert name not in app_settings()


def test_identity_based_connections_configured():
    settings = app_settings()
    assert settings["AzureWebJobsStorage__accountName"] == "storageAccountName"
    assert (
        settings["ServiceBusConnection__fullyQualifiedNamespace"]
        == "serviceBusNamespace"
    )
    assert settings["AzureWebJobsStorage__credential"] == "'managedidentity'"
    assert settings["ServiceBusConnection__credential"] == "'managedidentity'"


def test_function_app_runs_python_311_on_flex():
    source = read_bicep("modules/functionapp.bicep")
    assert "tier: 'FlexConsumption'" in source
    assert re.search(r"name: 'python'\s+version: '3.11'", source)
    assert "'azd-service-name': 'api'" in source


def test_storage_disables_shared_keys():
    source = read_bicep("modules/storage.bicep")
    assert "allowSharedKeyAccess: false" in source
    assert "allowBlobPublicAccess: false" in source
    assert "minimumTlsVersion: 'TLS1_2'" in source


@pytest.mark.parametrize(
    ("role", "scope"),
    [
        ("storageBlobDataOwner", "storageAccount"),
        ("storageQueueDataContributor", "storageAccount"),
        ("storageTableDataContributor", "storageAccount"),
        ("serviceBusDataSender", "queue"),
        ("serviceBusDataReceiver", "queue"),
        ("keyVaultSecretsUser", "vault"),
    ],
)
def test_identity_role_on_narrow_scope(role, scope):
    assert (role, scope) in role_assignments()


def test_main_outputs_api_base_url():
    assert "output API_BASE_URL string = 'https://" in read_bicep("main.bicep")


# Monitoring


@pytest.mark.parametrize(
    "text",
    [
        'startswith "run failed"',
        'startswith "run completed"',
        "DeadletteredMessages",
        "WebtestLocationAvailabilityCriteria",
    ],
)
def test_alert_rule_present(text):
    assert text in read_bicep("modules/alerts.bicep")


def test_no_successful_run_window_26_hours():
    source = read_bicep("modules/alerts.bicep")
    assert "param maxHoursWithoutRun int = 26" in source
    assert "ago(${maxHoursWithoutRun}h)" in source


@pytest.mark.parametrize(
    "name",
    [
        "run_id",
        "partition_id",
        "feed",
        "trace_id",
        "pages_fetched",
        "stones_upserted",
        "supplier_errors",
        "consolidation_rows_per_second",
        "run_duration_seconds",
    ],
)
def test_workbook_reads_telemetry_name(name):
    assert name in read_bicep("modules/workbook.bicep")


# host.json


def test_host_json_version_and_bundle():
    host = load_host_json()
    assert host["version"] == "2.0"
    assert host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
    assert host["extensionBundle"]["version"] == "[4.*, 5.0.0)"
    assert host["functionTimeout"] == "00:30:00"


def test_host_json_empty_route_prefix():
    assert load_host_json()["extensions"]["http"]["routePrefix"] == ""


def test_host_json_service_bus_settings():
    service_bus = load_host_json()["extensions"]["serviceBus"]
    assert service_bus["maxConcurrentCalls"] == 16
    assert service_bus["autoCompleteMessages"] is True
    assert service_bus["maxAutoLockRenewalDuration"] == "00:05:00"


def test_host_json_durable_hub_name():
    durable = load_host_json()["extensions"]["durableTask"]
    assert durable["hubName"] == "DiamondOpusHub"


def test_host_json_sampling_exclusions():
    sampling = load_host_json()["logging"]["applicationInsights"]["samplingSettings"]
    excluded = sampling["excludedTypes"].split(";")
    assert "Request" in excluded
    assert "Exception" in excluded
    # The "no successful run" alert counts "run completed" traces.
    assert "Trace" in excluded


def test_host_json_log_levels():
    levels = load_host_json()["logging"]["logLevel"]
    assert levels["Function"] == "Information"
    assert levels["Host.Results"] == "Information"
    assert levels["Azure.Core"] == "Warning"
    assert levels["Azure.Messaging.ServiceBus"] == "Warning"


# azure.yaml


def test_azure_yaml_function_service_and_bicep_infra():
    text = (ROOT / "azure.yaml").read_text(encoding="utf-8")
    for line in (
        "  provider: bicep",
        "  path: bicep",
        "  module: main",
        "    project: .",
        "    language: python",
        "    host: function",
    ):
        assert f"\n{line}\n" in text, line
