"""A small reader of the Prometheus text format (version 0.0.4), enough for
the tests: samples as {(name, frozenset(labels)): value}, plus the TYPE of
each family."""

import re

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


class Metrics:
    def __init__(self, text):
        self.samples = {}
        self.types = {}
        for line in text.splitlines():
            if not line:
                continue
            if line.startswith("# TYPE "):
                _, _, name, typ = line.split(" ", 3)
                self.types[name] = typ
                continue
            if line.startswith("#"):
                continue
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            labels = {}
            if m.group(3):
                rest = m.group(3)
                pos = 0
                while pos < len(rest):
                    lm = LABEL.match(rest, pos)
                    assert lm, f"bad labels in {line!r}"
                    labels[lm.group(1)] = (lm.group(2).replace('\\"', '"')
                                           .replace("\\n", "\n")
                                           .replace("\\\\", "\\"))
                    pos = lm.end()
            key = (m.group(1), frozenset(labels.items()))
            assert key not in self.samples, f"duplicate sample {line!r}"
            self.samples[key] = float(m.group(4))

    def get(self, name, **labels):
        """The value of one sample; KeyError if it is absent."""
        return self.samples[(name, frozenset(labels.items()))]

    def find(self, name, **labels):
        """Every sample of NAME whose labels include LABELS."""
        want = set(labels.items())
        return {k[1]: v for k, v in self.samples.items()
                if k[0] == name and want <= set(k[1])}

    def sum(self, name, **labels):
        return sum(self.find(name, **labels).values())

    def families(self):
        """The metric family names, histograms by their base name."""
        return set(self.types)
