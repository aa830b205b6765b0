"""The Home Assistant Supervisor's add-on ("app") schema pieces that addon/ must satisfy.

Vendored verbatim (regexes, enumerations, key names) from home-assistant/supervisor at
commit 090ef31ec024952c2469ed5a7c9f3ce8c1a5499e (2026-08-21):
  supervisor/apps/validate.py   RE_VOLUME, RE_SERVICE, RE_DOCKER_IMAGE_BUILD, the watchdog
                                pattern, _SCHEMA_APP_CONFIG's keys, SCHEMA_BUILD_CONFIG's keys
  supervisor/apps/const.py      RE_SLUG, MappingType
  supervisor/apps/options.py    RE_SCHEMA_ELEMENT
  supervisor/validate.py        docker_port's pattern, RE_REPOSITORY
  supervisor/const.py           ARCH_ALL_COMPAT, AppStartup, AppBootConfig, AppStage, ROLE_ALL
  supervisor/store/validate.py  SCHEMA_REPOSITORY_CONFIG's keys
The Supervisor package itself cannot be imported here (it pulls in its whole runtime:
coresys, docker, dbus). `SOURCES` lists each pattern with its file, so
tests/test_addon.py checks them against a Supervisor checkout when HUBAGENT_SUPERVISOR_SRC
names one (drift check).
"""

from __future__ import annotations

import re

COMMIT = "090ef31ec024952c2469ed5a7c9f3ce8c1a5499e"

# supervisor/apps/validate.py
RE_VOLUME_SRC = r"^(data|config|ssl|local_apps|addons|backup|share|media|homeassistant_config|all_app_configs|all_addon_configs|app_config|addon_config)(?::(rw|ro))?$"
RE_SERVICE_SRC = r"^(?P<service>mqtt|mysql):(?P<rights>provide|want|need)$"
RE_DOCKER_IMAGE_BUILD_SRC = r"^([a-zA-Z\-\.:\d{}]+/)*?([\-\w{}]+)/([\-\w{}]+)(:[\.\-\w{}]+)?$"
WATCHDOG_SRC = r"^(?:https?|\[PROTO:\w+\]|tcp):\/\/\[HOST\]:(\[PORT:\d+\]|\d+).*$"
# supervisor/apps/const.py
RE_SLUG_SRC = r"[-_.A-Za-z0-9]+"
# supervisor/apps/options.py (RE_SCHEMA_ELEMENT, one source line per alternative)
RE_SCHEMA_ELEMENT_LINES = (
    r"^(?:",
    r"|bool",
    r"|email",
    r"|url",
    r"|port",
    r"|device(?:\((?P<filter>subsystem=[a-z]+)\))?",
    r"|str(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?",
    r"|password(?:\((?P<p_min>\d+)?,(?P<p_max>\d+)?\))?",
    r"|int(?:\((?P<i_min>-?\d+)?,(?P<i_max>-?\d+)?\))?",
    r"|float(?:\((?P<f_min>-?\d*\.?\d+)?,(?P<f_max>-?\d*\.?\d+)?\))?",
    r"|match\((?P<match>.*)\)",
    r"|list\((?P<list>.+)\)",
    r")\??$",
)
# supervisor/validate.py
DOCKER_PORT_SRC = r"^\d+(?:/tcp|/udp)?$"
RE_REPOSITORY_SRC = r"^(?P<url>[^#]+)(?:#(?P<branch>[\w\-./]+))?$"

RE_VOLUME = re.compile(RE_VOLUME_SRC)
RE_SERVICE = re.compile(RE_SERVICE_SRC)
RE_DOCKER_IMAGE_BUILD = re.compile(RE_DOCKER_IMAGE_BUILD_SRC)
RE_WATCHDOG = re.compile(WATCHDOG_SRC)
RE_SLUG_FIELD = re.compile(r"^" + RE_SLUG_SRC + r"$")
RE_SCHEMA_ELEMENT = re.compile("".join(RE_SCHEMA_ELEMENT_LINES))
RE_DOCKER_PORT = re.compile(DOCKER_PORT_SRC)
RE_REPOSITORY = re.compile(RE_REPOSITORY_SRC)

