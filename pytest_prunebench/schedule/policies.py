"""The `policies:` section: each policy's window and arguments, resolved against the sections it names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import shown
from .catalogue import MASKER_FLAGS, MINIBATCH_MASK_ARGS, POLICY_TARGETS
from .fields import FieldReader
from .model import LRSchedulerSpec, PrunerPolicy, PrunerSpec, RegularizerSpec, ThinningSpec, Window, freeze
from .regularizers import RegularizerParts
from .writer import window_document

# What the policies resolve to: pruner policies, thinning, LR schedulers and regularizers, in document order.
Policies = tuple[list[PrunerPolicy], list[ThinningSpec], list[LRSchedulerSpec], list[RegularizerSpec]]


class PolicyReader(FieldReader):
    """The `policies:` list: what fires when, with which arguments."""

    def policies(
        self, policies: list[Any], pruners: dict[str, PrunerSpec], extensions: dict[str, Any],
        schedulers: dict[str, Any], regularizers: dict[str, RegularizerParts],
    ) -> Policies:
        pruner_policies: list[PrunerPolicy] = []
        thinning: list[ThinningSpec] = []
        lr_schedulers: list[LRSchedulerSpec] = []
        regularized: list[RegularizerSpec] = []
        for index, policy in enumerate(policies):
            where = f"policies[{index}]"
            policy = self.mapping(policy, where)
            targets = [t for t in POLICY_TARGETS if t in policy]
            if len(targets) != 1:
                raise self.fail(where, "each policy names exactly one of pruner, extension, lr_scheduler or "
                                       "regularizer")
            target = targets[0]
            if target == "quantizer":
                raise self.fail(f"{where}.{target}", "quantization is not supported by pytest-prunebench")
            extra = sorted(set(policy) - {target, "epochs", "starting_epoch", "ending_epoch", "frequency"})
            if extra:
                raise self.fail(f"{where}.{extra[0]}", "unknown policy key (allowed: epochs, starting_epoch, "
                                                       "ending_epoch, frequency)")
            instance, args = self.instance_name(policy[target], f"{where}.{target}")
            window = self.window(policy, where)
            if args and target not in ("pruner", "regularizer"):
                raise self.fail(f"{where}.{target}.args.{next(iter(args))}",
                                f"policy arguments ({', '.join(args)}) are not supported for a {target} policy")
            if target == "pruner":
                if instance not in pruners:
                    raise self.fail(f"{where}.pruner.instance_name",
                                    f"{instance!r} is not defined under `pruners:` ({', '.join(pruners) or 'none'})")
                if pruners[instance].agp and window.agp_span() is None:
                    raise self.fail(where, f"{pruners[instance].class_name} {instance!r} follows Distiller's AGP "
                                           f"schedule: it needs starting_epoch, ending_epoch (exclusive) and a "
                                           f"frequency that fire it at least twice, not {window_text(window)}")
                fields = self.pruner_args(args, f"{where}.pruner.args", pruners[instance], window)
                pruner_policies.append(PrunerPolicy(instance, window, **fields))
            elif target == "extension":
                if instance not in extensions:
                    raise self.fail(f"{where}.extension.instance_name",
                                    f"{instance!r} is not defined under `extensions:`")
                ext = extensions[instance]
                thinning.append(ThinningSpec(instance, ext["class"], ext["thinning_func_str"], window,
                                             _opt_str(ext.get("arch")), _opt_str(ext.get("dataset"))))
            elif target == "regularizer":
                if instance not in regularizers:
                    raise self.fail(f"{where}.regularizer.instance_name",
                                    f"{instance!r} is not defined under `regularizers:`")
                keep = self.regularizer_args(args, f"{where}.regularizer.args", regularizers[instance], window)
                class_name, terms, criteria = regularizers[instance]
                regularized.append(RegularizerSpec(instance, class_name, terms, window, criteria, keep))
            else:
                if instance not in schedulers:
                    raise self.fail(f"{where}.lr_scheduler.instance_name",
                                    f"{instance!r} is not defined under `lr_schedulers:`")
                spec = schedulers[instance]
                kwargs = tuple(sorted((k, freeze(v)) for k, v in spec.items() if k != "class"))
                lr_schedulers.append(LRSchedulerSpec(instance, spec["class"], kwargs, window))
        return pruner_policies, thinning, lr_schedulers, regularized

    def instance_name(self, value: Any, where: str) -> tuple[str, dict[str, Any]]:
        """The policy's instance name and its `args` (checked by pruner_args / regularizer_args)."""
        if not isinstance(value, Mapping) or not isinstance(value.get("instance_name"), str):
            raise self.fail(where, "must be a mapping with `instance_name: NAME`")
        extra = sorted(str(key) for key in value if key not in ("instance_name", "args"))
        args = value.get("args")
        if args is not None and not isinstance(args, Mapping):
            raise self.fail(f"{where}.args", f"must be a mapping of policy arguments, got {shown(args)}")
        args = {str(key): arg for key, arg in (args or {}).items()}
        if "discard_masks_at_minibatch_end" in args:
            dynamic = sorted(set(args) & MINIBATCH_MASK_ARGS)
            raise self.fail(f"{where}.args.discard_masks_at_minibatch_end", f"per-minibatch masking "
                            f"({', '.join(dynamic)}) is DropFilter-style regularisation: masks drawn every few "
                            f"minibatches and discarded at each minibatch's end, so the trained model is not pruned "
                            f"by them and there is nothing to thin; not supported")
        if extra:
            raise self.fail(f"{where}.{extra[0]}", f"unknown key {shown(extra[0])} (a policy names instance_name and, "
                                                   f"for a pruner or regularizer, args)")
        return value["instance_name"], args

    def pruner_args(self, args: dict[str, Any], where: str, pruner: PrunerSpec, window: Window) -> dict[str, Any]:
        """A pruner policy's `args` as PrunerPolicy fields: fold_batchnorm and Distiller's per-minibatch masking."""
        known = {"fold_batchnorm", "mini_batch_pruning_frequency", "keep_mask", *MASKER_FLAGS}
        unsupported = sorted(set(args) - known)
        if unsupported:
            raise self.fail(f"{where}.{unsupported[0]}", f"policy arguments ({', '.join(unsupported)}) are not "
                                                         f"supported yet (pruner policies take "
                                                         f"{', '.join(sorted(known))})")
        fields: dict[str, Any] = {key: self.boolean(args[key], f"{where}.{key}")
                                  for key in ("fold_batchnorm", "keep_mask", *MASKER_FLAGS) if key in args}
        if "mini_batch_pruning_frequency" in args:
            fields["minibatch_frequency"] = self.count(args["mini_batch_pruning_frequency"],
                                                       f"{where}.mini_batch_pruning_frequency")
        dynamic = sorted(set(args) & MINIBATCH_MASK_ARGS)
        if dynamic and pruner.kind != "elements":
            raise self.fail(f"{where}.{dynamic[0]}", f"per-minibatch masking ({', '.join(dynamic)}) applies to "
                                                     f"fine-grained pruners (AutomatedGradualPruner, "
                                                     f"SparsityLevelParameterPruner, SplicingPruner); "
                                                     f"{pruner.class_name} masks {pruner.kind}, which thinning removes")
        if fields.get("mask_gradients") and not fields.get("mask_on_forward_only"):
            raise self.fail(f"{where}.mask_gradients", "needs mask_on_forward_only: true (Distiller refuses it "
                                                       "otherwise: 'mask_gradients and (not mask_on_forward_only) "
                                                       "are mutually exclusive', policy.py PruningPolicy)")
        if fields.get("fold_batchnorm") and pruner.splicing is not None:
            raise self.fail(f"{where}.fold_batchnorm", "SplicingPruner with fold_batchnorm is not supported: Distiller "
                                                       "caches |w|'s mean and std on the tensor it is given, and a "
                                                       "BN-folded tensor is new at every call, so its thresholds move "
                                                       "with the BN statistics")
        if fields.get("keep_mask"):
            self.check_keep_mask(window, f"{where}.keep_mask")
        return fields

    def regularizer_args(self, args: dict[str, Any], where: str, parts: RegularizerParts, window: Window) -> bool:
        """A regularizer policy's `args`: Distiller's RegularizationPolicy takes keep_mask only."""
        unsupported = sorted(set(args) - {"keep_mask"})
        if unsupported:
            raise self.fail(f"{where}.{unsupported[0]}", "regularizer policies take keep_mask only (Distiller's "
                                                         "RegularizationPolicy(regularizer, keep_mask))")
        keep = self.boolean(args.get("keep_mask", False), f"{where}.keep_mask")
        if keep and parts[2] is None:
            raise self.fail(f"{where}.keep_mask", "keeps the masks of threshold_criteria, and this regularizer has "
                                                  "none: it would do nothing")
        if keep:
            self.check_keep_mask(window, f"{where}.keep_mask")
            biases = [name for name, _strength, _group in parts[1] if not name.endswith(".weight")]
            if biases:
                raise self.fail(f"{where}.keep_mask", f"kept threshold masks are supported on weights, not on "
                                                      f"{biases[0]!r}")
        return keep

    def check_keep_mask(self, window: Window, where: str) -> None:
        """keep_mask acts at the end of epoch ending_epoch - 1 (policy.py: is_last_epoch), if the policy runs then."""
        why = "keep_mask acts at epoch ending_epoch - 1 (Distiller's is_last_epoch, policy.py)"
        if window.epochs is not None:
            raise self.fail(where, f"{why}, and Distiller gives a policy with an `epochs` list ending_epoch 1 "
                                   f"(CompressionScheduler.add_policy's default), so it would act at epoch 0 only: "
                                   f"use starting_epoch / ending_epoch")
        if window.ending_epoch is None:
            raise self.fail(where, f"{why}: give the policy an ending_epoch")
        if not window.fires(window.ending_epoch - 1):
            raise self.fail(where, f"{why}, {window.ending_epoch - 1} here, an epoch this policy does not run in "
                                   f"(frequency {window.frequency}): it would never act")

    def window(self, policy: Mapping[str, Any], where: str) -> Window:
        if "epochs" in policy:
            if any(k in policy for k in ("starting_epoch", "ending_epoch", "frequency")):
                raise self.fail(where, "use either `epochs: [...]` or starting_epoch/ending_epoch/frequency")
            epochs = policy["epochs"]
            if not isinstance(epochs, list) or not epochs:
                raise self.fail(f"{where}.epochs", f"must be a non-empty list of epochs, got {shown(epochs)}")
            return Window(epochs=tuple(self.epoch(e, f"{where}.epochs") for e in epochs))
        if "starting_epoch" not in policy:
            raise self.fail(where, "needs `epochs: [...]` or `starting_epoch:` (with ending_epoch, frequency)")
        start = self.epoch(policy["starting_epoch"], f"{where}.starting_epoch")
        end = policy.get("ending_epoch")
        if end is not None:
            end = self.epoch(end, f"{where}.ending_epoch")
            if end <= start:
                raise self.fail(f"{where}.ending_epoch",
                                f"{end} must be greater than starting_epoch {start} (ending_epoch is exclusive)")
        frequency = policy.get("frequency", 1)
        if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 1:
            raise self.fail(f"{where}.frequency", f"must be a whole number >= 1, got {shown(frequency)}")
        return Window(starting_epoch=start, ending_epoch=end, frequency=frequency)


def window_text(window: Window) -> str:
    return ", ".join(f"{key}: {value}" for key, value in window_document(window).items())


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)

