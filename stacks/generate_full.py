#!/usr/bin/env python3
"""Write ``stacks/province-thanhhoa.yaml``: the full, realistic province file.

The file is modelled on the public structure of Thanh Hóa province after the
2025 reform (two levels of local government; 166 commune-level units from
2025-07-01: 19 wards and 147 communes).  It is used by later work for scale
(200+ sites).  Everything here is data: edit the lists below, run

    .venv/bin/python stacks/generate_full.py            # rewrite the file
    .venv/bin/python stacks/generate_full.py --check    # exit 1 if it is stale
    .venv/bin/dcops validate stacks/province-thanhhoa.yaml

and commit both files.  Output is deterministic: the same lists give a
byte-identical file (no dates, no random numbers, no dict-order surprises).

Provenance of names (also in stacks/README.md):

* WARDS and COMMUNES: the 166 units of Resolution 1686/NQ-UBTVQH15 as given by
  two independent public third-party lists that agree on every name (one
  diacritic excepted, see UNCONFIRMED).  They were NOT checked against the
  official text of the resolution.
* Departments and other units: each carries a flag.  ``known`` means the name
  is the standard post-2025 name of a body every province has (Decree
  45/2025/NĐ-CP) or the body was named in public news about Thanh Hóa;
  ``unconfirmed`` means the unit is plausible but its name or its existence
  after the 2025 mergers was not confirmed.  Those are listed in UNCONFIRMED
  (with the reason) and marked ``# unconfirmed`` in the YAML.
* No placeholder names were needed: every site carries a real or plausible
  name.  PLACEHOLDERS stays empty; if you add generated names, list them there
  and they will be marked ``# placeholder`` in the YAML.

Address plan (all inside 10.0.0.0/8 and 172.16.0.0/12, never host ranges):

* data-center segments          10.20.0.0/16   (lab uses 10.10.0.0/16)
* national endpoints (simulated) 10.250.16.0/24 (lab uses 10.250.0.0/24)
* site LANs                     10.64.0.0/10 (LAN_POOL), one /24 per site
* WAN underlay                  172.28.0.0/16 (the hubs take 172.28.0.x)
* tunnel pool                   10.201.0.0/16 (the hubs take 10.201.0.x)

Addresses are stable.  The generator reads the file it rewrites (or
``--existing FILE``) and every site found there by id keeps its ``lan``,
``wan_address`` and ``tunnel_address``, wherever the site now sits in the lists.
Only a site that the file does not have yet gets addresses: the first free /24,
WAN address and tunnel address, preferring its tier's block
(10.<64 + block - 1>.<n>.0/24, 172.28.<block>.<n>, 10.201.<block>.<n>, n = 1..255)
and, once that block is full, anywhere free in the pool (no per-tier limit).
So a site may be inserted anywhere in its list; removing a site frees its
addresses for later sites.  ``--fresh`` ignores the existing file (a new
province's first plan).

Every run also writes the scale file stacks/scale/province-thanhhoa-700.yaml
(``-o FILE --scale N`` writes one elsewhere): the same province and the same addresses for its sites, plus
generated units under the wards and communes (see SCALE_UNITS), marked
``# placeholder``.  It keeps the 700 sites out of the everyday tests' province
globs (stacks/province-*.yaml); the lab, the checks and ``dcops bench`` take it
by path.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
import unicodedata
from pathlib import Path
from typing import Iterable

import yaml

HERE = Path(__file__).resolve().parent
OUT = HERE / "province-thanhhoa.yaml"

# ----------------------------------------------------------------- platforms
ALL = ["dvc", "motcua", "eoffice", "lgsp", "ioc", "lris"]

# --------------------------------------------------------------------- tiers
# id, name, name_en, link shape (netem), block number used in the address plan.
TIERS = [
    ("department", "Sở, ban, ngành", "Department or agency",
     {"delay_ms": 2, "jitter_ms": 1, "loss_pct": 0.0, "rate_mbit": 100}, 1),
    ("other", "Đơn vị khác", "Other connected unit",
     {"delay_ms": 5, "jitter_ms": 1, "loss_pct": 0.0, "rate_mbit": 50}, 2),
    ("ward", "Phường", "Ward",
     {"delay_ms": 10, "jitter_ms": 2, "loss_pct": 0.05, "rate_mbit": 40}, 3),
    ("commune", "Xã", "Commune",
     {"delay_ms": 30, "jitter_ms": 8, "loss_pct": 0.2, "rate_mbit": 20}, 4),
]

REACH_DEFAULT = {
    "department": ["dvc", "motcua", "eoffice", "lgsp", "lris"],
    "other": ["eoffice"],
    "ward": ["motcua", "eoffice", "lris"],
    "commune": ["motcua", "eoffice"],
}

# ------------------------------------------------------- departments (sở, ban)
# (id, name, flag, reach or None for the tier default)
DEPARTMENTS = [
    ("vp-ubnd", "Văn phòng Ủy ban nhân dân tỉnh", "known", ALL),
    ("vp-dbqh-hdnd", "Văn phòng Đoàn đại biểu Quốc hội và Hội đồng nhân dân tỉnh", "known", ["eoffice", "lris"]),
    ("so-noi-vu", "Sở Nội vụ", "known", None),
    ("so-tai-chinh", "Sở Tài chính", "known", None),
    ("so-tu-phap", "Sở Tư pháp", "known", None),
    ("so-cong-thuong", "Sở Công Thương", "known", None),
    ("so-nn-mt", "Sở Nông nghiệp và Môi trường", "known", None),
    ("so-xay-dung", "Sở Xây dựng", "known", None),
    # Sở KH&CN took over the role of Sở Thông tin và Truyền thông on 2025-03-01
    # (nationwide merger; not checked against Thanh Hóa's own decision).  It runs
    # the data integration center and the WAN, so it reaches every platform.
    ("so-khcn", "Sở Khoa học và Công nghệ", "known", ALL),
    ("so-gd-dt", "Sở Giáo dục và Đào tạo", "known", None),
    ("so-y-te", "Sở Y tế", "known", None),
    ("so-vh-tt-dl", "Sở Văn hóa, Thể thao và Du lịch", "known", None),
    ("thanh-tra", "Thanh tra tỉnh", "known", ["motcua", "eoffice", "lgsp", "lris"]),
    ("so-dt-tg", "Sở Dân tộc và Tôn giáo", "unconfirmed", None),
    ("bql-kkt", "Ban Quản lý Khu kinh tế Nghi Sơn và các Khu công nghiệp", "known", None),
]

# ------------------------------------------------------ other connected units
# (id, name, parent or None, flag, reach or None for the tier default)
OTHERS = [
    # Văn phòng UBND tỉnh and the public administration service center
    ("ttpvhcc", "Trung tâm Phục vụ hành chính công tỉnh", "vp-ubnd", "unconfirmed", ["dvc", "motcua", "eoffice", "lgsp"]),
    # Sở Khoa học và Công nghệ: the operator of the data center
    ("tt-cntt-tt", "Trung tâm Công nghệ thông tin và Truyền thông", "so-khcn", "unconfirmed", ALL),
    # province-level bodies outside the departments
    ("cong-an-tinh", "Công an tỉnh (điểm kết nối liên thông)", None, "known", ["eoffice", "lgsp", "ioc"]),
    ("bchqs-tinh", "Bộ Chỉ huy Quân sự tỉnh (điểm kết nối văn bản)", None, "known", ["eoffice"]),
    ("ub-mttq", "Ủy ban Mặt trận Tổ quốc Việt Nam tỉnh", None, "known", ["eoffice"]),
    ("dai-ptth", "Đài Phát thanh và Truyền hình Thanh Hóa", None, "unconfirmed", ["eoffice", "ioc"]),
    ("dh-hong-duc", "Trường Đại học Hồng Đức", None, "known", ["eoffice", "lris"]),
    ("dh-vhttdl", "Trường Đại học Văn hóa, Thể thao và Du lịch Thanh Hóa", None, "known", ["eoffice", "lris"]),
    ("cd-y-te", "Trường Cao đẳng Y tế Thanh Hóa", None, "unconfirmed", ["eoffice"]),
    ("bqlda-dd-cn", "Ban Quản lý dự án đầu tư xây dựng các công trình dân dụng và công nghiệp tỉnh", None, "unconfirmed", ["eoffice", "lris"]),
    ("bqlda-gt", "Ban Quản lý dự án đầu tư xây dựng các công trình giao thông tỉnh", None, "unconfirmed", ["eoffice", "lris"]),
    ("bqlda-nn", "Ban Quản lý dự án đầu tư xây dựng các công trình nông nghiệp và phát triển nông thôn tỉnh", None, "unconfirmed", ["eoffice", "lris"]),
    ("tt-xttm-dl", "Trung tâm Xúc tiến Đầu tư, Thương mại và Du lịch tỉnh", None, "unconfirmed", ["eoffice"]),
    # central agencies with a provincial office that exchange data over LGSP
    ("thue-tinh", "Thuế tỉnh Thanh Hóa", None, "unconfirmed", ["motcua", "eoffice", "lgsp"]),
    ("bhxh-tinh", "Bảo hiểm xã hội tỉnh Thanh Hóa", None, "unconfirmed", ["motcua", "eoffice", "lgsp"]),
    # Sở Nội vụ
    ("tt-dvvl", "Trung tâm Dịch vụ việc làm tỉnh", "so-noi-vu", "unconfirmed", ["motcua", "eoffice"]),
    ("tt-luu-tru", "Trung tâm Lưu trữ lịch sử tỉnh", "so-noi-vu", "unconfirmed", ["eoffice"]),
    # Sở Tư pháp
    ("tt-tgpl", "Trung tâm Trợ giúp pháp lý nhà nước tỉnh", "so-tu-phap", "known", ["motcua", "eoffice"]),
    # Sở Nông nghiệp và Môi trường
    ("vp-dkdd", "Văn phòng Đăng ký đất đai tỉnh", "so-nn-mt", "known", ["motcua", "eoffice", "lgsp"]),
    ("cc-kiem-lam", "Chi cục Kiểm lâm", "so-nn-mt", "unconfirmed", ["eoffice", "lris"]),
    ("cc-thuy-loi", "Chi cục Thủy lợi", "so-nn-mt", "unconfirmed", ["eoffice", "lris"]),
    ("cc-tt-bvtv", "Chi cục Trồng trọt và Bảo vệ thực vật", "so-nn-mt", "unconfirmed", ["eoffice"]),
    ("cc-cn-ty", "Chi cục Chăn nuôi và Thú y", "so-nn-mt", "unconfirmed", ["eoffice"]),
    ("tt-quan-trac", "Trung tâm Quan trắc tài nguyên và môi trường", "so-nn-mt", "unconfirmed", ["eoffice", "ioc"]),
    # Sở Giáo dục và Đào tạo
    ("thpt-lam-son", "Trường THPT chuyên Lam Sơn", "so-gd-dt", "known", ["eoffice"]),
    # Sở Văn hóa, Thể thao và Du lịch
    ("thu-vien-tinh", "Thư viện tỉnh Thanh Hóa", "so-vh-tt-dl", "known", ["eoffice"]),
    ("bao-tang-tinh", "Bảo tàng tỉnh Thanh Hóa", "so-vh-tt-dl", "known", ["eoffice"]),
    ("tt-thanh-nha-ho", "Trung tâm Bảo tồn Di sản Thành Nhà Hồ", "so-vh-tt-dl", "unconfirmed", ["eoffice"]),
    ("bql-lam-kinh", "Ban Quản lý Khu di tích lịch sử Lam Kinh", "so-vh-tt-dl", "unconfirmed", ["eoffice"]),
    # Sở Y tế: hospitals and the disease control center
    ("bv-da-khoa-tinh", "Bệnh viện Đa khoa tỉnh Thanh Hóa", "so-y-te", "known", ["eoffice", "lgsp", "lris"]),
    ("bv-nhi", "Bệnh viện Nhi Thanh Hóa", "so-y-te", "known", ["eoffice", "lgsp", "lris"]),
    ("bv-phu-san", "Bệnh viện Phụ sản Thanh Hóa", "so-y-te", "known", ["eoffice", "lgsp", "lris"]),
    ("bv-ung-buou", "Bệnh viện Ung bướu tỉnh Thanh Hóa", "so-y-te", "known", ["eoffice", "lris"]),
    ("bvdk-kv-ngoc-lac", "Bệnh viện Đa khoa khu vực Ngọc Lặc", "so-y-te", "known", ["eoffice", "lgsp", "lris"]),
    ("bvdk-kv-tinh-gia", "Bệnh viện Đa khoa khu vực Tĩnh Gia", "so-y-te", "unconfirmed", ["eoffice", "lgsp", "lris"]),
    ("bv-tam-than", "Bệnh viện Tâm thần tỉnh Thanh Hóa", "so-y-te", "unconfirmed", ["eoffice", "lris"]),
    ("bv-mat", "Bệnh viện Mắt Thanh Hóa", "so-y-te", "unconfirmed", ["eoffice", "lris"]),
    ("bv-phoi", "Bệnh viện Phổi Thanh Hóa", "so-y-te", "unconfirmed", ["eoffice", "lris"]),
    ("bv-noi-tiet", "Bệnh viện Nội tiết Thanh Hóa", "so-y-te", "unconfirmed", ["eoffice", "lris"]),
    ("bv-ydct", "Bệnh viện Y dược cổ truyền tỉnh Thanh Hóa", "so-y-te", "unconfirmed", ["eoffice", "lris"]),
    ("bv-da-lieu", "Bệnh viện Da liễu Thanh Hóa", "so-y-te", "unconfirmed", ["eoffice", "lris"]),
    ("bv-phcn", "Bệnh viện Phục hồi chức năng Thanh Hóa", "so-y-te", "unconfirmed", ["eoffice", "lris"]),
    ("cdc-tinh", "Trung tâm Kiểm soát bệnh tật tỉnh Thanh Hóa", "so-y-te", "known", ["eoffice", "lgsp", "ioc", "lris"]),
    ("tt-cap-cuu-115", "Trung tâm Cấp cứu 115 Thanh Hóa", "so-y-te", "unconfirmed", ["eoffice", "ioc"]),
]

# ----------------------------------------------------------- wards (phường)
# The 19 wards of Resolution 1686/NQ-UBTVQH15, in the order of the public lists.
WARDS = [
    "Phường Hạc Thành", "Phường Quảng Phú", "Phường Đông Quang", "Phường Đông Sơn",
    "Phường Đông Tiến", "Phường Hàm Rồng", "Phường Nguyệt Viên", "Phường Sầm Sơn",
    "Phường Nam Sầm Sơn", "Phường Bỉm Sơn", "Phường Quang Trung", "Phường Ngọc Sơn",
    "Phường Tân Dân", "Phường Hải Lĩnh", "Phường Tĩnh Gia", "Phường Đào Duy Từ",
    "Phường Hải Bình", "Phường Trúc Lâm", "Phường Nghi Sơn",
]

# ---------------------------------------------------------- communes (xã)
# The 147 communes of Resolution 1686/NQ-UBTVQH15, in the order of the public
# lists.  Tone marks in the modern style used by "Thanh Hóa" itself (Hòa, not Hoà).
COMMUNES = [
    "Xã Các Sơn", "Xã Trường Lâm", "Xã Hà Trung", "Xã Tống Sơn", "Xã Hà Long",
    "Xã Hoạt Giang", "Xã Lĩnh Toại", "Xã Triệu Lộc", "Xã Đông Thành", "Xã Hậu Lộc",
    "Xã Hoa Lộc", "Xã Vạn Lộc", "Xã Nga Sơn", "Xã Nga Thắng", "Xã Hồ Vương",
    "Xã Tân Tiến", "Xã Nga An", "Xã Ba Đình", "Xã Hoằng Hóa", "Xã Hoằng Tiến",
    "Xã Hoằng Thanh", "Xã Hoằng Lộc", "Xã Hoằng Châu", "Xã Hoằng Sơn", "Xã Hoằng Phú",
    "Xã Hoằng Giang", "Xã Lưu Vệ", "Xã Quảng Yên", "Xã Quảng Ngọc", "Xã Quảng Ninh",
    "Xã Quảng Bình", "Xã Tiên Trang", "Xã Quảng Chính", "Xã Nông Cống", "Xã Thắng Lợi",
    "Xã Trung Chính", "Xã Trường Văn", "Xã Thăng Bình", "Xã Tượng Lĩnh", "Xã Công Chính",
    "Xã Thiệu Hóa", "Xã Thiệu Quang", "Xã Thiệu Tiến", "Xã Thiệu Toán", "Xã Thiệu Trung",
    "Xã Yên Định", "Xã Yên Trường", "Xã Yên Phú", "Xã Quý Lộc", "Xã Yên Ninh",
    "Xã Định Tân", "Xã Định Hòa", "Xã Thọ Xuân", "Xã Thọ Long", "Xã Xuân Hòa",
    "Xã Sao Vàng", "Xã Lam Sơn", "Xã Thọ Lập", "Xã Xuân Tín", "Xã Xuân Lập",
    "Xã Vĩnh Lộc", "Xã Tây Đô", "Xã Biện Thượng", "Xã Triệu Sơn", "Xã Thọ Bình",
    "Xã Thọ Ngọc", "Xã Thọ Phú", "Xã Hợp Tiến", "Xã An Nông", "Xã Tân Ninh",
    "Xã Đồng Tiến", "Xã Hồi Xuân", "Xã Nam Xuân", "Xã Thiên Phủ", "Xã Hiền Kiệt",
    "Xã Phú Lệ", "Xã Trung Thành", "Xã Tam Lư", "Xã Quan Sơn", "Xã Trung Hạ",
    "Xã Linh Sơn", "Xã Đồng Lương", "Xã Văn Phú", "Xã Giao An", "Xã Bá Thước",
    "Xã Thiết Ống", "Xã Văn Nho", "Xã Điền Quang", "Xã Điền Lư", "Xã Quý Lương",
    "Xã Cổ Lũng", "Xã Pù Luông", "Xã Ngọc Lặc", "Xã Thạch Lập", "Xã Ngọc Liên",
    "Xã Minh Sơn", "Xã Nguyệt Ấn", "Xã Kiên Thọ", "Xã Cẩm Thạch", "Xã Cẩm Thủy",
    "Xã Cẩm Tú", "Xã Cẩm Vân", "Xã Cẩm Tân", "Xã Kim Tân", "Xã Vân Du",
    "Xã Ngọc Trạo", "Xã Thạch Bình", "Xã Thành Vinh", "Xã Thạch Quảng", "Xã Như Xuân",
    "Xã Thượng Ninh", "Xã Xuân Bình", "Xã Hóa Quỳ", "Xã Thanh Phong", "Xã Thanh Quân",
    "Xã Xuân Du", "Xã Mậu Lâm", "Xã Như Thanh", "Xã Yên Thọ", "Xã Thanh Kỳ",
    "Xã Thường Xuân", "Xã Luận Thành", "Xã Tân Thành", "Xã Thắng Lộc", "Xã Xuân Chinh",
    "Xã Mường Lát", "Xã Phú Xuân", "Xã Mường Chanh", "Xã Quang Chiểu", "Xã Tam Chung",
    "Xã Pù Nhi", "Xã Nhi Sơn", "Xã Mường Lý", "Xã Trung Lý", "Xã Trung Sơn",
    "Xã Na Mèo", "Xã Sơn Thủy", "Xã Sơn Điện", "Xã Mường Mìn", "Xã Tam Thanh",
    "Xã Yên Khương", "Xã Yên Thắng", "Xã Xuân Thái", "Xã Bát Mọt", "Xã Yên Nhân",
    "Xã Lương Sơn", "Xã Vạn Xuân",
]

# Names whose existence or spelling is not confirmed, with the reason.  Every
# site here is marked "# unconfirmed" in the YAML.  Department/other units
# flagged "unconfirmed" above are added automatically.
UNCONFIRMED_NAMES = {
    "Phường Đào Duy Từ": "the two public lists disagree on the tone mark (Từ / Tư); "
    "Từ follows the historical figure the ward is named after",
    "Sở Dân tộc và Tôn giáo": "created in 2025 only in provinces that meet the criteria; not confirmed for Thanh Hóa",
    "Trung tâm Phục vụ hành chính công tỉnh": "exists; its parent (Văn phòng UBND tỉnh, or UBND tỉnh directly "
    "after Decree 118/2025/NĐ-CP) was not confirmed",
    "Trung tâm Công nghệ thông tin và Truyền thông": "the data-center operator under Sở KH&CN; its name after "
    "the 2025 merger of Sở TT&TT into Sở KH&CN was not confirmed",
    "Đài Phát thanh và Truyền hình Thanh Hóa": "may have merged with Báo Thanh Hóa in 2025; not confirmed",
    "Thuế tỉnh Thanh Hóa": "central agency; name after the 2025 renaming of Cục Thuế not confirmed",
}
UNCONFIRMED_REASON_DEFAULT = (
    "plausible unit, but its exact name or its existence after the 2025 mergers was not confirmed"
)
# Generated stand-in names (none at present).
PLACEHOLDERS: list[str] = []

# -------------------------------------------------------------- the rest



# The named administrators (issue 16), written as the province's engineers keep them: one account per
# person, SSH key + TOTP, sudo that asks (DCOPS-USR-001/004, DCOPS-SSH-005/012).
ADMINISTRATORS = """\
  # named administrators (level 3: one account per person, SSH key + TOTP, sudo that asks; DCOPS-USR-001/004,
  # DCOPS-SSH-005/012): the keys here are examples, each administrator gives their own public key
  administrators:
    - name: nguyenvana
      full_name: Nguyễn Văn A
      ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINvSPZLfcRPel+OKpPNUT2PmUkMNK71N/+R8qSgRrB3P nguyenvana@lab"]
      mfa: totp
    - name: tranthib
      full_name: Trần Thị B
      ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOdubvesUN9+uHmXaBYHiiVr54WzwSyuG/ARySwa1gbt tranthib@lab"]
      mfa: totp
  admin_idle_timeout_s: 900
