"""Request/reply endpoints (NATS services API): audit.query, audit.export, audit.verify."""

from __future__ import annotations

import asyncio

from nats.micro.service import Service
from reprolab.v1 import audit_pb2
from reprolab_common.nats import endpoint
from reprolab_common.objectstore import ObjectStore
from reprolab_common.outbox import OutboxPublisher
from reprolab_common.subjects import Audit

from .store import AuditStore


class AuditApi:
    """Thin handlers: decode, run the store function in a worker thread, reply. None of them
    modifies or deletes an entry."""

    def __init__(self, store: AuditStore, objects: ObjectStore, publisher: OutboxPublisher) -> None:
        self.store = store
        self.objects = objects
        self.publisher = publisher

    async def query(self, req: audit_pb2.QueryActivityRequest) -> audit_pb2.ActivityList:
        return await asyncio.to_thread(self.store.query, req)

    async def export(self, req: audit_pb2.ExportActivityRequest) -> audit_pb2.ExportActivityReply:
        reply = await asyncio.to_thread(self.store.export, req, self.objects)
        self.publisher.wake()
        return reply

    async def verify(self, req: audit_pb2.VerifyActivityRequest) -> audit_pb2.VerifyActivityReply:
        return await asyncio.to_thread(self.store.verify, req, self.objects)

    async def register(self, micro: Service) -> None:
        await micro.add_endpoint(name="query", subject=Audit.QUERY.value,
                                 handler=endpoint(audit_pb2.QueryActivityRequest, self.query))
        await micro.add_endpoint(name="export", subject=Audit.EXPORT.value,
                                 handler=endpoint(audit_pb2.ExportActivityRequest, self.export))
        await micro.add_endpoint(name="verify", subject=Audit.VERIFY.value,
                                 handler=endpoint(audit_pb2.VerifyActivityRequest, self.verify))
