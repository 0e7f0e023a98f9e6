"""The Q1/2022 quarter simulator: a Ho Chi Minh City-shaped quarter through ImportDossiers.

    python -m tools.simulate --scale 0.01 [--dossier-address 127.0.0.1:50052]
        [--registry-address 127.0.0.1:50051 | --unregistered-applicants]
        [--seed 2022] [--run-id ID] [--leave-open] [--dry-run]

Plans the quarter (tools.simulate.simulation), prints the expected counts, streams
the dossiers to the dossier service's ImportDossiers (chunks of rows, a tqdm progress bar) and
prints what the service answered. Import keys are `<run id>-<n>`; re-running the same run id
imports only what is missing.

Applicants: the platform as `make up` starts it checks every applicant against the registry, so
the simulator first registers a pool of synthetic citizens (one ImportCitizens stream) and
businesses (RegisterBusiness) in the registry, deterministic per run id (a re-run finds them by
national id / enterprise code), and spreads the dossiers over them. `--unregistered-applicants`
skips the registry and gives every dossier a synthetic id `<run id>-C<n>` / `<run id>-B<n>`
instead, for a dossier service started without REGISTRY_ADDRESS (its trusting directory, as for
an import of historical data whose applicants predate the registry).

Dossiers still open at quarter end are resolved on time in April by default, so a service whose
clock is today owes no apology letter for them; `--leave-open` leaves them open (right for a
service whose clock stands at the quarter's end, otherwise its deadline watcher flags them).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import grpc
from citydata.v1 import common_pb2, registry_pb2
from citydata.v1 import dossier_pb2 as pb
from citydata.v1.dossier_pb2_grpc import DossierServiceStub
from citydata.v1.registry_pb2_grpc import RegistryServiceStub
from google.protobuf.timestamp_pb2 import Timestamp
from tqdm import tqdm

from kit.deadlines.loader import load_calendar
from services.dossier.domain.lifecycle import ApplicantKind, Channel
from services.dossier.store.catalogue_file import SHIPPED_CATALOGUE, read_catalogue
from services.registry.domain import Gender, build_national_id, enterprise_check_digit
from tools.simulate.quarter import QuarterCounts, scaled_counts
from tools.simulate.simulation import ApplicantPool, Outcome, PlannedDossier, QuarterPlanner

DEFAULT_SEED = 2022
DEFAULT_CHUNK = 500
_CHANNELS = {
    Channel.COUNTER: pb.DOSSIER_CHANNEL_COUNTER,
    Channel.POST: pb.DOSSIER_CHANNEL_POST,
    Channel.ONLINE: pb.DOSSIER_CHANNEL_ONLINE,
}
_KINDS = {
    ApplicantKind.CITIZEN: pb.DOSSIER_APPLICANT_KIND_CITIZEN,
    ApplicantKind.BUSINESS: pb.DOSSIER_APPLICANT_KIND_BUSINESS,
}


@dataclass
class SimulationResult:
    run_id: str
    expected: QuarterCounts
    response: pb.ImportDossiersResponse
    seconds: float
    by_channel: Counter[str] = field(default_factory=Counter)
    by_final_state: Counter[str] = field(default_factory=Counter)


def default_run_id(seed: int, scale: float) -> str:
    return f"q1y22-s{seed}-x{scale:g}"


def planner(
    seed: int, run_id: str, close_open_after_quarter: bool, applicants: ApplicantPool | None = None
) -> QuarterPlanner:
    """The planner on the dossier service's own calendar code and shipped catalogue."""
    catalogue = read_catalogue(SHIPPED_CATALOGUE)
    return QuarterPlanner(
        load_calendar(),
        catalogue.procedures,
        seed=seed,
        run_id=run_id,
        close_open_after_quarter=close_open_after_quarter,
        applicants=applicants,
    )


# --- applicants in the registry ----------------------------------------------------------------

SURNAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ")
GIVEN = ("An", "Bình", "Châu", "Dũng", "Hà", "Hùng", "Lan", "Linh", "Mai", "Nam", "Sơn", "Trang")
HCMC = "079"
BUSINESS_LINES = ("4711", "5610", "6201", "4933", "8299")


