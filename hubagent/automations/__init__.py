"""Automations: YAML rules (triggers, conditions, actions) run through the hub's policy."""

from hubagent.automations.engine import AutomationEngine, Run
from hubagent.automations.model import Automation, AutomationError
from hubagent.automations.schema import load_file, load_text

__all__ = ["Automation", "AutomationEngine", "AutomationError", "Run", "load_file", "load_text"]
