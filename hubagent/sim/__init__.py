"""Simulated devices that speak Home Assistant MQTT discovery like real firmware.

`devices` and `kinds` hold the pure device behaviours; `simulator` connects them to a broker.
"""