def applicant_pool_size(expected: QuarterCounts) -> tuple[int, int]:
    """(citizens, businesses): about one applicant per 20 dossiers, bounded so that registering
    them stays a small part of the run at every scale."""
    citizens = min(2000, max(10, expected.received // 20))
    return citizens, max(3, citizens // 4)


def _digits(run_id: str, what: str, count: int) -> str:
    """Deterministic digits for (run, what): the same run registers the same people again."""
    number = int.from_bytes(hashlib.sha256(f"{run_id}/{what}".encode()).digest()[:8], "big")
    return f"{number % 10**count:0{count}d}"


def synthetic_citizen(run_id: str, n: int) -> registry_pb2.CitizenInput:
    female = n % 2 == 1
    year = 1950 + n % 55
    return registry_pb2.CitizenInput(
        national_id=build_national_id(
            HCMC, Gender.FEMALE if female else Gender.MALE, year, _digits(run_id, f"C{n}", 6)
        ),
        full_name=f"{SURNAMES[n % len(SURNAMES)]} {'Thị' if female else 'Văn'} {GIVEN[n % len(GIVEN)]}",
        date_of_birth=f"{year}-{1 + n % 12:02d}-{1 + n % 28:02d}",
        gender=registry_pb2.GENDER_FEMALE if female else registry_pb2.GENDER_MALE,
        address=common_pb2.Address(province_code=HCMC, ward_code=f"{26734 + n % 300:05d}", street=f"{1 + n} Lê Lợi"),
    )


def synthetic_enterprise_code(run_id: str, n: int) -> str:
    for attempt in range(100):
        nine = "3" + _digits(run_id, f"B{n}/{attempt}", 8)
        digit = enterprise_check_digit(nine)
        if digit is not None:
            return nine + digit
    raise RuntimeError("no valid enterprise code in 100 attempts")  # each attempt fails with p = 1/11


def register_applicants(registry: RegistryServiceStub, run_id: str, citizens: int, businesses: int) -> ApplicantPool:
    """Registers `citizens` synthetic citizens (one ImportCitizens stream; the ones a previous run
    already registered are refused as ALREADY_EXISTS and found again) and `businesses` businesses,
    and returns their registry ids."""
    inputs = [synthetic_citizen(run_id, n) for n in range(citizens)]
    registry.ImportCitizens(iter([registry_pb2.ImportCitizensRequest(rows=inputs)]), timeout=300)
    citizen_ids = tuple(
        registry.GetCitizen(registry_pb2.GetCitizenRequest(national_id=row.national_id), timeout=30).citizen.registry_id
        for row in inputs
    )
    business_ids = tuple(_register_business(registry, run_id, n, citizen_ids) for n in range(businesses))
    return ApplicantPool(citizen_ids, business_ids)


def _register_business(registry: RegistryServiceStub, run_id: str, n: int, representatives: tuple[str, ...]) -> str:
    code = synthetic_enterprise_code(run_id, n)
    business = registry_pb2.BusinessInput(
        enterprise_code=code,
        name=f"Công ty TNHH Mô Phỏng {GIVEN[n % len(GIVEN)]} {SURNAMES[n % len(SURNAMES)]}",
        legal_representative_id=representatives[n % len(representatives)],
        address=common_pb2.Address(province_code=HCMC, ward_code=f"{26734 + n % 300:05d}", street=f"{1 + n} Đồng Khởi"),
        business_lines=[BUSINESS_LINES[n % len(BUSINESS_LINES)]],
    )
    try:
        request = registry_pb2.RegisterBusinessRequest(business=business, idempotency_key=f"{run_id}-B{n}")
        return str(registry.RegisterBusiness(request, timeout=30).business.registry_id)
    except grpc.RpcError as error:
        if error.code() is not grpc.StatusCode.ALREADY_EXISTS:  # type: ignore[attr-defined]
            raise
    found = registry.GetBusiness(registry_pb2.GetBusinessRequest(enterprise_code=code), timeout=30)
    return str(found.business.registry_id)


def imported_dossier(planned: PlannedDossier) -> pb.ImportedDossier:
    return pb.ImportedDossier(
        import_key=planned.import_key,
        procedure_code=planned.procedure.code,
        applicant_registry_id=planned.applicant_registry_id,
        applicant_kind=_KINDS[planned.applicant_kind],
        channel=_CHANNELS[planned.channel],
        received_at=_stamp(planned.received_at),
        steps=[
            pb.ImportedDossierStep(
                action=step.action,
                occurred_at=_stamp(step.at),
                payment_reference=step.payment_reference,
                amount_vnd=step.amount_vnd,
            )
            for step in planned.steps
        ],
        state=pb.DossierState.Value(f"DOSSIER_STATE_{planned.final_state.value}"),  # type: ignore[arg-type]
    )


def _stamp(value: datetime) -> Timestamp:
    """Whole seconds (what an agency's export holds); an aware datetime's POSIX time is its UTC
    instant, which spares Timestamp.FromDatetime's time-tuple round trip (a third of the row's cost)."""
    return Timestamp(seconds=int(value.timestamp()))


def simulate(
    stub: DossierServiceStub,
    scale: float,
    *,
    seed: int = DEFAULT_SEED,
    run_id: str | None = None,
    close_open_after_quarter: bool = True,
    chunk: int = DEFAULT_CHUNK,
    progress: bool = True,
    timeout_seconds: float | None = None,
    applicants: ApplicantPool | None = None,
) -> SimulationResult:
    """Plans and imports the quarter at `scale`; returns what the service answered. Without
    `applicants`, synthetic applicant ids (for a dossier service that does not check them)."""
    run = run_id or default_run_id(seed, scale)
    expected = scaled_counts(scale)
    result = SimulationResult(run, expected, pb.ImportDossiersResponse(), 0.0)
    plans = planner(seed, run, close_open_after_quarter, applicants).plan(expected)
    bar = tqdm(total=expected.received, unit="dossier", disable=not progress, file=sys.stderr)
    started = time.monotonic()
    with bar:
        requests = _requests(_tallied(plans, result), chunk, bar)
        result.response = stub.ImportDossiers(requests, timeout=timeout_seconds)
    result.seconds = time.monotonic() - started
    return result


def _tallied(plans: Iterable[PlannedDossier], result: SimulationResult) -> Iterator[PlannedDossier]:
    for planned in plans:
        result.by_channel[planned.channel.value] += 1
        result.by_final_state[planned.final_state.value] += 1
        yield planned


def _requests(plans: Iterable[PlannedDossier], chunk: int, bar: tqdm) -> Iterator[pb.ImportDossiersRequest]:  # type: ignore[type-arg]
    rows: list[pb.ImportedDossier] = []
    for planned in plans:
        rows.append(imported_dossier(planned))
        if len(rows) >= chunk:
            yield pb.ImportDossiersRequest(rows=rows)
            bar.update(len(rows))
            rows = []
    if rows:
        yield pb.ImportDossiersRequest(rows=rows)
        bar.update(len(rows))


def expected_outcomes(scale: float, seed: int, run_id: str, close_open_after_quarter: bool) -> Counter[Outcome]:
    """Plans without importing (the dry run): the outcome of every planned dossier."""
    plans = planner(seed, run_id, close_open_after_quarter).plan(scaled_counts(scale))
    return Counter(planned.outcome for planned in plans)


def _print_counts(counts: QuarterCounts, scale: float) -> None:
    print(f"Q1/2022 at scale {scale:g}, expected:")
    for label, value in counts.as_table():
        print(f"  {label:<34}{value:>12,}")


def _print_result(result: SimulationResult) -> None:
    response = result.response
    rate = response.rows_received / result.seconds if result.seconds else 0.0
    print(
        f"run id {result.run_id}: {response.rows_imported:,} imported, {response.rows_skipped:,} skipped, "
        f"{response.rows_failed:,} failed of {response.rows_received:,} in {result.seconds:.1f} s ({rate:,.0f}/s)"
    )
    print(f"  channels: {dict(result.by_channel)}; states after import: {dict(result.by_final_state)}")
    for failure in list(response.failures)[:10]:
        print(f"  row {failure.row_number} ({failure.import_key}): {failure.message}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.simulate", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=0.01, help="fraction of the real quarter (0 < s <= 1)")
    parser.add_argument(
        "--dossier-address", default=os.environ.get("DOSSIER_ADDRESS", "127.0.0.1:50052"), help="dossier gRPC"
    )
    parser.add_argument(
        "--registry-address",
        default=os.environ.get("REGISTRY_ADDRESS", "127.0.0.1:50051"),
        help="registry gRPC, where the synthetic applicants are registered first",
    )
    parser.add_argument(
        "--unregistered-applicants",
        action="store_true",
        help="synthetic applicant ids, not registered: only for a dossier service without REGISTRY_ADDRESS",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--run-id", help="prefix of import keys and applicant ids (default from seed and scale)")
    parser.add_argument("--leave-open", action="store_true", help="leave the quarter's open dossiers open")
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="rows per stream message")
    parser.add_argument("--dry-run", action="store_true", help="plan and print the expected counts only")
    args = parser.parse_args(argv)
    counts = scaled_counts(args.scale)
    _print_counts(counts, args.scale)
    if args.dry_run:
        run = args.run_id or default_run_id(args.seed, args.scale)
        planned = expected_outcomes(args.scale, args.seed, run, not args.leave_open)
        print(f"  planned outcomes: {{{', '.join(f'{k.value}: {v:,}' for k, v in sorted(planned.items()))}}}")
        return 0
    run = args.run_id or default_run_id(args.seed, args.scale)
    applicants = None
    if not args.unregistered_applicants:
        citizens, businesses = applicant_pool_size(counts)
        with grpc.insecure_channel(args.registry_address) as channel:
            applicants = register_applicants(RegistryServiceStub(channel), run, citizens, businesses)
        print(f"applicants registered in the registry: {citizens:,} citizens, {businesses:,} businesses")
    with grpc.insecure_channel(args.dossier_address) as channel:
        result = simulate(
            DossierServiceStub(channel),
            args.scale,
            seed=args.seed,
            run_id=run,
            close_open_after_quarter=not args.leave_open,
            chunk=args.chunk,
            applicants=applicants,
        )
    _print_result(result)
    return 1 if result.response.rows_failed else 0


if __name__ == "__main__":
    sys.exit(main())
