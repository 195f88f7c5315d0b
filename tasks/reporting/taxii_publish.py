"""Publish a DCO's STIX 2.1 bundle to a TAXII 2.1 collection.

``publish_dco`` builds the bundle with ``dcoflow.tasks.reporting.stix_export`` (the same report, evidence,
ATT&CK reference copies and markings as the file export), validates it, and sends it in chunks with
``dcoflow.connectors.taxii.TaxiiClient.add_objects``:

- markings: the collection's ``ReleasePolicy`` (highest TLP, classification/releasability statements it is
  cleared for; default TLP:AMBER — TLP:AMBER+STRICT with ``allow_amber_strict`` — and no statement) decides.
  A DCO whose own marking is above it is refused before anything is sent (TLP:RED always). Single objects
  above it — a higher TLP (1.0 or 2.0), a statement the collection is not cleared for, a marking we cannot
  read; e.g. evidence shared from elsewhere — are refused and counted with the reason; the report's
  ``object_refs`` drop them and no marking-definition goes without an object that carries it.
- idempotent: the collection's manifest (``match[id]`` in batches, ``match[version]=all``) says which
  (id, version) pairs it already holds; only the others are sent. Objects without ``modified`` (SCOs,
  marking-definitions) are immutable: present by id is enough. The report's ``published``/``modified`` is
  the newest timestamp of the DCO (its last change and its newest evidence), so re-publishing an unchanged
  DCO sends nothing and a DCO with new evidence sends a new report version beside the new objects.
- ``since``: only objects created/modified at or after it are candidates (the report always is).
- a collection that is not writable fails at once (``AuthError``) naming the server and collection;
  one that is write-only cannot be de-duplicated, so everything is sent and the server's own
  duplicate refusals come back as failures.
- objects go in dependency order (markings, identities, SCOs, SDOs, SROs, the report last) so a chunk
  that fails never leaves a report pointing at objects the server has not got.

Returns :class:`PublishResult` (sent, skipped, refused, failed, and why each object failed).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from dcoflow.connectors.registry import ConnectorRegistry
from dcoflow.core.errors import AuthError, ConfigError, ValidationError
from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.operation import Marking
from dcoflow.models.repository.operation import get_operation
from dcoflow.models.repository.stix_store import latest_objects
from dcoflow.models.stix.markings import TLP_RANK, ReleasePolicy, Tlp, markings_of
from dcoflow.models.stix.rows import stix_time
from dcoflow.tasks.reporting.stix_export import build_dco_bundle, validate_bundle

if TYPE_CHECKING:
    from dcoflow.connectors.taxii import TaxiiClient

DEFAULT_CHUNK = 500
MANIFEST_BATCH = 40  # ids per match[id] query: keeps the URL well under common 8 KiB limits
_ENVELOPE_MARGIN = 0.9  # of the API root's max_content_length
_ORDER = {"marking-definition": 0, "extension-definition": 0, "identity": 1, "report": 9, "relationship": 7,
          "sighting": 7}
_SCO_TYPES = frozenset({"artifact", "autonomous-system", "directory", "domain-name", "email-addr", "email-message",
                        "file", "ipv4-addr", "ipv6-addr", "mac-addr", "mutex", "network-traffic", "process",
                        "software", "url", "user-account", "windows-registry-key", "x509-certificate"})


@dataclass(slots=True)
class PublishResult:
    """What one publication did; ``failures`` and ``refused_ids`` say which objects and why."""

    dco_id: str
    api_root: str
    collection_id: str
    candidates: int = 0
    sent: int = 0
    skipped: int = 0
    refused: int = 0
    failed: int = 0
    chunks: int = 0
    deduplicated: bool = True
    status_ids: list[str] = field(default_factory=list)
    refused_ids: list[str] = field(default_factory=list)
    refusals: list[dict[str, str]] = field(default_factory=list)  # id and the marking rule that kept it home
    failures: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        text = (f"{self.dco_id} → {self.api_root}collections/{self.collection_id}/: {self.sent} sent, "
                f"{self.skipped} skipped (already there or before --since), {self.refused} refused by marking, "
                f"{self.failed} failed")
        if self.failures:
            shown = "; ".join(f"{f['id']}: {f.get('message') or 'no reason given'}" for f in self.failures[:3])
            text += f" — {shown}" + (f" (+{len(self.failures) - 3} more)" if len(self.failures) > 3 else "")
        return text


def publish_dco(
    session: Session,
    dco: str,
    catalog: Catalog,
    client: TaxiiClient,
    collection_id: str,
    *,
    since: datetime | None = None,
    allow_amber_strict: bool = False,
    policy: ReleasePolicy | None = None,
    chunk_size: int = DEFAULT_CHUNK,
) -> PublishResult:
    """Publish DCO ``dco``'s bundle to ``collection_id``; see the module doc."""
    op = get_operation(session, dco)
    policy = policy or ReleasePolicy(max_tlp=Tlp.AMBER_STRICT if allow_amber_strict else Tlp.AMBER)
    _check_dco_releasable(op.id, op.dco.marking, policy, collection_id)
    result = PublishResult(op.id, client.api_root_url, collection_id)

    info = client.collection(collection_id)
    if info.get("can_write") is False:
        raise AuthError(f"collection {collection_id} ({info.get('title', 'untitled')}) on {client.api_root_url} "
                        "is not writable (can_write: false)", system=client.system,
                        object=f"{client.api_root_url}collections/{collection_id}/", status=403,
                        hint="ask the TAXII server's operator for write access, or choose a writable collection")
    result.deduplicated = info.get("can_read") is not False

    objects = latest_objects(session, op.id)  # read once: the report's timestamp and the bundle
    bundle = build_dco_bundle(session, op.id, catalog, published=_published(objects, stix_time(op.updated_at)),
                              objects=objects)
    validate_bundle(bundle)

    definitions = {o["id"]: o for o in bundle["objects"] if o["type"] == "marking-definition"}
    allowed: list[dict[str, Any]] = []
    for obj in bundle["objects"]:
        reason = policy.refusal(obj, definitions)
        if reason:
            result.refused += 1
            result.refused_ids.append(obj["id"])
            result.refusals.append({"id": obj["id"], "reason": reason})
        else:
            allowed.append(obj)
    if result.refused_ids:
        gone = set(result.refused_ids)
        for obj in allowed:
            if obj["type"] == "report":
                obj["object_refs"] = [r for r in obj["object_refs"] if r not in gone] or [obj["created_by_ref"]]
    # a marking-definition goes only with an object that carries it: the text of a statement nothing
    # releasable carries (e.g. a higher classification) stays home too
    used = set().union(*(markings_of(o) for o in allowed if o["type"] != "marking-definition"))
    allowed = [o for o in allowed if o["type"] != "marking-definition" or o["id"] in used]

    candidates = [o for o in allowed if _after(o, since)]
    result.skipped += len(allowed) - len(candidates)
    result.candidates = len(candidates)
    if result.deduplicated:
        have = _held_versions(client, collection_id, [o["id"] for o in candidates])
        todo = [o for o in candidates if not _held(o, have)]
        result.skipped += len(candidates) - len(todo)
    else:
        todo = candidates
    todo.sort(key=_rank)

    for chunk in _chunks(todo, chunk_size, _max_bytes(client)):
        status = client.add_objects(collection_id, chunk)
        result.chunks += 1
        result.status_ids.append(status.id)
        result.sent += status.success_count
        result.failed += status.failure_count + status.pending_count
        result.failures += [{"id": d.id, "version": d.version, "message": d.message, "status": status.id}
                            for d in (*status.failures, *status.pendings)]
    return result


