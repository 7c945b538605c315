"""Transform → module → schema → CRD (server-side applied, Established) → a watch on the new
kind, registered at runtime. Deletion waits for the instances, then removes the CRD.

A CRD's name is ``PLURAL.GROUP`` and cannot change: a new name is a second CRD, and the first
one's instances stay behind it. So once a Transform serves a CRD, it keeps that CRD's plural
when the derived plural changes (a new Pequod deriving plurals differently); a new name that
the Transform or the module asks for (``#Metadata.plural``, ``spec.group``, ``spec.kind``) is
refused with the ``Ready`` condition ``CRDRenameRefused`` while the old CRD exists."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import time
from typing import Any

import structlog

from pequod.api.names import (
    ALLOW_BREAKING_CHANGES_ANNOTATION,
    CRD_HASH_ANNOTATION,
    FIELD_MANAGER,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    TRANSFORM_FINALIZER,
    TRANSFORM_LABEL,
)
from pequod.api.ownership import crd_labels
from pequod.api.resources import TRANSFORMS
from pequod.api.rollout import PROGRESS_WRITE_SECONDS, progress_only
from pequod.clock import timestamp
from pequod.crdgen.compatibility import breaking_changes
from pequod.crdgen.crd import DEFAULT_GROUP, DEFAULT_VERSION, ApiDefinition, build_crd
from pequod.crdgen.generate import GeneratedApi, generate_api
from pequod.crdgen.schema_cache import SchemaCache
from pequod.cue.runner import CueError, CueSettings
from pequod.delivery.reference import ModuleReference
from pequod.delivery.resolver import ModuleResolver
from pequod.delivery.source_namespaces import ModuleSourceNotAllowed, SourceNamespaces
from pequod.kube.client import ApiError, KubeClient
from pequod.kube.conditions import condition, is_true, set_condition
from pequod.kube.controller import DONE, Controller, Result, spec_or_metadata_changed
from pequod.kube.informer import Informer, InformerEvent
from pequod.kube.manager import Manager
from pequod.kube.resources import CONFIG_MAPS, CRDS, ResourceType
from pequod.kube.writes import ObjectWriter
from pequod.module.source import ModuleError, ModuleSource
from pequod.operator.module_objects import KubeModuleObjects
from pequod.operator.rollouts import Rollouts, RolloutStep
from pequod.operator.serving import ServedApi, ServedKind, ServedKinds, module_versions
from pequod.policy.evaluate import PolicyError
from pequod.schema.normalize import SchemaError

logger = structlog.get_logger(__name__)

ESTABLISH_POLL_SECONDS = 0.5
DELETION_POLL_SECONDS = 3.0
NAMES_RETRY_SECONDS = 15.0
FETCH_RETRY_SECONDS = 30.0


class TransformFailure(Exception):
    def __init__(
        self, condition: str, reason: str, message: str, requeue_after: float | None = None
    ) -> None:
        self.condition = condition
        self.reason = reason
        self.message = message
        self.requeue_after = requeue_after
        super().__init__(message)


class TransformReconciler:
    def __init__(
        self,
        client: KubeClient,
        manager: Manager,
        kinds: ServedKinds,
        writer: ObjectWriter,
        cue_settings: CueSettings | None = None,
        resolver: ModuleResolver | None = None,
        schema_cache: SchemaCache | None = None,
        source_namespaces: SourceNamespaces | None = None,
    ) -> None:
        self.client = client
        self.source_namespaces = source_namespaces or SourceNamespaces()
        self.schema_cache = schema_cache
        self.resolver = resolver or ModuleResolver(
            KubeModuleObjects(client), source_namespaces=self.source_namespaces
        )
        self.fetcher = self.resolver.fetcher
        self.manager = manager
        self.kinds = kinds
        self.writer = writer
        self.events = writer.events
        self.cue_settings = cue_settings
        self.controller: Controller[str] = Controller(
            "transform",
            self.reconcile,
            concurrency=2,
            log_context=lambda name: {"kind": "Transform", "name": name},
        )
        self.informer: Informer = manager.informer(TRANSFORMS)
        # Not the Transform's own status writes (its instance count among them): nothing a
        # reconcile decides comes from a status it did not write itself.
        self.controller.watch(
            self.informer,
            lambda e: [e.object["metadata"]["name"]],
            predicate=spec_or_metadata_changed,
        )
        # The ConfigMap each Transform's module comes from, and who uses each ConfigMap's
        # informer (one per ConfigMap, stopped when no Transform names it any more).
        self._config_map_of: dict[str, tuple[str, str]] = {}
        self._config_map_users: dict[tuple[str, str], set[str]] = {}
        self._generated: dict[tuple[str, ApiDefinition], GeneratedApi] = {}
        self.rollouts = Rollouts(self.resolver)
        kinds.report_rollout_progress_to(self.controller.enqueue)
        self._rollout_written: dict[str, float] = {}
        """Per Transform, when (monotonic) its rollout's status was last written."""

    async def reconcile(self, name: str) -> Result:
        transform = self.informer.get(name)
        if transform is None:
            await self._stop_serving(name)
            return DONE
        if transform["metadata"].get("deletionTimestamp"):
            return await self._delete(transform)
        if TRANSFORM_FINALIZER not in transform["metadata"].get("finalizers", []):
            await self.writer.set_finalizers(
                TRANSFORMS,
                transform,
                [*transform["metadata"].get("finalizers", []), TRANSFORM_FINALIZER],
            )
        status = dict(transform.get("status") or {})
        try:
            return await self._serve(transform, status)
        except TransformFailure as failure:
            await self._write_failure(transform, status, failure)
            return Result(requeue_after=failure.requeue_after)

    # -- serving ---------------------------------------------------------------------------

    async def _serve(self, transform: dict[str, Any], status: dict[str, Any]) -> Result:
        """resolve the modules → generate the CRD → keep the served name → check ownership
        and compatibility → apply the CRD → wait until Established → register the served
        kind → write the status."""
        name = transform["metadata"]["name"]
        spec = transform["spec"]
        reference = ModuleReference.from_spec(spec["cueRef"])
        module, policies = await self._resolve_modules(name, spec, reference)
        generated = await self._generate_crd(name, spec, module)
        generated, existing, kept_plural = await self._keep_the_served_name(name, status, generated)
        crd = generated.crd
        crd["metadata"].setdefault("annotations", {})[CRD_HASH_ANNOTATION] = _hash(crd)
        if existing is not None:
            self._check_ownership(name, existing)
            self._check_compatibility(transform, existing, crd)
        live = await self._apply_crd(name, crd, existing)
        if not self._established(live):
            status["phase"] = "Generating"
            status = _with_conditions(
                status,
                "Ready",
                False,
                "Establishing",
                f"waiting for {crd['metadata']['name']}",
                transform["metadata"].get("generation"),
            )
            await self.writer.write_status(TRANSFORMS, transform, status)
            return Result(requeue_after=ESTABLISH_POLL_SECONDS)
        rollout = await self.rollouts.step(transform, status, module, self.kinds.get(name))
        served = self._register(transform, generated, module, policies, rollout)
        held = await self._write_serving(transform, status, served, generated, kept_plural, rollout)
        requeue = [rollout.requeue_after] if rollout.requeue_after is not None else []
        if held is not None:
            requeue.append(held)
        if reference.floating and self.fetcher is not None:
            # A tag or branch may move: look again once its resolution has expired.
            requeue.append(self.fetcher.settings.resolve_ttl)
        return Result(requeue_after=min(requeue)) if requeue else DONE

    async def _resolve_modules(
        self, name: str, spec: dict[str, Any], reference: ModuleReference
    ) -> tuple[ModuleSource, tuple[ModuleSource, ...]]:
        """The Transform's module and its policies, from sources it is allowed to name; the
        module's ConfigMap (if it comes from one) is watched."""
        policy_references = [ModuleReference.from_spec(p) for p in spec.get("policies", [])]
        try:
            for checked in (reference, *policy_references):
                self.source_namespaces.check(checked)
        except ModuleSourceNotAllowed as error:
            # Refused before anything is read or watched; no retry: only a new reference or
            # a restart with other settings can change the answer.
            await self._watch_config_map(name, None)
            raise TransformFailure("ModuleFetched", "ModuleSourceNotAllowed", str(error)) from None
        except ModuleError:
            pass  # a malformed reference: the resolver says what is wrong with it
        config_maps = await self._watch_config_map(name, reference)
        cached = None
        if config_maps is not None and config_maps.synced.is_set():
            namespace, config_map = reference.configmap_name()
            cached = config_maps.get(f"{namespace}/{config_map}")
        try:
            module = await self.resolver.resolve(reference, cached_config_map=cached)
            policies = [await self.resolver.resolve(policy) for policy in policy_references]
        except ModuleError as error:
            raise TransformFailure(
                "ModuleFetched",
                "FetchFailed",
                str(error),
                requeue_after=FETCH_RETRY_SECONDS if reference.remote else None,
            ) from None
        return module, tuple(policies)

    async def _generate_crd(
        self, name: str, spec: dict[str, Any], module: ModuleSource
    ) -> GeneratedApi:
        requested = ApiDefinition(
            name=name,
            group=spec.get("group") or DEFAULT_GROUP,
            version=spec.get("version") or DEFAULT_VERSION,
            kind=spec.get("kind"),
            short_names=tuple(spec.get("shortNames", ())),
        )
        try:
            return await self._generate(module, requested)
        except (CueError, SchemaError, PolicyError) as error:
            raise TransformFailure("SchemaValid", "InvalidModule", str(error)) from None

    async def _apply_crd(
        self, name: str, crd: dict[str, Any], existing: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The CRD as the API server holds it, applied unless its hash says it is unchanged."""
        crd_hash = crd["metadata"]["annotations"][CRD_HASH_ANNOTATION]
        if (
            existing is not None
            and existing["metadata"].get("annotations", {}).get(CRD_HASH_ANNOTATION) == crd_hash
        ):
            return existing
        live = await self.client.apply(CRDS, crd, field_manager=FIELD_MANAGER, force=True)
        logger.info("CRD applied", transform=name, crd=crd["metadata"]["name"])
        return live

    def _established(self, live: dict[str, Any]) -> bool:
        """Whether the CRD is Established; its names refused by the API server fail the
        Transform."""
        crd_name = live["metadata"]["name"]
        names_refused = condition(
            (live.get("status") or {}).get("conditions") or [], "NamesAccepted"
        )
        if names_refused and names_refused.get("status") == "False":
            raise TransformFailure(
                "Ready",
                "NamesNotAccepted",
                f"the API server refuses the names of {crd_name}: {names_refused.get('message')} "
                "(set spec.kind or spec.shortNames on the Transform)",
                requeue_after=NAMES_RETRY_SECONDS,
            )
        return _established(live)

    def _register(
        self,
        transform: dict[str, Any],
        generated: GeneratedApi,
        module: ModuleSource,
        policies: tuple[ModuleSource, ...],
        rollout: RolloutStep,
    ) -> ServedApi:
        spec = transform["spec"]
        definition = generated.definition
        return self.kinds.register(
            ServedKind(
                transform=transform["metadata"]["name"],
                resource_type=ResourceType(
                    definition.group,
                    definition.version,
                    definition.resolved_kind,
                    definition.plural,
                    True,
                ),
                module=module,
                policies=policies,
                allowed_namespaces=tuple(spec.get("allowedNamespaces", ())),
                allow_cluster_scoped=bool(spec.get("allowClusterScoped", False)),
                instance_platform_refs=tuple(
                    ModuleReference.from_spec(r) for r in spec.get("instancePlatformRefs", [])
                ),
                module_name=generated.metadata.name,
                module_version=generated.metadata.version,
                adoption_strategies=tuple(
                    (spec.get("adoption") or {}).get("allowedStrategies") or ()
                ),
                rollout=rollout.state,
                previous_module=rollout.previous_module,
            )
        )

    async def _write_serving(
        self,
        transform: dict[str, Any],
        status: dict[str, Any],
        served: ServedApi,
        generated: GeneratedApi,
        kept_plural: str | None,
        rollout: RolloutStep,
    ) -> float | None:
        """Writes the status of a Transform that serves its kind; returns the seconds after
        which a rollout's counts held back are due, if they were."""
        generation = transform["metadata"].get("generation")
        name = transform["metadata"]["name"]
        before = status.get("rollout") or {}
        step_before = (before.get("phase"), before.get("currentWave"))
        module = served.module
        resource_type = served.resource_type
        crd_name = generated.crd["metadata"]["name"]
        previous_digest = (status.get("resolvedCueRef") or {}).get("digest")
        count = served.instance_count
        # The instances' counts as stored: the count writer's, which gathers their changes.
        counts_stored: dict[str, Any] = {
            k: status[k] for k in ("instances", "moduleVersions") if k in status
        }
        status.update(
            phase="Ready",
            observedGeneration=generation,
            generatedCRD={
                "apiVersion": resource_type.api_version,
                "kind": resource_type.kind,
                "name": crd_name,
            },
            resolvedCueRef={
                "ref": module.reference,
                "digest": module.digest,
                "fetchedAt": (status.get("resolvedCueRef") or {}).get("fetchedAt")
                if previous_digest == module.digest
                else timestamp(),
                **({"version": module.version} if module.version else {}),
            },
            # Until the new kind's informer has listed, the stored count is the best known.
            instances=count if count is not None else status.get("instances", 0),
            servedCueRef=transform["spec"]["cueRef"],
            moduleVersions=module_versions(status, module, served),
        )
        held: float | None = None
        if rollout.state is not None:
            status["rollout"] = rollout.state.to_status()
            if progress_only(before, status["rollout"]):
                due = self._rollout_written.get(name, 0.0) + PROGRESS_WRITE_SECONDS
                held = due - time.monotonic()
                if held > 0:
                    # Nothing but counts moved: they wait, the instances' counts with them.
                    status["rollout"] = before
                    status.update(counts_stored)
                else:
                    held = None
        conditions = status.get("conditions") or []
        conditions = set_condition(
            conditions, "ModuleFetched", True, "Fetched", module.reference, generation
        )
        conditions = set_condition(
            conditions,
            "SchemaValid",
            True,
            "Valid",
            "the module's #Input is a valid schema",
            generation,
        )
        kept = (
            f"; the plural {resource_type.plural} is kept from the existing CRD, where the "
            f"module's kind alone would give {kept_plural}: set #Metadata.plural to say "
            "which one to serve"
            if kept_plural
            else ""
        )
        conditions = set_condition(
            conditions,
            "Ready",
            True,
            "Serving",
            f"serving {resource_type.kind} ({crd_name}){kept}",
            generation,
        )
        status["conditions"] = conditions
        changed = await self.writer.write_status(TRANSFORMS, transform, status)
        if changed and rollout.state is not None and held is None:
            self._rollout_written[name] = time.monotonic()
        step_now = (
            (rollout.state.phase, rollout.state.to_status().get("currentWave"))
            if rollout.state is not None
            else step_before
        )
        if changed and rollout.state is not None and step_now != step_before:
            await self.events.record(
                transform,
                "Warning" if rollout.state.phase in ("Failed", "RolledBack") else "Normal",
                f"Rollout{rollout.state.phase}",
                rollout.state.message,
            )
        if changed and previous_digest != module.digest:
            await self.events.record(
                transform,
                "Normal",
                "Serving",
                f"serving {resource_type.kind} from {module.reference} ({module.digest[:19]})",
            )
        return held

    async def _generate(self, module: ModuleSource, requested: ApiDefinition) -> GeneratedApi:
        """The CRD of a module, generated by cue once per module digest and request (and,
        with the schema cache on disk, once per module digest across restarts)."""
        key = (module.digest, requested)
        cached = self._generated.get(key)
        if cached is None:
            cached = await generate_api(
                module,
                requested,
                self.cue_settings,
                cache=self.schema_cache,
                labels=crd_labels(requested.name),
            )
            self._generated[key] = cached
        return copy.deepcopy(cached)

    async def _keep_the_served_name(
        self, name: str, status: dict[str, Any], generated: GeneratedApi
    ) -> tuple[GeneratedApi, dict[str, Any] | None, str | None]:
        """The API to serve, the CRD of that name if it exists, and the derived plural when
        the served one is kept instead of it.

        The CRD the Transform serves is the one its status names (one read, the same as for
        the generated name when the two agree). When the generated name differs from it:
        for the same group and kind with no ``#Metadata.plural``, only the derivation
        changed, and the served plural is kept; otherwise the Transform or the module asks
        for a new name, which is refused (``CRDRenameRefused``) while the served CRD exists.
        """
        wanted = generated.crd["metadata"]["name"]
        served_name = (status.get("generatedCRD") or {}).get("name") or wanted
        served = await self.client.get(CRDS, served_name)
        if served_name == wanted:
            return generated, served, None
        labels = (served or {}).get("metadata", {}).get("labels") or {}
        if served is None or labels.get(TRANSFORM_LABEL) != name:
            # Gone, or not this Transform's: nothing to keep.
            return generated, await self.client.get(CRDS, wanted), None
        definition = generated.definition
        served_names = served["spec"]["names"]
        if (
            generated.metadata.plural is None
            and served["spec"]["group"] == definition.group
            and served_names["kind"] == definition.resolved_kind
        ):
            kept = dataclasses.replace(definition, plural_name=served_names["plural"])
            return (
                dataclasses.replace(
                    generated,
                    definition=kept,
                    crd=build_crd(
                        kept,
                        generated.schema.structural,
                        crd_labels(name),
                        module_status=generated.schema.status,
                    ),
                ),
                served,
                definition.plural,
            )
        raise TransformFailure(
            "Ready",
            "CRDRenameRefused",
            f"the Transform now asks for the CRD {wanted}, but it serves {served_name}: a "
            "CRD cannot be renamed, and a second one would leave the instances of the first "
            f"behind it. Serve {served_name} again (#Metadata.plural: "
            f'"{served_names["plural"]}", with the same spec.group and kind), or delete the '
            "Transform (it waits for its instances to be deleted) and create it again",
        )

    def _check_ownership(self, name: str, existing: dict[str, Any]) -> None:
        labels = existing["metadata"].get("labels") or {}
        owner = labels.get(TRANSFORM_LABEL)
        crd_name = existing["metadata"]["name"]
        if labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
            raise TransformFailure(
                "Ready",
                "CRDConflict",
                f"CustomResourceDefinition {crd_name} exists and is not managed by Pequod; "
                "it is left untouched",
            )
        if owner != name:
            raise TransformFailure(
                "Ready",
                "CRDConflict",
                f"CustomResourceDefinition {crd_name} belongs to Transform {owner!r}; "
                "it is left untouched",
            )

    def _check_compatibility(
        self, transform: dict[str, Any], existing: dict[str, Any], crd: dict[str, Any]
    ) -> None:
        allowed = (transform["metadata"].get("annotations") or {}).get(
            ALLOW_BREAKING_CHANGES_ANNOTATION
        ) == "true"
        old = _spec_schema(existing)
        new = _spec_schema(crd)
        if old is None or new is None or allowed:
            return
        changes = breaking_changes(old, new)
        if changes:
            listed = "; ".join(str(c) for c in changes)
            raise TransformFailure(
                "Ready",
                "BreakingChange",
                "the new module changes the schema in ways existing instances may not satisfy: "
                f"{listed}. "
                f'Annotate the Transform {ALLOW_BREAKING_CHANGES_ANNOTATION}: "true" to allow it',
            )

    async def _stop_serving(self, name: str) -> None:
        self.rollouts.forget(name)
        self._rollout_written.pop(name, None)
        await self._watch_config_map(name, None)
        await self.kinds.deregister(name)

    async def _watch_config_map(
        self, transform: str, reference: ModuleReference | None
    ) -> Informer | None:
        """The informer of the one ConfigMap a Transform's module comes from (a change to it
        re-renders the Transform), started for its first user and stopped after its last:
        the operator watches only the ConfigMaps that allowed Transforms name."""
        wanted: tuple[str, str] | None = None
        if reference is not None and reference.type == "configmap":
            try:
                wanted = reference.configmap_name()
            except ModuleError:
                wanted = None
        previous = self._config_map_of.pop(transform, None)
        if previous is not None and previous != wanted:
            users = self._config_map_users.get(previous, set())
            users.discard(transform)
            if not users:
                del self._config_map_users[previous]
                await self.manager.remove_informer(
                    CONFIG_MAPS,
                    namespace=previous[0],
                    field_selector=f"metadata.name={previous[1]}",
                )
                logger.info(
                    "stopped watching a module ConfigMap",
                    namespace=previous[0],
                    config_map=previous[1],
                )
        if wanted is None:
            return None
        self._config_map_of[transform] = wanted
        namespace, config_map = wanted
        informer = self.manager.informer(
            CONFIG_MAPS, namespace=namespace, field_selector=f"metadata.name={config_map}"
        )
        key = wanted
        if key not in self._config_map_users:
            self._config_map_users[key] = set()

            def enqueue_users(_event: InformerEvent) -> None:
                for user in sorted(self._config_map_users.get(key, ())):
                    self.controller.enqueue(user)

            informer.add_handler(enqueue_users, replay=False)
            logger.info("watching a module ConfigMap", namespace=namespace, config_map=config_map)
        self._config_map_users[wanted].add(transform)
        return informer

    # -- deletion --------------------------------------------------------------------------

    async def _delete(self, transform: dict[str, Any]) -> Result:
        name = transform["metadata"]["name"]
        finalizers = transform["metadata"].get("finalizers", [])
        if TRANSFORM_FINALIZER not in finalizers:
            return DONE
        served = self.kinds.get(name)
        remaining = await self._count_instances(transform, served)
        if remaining:
            status = dict(transform.get("status") or {})
            status["phase"] = "Deleting"
            status["instances"] = remaining
            status = _with_conditions(
                status,
                "Ready",
                False,
                "WaitingForInstances",
                f"deletion waits for {remaining} instance(s) to be deleted",
                transform["metadata"].get("generation"),
            )
            await self.writer.write_status(TRANSFORMS, transform, status)
            return Result(requeue_after=DELETION_POLL_SECONDS)
        await self._stop_serving(name)
        crd_name = (transform.get("status") or {}).get("generatedCRD", {}).get("name")
        if crd_name:
            existing = await self.client.get(CRDS, crd_name)
            if (
                existing is not None
                and (existing["metadata"].get("labels") or {}).get(TRANSFORM_LABEL) == name
            ):
                await self.client.delete(CRDS, crd_name, uid=existing["metadata"]["uid"])
        await self.writer.set_finalizers(
            TRANSFORMS, transform, [f for f in finalizers if f != TRANSFORM_FINALIZER]
        )
        logger.info("transform deleted", transform=name)
        return DONE

    async def _count_instances(self, transform: dict[str, Any], served: ServedApi | None) -> int:
        if served is not None:
            return len(served.informer.store)
        generated = (transform.get("status") or {}).get("generatedCRD") or {}
        if not generated.get("name"):
            return 0
        crd = await self.client.get(CRDS, generated["name"])
        if (
            crd is None
            or (crd["metadata"].get("labels") or {}).get(TRANSFORM_LABEL)
            != transform["metadata"]["name"]
        ):
            return 0
        names = crd["spec"]["names"]
        version = crd["spec"]["versions"][0]["name"]
        resource_type = ResourceType(
            crd["spec"]["group"], version, names["kind"], names["plural"], True
        )
        try:
            listing = await self.client.list(resource_type)
        except ApiError as error:
            if error.not_found:
                return 0
            raise
        return len(listing.get("items", []))

    # -- writes ----------------------------------------------------------------------------

    async def _write_failure(
        self, transform: dict[str, Any], status: dict[str, Any], failure: TransformFailure
    ) -> None:
        generation = transform["metadata"].get("generation")
        status["phase"] = "Failed"
        status["observedGeneration"] = generation
        conditions = status.get("conditions") or []
        if failure.condition != "Ready":
            conditions = set_condition(
                conditions, failure.condition, False, failure.reason, failure.message, generation
            )
        served = self.kinds.get(transform["metadata"]["name"])
        ready_message = failure.message
        if served is not None:
            ready_message += (
                " (instances keep being served with the last good module "
                f"{served.module.digest[:19]})"
            )
        conditions = set_condition(
            conditions, "Ready", False, failure.reason, ready_message, generation
        )
        status["conditions"] = conditions
        if await self.writer.write_status(TRANSFORMS, transform, status):
            await self.events.record(transform, "Warning", failure.reason, failure.message)
        logger.warning(
            "transform failed",
            transform=transform["metadata"]["name"],
            reason=failure.reason,
            message=failure.message,
        )


def _with_conditions(
    status: dict[str, Any],
    type_: str,
    value: bool,
    reason: str,
    message: str,
    generation: int | None,
) -> dict[str, Any]:
    return {
        **status,
        "conditions": set_condition(
            status.get("conditions") or [], type_, value, reason, message, generation
        ),
    }


def _hash(document: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32]


def _established(crd: dict[str, Any]) -> bool:
    return is_true((crd.get("status") or {}).get("conditions") or [], "Established")


def _spec_schema(crd: dict[str, Any]) -> dict[str, Any] | None:
    try:
        schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
            "properties"
        ]["spec"]
    except (KeyError, IndexError):
        return None
    return schema
