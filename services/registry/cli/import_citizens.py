"""Import citizens from a CSV file into the registry, with a progress bar.

    python -m services.registry.cli.import_citizens citizens.csv [--target 127.0.0.1:50051]
        [--idempotency-key KEY] [--failures failed.csv]

The CSV is UTF-8 with a header row naming these columns (any order; phone and email may be
empty or absent):

    national_id, full_name, date_of_birth (YYYY-MM-DD), gender (male|female, or nam|nữ),
    province_code, ward_code, street, phone, email

Rows stream to ImportCitizens; the server commits them 1000 at a time. The summary counts
every row; the server reports at most 10,000 failed rows (row numbers count data rows from 1,
not the header). With --idempotency-key, re-running an interrupted import with the same
key and file skips the chunks already committed.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import grpc
from citydata.v1 import common_pb2
from citydata.v1 import registry_pb2 as pb
from citydata.v1.registry_pb2_grpc import RegistryServiceStub
from tqdm import tqdm

ROWS_PER_MESSAGE = 500
COLUMNS = ["national_id", "full_name", "date_of_birth", "gender", "province_code", "ward_code", "street"]
GENDERS = {
    "male": pb.GENDER_MALE,
    "nam": pb.GENDER_MALE,
    "m": pb.GENDER_MALE,
    "female": pb.GENDER_FEMALE,
    "nữ": pb.GENDER_FEMALE,
    "nu": pb.GENDER_FEMALE,
    "f": pb.GENDER_FEMALE,
}


def citizen_from_csv(row: dict[str, str]) -> pb.CitizenInput:
    def cell(name: str) -> str:
        return (row.get(name) or "").strip()

    return pb.CitizenInput(
        national_id=cell("national_id"),
        full_name=cell("full_name"),
        date_of_birth=cell("date_of_birth"),
        gender=GENDERS.get(cell("gender").lower(), pb.GENDER_UNSPECIFIED),
        address=common_pb2.Address(
            province_code=cell("province_code"), ward_code=cell("ward_code"), street=cell("street")
        ),
        phone=cell("phone"),
        email=cell("email"),
    )


def requests(reader: csv.DictReader[str], key: str, progress: tqdm) -> Iterator[pb.ImportCitizensRequest]:  # type: ignore[type-arg]
    batch: list[pb.CitizenInput] = []
    first = True
    for row in reader:
        batch.append(citizen_from_csv(row))
        if len(batch) == ROWS_PER_MESSAGE:
            yield pb.ImportCitizensRequest(idempotency_key=key if first else "", rows=batch)
            progress.update(len(batch))
            batch, first = [], False
    if batch or first:
        yield pb.ImportCitizensRequest(idempotency_key=key if first else "", rows=batch)
        progress.update(len(batch))


def count_data_rows(path: Path) -> int:
    with path.open(encoding="utf-8", newline="") as file:
        return max(sum(1 for _ in csv.reader(file)) - 1, 0)


def check_header(fieldnames: Sequence[str] | None) -> list[str]:
    return [column for column in COLUMNS if column not in (fieldnames or [])]


def print_summary(response: pb.ImportCitizensResponse, out: IO[str], shown: int = 20) -> None:
    print(
        f"rows: {response.rows_received}  imported: {response.rows_imported}  failed: {response.rows_failed}", file=out
    )
    for result in response.failed_rows[:shown]:
        error = result.error
        details = "; ".join(f"{v.field}: {v.description}" for v in error.field_violations) or error.message
        print(f"  row {result.row_number}: {error.code}: {details}", file=out)
    if response.rows_failed > shown:
        print(f"  ... {response.rows_failed - shown} more (use --failures FILE for the list)", file=out)
    if response.failed_rows_truncated:
        print("  note: the server lists at most 10,000 failed rows", file=out)


def write_failures(response: pb.ImportCitizensResponse, path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["row_number", "code", "field", "description", "existing_registry_id"])
        for result in response.failed_rows:
            error = result.error
            for violation in error.field_violations or [pb.FieldViolation(description=error.message)]:
                writer.writerow(
                    [result.row_number, error.code, violation.field, violation.description, error.existing_registry_id]
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Import citizens from a CSV file into the CityData registry")
    parser.add_argument("csv_file", type=Path)
    parser.add_argument("--target", default=os.environ.get("REGISTRY_ADDRESS", "127.0.0.1:50051"))
    parser.add_argument("--idempotency-key", default="")
    parser.add_argument("--failures", type=Path, help="write every reported failed row to this CSV file")
    args = parser.parse_args(argv)

    total = count_data_rows(args.csv_file)
    with (
        args.csv_file.open(encoding="utf-8", newline="") as file,
        grpc.insecure_channel(args.target) as channel,
        tqdm(total=total, unit="rows", desc="import", file=sys.stderr) as progress,
    ):
        reader = csv.DictReader(file)
        missing = check_header(reader.fieldnames)
        if missing:
            print(f"the CSV header lacks: {', '.join(missing)}", file=sys.stderr)
            return 2
        try:
            response = RegistryServiceStub(channel).ImportCitizens(requests(reader, args.idempotency_key, progress))
        except grpc.RpcError as error:
            print(f"import failed: {error.code().name}: {error.details()}", file=sys.stderr)  # type: ignore[attr-defined]
            return 1
    print_summary(response, sys.stdout)
    if args.failures:
        write_failures(response, args.failures)
    return 0 if response.rows_failed == 0 else 3


if __name__ == "__main__":
    sys.exit(main())
