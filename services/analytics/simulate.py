"""The Q1/2022 quarter simulator: a Ho Chi Minh City-shaped quarter through ImportDossiers.

    python -m services.analytics.simulate --scale 0.01 [--dossier-address 127.0.0.1:50052]
        [--seed 2022] [--run-id ID] [--leave-open] [--dry-run]

Plans the quarter (services.analytics.domain.simulation), prints the expected counts, streams
the dossiers to the dossier service's ImportDossiers (chunks of rows, a tqdm progress bar) and
prints what the service answered. Import keys are `<run id>-<n>` and applicant ids
`<run id>-C<n>` / `<run id>-B<n>`, so one run's dossiers can be found on Kafka by the applicant
id prefix; re-running the same run id imports only what is missing.

The dossier service must take the synthetic applicants: run it without REGISTRY_ADDRESS (its
trusting applicant directory), as for any import of historical data.

Dossiers still open at quarter end are resolved on time in April by default, so a service whose
clock is today owes no apology letter for them; `--leave-open` leaves them open (right for a
service whose clock stands at the quarter's end, otherwise its deadline watcher flags them).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc
from citydata.v1 import dossier_pb2 as pb
from citydata.v1.dossier_pb2_grpc import DossierServiceStub
from google.protobuf.timestamp_pb2 import Timestamp
from tqdm import tqdm

from services.analytics.domain.quarter import QuarterCounts, scaled_counts
from services.analytics.domain.simulation import Outcome, PlannedDossier, QuarterPlanner
from services.dossier.calendar_loader import load_calendar
from services.dossier.catalogue import SHIPPED_CATALOGUE, read_catalogue
from services.dossier.domain.lifecycle import ApplicantKind, Channel

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


def planner(seed: int, run_id: str, close_open_after_quarter: bool) -> QuarterPlanner:
    """The planner on the dossier service's own calendar code and shipped catalogue."""
    catalogue = read_catalogue(SHIPPED_CATALOGUE)
    return QuarterPlanner(
        load_calendar(),
        catalogue.procedures,
        seed=seed,
        run_id=run_id,
        close_open_after_quarter=close_open_after_quarter,
    )


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
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC).replace(microsecond=0))
    return stamp


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
) -> SimulationResult:
    """Plans and imports the quarter at `scale`; returns what the service answered."""
    run = run_id or default_run_id(seed, scale)
    expected = scaled_counts(scale)
    result = SimulationResult(run, expected, pb.ImportDossiersResponse(), 0.0)
    plans = planner(seed, run, close_open_after_quarter).plan(expected)
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
    parser = argparse.ArgumentParser(prog="python -m services.analytics.simulate", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=0.01, help="fraction of the real quarter (0 < s <= 1)")
    parser.add_argument(
        "--dossier-address", default=os.environ.get("DOSSIER_ADDRESS", "127.0.0.1:50052"), help="dossier gRPC"
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
    with grpc.insecure_channel(args.dossier_address) as channel:
        result = simulate(
            DossierServiceStub(channel),
            args.scale,
            seed=args.seed,
            run_id=args.run_id,
            close_open_after_quarter=not args.leave_open,
            chunk=args.chunk,
        )
    _print_result(result)
    return 1 if result.response.rows_failed else 0


if __name__ == "__main__":
    sys.exit(main())
