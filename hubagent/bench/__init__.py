"""`hubagent bench`: ingest, command latency, LLM overhead and footprint, each next to a
baseline measured in the same run on the same broker."""
