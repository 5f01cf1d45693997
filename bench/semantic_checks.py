"""Bench: the edit-time semantic checks next to libyang, on the seed deployment.

``esc_orch.model.semantics.check_config`` runs after libyang on every deployment an edit
changes; this prints both medians (ms) over ``--runs`` checks of the seed payload with its
three VIM connectors, so the share the semantic checks add to an edit is visible.

Run: .venv/bin/python bench/semantic_checks.py [--runs 200]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from esc_orch.model.semantics import Vocabulary, check_config
from esc_orch.model.validate import validate_config
from esc_orch.model.xmlsafe import parse_xml

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"


def _data() -> etree._Element:
    data = etree.Element(f"{{{NC_NS}}}data")
    for name in ("vim_connectors.xml", "deploy_csp_1.xml"):
        data.append(parse_xml((EXAMPLES / name).read_bytes()))
    return data


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    data = _data()
    vocabulary = Vocabulary()
    assert validate_config(copy.deepcopy(data)) == []
    assert check_config(data, vocabulary=vocabulary) == []
    libyang_ms = _median_ms(lambda: validate_config(data), args.runs)
    semantic_ms = _median_ms(lambda: check_config(data, vocabulary=vocabulary), args.runs)
    print(f"seed deployment, {args.runs} runs")
    print(f"  libyang validate_config: median {libyang_ms:.2f} ms")
    print(f"  semantic check_config:   median {semantic_ms:.2f} ms")


if __name__ == "__main__":
    main()
