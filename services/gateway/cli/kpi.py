"""Export the dossier KPIs of the read model: `python -m services.gateway.cli.kpi export`.

    python -m services.gateway.cli.kpi export --format csv --group-by agency,period --period quarter \
        --from 2025-01-01 --to 2025-03-31 [--agency SXD] [--procedure 1.000123] [--level district] [--out q1.csv]

Reads the gateway database directly (GATEWAY_DATABASE_URL / DATABASE_URL or --database-url);
the same figures GatewayService.GetDossierKpis and GET /v1/kpis give. JSON is the proto3 JSON of
GetDossierKpisResponse; CSV has one line per group, then a `TOTAL` line.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

from citydata.v1 import dossier_pb2, gateway_pb2
from google.protobuf import json_format
from sqlalchemy.orm import sessionmaker

from kit.config import load_settings
from kit.db import make_engine
from services.gateway import store
from services.gateway.api.reads import counts_pb, kpi_row_pb
from services.gateway.domain.kpi import KpiQuery, checked_query, parse_day, parse_dimensions, parse_period, total
from services.gateway.readmodel.queries import ReadModelQueries

LEVELS = {
    "": 0,
    "city": dossier_pb2.PROCEDURE_AUTHORITY_LEVEL_CITY,
    "district": dossier_pb2.PROCEDURE_AUTHORITY_LEVEL_DISTRICT,
    "commune": dossier_pb2.PROCEDURE_AUTHORITY_LEVEL_COMMUNE,
}
CSV_COLUMNS = [field.name for field in gateway_pb2.DossierKpiRow.DESCRIPTOR.fields]


def kpi_response(database_url: str, query: KpiQuery) -> gateway_pb2.GetDossierKpisResponse:
    engine = make_engine(database_url)
    try:
        with sessionmaker(engine)() as session:
            groups = ReadModelQueries(store.readmodel).kpis(session, query)
    finally:
        engine.dispose()
    return gateway_pb2.GetDossierKpisResponse(
        rows=[kpi_row_pb(g) for g in groups], total=counts_pb(total(g.counts for g in groups))
    )


def as_csv(response: gateway_pb2.GetDossierKpisResponse) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in response.rows:
        writer.writerow([_cell(row, name) for name in CSV_COLUMNS])
    total_row = gateway_pb2.DossierKpiRow()
    total_row.CopyFrom(response.total)
    total_row.agency_code = "TOTAL"
    writer.writerow([_cell(total_row, name) for name in CSV_COLUMNS])
    return out.getvalue()


def _cell(row: gateway_pb2.DossierKpiRow, name: str) -> str:
    value = getattr(row, name)
    if name == "authority_level":
        return dossier_pb2.ProcedureAuthorityLevel.Name(value).removeprefix("PROCEDURE_AUTHORITY_LEVEL_")
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


def query_from(args: argparse.Namespace) -> KpiQuery:
    return checked_query(
        KpiQuery(
            agency_code=args.agency,
            procedure_code=args.procedure,
            authority_level=LEVELS[args.level],
            from_day=parse_day(args.from_date, "from"),
            to_day=parse_day(args.to_date, "to"),
            group_by=parse_dimensions(args.group_by),
            period=parse_period(args.period),
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="print or write the KPIs")
    export.add_argument("--format", choices=["csv", "json"], default="csv")
    export.add_argument("--agency", default="")
    export.add_argument("--procedure", default="")
    export.add_argument("--level", choices=sorted(LEVELS), default="")
    export.add_argument("--from", dest="from_date", default="", help="first local day, YYYY-MM-DD")
    export.add_argument("--to", dest="to_date", default="", help="last local day, YYYY-MM-DD")
    export.add_argument(
        "--group-by", default="agency,period", help="agency, procedure, level, period (or the KPI_DIMENSION_* names)"
    )
    export.add_argument("--period", default="month", help="day, month, quarter or year")
    export.add_argument("--out", type=Path, help="file to write (default: stdout)")
    export.add_argument("--database-url", default=load_settings("gateway").database_url)
    args = parser.parse_args(argv)
    try:
        response = kpi_response(args.database_url, query_from(args))
    except Exception as exc:  # InvalidArgument and friends: a message, not a stack trace
        print(f"cli.kpi: {exc}", file=sys.stderr)
        return 2
    text = as_csv(response) if args.format == "csv" else json_format.MessageToJson(response) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
