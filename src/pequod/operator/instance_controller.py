"""Instance → render (cached by render hash) → policies → namespace confinement → the
ResourceGraph, and the instance's status. A spec that fails validation never writes or changes
a ResourceGraph."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import structlog

from pequod.api.adoption import (
    AdoptionError,
    AdoptionRequest,
    check_allowed,
    per_node,
    requested,
)
from pequod.api.names import (
    DRY_RUN_ANNOTATION,
    FIELD_MANAGER,
    INSTANCE_FINALIZER,
    INSTANCE_NAME_LABEL,
    ROLLBACK_ANNOTATION,
    TRANSFORM_LABEL,
    resource_graph_name,
)
from pequod.api.ownership import MANAGED_SELECTOR, instance_labels
from pequod.api.resource_graph import (
    RenderMetadata,
    ResourceGraph,
    ResourceGraphSpec,
    SourceRef,
    resource_graph_object,
)
from pequod.api.resources import RESOURCE_GRAPHS
from pequod.api.revisions import FAILED, READY, Revision, revision_name
from pequod.clock import timestamp
from pequod.cue.runner import CueError
from pequod.delivery.reference import ModuleReference
from pequod.delivery.resolver import ModuleResolver
from pequod.delivery.source_namespaces import SourceNamespaces
from pequod.graph.model import Node
from pequod.kube.client import ApiError, KubeClient
from pequod.kube.conditions import condition, is_true, set_condition
from pequod.kube.controller import DONE, Controller, Result
from pequod.kube.informer import Informer, InformerEvent
from pequod.kube.manager import Manager
from pequod.kube.writes import ObjectWriter, refusal
from pequod.module.embedded import EMBEDDED_PREFIX
from pequod.module.source import ModuleError, ModuleSource
from pequod.operator.module_objects import KubeModuleObjects
from pequod.operator.references import ReferencedObjects, ReferenceNotFound, ReferenceProblem
from pequod.operator.revisions import RevisionStore
from pequod.operator.serving import InstanceKey, ServedApi, ServedKind, ServedKinds
from pequod.policy.evaluate import PolicyError
from pequod.render.instance import Instance
from pequod.render.observe import NO_DECLARATION, Declaration, ObserveError, observed_document
from pequod.render.render import GraphTooLargeError, Renderer, RenderError, RenderResult
from pequod.schema.extract import PEQUOD_STATUS_FIELDS

logger = structlog.get_logger(__name__)


class InstanceReconciler:
    def __init__(
        self,
        client: KubeClient,
        manager: Manager,
        kinds: ServedKinds,
        renderer: Renderer,
        writer: ObjectWriter,
        *,
        concurrency: int,
        resolver: ModuleResolver | None = None,
        source_namespaces: SourceNamespaces | None = None,
        revisions: RevisionStore | None = None,
    ) -> None:
        self.client = client
        self.revisions = revisions or RevisionStore(client)
        self.source_namespaces = source_namespaces or SourceNamespaces()
        self.resolver = resolver or ModuleResolver(
            KubeModuleObjects(client), source_namespaces=self.source_namespaces
        )
        self.kinds = kinds
        self.renderer = renderer
        self.writer = writer
        self.events = writer.events
        self.controller: Controller[InstanceKey] = Controller(
            "instance",
            self.reconcile,
            concurrency=concurrency,
            log_context=self._log_context,
        )
        self.graphs: Informer = manager.informer(RESOURCE_GRAPHS, label_selector=MANAGED_SELECTOR)
        self.controller.watch(self.graphs, _owner_of_graph, predicate=self._graph_event_matters)
        kinds.deliver_instances_to(self.controller)
        self.references = ReferencedObjects(manager, self.controller.enqueue)

    def _graph_event_matters(self, event: InformerEvent) -> bool:
        """Whether a ResourceGraph event can change what its instance does: its status (or
        spec) changed, or it is gone. Not the echo of the instance's own graph write (an
        ADDED without a status), not the graphs listed before their kind is served (the kind's
        informer brings every instance when it lists), not a resync (the instances' informer
        resyncs them too)."""
        if event.type == "DELETED":
            return True
        if event.type == "MODIFIED":
            old = event.old or {}
            return any(event.object.get(part) != old.get(part) for part in ("status", "spec"))
        if event.type == "ADDED":
            # Relisted after a gap in the watch, with a status this controller has not seen.
            transform = (event.object["metadata"].get("labels") or {}).get(TRANSFORM_LABEL)
            return bool(event.object.get("status")) and self.kinds.get(transform or "") is not None
        return False

    def _log_context(self, key: InstanceKey) -> dict[str, str]:
        served = self.kinds.get(key.transform)
        kind = served.resource_type.kind if served else key.transform
        return {"kind": kind, "namespace": key.namespace, "name": key.name}

    async def reconcile(self, key: InstanceKey) -> Result:
        """module for the instance → is its graph current? → render → write the graph, or
        → write the instance's status from the graph's."""
        served = self.kinds.get(key.transform)
        if served is None:
            return DONE
        instance = served.informer.get(f"{key.namespace}/{key.name}")
        if instance is None:
            return DONE
        finalizers = instance["metadata"].get("finalizers") or []
        if instance["metadata"].get("deletionTimestamp"):
            return await self._delete(served, instance, finalizers)
        if INSTANCE_FINALIZER not in finalizers:
            await self.writer.set_finalizers(
                served.resource_type,
                instance,
                [*finalizers, INSTANCE_FINALIZER],
            )
        status = dict(instance.get("status") or {})
        graph_name = resource_graph_name(served.resource_type.kind, key.name)
        try:
            module, pinned = await self._module_for(served.kind, instance)
            adoption = _adoption_request(served.kind, instance)
            rollback = await self._rollback(served.kind, instance, status)
        except _Refused as refused:
            await self._invalid(
                served, instance, status, "Validated", refused.reason, refused.message
            )
            return DONE
        stored = self.graphs.get(f"{key.namespace}/{graph_name}")
        graph = ResourceGraph.parse(stored) if stored is not None else None
        if graph is not None and graph.deleting:
            # Deleted under a live instance: its controller lets it go (keeping the objects)
            # and its DELETED event brings this instance back to write the new one. Writing
            # to the graph while it goes would only race that.
            return DONE
        if rollback is not None:
            return await self._keep_rolled_back(
                served, instance, status, module, pinned, graph_name, graph, rollback
            )
        rendered = Instance.from_object(instance)
        # An instance a rollout has not moved (or has rolled back) renders with the previous
        # module; its revision of that render, when there is one, is put back without cue.
        from_revision = pinned is None and module is not served.kind.module
        input_hash = Renderer.hash(module, rendered, served.kind.policies)
        try:
            live_state = await self._live_state(
                key, served, graph, module, rendered, input_hash, SourceRef.of(instance)
            )
        except _Refused as refused:
            await self._invalid(
                served,
                instance,
                status,
                refused.condition,
                refused.reason,
                refused.message,
                phase=refused.phase,
            )
            return DONE
        expected_hash = Renderer.hash(module, rendered, served.kind.policies, live_state.observed)
        if graph is None or not _graph_is_current(
            graph, served.kind, expected_hash, instance, adoption
        ):
            await self._render_and_write(
                served,
                instance,
                status,
                module,
                pinned,
                rendered,
                expected_hash,
                graph_name,
                live_state,
                adoption,
                from_revision=from_revision,
            )
            # The instance's status follows once the graph's controller has reported on the
            # new graph (its status write brings this instance back): one status write, not
            # an interim "Applying" followed by the outcome.
            return DONE
        # Nothing the render depends on changed since this graph was written (a resync, a
        # restart, a status change): no cue run and no graph write.
        if not graph.status_is_current:
            return DONE  # the graph's controller has not reported on this graph yet
        await self._write_status(
            instance,
            status,
            served,
            module,
            pinned,
            graph,
            instance["metadata"].get("generation"),
        )
        return DONE

    async def _rollback(
        self, served: ServedKind, instance: dict[str, Any], status: dict[str, Any]
    ) -> RollbackInForce | None:
        """The revision ``pequod.io/rollback-to`` puts back, while it is in force: from the
        request until the spec (its generation) or the Transform's module changes. A request
        that has expired is removed, so that the instance renders again."""
        metadata = instance["metadata"]
        value = (metadata.get("annotations") or {}).get(ROLLBACK_ANNOTATION)
        if value is None:
            return None
        text = str(value).strip()
        if not text.isdigit() or int(text) < 1:
            raise _Refused(
                "InvalidRollback",
                f"{ROLLBACK_ANNOTATION} must be a revision number (pequod history lists "
                f"them), not {value!r}",
            )
        number = int(text)
        record = status.get("rolledBackTo") or {}
        generation = metadata.get("generation")
        digest = served.module.digest
        if record.get("revision") == number:
            if record.get("generation") == generation and record.get("moduleDigest") == digest:
                return RollbackInForce(number, record.get("renderHash", ""), dict(record))
            # The spec or the module changed since: the request is over.
            await self.client.merge_patch(
                served.resource_type,
                metadata["name"],
                metadata["namespace"],
                {"metadata": {"annotations": {ROLLBACK_ANNOTATION: None}}},
            )
            return None
        history = await self.revisions.history(metadata["namespace"], metadata["uid"])
        found = next((r for r in history if r.number == number), None)
        if found is None:
            # Refused only on what the cluster says now.
            history = await self.revisions.history(
                metadata["namespace"], metadata["uid"], fresh=True
            )
            found = next((r for r in history if r.number == number), None)
        if found is None:
            numbers = ", ".join(str(r.number) for r in history) or "none"
            raise _Refused(
                "RevisionNotFound",
                f"{ROLLBACK_ANNOTATION}: there is no revision {number} (revisions: {numbers})",
            )
        record = {
            "revision": number,
            "renderHash": found.render_hash,
            "generation": generation,
            "moduleDigest": digest,
            "revisionModule": {"ref": found.module_ref, "digest": found.module_digest},
        }
        return RollbackInForce(number, found.render_hash, record)

    async def _keep_rolled_back(
        self,
        served: ServedApi,
        instance: dict[str, Any],
        status: dict[str, Any],
        module: ModuleSource,
        pinned: dict[str, str] | None,
        graph_name: str,
        graph: ResourceGraph | None,
        rollback: RollbackInForce,
    ) -> Result:
        """Puts the rolled-back revision's graph back (no render), or, once it is in force,
        writes the instance's status from it."""
        if graph is None or graph.spec.metadata.render_hash != rollback.render_hash:
            revision = await self.revisions.get(
                instance["metadata"]["namespace"],
                revision_name(graph_name, rollback.render_hash),
                instance["metadata"]["uid"],
            )
            if revision is None:
                await self._invalid(
                    served,
                    instance,
                    status,
                    "Validated",
                    "RevisionNotFound",
                    f"revision {rollback.number} is gone; remove {ROLLBACK_ANNOTATION}",
                )
                return DONE
            await self._restore(served.kind, instance, graph_name, revision)
            return DONE
        if graph.status_is_current:
            await self._write_status(
                instance,
                status,
                served,
                module,
                pinned,
                graph,
                instance["metadata"].get("generation"),
                rolled_back=rollback.record,
            )
        return DONE

    async def _restore(
        self, served: ServedKind, instance: dict[str, Any], graph_name: str, revision: Revision
    ) -> None:
        """Writes a revision's graph as the instance's graph, as it was rendered."""
        metadata = instance["metadata"]
        graph = resource_graph_object(
            graph_name,
            metadata["namespace"],
            instance_labels(served.transform, served.resource_type.kind, metadata["name"]),
            instance,
            replace(revision.spec, source=SourceRef.of(instance)),
        )
        await self.client.apply(RESOURCE_GRAPHS, graph, field_manager=FIELD_MANAGER, force=True)
        logger.info(
            "revision put back",
            instance=f"{served.transform}:{metadata['namespace']}/{metadata['name']}",
            revision=revision.number,
        )
        await self.events.record(
            instance,
            "Normal",
            "RevisionRestored",
            f"put back revision {revision.number} ({revision.module_ref}) into "
            f"ResourceGraph {graph_name}",
        )

    async def _live_state(
        self,
        key: InstanceKey,
        served: ServedApi,
        graph: ResourceGraph | None,
        module: ModuleSource,
        rendered: Instance,
        input_hash: str,
        source: SourceRef,
    ) -> LiveState:
        """What the render reads (the module's #Observe for this input) and the values it is
        given: the graph's record of its own nodes and the referenced objects, pending where
        not known. A graph rendered from this very input says what it reads, so a resync or a
        restart runs no cue."""
        if (
            graph is not None
            and graph.spec.observe.empty
            and graph.spec.metadata.render_hash == input_hash
        ):
            return LiveState(NO_DECLARATION, None, input_hash)  # read nothing, nothing changed
        rendered_before = graph is not None and graph.spec.metadata.input_hash == input_hash
        if graph is not None and rendered_before:
            declaration = graph.spec.observe
        else:
            try:
                declaration = await self.renderer.declaration(module, rendered)
            except RenderError as error:
                message = "; ".join([error.summary, *(str(d) for d in error.diagnostics)])
                raise _Refused("RenderFailed", message, "Rendered") from None
            except ObserveError as error:
                raise _Refused("ObserveRefused", str(error), "Rendered") from None
            except CueError as error:
                raise _Refused("RenderFailed", str(error), "Rendered") from None
        if declaration.empty:
            self.references.forget(key)
            return LiveState(declaration, None, input_hash)
        try:
            node_values, referenced = await self.references.resolve(
                key,
                declaration,
                served.kind.namespace_policy(rendered.namespace),
                graph,
                source,
            )
        except ReferenceProblem as problem:
            # A missing object may appear (then the instance renders); a refused one needs a
            # change of the spec or the Transform. Either way the graph in force stays.
            raise _Refused(
                problem.reason,
                problem.message,
                "ReferencesResolved",
                "Waiting" if isinstance(problem, ReferenceNotFound) else "Failed",
            ) from None
        return LiveState(
            declaration,
            observed_document(declaration, node_values, referenced),
            input_hash,
            rendered_before,
        )

    async def _render_and_write(
        self,
        served: ServedApi,
        instance: dict[str, Any],
        status: dict[str, Any],
        module: ModuleSource,
        pinned: dict[str, str] | None,
        rendered: Instance,
        expected_hash: str,
        graph_name: str,
        live_state: LiveState,
        adoption: AdoptionRequest,
        *,
        from_revision: bool = False,
    ) -> None:
        """Renders the instance and writes its graph; a render that fails or is refused, or a
        graph the API server refuses for good, is said in the instance's status instead.
        ``from_revision``: a revision of this very render is put back instead, if there is one
        that the instance's annotations would render the same."""
        if from_revision and live_state.declaration.empty:
            revision = await self.revisions.get(
                rendered.namespace,
                revision_name(graph_name, expected_hash),
                instance["metadata"]["uid"],
            )
            if revision is not None and _spec_is_current(
                revision.spec, served.kind, expected_hash, instance, adoption
            ):
                await self._restore(served.kind, instance, graph_name, revision)
                return
        result = await self._render(
            served, instance, status, module, rendered, expected_hash, live_state.observed
        )
        if result is None:
            return
        try:
            nodes = _with_adoption(result.graph.nodes, adoption)
        except AdoptionError as error:
            await self._invalid(served, instance, status, "Validated", error.reason, error.message)
            return
        if not live_state.declaration.empty:
            await self.references.follow_nodes(
                InstanceKey(served.transform, rendered.namespace, rendered.name),
                live_state.declaration,
                nodes,
                rendered.namespace,
            )
        try:
            await self._write_graph(
                served.kind, instance, graph_name, module, pinned, result, live_state, nodes
            )
        except ApiError as error:
            if error.transient:
                raise  # the work queue backs off and tries again
            # Permanent until the render changes: say so in the status, once, and keep
            # the graph in force that was written before (if any).
            await self._invalid(
                served,
                instance,
                status,
                "Rendered",
                "GraphRejected",
                f"the API server refused ResourceGraph {graph_name}: {refusal(error)}",
            )
            return
        logger.info(
            "resource graph written",
            instance=f"{served.transform}:{instance['metadata']['namespace']}/"
            f"{instance['metadata']['name']}",
            graph=graph_name,
            render_hash=result.render_hash[:19],
        )
        if not live_state.rendered_before:
            # A render again with new observed values only is not news worth an Event: the
            # graph's own Events say what it applies.
            await self.events.record(
                instance,
                "Normal",
                "Rendered",
                f"rendered {len(result.graph.nodes)} nodes into ResourceGraph {graph_name}",
            )

    async def _render(
        self,
        served: ServedApi,
        instance: dict[str, Any],
        status: dict[str, Any],
        module: ModuleSource,
        rendered: Instance,
        expected_hash: str,
        observed: dict[str, Any] | None,
    ) -> RenderResult | None:
        """The render of an allowed instance; None (with the instance's status saying why)
        when it fails or a policy forbids it."""
        try:
            result = await self.renderer.render(
                module,
                rendered,
                policies=served.kind.policies,
                namespaces=served.kind.namespace_policy(rendered.namespace),
                render_hash=expected_hash,
                observed=observed,
            )
        except GraphTooLargeError as error:
            await self._invalid(served, instance, status, "Rendered", "GraphTooLarge", str(error))
            return None
        except RenderError as error:
            message = "; ".join([error.summary, *(str(d) for d in error.diagnostics)])
            await self._invalid(served, instance, status, "Rendered", "RenderFailed", message)
            return None
        except ObserveError as error:
            await self._invalid(served, instance, status, "Rendered", "ObserveRefused", str(error))
            return None
        except (CueError, PolicyError) as error:
            await self._invalid(served, instance, status, "Rendered", "RenderFailed", str(error))
            return None
        if result.blocked:
            errors = [str(v) for v in result.violations if v.severity == "Error"]
            await self._invalid(
                served, instance, status, "Validated", "PolicyViolation", "; ".join(errors)
            )
            return None
        return result

    async def _delete(
        self, served: ServedApi, instance: dict[str, Any], finalizers: list[str]
    ) -> Result:
        """Deletes the ResourceGraph (whose own finalizer removes the objects in order) and
        lets the instance go once the graph is gone."""
        self.references.forget(
            InstanceKey(
                served.transform, instance["metadata"]["namespace"], instance["metadata"]["name"]
            )
        )
        if INSTANCE_FINALIZER not in finalizers:
            return DONE
        name = resource_graph_name(served.resource_type.kind, instance["metadata"]["name"])
        namespace = instance["metadata"]["namespace"]
        graph = await self.client.get(RESOURCE_GRAPHS, name, namespace)
        if graph is not None:
            if not graph["metadata"].get("deletionTimestamp"):
                await self.client.delete(
                    RESOURCE_GRAPHS, name, namespace, uid=graph["metadata"]["uid"]
                )
            return Result(requeue_after=1.0)
        await self.revisions.delete_all(namespace, instance["metadata"]["uid"])
        await self.writer.set_finalizers(
            served.resource_type,
            instance,
            [f for f in finalizers if f != INSTANCE_FINALIZER],
        )
        return DONE

    async def _module_for(
        self, served: ServedKind, instance: dict[str, Any]
    ) -> tuple[ModuleSource, dict[str, str] | None]:
        platform_ref = (instance.get("spec") or {}).get("platformRef")
        if not platform_ref:
            metadata = instance["metadata"]
            return served.module_for(metadata["namespace"], metadata["name"]), None
        wanted = ModuleReference(
            platform_ref["type"], platform_ref["ref"].removeprefix(EMBEDDED_PREFIX)
        )
        # An allowed entry carries the Transform's settings for it (pull secret, insecure).
        allowed = {
            ModuleReference(r.type, r.ref.removeprefix(EMBEDDED_PREFIX)): r
            for r in served.instance_platform_refs
        }
        if wanted not in allowed:
            listed = ", ".join(f"{r.type}:{r.ref}" for r in allowed) or "none"
            raise _Refused(
                "PlatformRefNotAllowed",
                f"spec.platformRef {wanted.type}:{wanted.ref} is not allowed by Transform "
                f"{served.transform} (allowed: {listed})",
            )
        try:
            module = await self.resolver.resolve(allowed[wanted])
        except ModuleError as error:
            raise _Refused("PlatformRefUnavailable", str(error)) from None
        return module, {"type": wanted.type, "ref": wanted.ref, "digest": module.digest}

    async def _write_graph(
        self,
        served: ServedKind,
        instance: dict[str, Any],
        graph_name: str,
        module: ModuleSource,
        pinned: dict[str, str] | None,
        result: RenderResult,
        live_state: LiveState,
        nodes: tuple[Node, ...],
    ) -> None:
        metadata = instance["metadata"]
        observes = not live_state.declaration.empty
        spec = ResourceGraphSpec(
            source=SourceRef.of(instance),
            metadata=RenderMetadata(
                module_name=served.module_name or served.transform,
                module_version=module.version or served.module_version or "",
                platform_ref=module.reference
                if pinned is None
                else f"{pinned['type']}:{pinned['ref']}",
                render_hash=result.render_hash,
                rendered_at=timestamp(),
                transform=served.transform,
                allowed_namespaces=served.allowed_namespaces,
                allow_cluster_scoped=served.allow_cluster_scoped,
                input_hash=live_state.input_hash if observes else "",
            ),
            nodes=nodes,
            violations=result.violations,
            dry_run=_dry_run(instance),
            observe=live_state.declaration,
            instance_status=result.status,
        )
        graph = resource_graph_object(
            graph_name,
            metadata["namespace"],
            instance_labels(served.transform, served.resource_type.kind, metadata["name"]),
            instance,
            spec,
        )
        await self.client.apply(RESOURCE_GRAPHS, graph, field_manager=FIELD_MANAGER, force=True)

    async def _invalid(
        self,
        served: ServedApi,
        instance: dict[str, Any],
        status: dict[str, Any],
        condition: str,
        reason: str,
        message: str,
        *,
        phase: str = "Failed",
    ) -> None:
        generation = instance["metadata"].get("generation")
        conditions = status.get("conditions") or []
        if condition in ("Rendered", "ReferencesResolved"):
            conditions = set_condition(
                conditions, "Validated", True, "Valid", "the spec is allowed", generation
            )
        conditions = set_condition(conditions, condition, False, reason, message, generation)
        ready_message = f"{condition}=False: {message}"
        conditions = set_condition(conditions, "Ready", False, reason, ready_message, generation)
        desired = {
            **status,
            "phase": phase,
            "observedGeneration": generation,
            "conditions": conditions,
        }
        if await self._write_instance_status(served, instance, desired):
            await self.events.record(instance, "Warning", reason, message)
            logger.warning(
                "instance invalid",
                instance=instance["metadata"]["name"],
                reason=reason,
                message=message[:300],
            )

    async def _write_status(
        self,
        instance: dict[str, Any],
        status: dict[str, Any],
        served: ServedApi,
        module: ModuleSource,
        pinned: dict[str, str] | None,
        graph: ResourceGraph,
        generation: int | None,
        *,
        rolled_back: dict[str, Any] | None = None,
    ) -> None:
        result = RenderSummary.of_graph(graph)
        graph_name = graph.name
        graph_status = graph.object.get("status") or {}
        conditions = status.get("conditions") or []
        conditions = set_condition(
            conditions,
            "Validated",
            True,
            "Valid",
            "the spec and the rendered graph are allowed",
            generation,
        )
        warnings = result.warnings
        conditions = set_condition(
            conditions,
            "Rendered",
            True,
            "Rendered",
            f"{result.node_count} nodes"
            + (f"; warnings: {'; '.join(warnings)}" if warnings else ""),
            generation,
        )
        graph_phase = graph_status.get("phase") or "Pending"
        total = result.node_count
        ready_nodes = int(graph_status.get("readyNodes") or 0)
        graph_ready = (
            is_true(graph_status.get("conditions") or [], "Ready") and graph_phase == "Ready"
        )
        # The graph's message names the nodes that failed and what the others wait for.
        graph_message = (condition(graph_status.get("conditions") or [], "Ready") or {}).get(
            "message"
        )
        conditions = set_condition(
            conditions,
            "Ready",
            graph_ready,
            "GraphReady" if graph_ready else f"Graph{graph_phase}",
            graph_message or f"{ready_nodes}/{total} nodes ready",
            generation,
        )
        references = graph_spec_references(result)
        if references:
            conditions = set_condition(
                conditions,
                "ReferencesResolved",
                True,
                "Resolved",
                f"read {references}",
                generation,
            )
        elif condition(conditions, "ReferencesResolved") is not None:
            conditions = [c for c in conditions if c.get("type") != "ReferencesResolved"]
        # The module's fields first (Pequod's own win), and the module's fields of a former
        # render that this one no longer has removed.
        module_status = {
            k: v for k, v in result.instance_status.items() if k not in PEQUOD_STATUS_FIELDS
        }
        removed: dict[str, Any] = {
            k: None for k in status if k not in PEQUOD_STATUS_FIELDS and k not in module_status
        }
        # Written only for an instance that adopted something: the others' statuses stay as
        # they were (no write for them on an upgrade).
        adopted = sum(1 for n in graph_status.get("nodes") or () if n.get("adoptedAt"))
        if adopted or "adoptedNodes" in status:
            removed["adoptedNodes"] = adopted or None
        if "rolledBackTo" in status or rolled_back:
            removed["rolledBackTo"] = rolled_back
        revision = await self._revision(instance, status, served, module, graph, graph_phase)
        desired = {
            **{k: v for k, v in status.items() if k in PEQUOD_STATUS_FIELDS},
            **removed,
            **module_status,
            "phase": "Ready"
            if graph_ready
            else (graph_phase if graph_phase in ("Failed", "DryRun") else "Applying"),
            "observedGeneration": generation,
            "conditions": conditions,
            "resourceGraphRef": {"name": graph_name},
            "platformRefResolved": _resolved(module, pinned, rolled_back),
            "renderHash": result.render_hash,
            "readyNodes": ready_nodes,
            "totalNodes": total,
            "violations": result.violations,
        }
        if revision is not None:
            desired["revision"] = revision
        await self._write_instance_status(served, instance, desired)

    async def _revision(
        self,
        instance: dict[str, Any],
        status: dict[str, Any],
        served: ServedApi,
        module: ModuleSource,
        graph: ResourceGraph,
        graph_phase: str,
    ) -> dict[str, Any] | None:
        """``status.revision`` for the graph in force: recorded (one write) once the graph is
        Ready or has failed, and again only when a failed one becomes Ready; None while its
        outcome is not known (the status keeps the revision before)."""
        outcome = {"Ready": READY, "Failed": FAILED}.get(graph_phase)
        if outcome is None or graph.spec.dry_run:
            return None
        current: dict[str, Any] = status.get("revision") or {}
        name = revision_name(graph.name, graph.spec.metadata.render_hash)
        if current.get("name") == name and (
            current.get("outcome") == outcome or current.get("outcome") == READY
        ):
            return current
        revision = await self.revisions.record(
            instance, served.transform, graph, module.digest, outcome
        )
        return revision.to_status()

    async def _write_instance_status(
        self, served: ServedApi, instance: dict[str, Any], desired: dict[str, Any]
    ) -> bool:
        return await self.writer.write_status_or_refusal(served.resource_type, instance, desired)