# -- helpers ----------------------------------------------------------------------------------------


def _published(objects: Sequence[dict[str, Any]], changed: str) -> str:
    """The report's timestamp: the newest of the DCO's last change and its evidence's versions."""
    stamps = [changed, *(str(o.get("modified") or o.get("created") or "") for o in objects)]
    return max(s for s in stamps if s)


def _check_dco_releasable(dco_id: str, marking: Marking, policy: ReleasePolicy, collection_id: str) -> None:
    """Refuse, before anything is sent, a DCO whose own marking the recipient may not receive."""
    tlp = marking.tlp
    if policy.max_tlp == Tlp.RED:
        raise ValidationError("no TAXII collection is cleared for TLP:RED", field="max_tlp", object=collection_id,
                              hint="TLP:RED is for the named recipients only; the highest is amber+strict")
    if tlp == Tlp.RED:
        raise ValidationError(f"DCO {dco_id} is marked TLP:RED: its evidence is never published to a TAXII "
                              "collection", field="marking.tlp", object=dco_id,
                              hint="TLP:RED is for the named recipients only; share it person to person")
    if TLP_RANK[tlp] > TLP_RANK[policy.max_tlp]:
        if tlp == Tlp.AMBER_STRICT:
            raise ValidationError(f"DCO {dco_id} is marked TLP:AMBER+STRICT: publishing needs an explicit permission",
                                  field="marking.tlp", object=dco_id,
                                  hint="pass allow_amber_strict (--allow-amber-strict) when every reader of "
                                       f"collection {collection_id} is inside the organisation")
        raise ValidationError(f"DCO {dco_id} is marked TLP:{tlp.value.upper()}, above the "
                              f"TLP:{policy.max_tlp.value.upper()} collection {collection_id} may receive",
                              field="marking.tlp", object=dco_id,
                              hint="publish to a collection cleared for it, or raise --max-tlp if its readers are")
    statement = marking.statement
    if statement and statement not in policy.statements:
        cleared = ", ".join(repr(s) for s in sorted(policy.statements)) or "no classification/releasability statement"
        raise ValidationError(f"DCO {dco_id} is marked {statement!r}; collection {collection_id} is cleared for "
                              f"{cleared}", field="marking.statement", object=dco_id,
                              hint=f"pass --releasable {statement!r} when every reader of the collection may "
                                   "receive it")


