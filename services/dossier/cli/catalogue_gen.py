"""Generates the shipped procedure catalogue (data/procedures.csv), deterministically.

    python -m services.dossier.cli.catalogue_gen [--out services/dossier/data/procedures.csv]

The real city catalogue is not public as a file; this one has its shape: 1,733 procedures in
force (1,421 city / 199 district / 113 commune; 454 at online level 3, 351 at level 4, the rest
at level 2) plus a few abolished ones, with plausible Vietnamese names per field and 20
agencies. The same seed always gives the same file.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from services.dossier.domain.procedures import (
    CATALOGUE_COLUMNS,
    AuthorityLevel,
    Procedure,
    TimeUnit,
    procedure_row,
)

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "data" / "procedures.csv"
SEED = 20250124
IN_FORCE = {AuthorityLevel.CITY: 1421, AuthorityLevel.DISTRICT: 199, AuthorityLevel.COMMUNE: 113}
LEVEL_4 = 351
LEVEL_3 = 454
ABOLISHED = 27


@dataclass(frozen=True)
class Agency:
    code: str
    name: str
    level: AuthorityLevel
    fields: tuple[str, ...]
    weight: int = 1


AGENCIES = (
    Agency("SXD", "Sở Xây dựng", AuthorityLevel.CITY, ("Xây dựng", "Nhà ở"), 9),
    Agency("STP", "Sở Tư pháp", AuthorityLevel.CITY, ("Lý lịch tư pháp", "Công chứng", "Luật sư"), 10),
    Agency("SKHDT", "Sở Kế hoạch và Đầu tư", AuthorityLevel.CITY, ("Thành lập doanh nghiệp", "Đầu tư"), 12),
    Agency(
        "STNMT", "Sở Tài nguyên và Môi trường", AuthorityLevel.CITY, ("Đất đai", "Môi trường", "Tài nguyên nước"), 11
    ),
    Agency("SLDTBXH", "Sở Lao động - Thương binh và Xã hội", AuthorityLevel.CITY, ("Việc làm", "Người có công"), 9),
    Agency("SYT", "Sở Y tế", AuthorityLevel.CITY, ("Khám bệnh, chữa bệnh", "Dược phẩm", "An toàn thực phẩm"), 12),
    Agency("SGDDT", "Sở Giáo dục và Đào tạo", AuthorityLevel.CITY, ("Giáo dục và Đào tạo", "Văn bằng, chứng chỉ"), 7),
    Agency("SCT", "Sở Công Thương", AuthorityLevel.CITY, ("Thương mại", "Điện lực", "Hóa chất"), 8),
    Agency("SGTVT", "Sở Giao thông vận tải", AuthorityLevel.CITY, ("Đường bộ", "Đường thủy nội địa"), 8),
    Agency("SNV", "Sở Nội vụ", AuthorityLevel.CITY, ("Tôn giáo", "Thi đua, khen thưởng"), 5),
    Agency("STC", "Sở Tài chính", AuthorityLevel.CITY, ("Quản lý giá", "Tài sản công"), 4),
    Agency("SVHTT", "Sở Văn hóa và Thể thao", AuthorityLevel.CITY, ("Văn hóa", "Thể dục thể thao", "Quảng cáo"), 7),
    Agency("SNNPTNT", "Sở Nông nghiệp và Phát triển nông thôn", AuthorityLevel.CITY, ("Thú y", "Trồng trọt"), 6),
    Agency("SKHCN", "Sở Khoa học và Công nghệ", AuthorityLevel.CITY, ("Tiêu chuẩn đo lường chất lượng",), 4),
    Agency("STTTT", "Sở Thông tin và Truyền thông", AuthorityLevel.CITY, ("Báo chí", "Xuất bản, in và phát hành"), 4),
    Agency("Q1", "Ủy ban nhân dân Quận 1", AuthorityLevel.DISTRICT, ("Hộ tịch", "Đất đai", "Xây dựng", "Kinh doanh")),
    Agency("Q3", "Ủy ban nhân dân Quận 3", AuthorityLevel.DISTRICT, ("Hộ tịch", "Đất đai", "Xây dựng", "Kinh doanh")),
    Agency("TPTD", "Ủy ban nhân dân thành phố Thủ Đức", AuthorityLevel.DISTRICT, ("Hộ tịch", "Đất đai", "Kinh doanh")),
    Agency("P-BENNGHE", "Ủy ban nhân dân Phường Bến Nghé", AuthorityLevel.COMMUNE, ("Hộ tịch", "Chứng thực")),
    Agency("P-BENTHANH", "Ủy ban nhân dân Phường Bến Thành", AuthorityLevel.COMMUNE, ("Hộ tịch", "Chứng thực")),
)

ACTIONS = ("Cấp", "Cấp lại", "Cấp đổi", "Điều chỉnh", "Gia hạn", "Thu hồi", "Đăng ký", "Xác nhận")
OBJECTS = {
    "Xây dựng": ("giấy phép xây dựng nhà ở riêng lẻ", "giấy phép xây dựng công trình", "chứng chỉ hành nghề xây dựng"),
    "Nhà ở": ("giấy chứng nhận nhà ở xã hội", "hợp đồng thuê nhà ở công vụ", "thông báo bán nhà ở hình thành"),
    "Lý lịch tư pháp": ("phiếu lý lịch tư pháp số 1", "phiếu lý lịch tư pháp số 2"),
    "Công chứng": ("thẻ công chứng viên", "văn phòng công chứng"),
    "Luật sư": ("chứng chỉ hành nghề luật sư", "hoạt động của tổ chức hành nghề luật sư"),
    "Thành lập doanh nghiệp": ("giấy chứng nhận đăng ký doanh nghiệp", "thông tin đăng ký doanh nghiệp"),
    "Đầu tư": ("giấy chứng nhận đăng ký đầu tư", "chủ trương đầu tư dự án"),
    "Đất đai": ("giấy chứng nhận quyền sử dụng đất", "biến động đất đai", "chuyển mục đích sử dụng đất"),
    "Môi trường": ("giấy phép môi trường", "báo cáo đánh giá tác động môi trường"),
    "Tài nguyên nước": ("giấy phép khai thác nước dưới đất", "giấy phép xả nước thải"),
    "Việc làm": ("giấy phép lao động cho người nước ngoài", "trợ cấp thất nghiệp"),
    "Người có công": ("trợ cấp ưu đãi người có công", "giấy chứng nhận thương binh"),
    "Khám bệnh, chữa bệnh": ("giấy phép hoạt động phòng khám", "chứng chỉ hành nghề khám bệnh, chữa bệnh"),
    "Dược phẩm": ("chứng chỉ hành nghề dược", "giấy chứng nhận đủ điều kiện kinh doanh dược"),
    "An toàn thực phẩm": ("giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm", "bản công bố sản phẩm"),
    "Giáo dục và Đào tạo": ("giấy phép hoạt động trung tâm ngoại ngữ", "quyết định thành lập trường"),
    "Văn bằng, chứng chỉ": ("bản sao văn bằng tốt nghiệp", "chỉnh sửa nội dung văn bằng"),
    "Thương mại": ("giấy phép kinh doanh bán lẻ rượu", "giấy phép thành lập văn phòng đại diện"),
    "Điện lực": ("giấy phép hoạt động điện lực", "thẻ an toàn điện"),
    "Hóa chất": ("giấy chứng nhận đủ điều kiện sản xuất hóa chất", "giấy phép kinh doanh hóa chất hạn chế"),
    "Đường bộ": ("giấy phép lái xe", "giấy phép kinh doanh vận tải bằng xe ô tô", "phù hiệu xe"),
    "Đường thủy nội địa": ("giấy chứng nhận khả năng chuyên môn thuyền trưởng", "giấy phép hoạt động bến thủy"),
    "Tôn giáo": ("hoạt động tôn giáo", "thành lập tổ chức tôn giáo trực thuộc"),
    "Thi đua, khen thưởng": ("bằng khen của Ủy ban nhân dân Thành phố", "danh hiệu chiến sĩ thi đua"),
    "Quản lý giá": ("phương án giá", "kê khai giá"),
    "Tài sản công": ("quyết định giao tài sản công", "thanh lý tài sản công"),
    "Văn hóa": ("giấy phép tổ chức lễ hội", "giấy phép kinh doanh karaoke"),
    "Thể dục thể thao": ("giấy chứng nhận đủ điều kiện kinh doanh thể thao", "giải thi đấu thể thao"),
    "Quảng cáo": ("thông báo sản phẩm quảng cáo trên bảng quảng cáo", "giấy phép quảng cáo ngoài trời"),
    "Thú y": ("chứng chỉ hành nghề thú y", "giấy chứng nhận kiểm dịch động vật"),
    "Trồng trọt": ("giấy chứng nhận đủ điều kiện buôn bán phân bón", "giấy chứng nhận cây đầu dòng"),
    "Tiêu chuẩn đo lường chất lượng": ("giấy chứng nhận đăng ký kiểm định", "công bố hợp quy sản phẩm"),
    "Báo chí": ("giấy phép xuất bản bản tin", "giấy phép hoạt động báo điện tử"),
    "Xuất bản, in và phát hành": ("giấy phép hoạt động in", "giấy xác nhận đăng ký nhập khẩu xuất bản phẩm"),
    "Hộ tịch": ("khai sinh", "khai tử", "kết hôn", "thay đổi, cải chính hộ tịch", "xác nhận tình trạng hôn nhân"),
    "Kinh doanh": ("giấy chứng nhận đăng ký hộ kinh doanh", "tạm ngừng kinh doanh hộ kinh doanh"),
    "Chứng thực": ("bản sao từ bản chính", "chữ ký trong giấy tờ", "hợp đồng, giao dịch"),
}
QUALIFIERS = (
    "",
    " (trường hợp bị mất, hỏng)",
    " (trường hợp thay đổi nội dung)",
    " có yếu tố nước ngoài",
    " (cấp Thành phố)",
    " theo thủ tục rút gọn",
    " (lần đầu)",
    " cho tổ chức",
    " cho cá nhân",
    " trực tuyến liên thông",
)
DAYS = (1, 2, 3, 5, 5, 7, 10, 10, 12, 15, 15, 20, 30, 45)
FEES = (0, 0, 0, 0, 10_000, 20_000, 50_000, 100_000, 150_000, 200_000, 500_000, 1_000_000, 3_000_000)


def generate(seed: int = SEED) -> list[Procedure]:
    rng = random.Random(seed)
    tiers = {level: [a for a in AGENCIES if a.level is level] for level in AuthorityLevel}
    drafts: list[tuple[AuthorityLevel, Agency, str, str]] = []
    for level, count in IN_FORCE.items():
        names = _names(tiers[level], rng)
        for _ in range(count):
            drafts.append((level, *next(names)))
    abolished_names = _names(tiers[AuthorityLevel.CITY], random.Random(seed + 1))
    online_levels = _online_levels(len(drafts), rng)
    procedures = [
        _procedure(rng, index, level, agency, field, name, online_levels[index], None)
        for index, (level, agency, field, name) in enumerate(drafts)
    ]
    for index in range(ABOLISHED):
        agency, field, name = next(abolished_names)
        abolished_from = date(2023, 1, 1) + timedelta(days=rng.randrange(0, 900))
        procedures.append(
            _procedure(rng, len(drafts) + index, AuthorityLevel.CITY, agency, field, name, 2, abolished_from)
        )
    return procedures


def _names(agencies: Sequence[Agency], rng: random.Random) -> Iterator[tuple[Agency, str, str]]:
    """Endless (agency, field, name) triples, agencies drawn by weight, no name repeated per agency."""
    pools = {
        agency.code: [
            (field, f"{action} {obj}{qualifier}")
            for field in agency.fields
            for obj in OBJECTS[field]
            for action in ACTIONS
            for qualifier in QUALIFIERS
        ]
        for agency in agencies
    }
    for pool in pools.values():
        rng.shuffle(pool)
    weights = [agency.weight for agency in agencies]
    while True:
        agency = rng.choices(agencies, weights)[0]
        field, name = pools[agency.code].pop()
        yield agency, field, name


def _online_levels(count: int, rng: random.Random) -> list[int]:
    levels = [4] * LEVEL_4 + [3] * LEVEL_3 + [2] * (count - LEVEL_4 - LEVEL_3)
    rng.shuffle(levels)
    return levels


def _procedure(
    rng: random.Random,
    index: int,
    level: AuthorityLevel,
    agency: Agency,
    field: str,
    name: str,
    online_level: int,
    abolished_from: date | None,
) -> Procedure:
    tier = {AuthorityLevel.CITY: 1, AuthorityLevel.DISTRICT: 2, AuthorityLevel.COMMUNE: 3}[level]
    same_day = field == "Chứng thực" or (level is AuthorityLevel.COMMUNE and rng.random() < 0.3)
    return Procedure(
        code=f"{tier}.{index + 1:06d}",
        name=name,
        field=field,
        authority_level=level,
        agency_code=agency.code,
        agency_name=agency.name,
        processing_time=rng.choice((4, 8)) if same_day else rng.choice(DAYS),
        time_unit=TimeUnit.WORKING_HOURS if same_day else TimeUnit.WORKING_DAYS,
        online_level=online_level,
        fee_vnd=rng.choice(FEES),
        abolished_from=abolished_from,
    )


def write_catalogue(procedures: Sequence[Procedure], out: Path) -> None:
    with out.open("w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=CATALOGUE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(procedure_row(p) for p in procedures)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.dossier.cli.catalogue_gen", description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    procedures = generate(args.seed)
    write_catalogue(procedures, args.out)
    print(f"wrote {len(procedures)} procedures to {args.out}")


if __name__ == "__main__":
    main()