# supervisor/const.py
ARCH_ALL = ["aarch64", "amd64"]
ARCH_DEPRECATED = ["armhf", "armv7", "i386"]
ARCH_ALL_COMPAT = ARCH_ALL + ARCH_DEPRECATED
APP_STARTUP = ["initialize", "system", "services", "application", "once"]
APP_BOOT_CONFIG = ["auto", "manual", "manual_only"]
APP_STAGE = ["stable", "experimental", "deprecated"]
ROLE_ALL = ["default", "homeassistant", "backup", "manager", "admin"]
# supervisor/apps/const.py MappingType (the last three are deprecated as of 2026.07)
MAPPING_TYPES = [
    "data", "config", "ssl", "local_apps", "backup", "share", "media",
    "homeassistant_config", "all_app_configs", "app_config",
    "addons", "all_addon_configs", "addon_config",
]  # fmt: skip
MAPPING_DEPRECATED = ["config", "addons", "all_addon_configs", "addon_config"]

# _SCHEMA_APP_CONFIG (extra=vol.REMOVE_EXTRA: any other key is silently dropped)
APP_CONFIG_REQUIRED = ["name", "version", "slug", "description", "arch"]
APP_CONFIG_OPTIONAL = [
    "machine", "url", "startup", "boot", "init", "advanced", "stage", "ports",
    "ports_description", "watchdog", "webui", "ingress", "ingress_port", "ingress_entry",
    "ingress_stream", "panel_icon", "panel_title", "panel_admin", "homeassistant",
    "host_network", "host_pid", "host_ipc", "host_uts", "host_dbus", "devices", "udev",
    "tmpfs", "map", "environment", "privileged", "apparmor", "full_access", "audio", "video",
    "gpio", "usb", "uart", "devicetree", "kernel_modules", "realtime", "hassio_api",
    "hassio_role", "homeassistant_api", "stdin", "legacy", "docker_api", "auth_api",
    "services", "discovery", "backup_exclude", "backup_pre", "backup_post", "backup",
    "options", "schema", "image", "ulimits", "timeout", "journald", "breaking_versions",
]  # fmt: skip
APP_CONFIG_BOOLEANS = [
    "init", "ingress", "ingress_stream", "panel_admin", "host_network", "host_pid",
    "host_ipc", "host_uts", "host_dbus", "udev", "tmpfs", "apparmor", "full_access", "audio",
    "video", "gpio", "usb", "uart", "devicetree", "kernel_modules", "realtime", "hassio_api",
    "homeassistant_api", "stdin", "legacy", "docker_api", "auth_api", "journald",
]  # fmt: skip
# SCHEMA_BUILD_CONFIG
BUILD_CONFIG_KEYS = ["build_from", "squash", "args", "labels"]
# supervisor/apps/build.py: without build_from the Supervisor builds from this (Alpine).
DEFAULT_BUILD_FROM = "ghcr.io/home-assistant/base:latest"
# supervisor/store/validate.py SCHEMA_REPOSITORY_CONFIG
REPOSITORY_REQUIRED = ["name"]
REPOSITORY_OPTIONAL = ["url", "maintainer"]

# (vendored source text, file in the Supervisor tree) for the drift check.
SOURCES: list[tuple[str, str]] = [
    (RE_VOLUME_SRC, "supervisor/apps/validate.py"),
    (RE_SERVICE_SRC, "supervisor/apps/validate.py"),
    (RE_DOCKER_IMAGE_BUILD_SRC, "supervisor/apps/validate.py"),
    (WATCHDOG_SRC, "supervisor/apps/validate.py"),
    (RE_SLUG_SRC, "supervisor/apps/const.py"),
    *((line, "supervisor/apps/options.py") for line in RE_SCHEMA_ELEMENT_LINES),
    (DOCKER_PORT_SRC, "supervisor/validate.py"),
    (RE_REPOSITORY_SRC, "supervisor/validate.py"),
    ('DEFAULT_BUILD_FROM = "ghcr.io/home-assistant/base:latest"', ""),
]
