"""Edge compression: a distilled per-home student classifier and its quantization."""
