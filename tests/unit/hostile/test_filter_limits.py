"""Filters cannot run a client's regular expression (issue 14, defect 3).

EXSLT ``re:test`` backtracked catastrophically on the event loop (100 bytes: 7.2 s, doubling
per character); XPath filters now have no extension functions at all.
"""

from __future__ import annotations

import pytest
from lxml import etree

from esc_orch.model.errors import NC_BASE_NS, ErrorTag, RpcError
from esc_orch.northbound.filters import apply_filter

ESC = "http://www.cisco.com/esc/esc"
RE = "http://exslt.org/regular-expressions"
DATA = (
    f'<data xmlns="{NC_BASE_NS}"><esc_datamodel xmlns="{ESC}"><tenants>'
    "<tenant><name>aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!</name></tenant>"
    "</tenants></esc_datamodel></data>"
)


@pytest.mark.parametrize(
    "select",
    [
        "//name[re:test(., '^a')]",
        "//name[re:test(., '^(a+)+$')]",  # catastrophic backtracking if it ever ran
        "//name[re:match(., 'a')]",
        "//name[re:replace(., 'a', 'g', 'b') = 'b']",
    ],
)
def test_exslt_regular_expressions_are_refused(select: str) -> None:
    flt = etree.fromstring(
        f'<filter xmlns="{NC_BASE_NS}" xmlns:re="{RE}" type="xpath" select="{select}"/>'
    )
    with pytest.raises(RpcError) as info:
        apply_filter(etree.fromstring(DATA), flt)
    assert info.value.tag is ErrorTag.INVALID_VALUE
    assert info.value.info["bad-attribute"] == "select"


def test_plain_xpath_functions_still_work() -> None:
    flt = etree.fromstring(
        f'<filter xmlns="{NC_BASE_NS}" type="xpath" select="//name[starts-with(., \'aaa\')]"/>'
    )
    out = apply_filter(etree.fromstring(DATA), flt)
    assert next(n.text or "" for n in out.iter(f"{{{ESC}}}name")).startswith("aaa")


async def test_a_filter_beyond_max_filter_nodes_is_too_big() -> None:
    from esc_orch.northbound.core import Limits  # noqa: PLC0415
    from nbsupport.inproc import InprocClient, error_tag, make_core  # noqa: PLC0415

    client = InprocClient(make_core(limits=Limits(max_filter_nodes=100)))
    nodes = "".join(f"<tenant><name>t{i}</name></tenant>" for i in range(60))
    reply = await client.rpc(
        f'<get><filter type="subtree"><esc_datamodel xmlns="{ESC}"><tenants>{nodes}'
        "</tenants></esc_datamodel></filter></get>"
    )
    assert error_tag(reply) == "too-big"
    small = await client.rpc(
        f'<get><filter type="subtree"><esc_datamodel xmlns="{ESC}"/></filter></get>'
    )
    assert error_tag(small) is None