def _instant(value: str) -> datetime | None:
    """A timestamp as an instant, so '…12:00:00Z' and '…12:00:00.000000Z' compare equal."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _after(obj: dict[str, Any], since: datetime | None) -> bool:
    if since is None or obj["type"] == "report":
        return True
    stamp = obj.get("modified") or obj.get("created")
    if not stamp:
        return True  # immutable SCOs: the manifest check decides
    moment = _instant(str(stamp))
    return moment is None or moment >= (since if since.tzinfo else since.replace(tzinfo=UTC))


def _held_versions(client: TaxiiClient, collection_id: str, ids: Sequence[str]) -> dict[str, set[datetime | str]]:
    """id → the versions the collection holds (TAXII 2.1 §5.3 manifest, all versions)."""
    have: dict[str, set[datetime | str]] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), MANIFEST_BATCH):
        batch = unique[start:start + MANIFEST_BATCH]
        for entry in client.manifest(collection_id, ids=batch, versions="all"):
            version = str(entry.get("version") or "")
            have.setdefault(str(entry.get("id")), set()).add(_instant(version) or version)
    return have


def _held(obj: dict[str, Any], have: dict[str, set[datetime | str]]) -> bool:
    versions = have.get(obj["id"])
    if versions is None:
        return False
    if "modified" not in obj:
        return True  # SCOs and marking-definitions never change: one copy is enough
    stamp = str(obj["modified"])
    return (_instant(stamp) or stamp) in versions


def _rank(obj: dict[str, Any]) -> tuple[int, str]:
    kind = obj["type"]
    return (_ORDER.get(kind, 3 if kind in _SCO_TYPES else 5), obj["id"])


def _max_bytes(client: TaxiiClient) -> int | None:
    limit = client.api_root().get("max_content_length")
    return int(limit * _ENVELOPE_MARGIN) if isinstance(limit, int) and limit > 0 else None


def _chunks(objects: list[dict[str, Any]], size: int, max_bytes: int | None) -> Iterator[list[dict[str, Any]]]:
    """Envelopes of at most ``size`` objects and (when the server says) ``max_bytes`` of JSON."""
    chunk: list[dict[str, Any]] = []
    used = len(b'{"objects":[]}')
    for obj in objects:
        length = len(orjson.dumps(obj)) + 1
        if chunk and (len(chunk) >= max(1, size) or (max_bytes is not None and used + length > max_bytes)):
            yield chunk
            chunk, used = [], len(b'{"objects":[]}')
        chunk.append(obj)
        used += length
    if chunk:
        yield chunk


def release_policy(max_tlp: str | None, releasable: Sequence[str] | None, allow_amber_strict: bool) -> ReleasePolicy:
    """The collection's allowed marking set from a highest TLP and the statements it is cleared for
    (the CLI's options and the flow's parameters)."""
    if max_tlp is None:
        level = Tlp.AMBER_STRICT if allow_amber_strict else Tlp.AMBER
    else:
        try:
            level = Tlp(max_tlp.lower().removeprefix("tlp:"))
        except ValueError:
            raise ValidationError(f"--max-tlp {max_tlp!r} is not a TLP level", field="max_tlp",
                                  hint=f"one of {', '.join(t.value for t in Tlp if t != Tlp.RED)}") from None
    return ReleasePolicy(max_tlp=level, statements=frozenset(releasable or ()))


def publish_to_taxii(
    dco: str,
    *,
    api_root: str | None = None,
    collection_id: str | None = None,
    username: str | None = None,
    since: datetime | None = None,
    allow_amber_strict: bool = False,
    policy: ReleasePolicy | None = None,
    attack_source: str | None = None,
    catalog: Catalog | None = None,
    registry: ConnectorRegistry | None = None,
) -> PublishResult:
    """Publish a DCO to TAXII: `dco publish` and the ``publish-dco-taxii`` flow.

    Server and collection default to DCO_TAXII_URL / DCO_TAXII_COLLECTION; the client and its credentials
    come from the registry (a caller's password: ``registry.with_secrets(taxii_password=…)``)."""
    from dcoflow.connectors.attack import ensure_catalog
    from dcoflow.core.db import session_scope

    registry = registry or ConnectorRegistry.from_settings()
    settings = registry.settings
    root = api_root or settings.taxii_url
    if not root:
        raise ConfigError("no TAXII API root to publish to", object="DCO_TAXII_URL",
                          hint="pass --taxii (flow: api_root) or set DCO_TAXII_URL")
    collection = collection_id or settings.taxii_collection
    if not collection:
        raise ConfigError("no TAXII collection to publish to", object="DCO_TAXII_COLLECTION",
                          hint="pass --collection (flow: collection_id) or set DCO_TAXII_COLLECTION")
    if username and registry.taxii_password is None and not (root == settings.taxii_url and settings.taxii_password):
        raise ConfigError(f"TAXII user {username} given but no password", object="DCO_TAXII_PASSWORD",
                          hint="set DCO_TAXII_PASSWORD, name a variable holding it with --password-env, "
                               "or a Prefect Secret block (flow: secret_block)")
    catalog = ensure_catalog(catalog, attack_source, settings=settings)
    with registry.taxii(root, username=username) as client, session_scope() as session:
        return publish_dco(session, dco, catalog, client, collection, since=since,
                           allow_amber_strict=allow_amber_strict, policy=policy)



publish_to_taxii_task = task(name="publish-taxii", cache_policy=NO_CACHE)(publish_to_taxii)