"""

def slug(name: str) -> str:
    """ASCII, DNS-safe form of a Vietnamese name: 'Phường Hàm Rồng' -> 'phuong-ham-rong'."""
    s = name.replace("Đ", "D").replace("đ", "d")
    s = "".join(c for c in unicodedata.normalize("NFD", s) if not unicodedata.combining(c))
    out, dash = [], False
    for c in s.lower():
        if c.isascii() and c.isalnum():
            out.append(c)
            dash = False
        elif not dash and out:
            out.append("-")
            dash = True
    return "".join(out).strip("-")


def unit_id(name: str, prefix_vi: str, prefix_id: str) -> str:
    assert name.startswith(prefix_vi + " "), name
    return f"{prefix_id}-{slug(name[len(prefix_vi) + 1:])}"


def nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


def unconfirmed() -> dict[str, str]:
    """Every unconfirmed site name -> reason (public: used by README and tests)."""
    out = dict(UNCONFIRMED_NAMES)
    for _id, name, flag, _r in DEPARTMENTS:
        if flag == "unconfirmed":
            out.setdefault(name, UNCONFIRMED_REASON_DEFAULT)
    for _id, name, _p, flag, _r in OTHERS:
        if flag == "unconfirmed":
            out.setdefault(name, UNCONFIRMED_REASON_DEFAULT)
    return out


LAN_POOL = "10.64.0.0/10"
UNDERLAY = "172.28.0.0/16"
TUNNEL_POOL = "10.201.0.0/16"

# Units the scale file adds under every ward and commune (generated names, marked
# "# placeholder"): (id prefix, name pattern, reach).  Since 2025-07-01 every
# commune-level unit has a public administration service point and a health
# station; a lower secondary school named after the commune is common but not
# universal.  None of these names was checked against a real list.
SCALE_UNITS = [
    ("pvhcc", "Trung tâm Phục vụ hành chính công {}", ["dvc", "motcua", "eoffice"]),
    ("tyt", "Trạm Y tế {}", ["eoffice", "lris"]),
    ("thcs", "Trường Trung học cơ sở {}", ["eoffice"]),
]
SCALE_OUT = HERE / "scale" / "province-thanhhoa-700.yaml"


def _entries() -> dict[str, list[dict]]:
    by_tier: dict[str, list[dict]] = {t[0]: [] for t in TIERS}
    for sid, name, _flag, reach in DEPARTMENTS:
        by_tier["department"].append({"id": sid, "name": name, "reach": reach})
    for sid, name, parent, _flag, reach in OTHERS:
        by_tier["other"].append({"id": sid, "name": name, "parent": parent, "reach": reach})
    for name in WARDS:
        by_tier["ward"].append({"id": unit_id(name, "Phường", "p"), "name": name})
    for name in COMMUNES:
        by_tier["commune"].append({"id": unit_id(name, "Xã", "xa"), "name": name})
    return by_tier


def scale_entries(total: int) -> list[dict]:
    """Generated units under the wards and communes, enough to bring the province to ``total`` sites."""
    by_tier = _entries()
    have = sum(len(v) for v in by_tier.values())
    local = by_tier["ward"] + by_tier["commune"]
    out: list[dict] = []
    for prefix, pattern, reach in SCALE_UNITS:
        for e in local:
            if have + len(out) >= total:
                return out
            kind, _, rest = e["name"].partition(" ")
            out.append({"id": f"{prefix}-{e['id']}", "name": pattern.format(f"{kind.lower()} {rest}"),
                        "parent": e["id"], "reach": reach})
    if have + len(out) < total:
        raise SystemExit(f"--scale {total}: at most {have + len(out)} sites (add patterns to SCALE_UNITS)")
    return out


def existing_addresses(path: Path | None) -> dict[str, dict]:
    """Site id -> its lan, wan_address and tunnel_address in an existing province file (empty if none)."""
    if path is None or not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out = {}
    for site in (data.get("wan") or {}).get("sites") or []:
        if isinstance(site, dict) and isinstance(site.get("id"), str):
            out[site["id"]] = {k: site[k] for k in ("lan", "wan_address", "tunnel_address") if site.get(k)}
    return out


class Allocator:
    """Hands out the first free LAN /24, WAN address and tunnel address, never one in use.

    ``reserve`` marks what existing sites (and the hubs) hold; ``take`` then prefers a tier's
    block and falls back to the whole pool, so no tier has a size limit."""

    def __init__(self) -> None:
        self.lan24: set[int] = set()   # network numbers of the /24s touched by a LAN in use
        self.addrs: set[int] = set()

    def reserve_lan(self, cidr: str) -> None:
        net = ipaddress.ip_network(cidr)
        if net.prefixlen >= 24:
            self.lan24.add(int(net.supernet(new_prefix=24).network_address) >> 8)
        else:
            first = int(net.network_address) >> 8
            self.lan24.update(range(first, first + 2 ** (24 - net.prefixlen)))

    def reserve_addr(self, address: str) -> None:
        self.addrs.add(int(ipaddress.ip_address(address)))

    def lan(self, block: int) -> str:
        pool = ipaddress.ip_network(LAN_POOL)
        base = int(pool.network_address) >> 8
        preferred = [(base + (block - 1) * 256) + n for n in range(1, 256)]
        for n24 in [*preferred, *range(base, base + 2 ** (24 - pool.prefixlen))]:
            if n24 not in self.lan24:
                self.lan24.add(n24)
                return f"{ipaddress.ip_address(n24 << 8)}/24"
        raise SystemExit(f"no free /24 left in {LAN_POOL}")

    def addr(self, pool_cidr: str, block: int) -> str:
        pool = ipaddress.ip_network(pool_cidr)
        base = int(pool.network_address)
        preferred = [base + block * 256 + n for n in range(1, 255)]
        for a in [*preferred, *range(base + 1, int(pool.broadcast_address))]:
            if a not in self.addrs and a & 0xFF not in (0, 255):
                self.addrs.add(a)
                return str(ipaddress.ip_address(a))
        raise SystemExit(f"no free address left in {pool_cidr}")


def sites(existing: dict[str, dict] | None = None, extra: list[dict] | None = None,
          hub_addresses: list[str] | None = None) -> list[dict]:
    """Every site with its addresses: kept from ``existing`` (site id -> addresses) where the site
    is already there, allocated from free space otherwise.  ``extra``: more sites (tier ``other``
    block at the end, each with a parent), for the scale file."""
    existing = existing or {}
    by_tier = _entries()
    block_of = {t[0]: t[4] for t in TIERS}
    ordered = [(tier, e) for tier, *_ in TIERS for e in by_tier[tier]]
    ordered += [("other", e) for e in (extra or [])]
    alloc = Allocator()
    for a in hub_addresses if hub_addresses is not None else ["172.28.0.1", "172.28.0.2", "10.201.0.1", "10.201.0.2"]:
        alloc.reserve_addr(a)
    kept = {}
    for _tier, e in ordered:
        have = existing.get(e["id"])
        if have and all(k in have for k in ("lan", "wan_address", "tunnel_address")):
            kept[e["id"]] = have
            alloc.reserve_lan(have["lan"])
            alloc.reserve_addr(have["wan_address"])
            alloc.reserve_addr(have["tunnel_address"])
    out = []
    for tier, e in ordered:
        site = {"id": e["id"], "name": nfc(e["name"]), "tier": tier}
        if e.get("parent"):
            site["parent"] = e["parent"]
        have = kept.get(e["id"])
        block = block_of[tier]
        site["lan"] = have["lan"] if have else alloc.lan(block)
        site["wan_address"] = have["wan_address"] if have else alloc.addr(UNDERLAY, block)
        site["tunnel_address"] = have["tunnel_address"] if have else alloc.addr(TUNNEL_POOL, block)
        site["reach"] = list(e.get("reach") or REACH_DEFAULT[tier])
        out.append(site)
    return out


def province(existing: dict[str, dict] | None = None, extra: list[dict] | None = None) -> dict:
    return {
        "province": {
            "code": "THANHHOA",
            "name": "Tỉnh Thanh Hóa",
            "name_en": "Thanh Hoa Province",
            "security_level": 3,
            "audit_standard": "TCVN 14423:2025",
            "has_wireless": True,
            "targets": {"sites_connected_pct": 98, "sites_compliant_pct": 90},
        },
        "datacenter": {
            "name": "Trung tâm tích hợp dữ liệu tỉnh Thanh Hóa",
            "log_retention_days": 180,
            # the images of this sample file name the lab's registry host; a real file names the province's own
            "registry": {"host": "registry.dcops.lab"},
            "segments": [
                {"id": "users", "name": "Vùng người dùng nội bộ", "zone": "internal_users", "cidr": "10.20.0.0/22", "vlan": 100},
                {"id": "edge", "name": "Vùng biên", "zone": "edge", "cidr": "10.20.4.0/24", "vlan": 101},
                {"id": "dmz", "name": "Vùng DMZ", "zone": "dmz", "cidr": "10.20.8.0/22", "vlan": 102},
                {"id": "app", "name": "Vùng máy chủ nội bộ", "zone": "internal_servers", "cidr": "10.20.12.0/22", "vlan": 103},
                {"id": "data", "name": "Vùng cơ sở dữ liệu", "zone": "database", "cidr": "10.20.16.0/22", "vlan": 104},
                {"id": "mgmt", "name": "Vùng quản trị", "zone": "management", "cidr": "10.20.20.0/24", "vlan": 105},
                {"id": "wifi", "name": "Vùng mạng không dây", "zone": "wireless", "cidr": "10.20.24.0/22", "vlan": 106},
                {"id": "dr-dmz", "name": "Vùng DMZ của cụm dự phòng", "zone": "dmz", "cidr": "10.20.32.0/24", "vlan": 202},
                {"id": "dr-app", "name": "Vùng máy chủ nội bộ của cụm dự phòng", "zone": "internal_servers", "cidr": "10.20.36.0/22", "vlan": 203},
                {"id": "dr-data", "name": "Vùng cơ sở dữ liệu của cụm dự phòng", "zone": "database", "cidr": "10.20.40.0/23", "vlan": 204},
                {"id": "backup", "name": "Vùng sao lưu", "zone": "database", "cidr": "10.20.44.0/23", "vlan": 205},
            ],
            "clusters": [
                {
                    "id": "primary",
                    "name": "Cụm chính",
                    "role": "primary",
                    "kubernetes_version": "1.34",
                    # each platform a LoadBalancer Service at its address, from MetalLB's pool
                    "exposure": {"method": "loadbalancer", "address_pool": "dc-services"},
                    "node_pools": [
                        _pool("system", 3, 8, 32, "mgmt", "system", taint="system"),
                        _pool("dmz", 4, 16, 64, "dmz", "front", taint="dmz"),
                        _pool("app", 8, 32, 128, "app", "app"),
                        _pool("data", 4, 32, 256, "data", "data", taint="data"),
                    ],
                },
                {
                    "id": "dr",
                    "name": "Cụm dự phòng thảm họa",
                    "role": "dr",
                    "kubernetes_version": "1.34",
                    "exposure": {"method": "loadbalancer", "address_pool": "dr-services"},
                    "node_pools": [
                        _pool("system", 3, 8, 32, "mgmt", "system", taint="system"),
                        _pool("dmz", 2, 16, 64, "dr-dmz", "front", taint="dmz"),
                        _pool("app", 4, 32, 128, "dr-app", "app"),
                        _pool("data", 2, 32, 256, "dr-data", "data", taint="data"),
                        _pool("backup", 3, 16, 64, "backup", "backup", taint="backup"),
                    ],
                },
            ],
            # Each cluster has its own Ceph cluster and NFS server (DR never shares the primary's).
            # The SAN (iSCSI) holds backups provisioned by hand: no CSI driver provisions it dynamically.
            "storage_classes": [
                _class("ssd-replicated", "ceph-rbd", 3, "Retain", {"pool": "k8s-rbd-ssd"}, default=True),
                _class("ssd-db", "ceph-rbd", 3, "Retain", {"pool": "k8s-rbd-db"}),
                _class("shared-files", "cephfs", 3, "Retain", {"fs_name": "k8s-files"}),
                _class("hdd-archive", "nfs", 2, "Retain", {"share": "/export/k8s-archive", "mount_options": ["nfsvers=4.1"]}),
                _class("scratch", "local-path", 1, "Delete", {}),
            ],
            "certificates": {"ca_file": "/etc/dcops/province-ca.crt"},
            "backup": {
                "schedule": "30 1 * * *",
                "retention_days": 180,
                "target": "Kho sao lưu trên hạ tầng riêng của cụm dự phòng (SAN, object storage)",
                "target_cluster": "dr",
                "separate_infrastructure": True,
                "restore_test_interval_days": 90,
                "encrypted": True,
            },
        },
        "national_endpoints": [
            _nat("ndxp", "Nền tảng tích hợp, chia sẻ dữ liệu quốc gia", "National data integration and sharing platform (NDXP)", 0),
            _nat("dvcqg", "Cổng Dịch vụ công quốc gia", "National public-service portal", 16),
            _nat("truc-vb", "Trục liên thông văn bản quốc gia", "National document exchange axis", 32),
            _nat("thanh-toan", "Nền tảng thanh toán trực tuyến", "Online payment platform", 48),
            _nat("bao-cao-qg", "Hệ thống thông tin báo cáo Chính phủ", "Government reporting system", 64),
            _nat("csdl-dan-cu", "Cơ sở dữ liệu quốc gia về dân cư", "National population database", 80),
            _nat("ky-so", "Dịch vụ chứng thực chữ ký số chuyên dùng Chính phủ", "Government digital signature service", 96),
        ],
        "platforms": [
            _platform(
                "dvc", "Cổng Dịch vụ công tỉnh Thanh Hóa", "Provincial public-service portal", "portal",
                "primary", "dmz", "10.20.8.10", 4, "registry.dcops.lab/dvc/portal:2.4.1", (1000, 2048),
                [("https", 8443)], [("uploads", 500, "shared-files", "/var/lib/dvc")],
                ["motcua", "lgsp"], [], (99.9, 1000, 99.0), via=["dvcqg", "thanh-toan"],
            ),
            _platform(
                "motcua", "Hệ thống thông tin giải quyết thủ tục hành chính (Một cửa điện tử)", "One-stop shop", "one-stop",
                "primary", "app", "10.20.12.10", 4, "registry.dcops.lab/motcua/api:5.1.0", (1000, 2048),
                [("http", 8080)], [("files", 1024, "shared-files", "/data")],
                ["lgsp", "eoffice"], [], (99.9, 800, 99.0), via=["dvcqg"],
            ),
            _platform(
                "eoffice", "Hệ thống quản lý văn bản và điều hành", "E-Office document management", "e-office",
                "primary", "app", "10.20.12.11", 4, "registry.dcops.lab/eoffice/web:7.3.2", (1000, 2048),
                [("http", 8080)],
                [("documents", 2048, "shared-files", "/data"), ("archive", 8192, "hdd-archive", "/archive")],
                ["lgsp"], [], (99.5, 1500, 99.0), via=["truc-vb"],
                exceptions=[{
                    "endpoint": "ky-so",
                    "reason": "Ký số văn bản gọi trực tiếp dịch vụ chứng thực chữ ký số chuyên dùng (OCSP, dấu thời gian) "
                              "theo yêu cầu của Ban Cơ yếu Chính phủ",
                    "reason_en": "Document signing calls the government digital signature service directly (OCSP, "
                                 "time stamping) as the Government Cipher Committee requires",
                    "approved_by": "Sở Khoa học và Công nghệ tỉnh Thanh Hóa (placeholder: decision number to be filled)",
                }],
            ),
            _platform(
                "lgsp", "Nền tảng tích hợp, chia sẻ dữ liệu cấp tỉnh (LGSP)", "Provincial integration and sharing platform (LGSP)", "lgsp",
                "primary", "app", "10.20.12.12", 3, "registry.dcops.lab/lgsp/gateway:3.0.4", (2000, 4096),
                [("https", 8443)], [("queue", 200, "ssd-db", "/var/lib/lgsp", "per_replica")],
                [], ["ndxp", "csdl-dan-cu", "dvcqg", "truc-vb", "thanh-toan", "bao-cao-qg"], (99.95, 500, 99.0),
            ),
            _platform(
                "ioc", "Trung tâm giám sát, điều hành đô thị thông minh (IOC)", "Smart-city operations center (IOC)", "ioc",
                "primary", "app", "10.20.12.13", 2, "registry.dcops.lab/ioc/dashboard:1.8.0", (1000, 4096),
                [("http", 3000)], [("tsdb", 1024, "ssd-replicated", "/data", "per_replica")],
                ["lgsp"], [], (99.0, 2000, 99.0),
            ),
            # LRIS runs active on the DR cluster: reporting tolerates the longer
            # path, and it keeps the DR cluster warm.
            _platform(
                "lris", "Hệ thống thông tin báo cáo cấp tỉnh (LRIS)", "Provincial reporting information system (LRIS)", "lris",
                "dr", "dr-app", "10.20.36.10", 2, "registry.dcops.lab/lris/api:2.2.0", (500, 1024),
                [("http", 8080)], [("reports", 200, "ssd-replicated", "/data", "per_replica")],
                ["lgsp"], [], (99.5, 1500, 99.0), via=["bao-cao-qg"],
            ),
        ],
        "wan": {
            "underlay": "172.28.0.0/16",
            "tunnel_pool": "10.201.0.0/16",
            "hub": {
                "name": "Cổng WAN Trung tâm tích hợp dữ liệu tỉnh Thanh Hóa",
                "wan_address": "172.28.0.1",
                "tunnel_address": "10.201.0.1",
                "listen_port": 51820,
                "ntp_server": "10.201.0.1",
                "log_server": "10.201.0.1",
                "time_upstream": [{"address": "10.20.20.123", "name": "Thiết bị thời gian chuẩn GPS/NTP của trung tâm (minh họa)"}],
            },
            "tiers": [
                {"id": t, "name": n, "name_en": e, "link": dict(link)} for t, n, e, link, _b in TIERS
            ],
            "sites": sites(existing, extra),
        },
    }


# Per cluster: its Ceph cluster's fsid (as ceph-csi's config names it) and its NFS server.
# Illustrative values: write the real fsid (`ceph fsid`) and server of the province.
STORAGE_BACKENDS = {
    "primary": {"ceph": "3b5e2f8a-7c41-4d0e-9f6a-1a2b3c4d5e01", "nfs": "10.20.16.20"},
    "dr": {"ceph": "9d1c7e44-2b8f-4a63-8e15-6f7a8b9c0d02", "nfs": "10.20.40.20"},
}


def _class(name, backend, replication, reclaim, params, default=False) -> dict:
    clusters = {}
    for cid, b in STORAGE_BACKENDS.items():
        on = {k: list(v) if isinstance(v, list) else v for k, v in params.items()}
        if backend in ("ceph-rbd", "cephfs"):
            on = {"ceph_cluster_id": b["ceph"], **on}
        elif backend == "nfs":
            on = {"server": b["nfs"], **on}
        clusters[cid] = on
    c = {"name": name, "backend": backend, "replication": replication, "reclaim_policy": reclaim}
    if default:
        c["default"] = True
    c["clusters"] = clusters
    return c


def _digest(image: str) -> str:
    """An illustrative sha256 digest for an image of the sample file (the province writes the real
    one its registry gives, `crane digest IMAGE`): deterministic, so the file stays byte-identical."""
    import hashlib

    return f"{image}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _pool(name, count, cpu, mem, segment, tier, taint=None) -> dict:
    p = {"name": name, "count": count, "cpu": cpu, "memory_gib": mem, "segment": segment,
         "labels": {"dcops.gov.vn/tier": tier}}
    if taint:
        p["taints"] = [{"key": f"dcops.gov.vn/{taint}", "value": "true", "effect": "NoSchedule"}]
    return p


def _nat(nid, name, name_en, offset) -> dict:
    return {"id": nid, "name": name, "name_en": name_en, "cidr": f"10.250.16.{offset}/28", "ports": [443]}


def _platform(pid, name, name_en, kind, cluster, segment, address, replicas, image, res, ports, storage,
              deps, national, slo, via=(), exceptions=()) -> dict:
    """``national``: direct links (LGSP only); ``via``: national systems used through LGSP;
    ``exceptions``: approved direct links of a platform that is not LGSP, with their reasons."""
    return {
        "id": pid,
        "name": name,
        "name_en": name_en,
        "kind": kind,
        "cluster": cluster,
        "segment": segment,
        "address": address,
        "replicas": replicas,
        "image": _digest(image),
        "resources": {"cpu_millicores": res[0], "memory_mib": res[1]},
        "ports": [{"name": n, "port": p} for n, p in ports],
        "storage": [{"name": v[0], "size_gib": v[1], "storage_class": v[2], "mount_path": v[3],
                     **({"per_replica": True} if "per_replica" in v[4:] else {})} for v in storage],
        "depends_on": deps,
        **({"national": national} if national else {}),
        **({"national_via_lgsp": list(via)} if via else {}),
        **({"national_exceptions": list(exceptions)} if exceptions else {}),
        "slo": {"availability": slo[0], "latency_ms": slo[1], "latency_target": slo[2], "window_days": 30},
        "security_level": 3,
    }


# ------------------------------------------------------------------ output

HEADER = """\
# GENERATED by stacks/generate_full.py -- do not edit by hand: change the lists
# in the generator, run `.venv/bin/python stacks/generate_full.py`, then
# `.venv/bin/dcops validate stacks/province-thanhhoa.yaml`, and commit both.
#
# Tỉnh Thanh Hóa: the full, realistic province used for scale. Modelled on the
# public structure of Thanh Hóa after the 2025 reform (province and
# commune/ward levels only; 166 commune-level units: 19 wards, 147 communes).
# Ward and commune names: two agreeing public third-party lists of Resolution
# 1686/NQ-UBTVQH15, not checked against the official text. Sites marked
# "# unconfirmed" have a name or post-2025 existence that was not confirmed;
# see stacks/README.md. Audit standard: TCVN 14423:2025 (in force from
# 2026-07-01 per a public summary not yet confirmed against official text).
# Every address is private and lives only inside the lab's own namespaces.
"""


class _Dumper(yaml.SafeDumper):
    """Indent block sequences under their key, like the hand-written lab file."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def _flow(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, sort_keys=False, width=100_000).strip()


