"""Platform tags are parsed in one place (rules.tags): the verdict's claims and the reports'
grouping keys give every tag the same meaning."""

from __future__ import annotations

import pytest

from wheelscan.rules.policy import default_policies
from wheelscan.rules.tags import PEP600_ALIASES, claim_key, parse_claim, policy_order


@pytest.mark.parametrize(
    ("tag", "key"),
    [
        ("manylinux1_x86_64", ("manylinux", "manylinux_2_5", "x86_64")),
        ("manylinux2010_i686", ("manylinux", "manylinux_2_12", "i686")),
        ("manylinux2014_aarch64", ("manylinux", "manylinux_2_17", "aarch64")),
        ("manylinux_2_28_x86_64", ("manylinux", "manylinux_2_28", "x86_64")),
        ("musllinux_1_2_armv7l", ("musllinux", "musllinux_1_2", "armv7l")),
        ("linux_x86_64", ("linux", "linux", "x86_64")),
        ("manylinux3_x86_64", None),  # an alias PEP 600 does not define
        ("macosx_11_0_arm64", None),
        ("any", None),
        ("win_amd64", None),
    ],
)
def test_claim_key(tag: str, key: tuple[str, str, str] | None) -> None:
    assert claim_key(tag) == key


def test_pep600_aliases_agree_with_the_policy_data() -> None:
    # the reports' fixed table and the verdict's table from auditwheel's policies
    aliases = default_policies().aliases()
    assert {a: aliases[a] for a in PEP600_ALIASES} == dict(PEP600_ALIASES)


def test_claim_key_means_what_the_verdict_judges() -> None:
    aliases = default_policies().aliases()
    for alias in PEP600_ALIASES:
        for arch in ("x86_64", "i686", "aarch64"):
            tag = f"{alias}_{arch}"
            claim = parse_claim(tag, aliases)
            key = claim_key(tag)
            assert claim is not None
            assert key is not None
            assert f"{key[1]}_{key[2]}" == claim.canonical


def test_policy_order() -> None:
    names = ["none", "musllinux_1_1", "manylinux_2_17", "linux", "manylinux_2_5", "musllinux_1_2",
             "manylinux_2_28"]
    assert sorted(names, key=policy_order) == [
        "manylinux_2_5", "manylinux_2_17", "manylinux_2_28", "musllinux_1_1", "musllinux_1_2",
        "linux", "none",
    ]
