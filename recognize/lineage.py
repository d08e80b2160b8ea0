"""A run's training stages in the words of the research tables: its own mode, after the
stages of the checkpoints it was initialised from (`--init-from`, recorded in config.json's
"lineage"), e.g. "Text-only Full Tuning -> Full Tuning -> Training Classification"; a
stage distilled from a teacher (`--teacher`, config.json's "distillation") says so, e.g.
"Full Tuning (KD from T--ET(all-MiniLM-L6-v2), weight 0.5, tau 2)", and a combination
gives its feature term too: "(DIST + feature distillation from ..., weight 1, tau 1; feature
weight 1, tau 0.1)"; one taught by all the seeds of a setting (`--teacher-ensemble`) names "the
3-seed ensemble of T--ET(...)". A stage whose last epoch started the next (`--init-epoch last`) says
so: "Full Tuning (last epoch) -> Training Classification"."""

from typing import Any

STAGE_NAMES: dict[str, str] = {"full": "Full Tuning", "lora": "LoRA", "frozen": "Training Classification"}
"""Training mode -> how a stage in that mode is called in results tables."""

ONLY_NAMES: dict[str, str] = {"T": "Text-only", "A": "Audio-only", "V": "Video-only"}
"""Prefix of a stage trained on one modality before a run of several."""

LOSS_NAMES: dict[str, str] = {"kd": "KD", "dist": "DIST", "feature": "feature distillation",
                              "kd+feature": "KD + feature distillation", "dist+feature": "DIST + feature distillation"}
"""`--distill` loss -> its name in a stage."""


def teacher_name(run_name: str, members: "list[str] | tuple[str, ...]") -> str:
    """A teacher as a stage names it: its run name, or for the seeds of a setting taught
    together (`members`, their folders) "the 3-seed ensemble of" that name."""
    return f"the {len(members)}-seed ensemble of {run_name}" if members else run_name


def stages(modal: str, mode: str, lineage: list[dict[str, Any]], distillation: "dict[str, Any] | None" = None) -> str:
    """The stages that led to a run of `modal` in `mode` from its `lineage` entries (each
    with the source's "modal", "mode", own "lineage" and "distillation"), and the teacher it
    was distilled from, if any. A source of other modalities is prefixed ("Text-only");
    several sources are joined with " + " in parentheses."""
    own = STAGE_NAMES.get(mode, mode)
    if distillation:
        loss = LOSS_NAMES.get(distillation["loss"], distillation["loss"])
        feature = (f"; feature weight {distillation['feature_weight']:g}, tau {distillation['feature_temperature']:g}"
                   if "feature_weight" in distillation else "")
        own += (f" ({loss} from {teacher_name(distillation['run_name'], distillation.get('members', []))}, weight {distillation['weight']:g}, "
                f"tau {distillation['temperature']:g}{feature})")
    if not lineage:
        return own
    parents = [_source_stages(entry, modal) for entry in lineage]
    before = parents[0] if len(parents) == 1 else f"({' + '.join(parents)})"
    return f"{before} -> {own}"


def record_stages(record: dict[str, Any]) -> str:
    """`stages` of a checkpoint's config.json record."""
    experiment = record["experiment"]
    return stages(experiment["modal"], experiment["mode"], record.get("lineage", []), record.get("distillation"))


def _source_stages(entry: dict[str, Any], target_modal: str) -> str:
    """The stages of one lineage entry, prefixed when its modalities differ from the target's."""
    text = stages(entry["modal"], entry["mode"], entry.get("lineage", []), entry.get("distillation"))
    if entry.get("epoch") == "last":  # `--init-epoch last`; absent: its best epoch
        text += " (last epoch)"
    if entry["modal"] == target_modal:
        return text
    return f"{ONLY_NAMES.get(entry['modal'], entry['modal'] + '-only')} {text}"