def _block(value, indent: int) -> str:
    text = yaml.dump(value, Dumper=_Dumper, default_flow_style=False, allow_unicode=True, sort_keys=False, width=100_000)
    pad = " " * indent
    return "".join(pad + line if line.strip() else line for line in text.splitlines(keepends=True))


SCALE_HEADER = """\
#
# SCALE FILE (generate_full.py --scale): the province above plus generated units
# under the wards and communes (names marked "# placeholder": stand-ins, not a
# real list) to measure dcops at the seeds' scale (650+ units on one WAN).
"""


def render(data: dict, extra_placeholders: Iterable[str] = ()) -> str:
    """YAML text: blocks for structure, one flow line per list entry for long lists."""
    notes = unconfirmed()
    placeholders = set(PLACEHOLDERS) | set(extra_placeholders)
    out = [HEADER + (SCALE_HEADER if extra_placeholders else "")]
    out.append(_block({"province": data["province"]}, 0))
    out.append("\n")
    dc = data["datacenter"]
    out.append("datacenter:\n")
    out.append(_block({k: dc[k] for k in ("name", "log_retention_days", "registry")}, 2))
    out.append("  segments:\n")
    out += [f"    - {_flow(s)}\n" for s in dc["segments"]]
    out.append(_block({k: dc[k] for k in ("clusters", "storage_classes", "certificates", "backup")}, 2))
    out.append("\nnational_endpoints:\n")
    out += [f"  - {_flow(n)}\n" for n in data["national_endpoints"]]
    out.append("\n")
    out.append(_block({"platforms": data["platforms"]}, 0))
    wan = data["wan"]
    out.append("\nwan:\n")
    out.append(_block({k: wan[k] for k in ("underlay", "tunnel_pool", "hub")}, 2))
    out.append(ADMINISTRATORS)
    out.append("  tiers:\n")
    out += [f"    - {_flow(t)}\n" for t in wan["tiers"]]
    out.append("  sites:\n")
    tier = None
    for s in wan["sites"]:
        if s["tier"] != tier:
            tier = s["tier"]
            count = sum(1 for x in wan["sites"] if x["tier"] == tier)
            out.append(f"    # --- tier {tier}: {count} sites\n")
        mark = "  # placeholder" if s["name"] in placeholders else "  # unconfirmed" if s["name"] in notes else ""
        out.append(f"    - {_flow(s)}{mark}\n")
    return nfc("".join(out))


