"""Request/reply endpoints (NATS services API): audit.query, audit.export, audit.verify, audit.checkpoint,
audit.proof.inclusion, audit.proof.consistency."""

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

    async def checkpoint(self, req: audit_pb2.GetCheckpointRequest) -> audit_pb2.SignedCheckpoint:
        return await asyncio.to_thread(self.store.checkpoint, req)

    async def inclusion_proof(self, req: audit_pb2.InclusionProofRequest) -> audit_pb2.InclusionProof:
        return await asyncio.to_thread(self.store.inclusion_proof, req)

    async def consistency_proof(self, req: audit_pb2.ConsistencyProofRequest) -> audit_pb2.ConsistencyProof:
        return await asyncio.to_thread(self.store.consistency_proof, req)

    async def register(self, micro: Service) -> None:
        await micro.add_endpoint(name="query", subject=Audit.QUERY.value,
                                 handler=endpoint(audit_pb2.QueryActivityRequest, self.query))
        await micro.add_endpoint(name="export", subject=Audit.EXPORT.value,
                                 handler=endpoint(audit_pb2.ExportActivityRequest, self.export))
        await micro.add_endpoint(name="verify", subject=Audit.VERIFY.value,
                                 handler=endpoint(audit_pb2.VerifyActivityRequest, self.verify))
        await micro.add_endpoint(name="checkpoint", subject=Audit.CHECKPOINT.value,
                                 handler=endpoint(audit_pb2.GetCheckpointRequest, self.checkpoint))
        await micro.add_endpoint(name="inclusion_proof", subject=Audit.INCLUSION_PROOF.value,
                                 handler=endpoint(audit_pb2.InclusionProofRequest, self.inclusion_proof))
        await micro.add_endpoint(name="consistency_proof", subject=Audit.CONSISTENCY_PROOF.value,
                                 handler=endpoint(audit_pb2.ConsistencyProofRequest, self.consistency_proof))
