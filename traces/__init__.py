"""The v1 trace format: typed records, the streaming reader and writer, samples, the generator."""
