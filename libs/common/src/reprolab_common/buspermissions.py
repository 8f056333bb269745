"""Who may do what on the bus: the ONE table of NATS identities and their subject permissions.

Every service connects as its own NATS user (``REPROLAB_NATS_USER`` / ``REPROLAB_NATS_PASSWORD``)
and may publish and subscribe only to what this table lists. ``nats_authorization`` turns it into
the ``authorization`` block of a nats-server config (``reprolab up`` writes it; the Helm chart
renders the same table).

Why the actor in a request can be trusted: a request subject a service serves is publishable only
by the identities listed as its callers here. Every user-facing request subject has exactly one
caller, the gateway, which sets the actor from the authenticated HTTP caller; a process that is not
the gateway cannot publish a forged actor there at all (the server refuses the publish). Subject
permissions were chosen over signing each request: they need no key distribution or replay window,
they also stop reading (a signature would not stop a passive subscriber on
``runner.credential.put``), and nats-server enforces them before a message reaches any service.

Replies go to a per-identity inbox prefix (``_INBOX_<identity>``), so no identity can subscribe to
the replies another one receives (a credential's metadata, a lock file). Services answer requests
through ``allow_responses`` (they may publish only to the reply subject of a message they received).

Adding a subject to ``subjects.py``: list its enum in ``SERVES`` (who answers it) and, unless the
gateway calls it, in ``INTERNAL_CALLERS``. ``tests/security/test_bus_permissions.py`` fails for any
subject constant no identity serves or may call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from . import subjects
from .nats import JobSubject, Stream

GATEWAY = "gateway"
REGISTRY = "registry"
AUDIT = "audit"
BUILDER = "builder"
RUNNER = "runner"
# An all-subjects identity for an operator's tools (the ``nats`` CLI, the platform tests reading a
# stream's raw bytes). Its password is as secret as the data directory; no service uses it.
OPERATOR = "operator"

SERVICES = (GATEWAY, REGISTRY, AUDIT, BUILDER, RUNNER)
IDENTITIES = (*SERVICES, OPERATOR)

# Which identity answers each request-subject enum of subjects.py.
SERVES: dict[type[StrEnum], str] = {
    subjects.Registry: REGISTRY,
    subjects.Audit: AUDIT,
    subjects.Builder: BUILDER,
    subjects.Runner: RUNNER,
}

# Request subjects not called by the gateway (it must never reach them with a user's actor), and
# who calls them instead. Every other subject of a SERVES enum has exactly one caller: the gateway.
INTERNAL_CALLERS: dict[str, tuple[str, ...]] = {
    subjects.Registry.VERSION_RECORD_IMAGE: (BUILDER,),
    subjects.Registry.ASSIGNMENT_RECORD_SCORE: (RUNNER,),
    # sessions: the runner has the notebook layer built FROM a version's image (wheel cache, registry push)
    subjects.Builder.SESSION_LAYER: (RUNNER,),
}


def inbox_prefix(identity: str) -> str:
    """The reply inbox prefix an identity connects with (nats-py ``inbox_prefix``)."""
    return f"_INBOX_{identity}"


@dataclass
class Permissions:
    publish: list[str] = field(default_factory=list)
    subscribe: list[str] = field(default_factory=list)
    allow_responses: bool = False

    def add(self, other: Permissions) -> Permissions:
        self.publish += [s for s in other.publish if s not in self.publish]
        self.subscribe += [s for s in other.subscribe if s not in self.subscribe]
        self.allow_responses = self.allow_responses or other.allow_responses
        return self


JS = "$JS.API"


def _streams_admin() -> Permissions:
    """``ensure_streams`` runs at every service's start: it may read, create and update the three
    streams (their configuration is the code's), nothing else of the JetStream API."""
    pub = [f"{JS}.INFO", f"{JS}.STREAM.NAMES"]
    for s in Stream:
        pub += [f"{JS}.STREAM.INFO.{s}", f"{JS}.STREAM.CREATE.{s}", f"{JS}.STREAM.UPDATE.{s}"]
    return Permissions(publish=pub)


def _consume(stream: Stream, filter_subject: str | None = None) -> Permissions:
    """Create/read consumers of one stream (durable or ephemeral, for ``filter_subject`` when given),
    fetch from them, ack and answer flow control."""
    create = (f"{JS}.CONSUMER.CREATE.{stream}.*.{filter_subject}" if filter_subject
              else f"{JS}.CONSUMER.CREATE.{stream}.>")
    pub = [
        create, f"{JS}.CONSUMER.CREATE.{stream}", f"{JS}.CONSUMER.DURABLE.CREATE.{stream}.*",
        f"{JS}.CONSUMER.INFO.{stream}.*", f"{JS}.CONSUMER.DELETE.{stream}.*",
        f"{JS}.CONSUMER.MSG.NEXT.{stream}.*", f"$JS.ACK.{stream}.>", f"$JS.FC.{stream}.>",
    ]
    return Permissions(publish=pub)


def _serve(name: str, *enums: type[StrEnum]) -> Permissions:
    """Answer the subjects of ``enums`` as the micro service ``name`` (``$SRV`` discovery included)."""
    sub = [s.value for enum in enums for s in enum]
    sub += ["$SRV.*", f"$SRV.*.{name}", f"$SRV.*.{name}.>"]
    return Permissions(subscribe=sub, allow_responses=True)


def _calls(*subjects_: str) -> Permissions:
    return Permissions(publish=[str(s) for s in subjects_])


def _base(identity: str) -> Permissions:
    """Every service: its own reply inbox, publishing events (the outbox), the stream bootstrap."""
    return Permissions(subscribe=[f"{inbox_prefix(identity)}.>"], publish=["events.>"]).add(_streams_admin())


def _gateway_calls() -> list[str]:
    return [s.value for enum in SERVES for s in enum if s.value not in INTERNAL_CALLERS]


def _internal_calls(identity: str) -> list[str]:
    return [s for s, callers in INTERNAL_CALLERS.items() if identity in callers]


def permissions() -> dict[str, Permissions]:
    """The table: identity name -> its permissions."""
    table = {
        GATEWAY: _base(GATEWAY).add(_calls(*_gateway_calls(), "$SRV.PING.*"))
                                .add(_consume(Stream.LOGS))
                                # LTI: a scored run's grade is sent to the LMS (lti/listener.py)
                                .add(_consume(Stream.EVENTS, "events.*.run.scored"))
                                # the registry's change notices: the gateway's read cache drops a workspace
                                .add(Permissions(subscribe=[subjects.REGISTRY_CHANGED])),
        REGISTRY: _base(REGISTRY).add(_calls(subjects.REGISTRY_CHANGED)),
        AUDIT: _base(AUDIT).add(_consume(Stream.EVENTS, "events.>")),
        BUILDER: _base(BUILDER).add(_calls(JobSubject.BUILD, "logs.build.>"))
                               .add(_consume(Stream.JOBS, JobSubject.BUILD)),
        RUNNER: _base(RUNNER).add(_calls(JobSubject.RUN, "logs.run.>")).add(_consume(Stream.JOBS, JobSubject.RUN)),
        OPERATOR: Permissions(publish=[">"], subscribe=[">"], allow_responses=True),
    }
    for name in SERVICES:
        served = [enum for enum, who in SERVES.items() if who == name]
        if served:
            table[name].add(_serve(name, *served))
        table[name].add(_calls(*_internal_calls(name)))
    return table


def nats_authorization(passwords: dict[str, str]) -> dict:
    """The ``authorization`` block of a nats-server config for these identities' passwords."""
    users = []
    for name, perms in permissions().items():
        entry: dict = {"user": name, "password": passwords[name], "permissions": {
            "publish": {"allow": perms.publish}, "subscribe": {"allow": perms.subscribe},
        }}
        if perms.allow_responses:
            entry["permissions"]["allow_responses"] = True
        users.append(entry)
    return {"users": users}