@dataclass(frozen=True)
class RenderSummary:
    """What the instance's status says about its render, from the graph the render wrote."""

    node_count: int
    violations: list[dict[str, Any]]
    warnings: list[str]
    render_hash: str
    instance_status: dict[str, Any]
    declaration: Declaration

    @classmethod
    def of_graph(cls, graph: ResourceGraph) -> RenderSummary:
        spec = graph.spec
        return cls(
            len(spec.nodes),
            [v.to_dict() for v in spec.violations],
            [str(v) for v in spec.violations],
            spec.metadata.render_hash,
            spec.instance_status,
            spec.observe,
        )


def graph_spec_references(summary: RenderSummary) -> str:
    """The references a render read, as the ReferencesResolved condition names them."""
    return ", ".join(r.describe() for r in summary.declaration.references)


@dataclass(frozen=True)
class RollbackInForce:
    """A ``pequod.io/rollback-to`` in force: the revision's number and render hash, the
    ``status.rolledBackTo`` record."""

    number: int
    render_hash: str
    record: dict[str, Any]


@dataclass(frozen=True)
class LiveState:
    """What a render reads (``declaration``) and the values it is given (``observed``, None
    for a render that reads nothing)."""

    declaration: Declaration
    observed: dict[str, Any] | None
    input_hash: str
    """The render hash of module, policies and input alone: what keys ``declaration``."""
    rendered_before: bool = False
    """The graph in force was rendered from this same input (only observed values differ)."""


