"""The demo's storefront pieces (R27, R30) that need no platform: the reseller plans it
offers, the colours and the logo Cloud Lite brands its storefront with (the storefront's own
rules accept them), the demo users the banner prints sign-in links for, and how a start
withdraws the links the last one printed."""

from __future__ import annotations

import stat
import struct
import time
import zlib
from dataclasses import fields, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from functions.core.errors import BadRequest
from functions.storefront import domain
from local import demo, logo


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """A PNG's chunks (kind, data), each CRC checked."""
    assert png.startswith(logo.PNG_SIGNATURE)
    found, at = [], len(logo.PNG_SIGNATURE)
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", png[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF, kind
        found.append((kind, data))
        at += 12 + length
    return found


def test_the_logo_is_a_png_the_storefront_accepts() -> None:
    png = logo.demo_logo()
    assert domain.logo_type(png) == "image/png"  # a 400 if not a PNG/JPEG or too large
    assert len(png) <= domain.MAX_LOGO_BYTES
    kinds = chunks(png)
    assert [kind for kind, _ in kinds] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, color, *_ = struct.unpack(">IIBBBBB", kinds[0][1])
    assert (width, height, depth, color) == (160, 48, 8, 2)  # 8-bit RGB
    raw = zlib.decompress(kinds[1][1])
    stride = 1 + width * 3
    assert len(raw) == height * stride
    pixels = {
        bytes(raw[r * stride + 1 + x * 3 : r * stride + 4 + x * 3])
        for r in range(height)
        for x in range(width)
    }
    # the brand colour, the accent and white: what LITE_COLORS gives the storefront
    assert pixels == {
        bytes(logo.rgb(demo.LITE_COLORS["primary_color"])),
        bytes(logo.rgb(demo.LITE_COLORS["accent_color"])),
        b"\xff\xff\xff",
    }
    assert raw[1:4] == bytes(logo.rgb(logo.BRAND))  # the top left corner is the background


def test_encode_png_refuses_ragged_rows() -> None:
    with pytest.raises(ValueError):
        logo.encode_png([[(0, 0, 0)], [(0, 0, 0), (1, 1, 1)]])
    with pytest.raises(ValueError):
        logo.rgb("#fff")


@pytest.mark.parametrize("field_name", ["primary_color", "accent_color"])
def test_cloud_lites_colours_pass_the_contrast_rule(field_name: str) -> None:
    color = demo.LITE_COLORS[field_name]
    assert domain.check_color(color, field_name) == color.lower()
    assert domain.contrast_with_white(color) >= 4.5
    assert demo.LITE_COLORS == {"primary_color": logo.BRAND, "accent_color": logo.ACCENT}


def test_a_light_colour_would_be_refused() -> None:
    """What the demo avoids: PATCH /storefront answers 400 low_contrast."""
    with pytest.raises(BadRequest):
        domain.check_color("#ffee88", "primary_color")


def test_cloud_offers_the_three_reseller_plans_monthly() -> None:
    plans = {spec.plan: spec for spec in demo.PRODUCTS if spec.type == "reseller_plan"}
    assert {plan: spec.costs for plan, spec in plans.items()} == {
        "basic": {"monthly": "0.00"},
        "free": {"monthly": "0.00"},
        "standard": {"monthly": "49.00"},
    }
    assert all(spec.cycles == ("monthly",) and spec.unit == "plan" for spec in plans.values())
    assert all(spec.plan is None for spec in demo.PRODUCTS if spec.type != "reseller_plan")
    assert plans["standard"].key == demo.LITE_PLAN
    # every list prices every product it has a cost for: the plans too, fixed or by markup
    assert not any(key == demo.LITE_PLAN for key, _ in demo.LITE_LIST.fixed)
    assert len({spec.sku for spec in demo.PRODUCTS}) == len(demo.PRODUCTS)


def test_the_sign_in_users_name_demo_accounts_and_storefronts() -> None:
    names = {f.name for f in fields(demo.Demo)}
    assert [s.key for s in demo.SIGN_INS] == ["lite_reseller", "customer_x", "customer_z"]
    assert all(s.account in names for s in demo.SIGN_INS)
    assert [(s.storefront, s.role) for s in demo.SIGN_INS] == [
        ("lite", "reseller"),
        ("lite", "customer"),
        ("resell", "customer"),
    ]


def test_a_demo_saved_before_storefronts_still_loads() -> None:
    """A snapshot's demo without the new fields: the defaults fill them in."""
    old = demo.Demo(
        cloud_id="t1",
        resell_id="t2",
        resell_account_id="a0",
        lite_id="a1",
        x_id="a2",
        y_id="a3",
        z_id="a4",
        price_lists={},
        cloud_products={},
        resell_products={},
        subscriptions={},
    )
    assert old.storefronts == {} and old.backordering == {}


@pytest.mark.usefixtures("aws")
def test_a_start_withdraws_the_links_the_last_one_printed(tmp_path: Path) -> None:
    """``local.platform``: the banner's links are listed in the state directory; the next start
    deletes their records (a link without its record signs nobody in), so a restart leaves as
    many records as it found. A link already gone, a missing or a damaged list: nothing."""
    from functions.composition import container
    from local import platform

    repository = container().storefronts.storefronts
    expires = int(time.time()) + 900
    for nonce in ("n1", "n2"):
        repository.record_link("tnt_1", "acc_1", nonce, expires)
    listed = tmp_path / platform.LINKS_FILE
    assert platform._withdraw_links(listed) == 0  # no list yet
    link = platform.SignInLink(
        key="lite_reseller",
        label="Cloud Lite's user",
        alias="cloud-lite",
        email="billing@cloud-lite.example",
        url="http://127.0.0.1:8000/store/cloud-lite/login/confirm?token=t",
        expires=datetime.fromtimestamp(expires, UTC),
        tenant_id="tnt_1",
        account_id="acc_1",
    )
    platform._save_links(
        listed, [replace(link, nonce="n1"), replace(link, nonce="gone", account_id="acc_2")]
    )
    assert stat.S_IMODE(listed.stat().st_mode) == 0o600
    assert platform._withdraw_links(listed) == 1
    assert repository.use_link("tnt_1", "acc_1", "n1", "2026-12-05T08:00:00Z") is False
    assert repository.use_link("tnt_1", "acc_1", "n2", "2026-12-05T08:00:00Z") is True
    listed.write_text("{not json", encoding="utf-8")
    assert platform._withdraw_links(listed) == 0
