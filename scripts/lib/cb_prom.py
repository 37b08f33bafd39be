"""Prometheus text exposition format (the node_exporter textfile collector's input).

Every family gets HELP and TYPE lines, even without samples; names carry base
units (_seconds, _bytes_per_second); label values are escaped.
"""
import math
import re

NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _label_value(text):
    return str(text).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs):
    if not pairs:
        return ""
    for key in pairs:
        assert LABEL.match(key), key
    return "{" + ",".join(f'{k}="{_label_value(v)}"' for k, v in pairs.items()) + "}"


def _value(value):
    """Exact text of a sample: integers as such, finite floats round-tripping."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if not math.isfinite(value):
        raise ValueError("a metric sample must be finite")
    return repr(value)


def _help_text(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n")


class Exposition:
    """Families in the order added; text() is the whole file."""

    def __init__(self):
        self._lines = []
        self._names = set()

    def gauge(self, name, help_text, samples=()):
        """A gauge family: samples are (labels dict, value)."""
        assert NAME.match(name) and name not in self._names, name
        self._names.add(name)
        self._lines += [f"# HELP {name} {_help_text(help_text)}", f"# TYPE {name} gauge"]
        seen = set()
        for pairs, value in samples:
            line = f"{name}{_labels(pairs)}"
            if line in seen:          # a duplicate series is invalid: keep the first
                continue
            seen.add(line)
            self._lines.append(f"{line} {_value(value)}")

    def text(self):
        return "\n".join(self._lines) + "\n"