def _graph_is_current(
    graph: ResourceGraph,
    served: ServedKind,
    expected_hash: str,
    instance: dict[str, Any],
    adoption: AdoptionRequest,
) -> bool:
    """The graph was rendered from exactly this module, these policies, this input and this
    namespace policy, and adopts what the instance asks for."""
    return _spec_is_current(graph.spec, served, expected_hash, instance, adoption)


def _spec_is_current(
    spec: ResourceGraphSpec,
    served: ServedKind,
    expected_hash: str,
    instance: dict[str, Any],
    adoption: AdoptionRequest,
) -> bool:
    metadata = spec.metadata
    return (
        metadata.render_hash == expected_hash
        and spec.dry_run == _dry_run(instance)
        and metadata.allowed_namespaces == tuple(served.allowed_namespaces)
        and metadata.allow_cluster_scoped == served.allow_cluster_scoped
        and _adopts(spec.nodes, adoption)
    )


def _resolved(
    module: ModuleSource, pinned: dict[str, str] | None, rolled_back: dict[str, Any] | None
) -> dict[str, str]:
    """``status.platformRefResolved``: the module the graph in force was rendered with."""
    if rolled_back is not None:
        rendered_with = rolled_back.get("revisionModule") or {}
        return {"type": "revision", **rendered_with}
    return pinned or {"type": "transform", "ref": module.reference, "digest": module.digest}


