"""Memory traces: the columnar format, readers registered through
``migpolicy_trace_readers``, converters and synthetic generators.
"""