SCALE_SITES = 700


def _build(output: Path, scale: int | None, existing_file: Path | None, fresh: bool) -> tuple[str, dict, dict]:
    """The text of one file, its data, and the addresses it was given to keep."""
    default_out = SCALE_OUT if scale else OUT
    if fresh:
        existing: dict[str, dict] = {}
    else:
        existing = existing_addresses(existing_file or (output if output.exists() else default_out))
        if scale:
            # the province's own sites keep the addresses they have in the province file
            existing = {**existing, **existing_addresses(existing_file or OUT)}
    extra = scale_entries(scale) if scale else None
    data = province(existing, extra)
    return render(data, [e["name"] for e in extra or []]), data, existing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", type=Path, default=None,
                    help=f"write only this file (default: {OUT.name} and the scale file {SCALE_OUT.relative_to(HERE)})")
    ap.add_argument("--existing", type=Path, default=None,
                    help="the file whose sites keep their addresses (default: the output file, else the default output)")
    ap.add_argument("--fresh", action="store_true", help="ignore existing addresses: a first plan, by position")
    ap.add_argument("--scale", type=int, default=None, metavar="N",
                    help="with -o: write a scale file, the province plus generated units, N sites in all")
    ap.add_argument("--check", action="store_true", help="do not write; exit 1 if a file differs from what would be written")
    args = ap.parse_args(argv)

    if args.output:
        targets = [(args.output, args.scale)]
    else:
        targets = [(OUT, None), (SCALE_OUT, args.scale or SCALE_SITES)]
    rc = 0
    for output, scale in targets:
        text, data, existing = _build(output, scale, args.existing, args.fresh)
        if args.check:
            current = output.read_text(encoding="utf-8") if output.exists() else None
            if current != text:
                print(f"{output}: stale; run {Path(__file__).name} to regenerate", file=sys.stderr)
                rc = 1
            else:
                print(f"{output}: up to date")
            continue
        sites_ = data["wan"]["sites"]
        moved = [s["id"] for s in sites_ if s["id"] in existing
                 and any(existing[s["id"]].get(k) != s[k] for k in ("lan", "wan_address", "tunnel_address"))]
        assert not moved, f"existing sites changed address: {moved}"
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(text.encode("utf-8"))
        counts = {t[0]: sum(1 for s in sites_ if s["tier"] == t[0]) for t in TIERS}
        new = sum(1 for s in sites_ if s["id"] not in existing)
        print(f"wrote {output}: {len(sites_)} sites " + ", ".join(f"{k} {v}" for k, v in counts.items())
              + f"; {new} new sites given addresses")
    return rc


if __name__ == "__main__":
    sys.exit(main())
