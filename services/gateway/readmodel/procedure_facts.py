"""Looks up the procedures the KPIs mention (authority and online level are catalogue facts, not in
the dossier events) through DossierService.GetProcedure, and keeps them in the read model."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import grpc
from citydata.v1 import dossier_pb2, dossier_pb2_grpc

from kit.grpc_server import Worker
from kit.runtime import ServiceRuntime
from kit.tls import secure_channel_to
from services.gateway import store
from services.gateway.readmodel.projection import upsert
from services.gateway.readmodel.queries import ReadModelQueries

log = logging.getLogger(__name__)


@dataclass
class ProcedureFacts:
    """Looks up, through DossierService.GetProcedure, each procedure the KPIs mention that the
    read model does not know yet, and keeps its authority and online level in `rm_procedures`."""

    runtime: ServiceRuntime
    dossier_address: str
    interval_seconds: float = 2.0

    def worker(self) -> Worker:
        return Worker("gateway-procedure-facts", self.run)

    def run(self, stop: threading.Event) -> None:
        channel = secure_channel_to(self.dossier_address, service="gateway")
        stub = dossier_pb2_grpc.DossierServiceStub(channel)
        queries = ReadModelQueries(store.readmodel)
        try:
            while not stop.is_set():
                self.resolve_once(stub, queries)
                stop.wait(self.interval_seconds)
        finally:
            channel.close()

    def resolve_once(self, stub: dossier_pb2_grpc.DossierServiceStub, queries: ReadModelQueries) -> int:
        with self.runtime.sessions() as session:
            unknown = queries.unknown_procedures(session)
        found = []
        for code in unknown:
            try:
                procedure = stub.GetProcedure(dossier_pb2.GetProcedureRequest(code=code), timeout=5).procedure
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                    procedure = dossier_pb2.Procedure(code=code, name="(not in the catalogue)")
                else:
                    log.info("procedure lookup failed; retrying later", extra={"code": code, "error": str(error)})
                    break
            found.append(
                {
                    "code": code,
                    "authority_level": int(procedure.authority_level),
                    "online_level": procedure.online_level,
                    "name": procedure.name[:500],
                }
            )
        if found:
            with self.runtime.sessions() as session, session.begin():
                for row in found:  # another replica may have looked it up meanwhile
                    upsert(session, store.readmodel.procedures, row, ["code"], {})
        return len(found)
