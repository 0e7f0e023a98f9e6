"""citydata.v1.TasksService: request checks → domain command → one transaction per call."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar
from uuid import uuid4

import grpc
from citydata.v1 import tasks_pb2 as pb
from citydata.v1 import tasks_pb2_grpc
from google.protobuf.message import Message

from kit.clock import Clock
from kit.db import UnitOfWork
from kit.deadlines.calendar import WorkingCalendar
from kit.errors import FieldViolation, InvalidArgument, NotFound, ViolationCollector
from kit.idempotency import run_idempotent
from services.tasks.api import mapping
from services.tasks.api.caller import require_caller
from services.tasks.api.parsing import checked_id, directive_draft, page_token, task_draft, task_list_query
from services.tasks.domain import directives, petitions
from services.tasks.domain import tasks as task_rules
from services.tasks.domain.common import KnownAgency, require_agency, require_text
from services.tasks.domain.kpis import directive_totals
from services.tasks.domain.petitions import Petition, PetitionChange, Sender
from services.tasks.domain.petitions_kinds import PetitionKind, SenderKind
from services.tasks.domain.senders import SenderRegistry
from services.tasks.domain.tasks import Task, TaskChange
from services.tasks.domain.time_limits import TimeLimit
from services.tasks.store import kpi_queries
from services.tasks.store import petition_repository as petition_store
from services.tasks.store import task_repository as task_store
from services.tasks.store.outbox import save_directive, save_petition, save_task

R = TypeVar("R", bound=Message)
SERVICE_NAME = "citydata.v1.TasksService"
MAX_TASKS_PER_CALL = 500


class TasksServicer(tasks_pb2_grpc.TasksServiceServicer):
    def __init__(
        self,
        new_uow: Callable[[], UnitOfWork],
        calendar: WorkingCalendar,
        time_limits: Mapping[PetitionKind, TimeLimit],
        senders: SenderRegistry,
        known_agency: KnownAgency,
        clock: Clock,
    ) -> None:
        self._new_uow = new_uow
        self._calendar = calendar
        self._limits = time_limits
        self._senders = senders
        self._known = known_agency
        self._clock = clock

    # --- directives and tasks ---------------------------------------------------------------

    def IssueDirective(self, request: pb.IssueDirectiveRequest, context: Any) -> pb.IssueDirectiveResponse:  # noqa: N802
        task_rules.check_new_tasks(len(request.tasks), MAX_TASKS_PER_CALL)

        def action(uow: UnitOfWork) -> pb.IssueDirectiveResponse:
            now = self._clock.now()
            directive, changes = self._checked_directive(request, now)  # bad input first: INVALID_ARGUMENT
            require_caller(context, {directive.issuer_agency}, "the issuer")
            save_directive(uow, directive)
            for change in changes:
                save_task(uow, change, new=True)
            return pb.IssueDirectiveResponse(
                directive=mapping.directive_pb(directive), tasks=[mapping.task_pb(c.task) for c in changes]
            )

        return self._idempotent("IssueDirective", request, pb.IssueDirectiveResponse, action)

    def _checked_directive(
        self, request: pb.IssueDirectiveRequest, now: datetime
    ) -> tuple[directives.Directive, list[TaskChange]]:
        """The directive and its tasks; every bad field of the directive and of every task at once."""
        directive_id = str(uuid4())
        violations: list[FieldViolation] = []
        try:
            directive = directives.issue(directive_draft(request), directive_id, self._known, now)
        except InvalidArgument as error:
            violations.extend(error.violations)
            directive = directives.placeholder(directive_id, now)  # still check the tasks
        changes = self._assign_all(directive, request.tasks, now, violations)
        if violations:
            raise InvalidArgument(violations)
        return directive, changes

    def _assign_all(
        self, directive: directives.Directive, new_tasks: Any, now: datetime, violations: list[FieldViolation]
    ) -> list[TaskChange]:
        changes: list[TaskChange] = []
        for index, message in enumerate(new_tasks):
            try:
                changes.append(
                    task_rules.assign(
                        task_draft(message),
                        directive,
                        str(uuid4()),
                        self._calendar,
                        self._known,
                        now,
                        f"tasks[{index}]",
                    )
                )
            except InvalidArgument as error:
                violations.extend(error.violations)
        return changes

    def AssignTask(self, request: pb.AssignTaskRequest, context: Any) -> pb.AssignTaskResponse:  # noqa: N802
        directive_id = checked_id("directive_id", request.directive_id)
        if not request.HasField("task"):
            raise InvalidArgument([FieldViolation("task", "required")])

        def action(uow: UnitOfWork) -> pb.AssignTaskResponse:
            directive = task_store.get_directive(uow.session, directive_id)
            if directive is None:
                raise NotFound("directive", directive_id)
            require_caller(context, {directive.issuer_agency}, "the issuer")
            change = task_rules.assign(
                task_draft(request.task), directive, str(uuid4()), self._calendar, self._known, self._clock.now()
            )
            save_task(uow, change, new=True)
            return pb.AssignTaskResponse(task=mapping.task_pb(change.task))

        return self._idempotent("AssignTask", request, pb.AssignTaskResponse, action)

    def ReportTaskProgress(  # noqa: N802
        self, request: pb.ReportTaskProgressRequest, context: Any
    ) -> pb.ReportTaskProgressResponse:
        task_id = checked_id("task_id", request.task_id)
        attachments = tuple(mapping.attachment_of(a) for a in request.attachments)
        # Through the gateway an agency reports only for itself; the domain checks it is involved.
        if request.reported_by:  # empty: the domain names the missing field (INVALID_ARGUMENT)
            require_caller(context, {request.reported_by}, "the reporting agency (reported_by)")

        def action(uow: UnitOfWork) -> pb.ReportTaskProgressResponse:
            task = self._task(uow, task_id)
            change, progress = task_rules.report_progress(
                task,
                request.reported_by,
                request.percent,
                request.text,
                attachments,
                request.completed,
                self._clock.now(),
            )
            save_task(uow, change, progress=progress)
            return pb.ReportTaskProgressResponse(task=mapping.task_pb(change.task))

        return self._idempotent("ReportTaskProgress", request, pb.ReportTaskProgressResponse, action)

    def RequestTaskExtension(  # noqa: N802
        self, request: pb.RequestTaskExtensionRequest, context: Any
    ) -> pb.RequestTaskExtensionResponse:
        def command(task: Task, now: datetime) -> TaskChange:
            require_caller(context, {task.lead_agency}, "the lead agency")
            return task_rules.request_extension(task, request.requested_due_date, request.reason, self._calendar, now)

        return self._task_step("RequestTaskExtension", request, pb.RequestTaskExtensionResponse, command)

    def DecideTaskExtension(  # noqa: N802
        self, request: pb.DecideTaskExtensionRequest, context: Any
    ) -> pb.DecideTaskExtensionResponse:
        def command(task: Task, now: datetime) -> TaskChange:
            require_caller(context, {task.issuer_agency}, "the issuer")
            return task_rules.decide_extension(task, request.grant, request.note, now)

        return self._task_step("DecideTaskExtension", request, pb.DecideTaskExtensionResponse, command)

    def DecideTaskCompletion(  # noqa: N802
        self, request: pb.DecideTaskCompletionRequest, context: Any
    ) -> pb.DecideTaskCompletionResponse:
        def command(task: Task, now: datetime) -> TaskChange:
            require_caller(context, {task.issuer_agency}, "the issuer")
            return task_rules.decide_completion(task, request.accept, request.note, now)

        return self._task_step("DecideTaskCompletion", request, pb.DecideTaskCompletionResponse, command)

    def CancelTask(self, request: pb.CancelTaskRequest, context: Any) -> pb.CancelTaskResponse:  # noqa: N802
        def command(task: Task, now: datetime) -> TaskChange:
            require_caller(context, {task.issuer_agency}, "the issuer")
            return task_rules.cancel(task, request.reason, now)

        return self._task_step("CancelTask", request, pb.CancelTaskResponse, command)

    def _task_step(
        self, method: str, request: Any, response_type: type[R], command: Callable[[Task, datetime], TaskChange]
    ) -> R:
        """One command on a locked task; a refused one rolls back and changes nothing."""
        task_id = checked_id("task_id", request.task_id)

        def action(uow: UnitOfWork) -> R:
            change = command(self._task(uow, task_id), self._clock.now())
            save_task(uow, change)
            return response_type(task=mapping.task_pb(change.task))

        return self._idempotent(method, request, response_type, action)

    def GetTask(self, request: pb.GetTaskRequest, context: Any) -> pb.GetTaskResponse:  # noqa: N802
        task_id = checked_id("task_id", request.task_id)
        with self._new_uow() as uow:
            task = self._task(uow, task_id, lock=False)
            progress = task_store.progress_of(uow.session, task_id)
            steps = task_store.task_steps(uow.session, task_id)
        return pb.GetTaskResponse(
            task=mapping.task_pb(task),
            progress=[mapping.progress_pb(p) for p in progress],
            history=[mapping.history_pb(s) for s in steps],
        )

    def GetDirective(self, request: pb.GetDirectiveRequest, context: Any) -> pb.GetDirectiveResponse:  # noqa: N802
        directive_id = checked_id("directive_id", request.directive_id)
        with self._new_uow() as uow:
            directive = task_store.get_directive(uow.session, directive_id)
            if directive is None:
                raise NotFound("directive", directive_id)
            found = task_store.tasks_of_directive(uow.session, directive_id)
        return pb.GetDirectiveResponse(
            directive=mapping.directive_pb(directive), tasks=[mapping.task_pb(t) for t in found]
        )

    def ListTasks(self, request: pb.ListTasksRequest, context: Any) -> pb.ListTasksResponse:  # noqa: N802
        where, after, size = task_list_query(request)
        with self._new_uow() as uow:
            page = task_store.list_tasks(uow.session, where, after, size + 1)
        response = pb.ListTasksResponse(tasks=[mapping.task_pb(t) for t in page[:size]])
        if len(page) > size:
            last = page[size - 1]
            response.next_page_token = page_token(last.due_at, last.task_id, where)
        return response

    # --- petitions --------------------------------------------------------------------------

    def ReceivePetition(self, request: pb.ReceivePetitionRequest, context: Any) -> pb.ReceivePetitionResponse:  # noqa: N802
        kind, sender = self._checked_petition(request)

        def action(uow: UnitOfWork) -> pb.ReceivePetitionResponse:
            confirmed = self._confirmed(sender)
            change = petitions.receive(
                str(uuid4()),
                kind,
                confirmed,
                request.subject,
                request.receiving_agency,
                request.handling_agency,
                self._clock.now(),
            )
            save_petition(uow, change, new=True)
            return pb.ReceivePetitionResponse(petition=mapping.petition_pb(change.petition))

        return self._idempotent("ReceivePetition", request, pb.ReceivePetitionResponse, action)

    def _checked_petition(self, request: pb.ReceivePetitionRequest) -> tuple[PetitionKind, Sender]:
        bad = ViolationCollector()
        kind = mapping.petition_kind_of(request.kind)
        if kind is None:
            bad.add("kind", "required: FEEDBACK, COMPLAINT or DENUNCIATION")
        sender = mapping.sender_of(request.sender) if request.HasField("sender") else None
        petitions.check_sender(bad, sender, self._known)
        require_text(bad, "subject", request.subject)
        require_agency(bad, "receiving_agency", request.receiving_agency, self._known)
        if request.handling_agency:
            require_agency(bad, "handling_agency", request.handling_agency, self._known)
        bad.raise_if_any()
        assert kind is not None and sender is not None
        return kind, sender

    def _confirmed(self, sender: Sender) -> Sender:
        """The sender with its registry id; INVALID_ARGUMENT when the registry does not know it."""
        if sender.kind is SenderKind.CITIZEN:
            found = self._senders.citizen_registry_id(sender.national_id)
            if found is None:
                raise InvalidArgument([FieldViolation("sender.national_id", "no citizen with this national id")])
            return replace(sender, registry_id=found)
        if sender.kind is SenderKind.BUSINESS:
            found = self._senders.business_registry_id(sender.tax_code)
            if found is None:
                raise InvalidArgument([FieldViolation("sender.tax_code", "no business with this tax code")])
            return replace(sender, registry_id=found)
        return sender

    def TransferPetition(self, request: pb.TransferPetitionRequest, context: Any) -> pb.TransferPetitionResponse:  # noqa: N802
        def command(petition: Petition, now: datetime) -> PetitionChange:
            return petitions.transfer(petition, request.to_agency, request.reason, self._known, now)

        return self._petition_step("TransferPetition", request, pb.TransferPetitionResponse, command, context)

    def AcceptPetition(self, request: pb.AcceptPetitionRequest, context: Any) -> pb.AcceptPetitionResponse:  # noqa: N802
        def command(petition: Petition, now: datetime) -> PetitionChange:
            return petitions.accept(petition, self._limits[petition.kind], self._calendar, now)

        return self._petition_step("AcceptPetition", request, pb.AcceptPetitionResponse, command, context)

    def DeclinePetition(self, request: pb.DeclinePetitionRequest, context: Any) -> pb.DeclinePetitionResponse:  # noqa: N802
        def command(petition: Petition, now: datetime) -> PetitionChange:
            return petitions.decline(petition, request.reason, now)

        return self._petition_step("DeclinePetition", request, pb.DeclinePetitionResponse, command, context)

    def ExtendPetition(self, request: pb.ExtendPetitionRequest, context: Any) -> pb.ExtendPetitionResponse:  # noqa: N802
        def command(petition: Petition, now: datetime) -> PetitionChange:
            return petitions.extend(petition, self._limits[petition.kind], request.reason, self._calendar, now)

        return self._petition_step("ExtendPetition", request, pb.ExtendPetitionResponse, command, context)

    def AnswerPetition(self, request: pb.AnswerPetitionRequest, context: Any) -> pb.AnswerPetitionResponse:  # noqa: N802
        document = mapping.attachment_of(request.document) if request.HasField("document") else None

        def command(petition: Petition, now: datetime) -> PetitionChange:
            return petitions.answer(petition, request.summary, document, now)

        return self._petition_step("AnswerPetition", request, pb.AnswerPetitionResponse, command, context)

    def _petition_step(
        self,
        method: str,
        request: Any,
        response_type: type[R],
        command: Callable[[Petition, datetime], PetitionChange],
        context: Any,
    ) -> R:
        """One command on a locked petition, by its handling agency when called through the gateway."""
        petition_id = checked_id("petition_id", request.petition_id)

        def action(uow: UnitOfWork) -> R:
            petition = petition_store.get_petition(uow.session, petition_id, for_update=True)
            if petition is None:
                raise NotFound("petition", petition_id)
            require_caller(context, {petition.handling_agency}, "the handling agency")
            change = command(petition, self._clock.now())
            save_petition(uow, change)
            return response_type(petition=mapping.petition_pb(change.petition))

        return self._idempotent(method, request, response_type, action)

    def GetPetition(self, request: pb.GetPetitionRequest, context: Any) -> pb.GetPetitionResponse:  # noqa: N802
        petition_id = checked_id("petition_id", request.petition_id)
        with self._new_uow() as uow:
            petition = petition_store.get_petition(uow.session, petition_id)
            if petition is None:
                raise NotFound("petition", petition_id)
            routes = petition_store.routes_of(uow.session, petition_id)
            steps = petition_store.petition_steps(uow.session, petition_id)
        return pb.GetPetitionResponse(
            petition=mapping.petition_pb(petition),
            routes=[mapping.route_pb(r) for r in routes],
            history=[mapping.history_pb(s) for s in steps],
        )

    def ListCitizenPetitions(  # noqa: N802
        self, request: pb.ListCitizenPetitionsRequest, context: Any
    ) -> pb.ListCitizenPetitionsResponse:
        national_id = request.national_id.replace(" ", "")
        if not petitions.NATIONAL_ID.fullmatch(national_id):
            raise InvalidArgument([FieldViolation("national_id", "required: 12 digits")])
        with self._new_uow() as uow:
            found = petition_store.petitions_of_citizen(uow.session, national_id)
        return pb.ListCitizenPetitionsResponse(petitions=[mapping.petition_pb(p) for p in found])

    def ListPetitionTimeLimits(  # noqa: N802
        self, request: pb.ListPetitionTimeLimitsRequest, context: Any
    ) -> pb.ListPetitionTimeLimitsResponse:
        return pb.ListPetitionTimeLimitsResponse(
            limits=[mapping.time_limit_pb(limit) for limit in self._limits.values()]
        )

    # --- KPIs -------------------------------------------------------------------------------

    def GetTaskKpis(self, request: pb.GetTaskKpisRequest, context: Any) -> pb.GetTaskKpisResponse:  # noqa: N802
        with self._new_uow() as uow:
            rows = kpi_queries.task_counts(uow.session, request.directive_id, request.agency)
            labels = {
                d.directive_id: d.label
                for d in task_store.get_directives(uow.session, [r.directive_id for r in rows]).values()
            }
        return pb.GetTaskKpisResponse(
            directives=[mapping.task_kpi_pb(row, labels.get(row.directive_id, "")) for row in directive_totals(rows)],
            agencies=[mapping.task_kpi_pb(row, labels.get(row.directive_id, "")) for row in rows],
        )

    def GetPetitionKpis(self, request: pb.GetPetitionKpisRequest, context: Any) -> pb.GetPetitionKpisResponse:  # noqa: N802
        kind = mapping.petition_kind_of(request.kind)
        with self._new_uow() as uow:
            rows = kpi_queries.petition_counts(uow.session, request.agency, kind)
        return pb.GetPetitionKpisResponse(rows=[mapping.petition_kpi_pb(row) for row in rows])

    def ListSlowDirectives(  # noqa: N802
        self, request: pb.ListSlowDirectivesRequest, context: Any
    ) -> pb.ListSlowDirectivesResponse:
        with self._new_uow() as uow:
            slow = kpi_queries.slow_directives(uow.session, request.issuer_agency)
        return pb.ListSlowDirectivesResponse(directives=[mapping.slow_directive_pb(s) for s in slow])

    # --- helpers ----------------------------------------------------------------------------

    def _task(self, uow: UnitOfWork, task_id: str, lock: bool = True) -> Task:
        task = task_store.get_task(uow.session, task_id, for_update=lock)
        if task is None:
            raise NotFound("task", task_id)
        return task

    def _idempotent(self, method: str, request: Any, response_type: type[R], action: Callable[[UnitOfWork], R]) -> R:
        return run_idempotent(self._new_uow, method, request.idempotency_key, request, response_type, action)


def add_to_server(servicer: TasksServicer, server: grpc.Server) -> None:
    tasks_pb2_grpc.add_TasksServiceServicer_to_server(servicer, server)