def _adoption_request(served: ServedKind, instance: dict[str, Any]) -> AdoptionRequest:
    """What the instance asks to adopt, if its Transform allows it; raises :class:`_Refused`
    otherwise (nothing is rendered or written for it)."""
    try:
        adoption = requested(instance)
        check_allowed(adoption, served.adoption_strategies, served.transform)
    except AdoptionError as error:
        raise _Refused(error.reason, error.message) from None
    return adoption


def _with_adoption(nodes: tuple[Node, ...], adoption: AdoptionRequest) -> tuple[Node, ...]:
    """The rendered nodes, each with the adoption strategy the instance asks for it."""
    if adoption.empty:
        return nodes
    strategies = per_node(adoption, [n.id for n in nodes])
    return tuple(replace(n, adoption=strategies.get(n.id, "")) for n in nodes)


def _adopts(nodes: tuple[Node, ...], adoption: AdoptionRequest) -> bool:
    """The graph's nodes carry the adoption the instance asks for (a request naming a node
    the graph does not have is not current: the render says so)."""
    if adoption.empty:
        return not any(n.adoption for n in nodes)
    try:
        return _with_adoption(tuple(replace(n, adoption="") for n in nodes), adoption) == nodes
    except AdoptionError:
        return False


def _dry_run(instance: dict[str, Any]) -> bool:
    annotations = instance["metadata"].get("annotations") or {}
    return str(annotations.get(DRY_RUN_ANNOTATION, "")).lower() == "true"


class _Refused(Exception):
    def __init__(
        self, reason: str, message: str, condition: str = "Validated", phase: str = "Failed"
    ) -> None:
        self.reason = reason
        self.message = message
        self.condition = condition
        self.phase = phase
        super().__init__(message)


def _owner_of_graph(event: InformerEvent) -> list[InstanceKey]:
    labels = event.object["metadata"].get("labels") or {}
    transform = labels.get(TRANSFORM_LABEL)
    name = labels.get(INSTANCE_NAME_LABEL)
    if not transform or not name:
        return []
    return [InstanceKey(transform, event.object["metadata"]["namespace"], name)]
