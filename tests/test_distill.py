"""Distillation: the losses against hand computations on small tensors (plain Python sums),
their gradients pulling the student towards the teacher, DIST on a batch of one; then
training with a teacher (`--teacher`): distilled students learning what labels alone do not
teach them, the teacher's cached outputs, their matching to rows by id, the lineage, and the
flags' errors."""

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from recognize import ExperimentConfig, RecognizeError, train
from recognize import engine
from recognize import teacher as teacher_module
from recognize.builder import eval_loader, make_split
from recognize.cli import app
from recognize.dataset import text as text_module
from recognize.dataset.meld import load_split
from recognize.dataset.synthetic import vocabulary, write_agreeing_meld
from recognize.dataset.text import pad_text, tokenize_rows
from recognize.distill import dist_loss, kd_loss, relational_feature_loss
from recognize.evaluator import load_trained
from recognize.lineage import record_stages
from recognize.objective import make_objective
from recognize.run import train_seeds
from recognize.teacher import aligned_columns, teacher_outputs
from recognize.tiny import write_tiny_bert, write_tiny_wav2vec2

STUDENT = [[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]]
TEACHER = [[2.0, 0.5, -0.5], [0.0, 1.0, 1.5]]
LABELS = [0, 1]


def softmax(row: list[float], tau: float = 1.0) -> list[float]:
    """softmax(row / tau), by hand."""
    exps = [math.exp(v / tau) for v in row]
    return [e / sum(exps) for e in exps]


def pearson(a: list[float], b: list[float]) -> float:
    """Pearson correlation, by hand."""
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    return cov / (math.sqrt(sum((x - ma) ** 2 for x in a)) * math.sqrt(sum((y - mb) ** 2 for y in b)))


def cross_entropy(rows: list[list[float]], labels: list[int]) -> float:
    """Mean cross-entropy, by hand."""
    return sum(-math.log(softmax(row)[y]) for row, y in zip(rows, labels)) / len(rows)


def tensors(*rows):
    """float64 tensors of the given rows, the first one requiring a gradient."""
    first, *rest = (torch.tensor(r, dtype=torch.float64) for r in rows)
    return (first.requires_grad_(), *rest)


def test_kd_is_cross_entropy_plus_tau_squared_kl_of_the_softened_distributions():
    tau, weight = 2.0, 0.3
    kl = sum(sum(p * math.log(p / q) for p, q in zip(softmax(t, tau), softmax(s, tau))) for s, t in zip(STUDENT, TEACHER)) / 2
    expected = (1 - weight) * cross_entropy(STUDENT, LABELS) + weight * tau ** 2 * kl
    student, teacher = tensors(STUDENT, TEACHER)
    assert kd_loss(student, teacher, torch.tensor(LABELS), tau, weight).item() == pytest.approx(expected, rel=1e-12)


def test_dist_is_ce_plus_inter_and_intra_class_pearson_distances():
    tau, alpha, beta, gamma = 1.5, 0.7, 2.0, 0.5
    ys = [softmax(r, tau) for r in STUDENT]
    yt = [softmax(r, tau) for r in TEACHER]
    inter = sum(1 - pearson(s, t) for s, t in zip(ys, yt)) / 2
    intra = sum(1 - pearson([r[j] for r in ys], [r[j] for r in yt]) for j in range(3)) / 3
    expected = alpha * cross_entropy(STUDENT, LABELS) + beta * tau ** 2 * inter + gamma * tau ** 2 * intra
    student, teacher = tensors(STUDENT, TEACHER)
    loss = dist_loss(student, teacher, torch.tensor(LABELS), tau, alpha, beta, gamma)
    assert loss.item() == pytest.approx(expected, rel=1e-5)  # the 1e-8 guard in the Pearson denominator


def test_relational_feature_loss_is_kl_between_teacher_and_cross_similarities_of_centred_vectors():
    s_rows, t_rows, tau = [[1.0, 2.0], [0.5, -1.0], [0.0, 1.0]], [[2.0, 1.0], [1.0, -1.0], [-0.5, 0.5]], 0.5

    def centred_units(rows):
        means = [sum(r[k] for r in rows) / len(rows) for k in range(len(rows[0]))]
        centred = [[x - m for x, m in zip(r, means)] for r in rows]
        return [[x / math.sqrt(sum(y * y for y in v)) for x in v] for v in centred]

    s, t = centred_units(s_rows), centred_units(t_rows)
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731
    expected = 0.0
    for i in range(3):
        p = softmax([dot(t[i], t[j]) for j in range(3)], tau)
        q = softmax([dot(t[i], s[j]) for j in range(3)], tau)  # TelME: teacher i against every student j
        expected += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q)) / 3
    student, teacher = tensors(s_rows, t_rows)
    assert relational_feature_loss(student, teacher, tau).item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("loss", ["kd", "dist", "feature"])
def test_a_gradient_step_moves_the_student_towards_the_teacher(loss):
    torch.manual_seed(0)
    teacher = torch.randn(6, 4, dtype=torch.float64)
    student = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    labels = teacher.argmax(-1)
    compute = {
        "kd": lambda s: kd_loss(s, teacher, labels, 2.0, weight=1.0),  # the soft term alone
        "dist": lambda s: dist_loss(s, teacher, labels, 1.0, alpha=0.0),
        "feature": lambda s: relational_feature_loss(s, teacher, 0.5),
    }[loss]
    before = compute(student)
    before.backward()
    with torch.no_grad():
        stepped = student - 0.05 * student.grad
    assert compute(stepped) < before  # the gradient points away from the teacher: descending it gets closer
    assert compute(teacher.clone()) <= before  # a student equal to the teacher is no worse off


def test_dist_on_a_batch_of_one_has_no_nan_and_a_finite_gradient():
    student = torch.tensor([[0.3, -0.2, 1.0]], dtype=torch.float64, requires_grad=True)
    loss = dist_loss(student, torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64), torch.tensor([0]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(student.grad).all()


@pytest.mark.parametrize("loss", ["kd+feature", "dist+feature"])
def test_a_combined_objective_is_the_response_loss_plus_the_weighted_feature_loss(loss):
    config = ExperimentConfig(modal="T", mode="full", teacher="TEACHER", distill=loss, distill_weight=0.4, temperature=1.5,
                              feature_weight=0.7, feature_temperature=0.5)
    objective = make_objective(config, student_width=2, teacher_width=2)
    with torch.no_grad():  # the projection to the teacher's width as the identity: the vectors go in as they are
        objective.projection.weight.copy_(torch.eye(2))
        objective.projection.bias.zero_()
    s_rows, t_rows = [[1.0, 2.0], [0.5, -1.0]], [[2.0, 1.0], [1.0, -1.0]]
    student, teacher, s_vectors, t_vectors = (torch.tensor(r) for r in (STUDENT, TEACHER, s_rows, t_rows))
    labels = torch.tensor(LABELS)
    response = (kd_loss(student, teacher, labels, 1.5, 0.4) if loss == "kd+feature"
                else dist_loss(student, teacher, labels, 1.5, 1.0, 0.4, 0.4))
    expected = response + 0.7 * relational_feature_loss(s_vectors, t_vectors, 0.5)
    batch = {"labels": labels, "teacher_logits": teacher, "teacher_embeddings": t_vectors}
    assert objective.needs_embedding
    assert objective(student, s_vectors, batch).item() == pytest.approx(expected.item(), rel=1e-6)


def test_a_combination_takes_each_terms_defaults_and_checks_the_feature_flags():
    def config(**flags) -> ExperimentConfig:
        return ExperimentConfig(modal="A", mode="full", teacher="TEACHER", **flags)

    combined = config(distill="dist+feature")
    assert (combined.distill_weight, combined.temperature, combined.feature_weight, combined.feature_temperature) == (1.0, 1.0, 1.0, 0.1)
    assert (combined.response_loss, combined.feature_distillation) == ("dist", True)
    assert (config(distill="kd+feature").distill_weight, config(distill="kd+feature").temperature) == (0.5, 2.0)
    alone = config(distill="feature")
    assert (alone.response_loss, alone.feature_distillation, alone.feature_weight) == (None, True, None)
    with pytest.raises(RecognizeError, match="--feature-weight: must be 0 or more, got -1.0"):
        config(distill="kd+feature", feature_weight=-1.0)
    with pytest.raises(RecognizeError, match="--feature-temperature: must be positive, got 0.0"):
        config(distill="dist+feature", feature_temperature=0.0)
    with pytest.raises(RecognizeError, match="--distill-weight: kd's weight is a share in"):
        config(distill="kd+feature", distill_weight=2.0)
    with pytest.raises(RecognizeError, match=r"only with --distill kd\+feature or dist\+feature \(--distill feature takes"):
        config(distill="feature", feature_weight=2.0)


# --- training with a teacher -------------------------------------------------------------

DIALOGUES = {"train": 30, "dev": 8, "test": 8}
FLIPPED = 0.7
"""Share of the training rows of the second emotion labelled with the first in the students' data."""


@pytest.fixture(scope="module")
def distillation(tmp_path_factory, tiny_bert) -> dict:
    """Text and audio that both say the emotion; a text teacher trained on clean labels; the
    students' copy of the data, whose training labels are mostly flipped to the majority."""
    tmp = tmp_path_factory.mktemp("distillation")
    clean = write_agreeing_meld(tmp / "clean", seed=0, dialogues=DIALOGUES)
    noisy = write_agreeing_meld(tmp / "noisy", seed=0, dialogues=DIALOGUES, flipped=FLIPPED)
    teacher = train(ExperimentConfig(data=str(clean), modal="T", mode="full", text_model=str(tiny_bert), lr=5e-4, epochs=8,
                                     batch_size=16, pooling="mean", output_dir=str(tmp / "teacher")))
    audio = dict(data=str(noisy), modal="A", mode="frozen", lr=3e-3, audio_model=str(write_tiny_wav2vec2(tmp / "tiny-wav2vec2")),
                 epochs=8, batch_size=8, workers=0)
    return {"tmp": tmp, "clean": clean, "noisy": noisy, "teacher": teacher, "audio": audio,
            "student_bert": write_tiny_bert(tmp / "student-bert", vocabulary(), seed=1)}


def accuracy_on_test(folder) -> float:
    """The test accuracy a finished run recorded."""
    return json.loads((folder / "metrics.json").read_text())["test"]["accuracy"]


@pytest.mark.parametrize("loss, weight", [("kd", 0.9), ("dist", 4.0)])
def test_a_distilled_student_sees_past_the_label_noise_that_a_label_only_student_follows(distillation, loss, weight):
    assert accuracy_on_test(distillation["teacher"]) > 0.85  # informative: trained on clean labels
    tmp, audio = distillation["tmp"], distillation["audio"]
    for seed in (1, 2):
        alone = train(ExperimentConfig(seed=seed, output_dir=str(tmp / f"labels-{loss}-{seed}"), **audio))
        distilled = train(ExperimentConfig(seed=seed, output_dir=str(tmp / f"{loss}-{seed}"), teacher=str(distillation["teacher"]),
                                           distill=loss, distill_weight=weight, **audio))
        assert accuracy_on_test(alone) < 0.6  # the flipped labels make it say the first emotion: chance is 0.5
        assert accuracy_on_test(distilled) > accuracy_on_test(alone) + 0.3


def head_inputs(folder, data) -> torch.Tensor:
    """The vectors a trained model's head reads, for every training row of `data`."""
    config, _, built = load_trained(folder)
    config.data = str(data)
    model, vectors = built.model.eval(), []
    with torch.no_grad():
        for batch in eval_loader(config, built, make_split(config, built, "train").dataset):
            vectors.append(model(batch, with_embedding=True)[1])
    return torch.cat(vectors)


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear centred kernel alignment of two sets of row vectors: 1 when they relate the rows alike."""
    x, y = x - x.mean(0), y - y.mean(0)
    return float((x.T @ y).norm() ** 2 / ((x.T @ x).norm() * (y.T @ y).norm()))


def test_feature_distillation_makes_the_students_vectors_relate_rows_as_the_teachers_do(distillation):
    tmp, noisy = distillation["tmp"], distillation["noisy"]
    student = dict(data=str(noisy), modal="T", mode="full", text_model=str(distillation["student_bert"]), lr=5e-4, epochs=8,
                   batch_size=16, pooling="mean", seed=1)
    alone = train(ExperimentConfig(output_dir=str(tmp / "feature-labels"), **student))
    distilled = train(ExperimentConfig(output_dir=str(tmp / "feature"), teacher=str(distillation["teacher"]), distill="feature",
                                       distill_weight=5.0, **student))
    teacher = head_inputs(distillation["teacher"], noisy)
    assert linear_cka(head_inputs(distilled, noisy), teacher) > linear_cka(head_inputs(alone, noisy), teacher) + 0.02


def test_a_dist_plus_feature_student_learns_both_the_teachers_answers_and_its_view_of_the_rows(distillation):
    tmp, noisy = distillation["tmp"], distillation["noisy"]
    student = dict(data=str(noisy), modal="T", mode="full", text_model=str(distillation["student_bert"]), lr=5e-4, epochs=8,
                   batch_size=16, pooling="mean", seed=1)
    alone = train(ExperimentConfig(output_dir=str(tmp / "combined-labels"), **student))
    distilled = train(ExperimentConfig(output_dir=str(tmp / "combined"), teacher=str(distillation["teacher"]),
                                       distill="dist+feature", distill_weight=4.0, feature_weight=1.0, **student))
    assert accuracy_on_test(alone) < 0.6  # a text student in full tuning learns the flipped labels
    assert accuracy_on_test(distilled) > accuracy_on_test(alone) + 0.1  # measured: 0.70 against 0.46 (seed 2: 0.61)
    teacher = head_inputs(distillation["teacher"], noisy)
    assert linear_cka(head_inputs(distilled, noisy), teacher) > linear_cka(head_inputs(alone, noisy), teacher) + 0.2  # 0.67, 0.35
    record = json.loads((distilled / "config.json").read_text())
    assert (record["distillation"]["feature_weight"], record["distillation"]["feature_temperature"]) == (1.0, 0.1)
    assert record_stages(record) == ("Full Tuning (DIST + feature distillation from T--ET(tiny-bert), weight 4, tau 1; "
                                     "feature weight 1, tau 0.1)")


def test_cached_teacher_outputs_equal_a_live_teacher_pass_and_are_not_recomputed(distillation, tmp_path, monkeypatch):
    config = ExperimentConfig(cache_dir=str(tmp_path), teacher=str(distillation["teacher"]), **distillation["audio"])
    built = teacher_outputs(config)
    monkeypatch.setattr(teacher_module, "_compute", lambda *args: pytest.fail("the teacher ran again"))
    cached = teacher_outputs(config)
    for name in ("logits", "embeddings", "dialogue_id", "utterance_id"):
        assert torch.equal(getattr(cached, name), getattr(built, name))

    teacher_config, record, teacher = load_trained(distillation["teacher"])
    key = teacher_module._key(str(distillation["teacher"]), ExperimentConfig.from_dict({**teacher_config.to_dict(), "precision": "auto"}),
                              record, teacher, "train", {})
    assert key["settings"]["precision"] == "no"  # keyed by what "auto" computes in here: full precision on a CPU
    tokens = [{"input_ids": [2, 7, 3]}]
    retokenised = teacher_module._key(str(distillation["teacher"]), teacher_config, record, teacher, "train", {},
                                      [{"input_ids": [2, 7, 9, 3]}])  # same settings, the rows tokenised otherwise
    assert retokenised != teacher_module._key(str(distillation["teacher"]), teacher_config, record, teacher, "train", {}, tokens)
    rows = load_split(distillation["noisy"], "train")
    some = [0, 5, len(rows) - 1]
    tokens = pad_text([tokenize_rows(rows, teacher.tokenizer, 0, teacher_config.max_length)[i] for i in some], teacher.pad_token_id)
    with torch.no_grad():
        logits, embeddings = teacher.model.eval()({"T": tokens}, with_embedding=True)
    assert torch.allclose(cached.logits[some], logits, atol=1e-5) and torch.allclose(cached.embeddings[some], embeddings, atol=1e-5)
    assert cached.dialogue_id[some].tolist() == rows["dialogue_id"].iloc[some].tolist()


def test_a_text_teachers_rows_are_tokenised_once_when_its_outputs_are_computed(distillation, tmp_path, monkeypatch):
    encoded = []  # the rows of each tokenizer call that makes ids
    encode = text_module._encode
    monkeypatch.setattr(text_module, "_encode", lambda tokenizer, first, *rest: encoded.append(len(first)) or encode(tokenizer, first, *rest))
    outputs = teacher_outputs(ExperimentConfig(cache_dir=str(tmp_path), teacher=str(distillation["teacher"]), **distillation["audio"]))
    assert encoded == [len(load_split(distillation["noisy"], "train"))]  # a cache miss: the key's ids are the pass's
    assert outputs.entries[0].parent == tmp_path and outputs.logits.shape == (encoded[0], 7)


def test_teacher_rows_are_matched_by_id_and_a_row_without_one_is_an_error(distillation, tmp_path):
    outputs = teacher_outputs(ExperimentConfig(cache_dir=str(tmp_path), teacher=str(distillation["teacher"]), **distillation["audio"]))
    rows = load_split(distillation["noisy"], "train")
    shuffled = rows.sample(frac=1.0, random_state=0).reset_index(drop=True)
    columns = aligned_columns(outputs, shuffled, "shuffled")
    by_id = {(d, u): i for i, (d, u) in enumerate(zip(rows["dialogue_id"], rows["utterance_id"]))}
    expected = [by_id[(d, u)] for d, u in zip(shuffled["dialogue_id"], shuffled["utterance_id"])]
    assert torch.equal(columns["teacher_logits"], outputs.logits[expected])

    stranger = shuffled.copy()
    stranger.loc[3, "utterance_id"] = 999
    with pytest.raises(RecognizeError, match=r"no teacher output for Dialogue_ID \d+, Utterance_ID 999 \(elsewhere, row 3\)"):
        aligned_columns(outputs, stranger, "elsewhere")


def test_the_distilled_student_records_its_teacher_and_report_and_a_fused_stage_name_it(distillation, tmp_path):
    teacher = distillation["teacher"]
    student = train(ExperimentConfig(output_dir=str(tmp_path), teacher=str(teacher), **distillation["audio"]))
    record = json.loads((student / "config.json").read_text())
    assert record["experiment"]["teacher"] == str(teacher)
    assert {k: record["distillation"][k] for k in ("run_name", "loss", "weight", "temperature", "modal")} == {
        "run_name": "T--ET(tiny-bert)", "loss": "kd", "weight": 0.5, "temperature": 2.0, "modal": "T"}
    own = "Training Classification (KD from T--ET(tiny-bert), weight 0.5, tau 2)"
    report = CliRunner().invoke(app, ["report", str(tmp_path), "--format", "csv"])
    assert report.exit_code == 0, report.output
    assert own in report.output

    fused = train(ExperimentConfig(**{**distillation["audio"], "modal": "T+A", "fusion": "concat", "epochs": 1},
                                   text_model=json.loads((teacher / "config.json").read_text())["experiment"]["text_model"],
                                   pooling="mean", init_from=[str(teacher), str(student)], output_dir=str(tmp_path / "fused")))
    lineage = json.loads((fused / "config.json").read_text())["lineage"]
    assert [entry["loaded"] for entry in lineage] == [["encoders.T"], ["encoders.A"]]
    assert record_stages(json.loads((fused / "config.json").read_text())) == (
        f"(Text-only Full Tuning + Audio-only {own}) -> Training Classification")


@pytest.mark.parametrize("flags, message", [
    (["--distill", "kd"], "--distill: only with --teacher"),
    (["--teacher", "TEACHER", "--distill", "mse"], "--distill: unknown value 'mse'"),
    (["--teacher", "TEACHER", "--distill-weight", "1.5"], "--distill-weight: kd's weight is a share in [0, 1]"),
    (["--teacher", "TEACHER", "--distill", "feature"], "--distill feature: a frozen single-modality student"),
    (["--teacher", "TEACHER", "--distill", "dist+feature"], "--distill dist+feature: a frozen single-modality student"),
    (["--teacher", "TEACHER", "--feature-weight", "2"], "--feature-weight, --feature-temperature: only with --distill kd+feature"),
    (["--feature-temperature", "0.2"], "--feature-temperature: only with --teacher"),
    (["--teacher", "TEACHER", "--label-type", "sentiment"], "predicts emotion, this run sentiment"),
    (["--teacher", "NOWHERE"], "not a checkpoint folder"),
])
def test_bad_distillation_flags_are_one_line_errors_before_training(distillation, tmp_path, flags, message):
    audio = distillation["audio"]
    flags = [str(distillation["teacher"]) if f == "TEACHER" else str(tmp_path / "nowhere") if f == "NOWHERE" else f for f in flags]
    result = CliRunner().invoke(app, ["train", audio["data"], "--modal", "A", "--mode", "frozen", "--audio-model", audio["audio_model"],
                                      "--output-dir", str(tmp_path), *flags])
    assert result.exit_code == 1 and message in result.output.replace("\n", "")
    assert not any(tmp_path.iterdir())


def test_a_resumed_feature_student_equals_an_uninterrupted_one(distillation, tmp_path, monkeypatch):
    # the projection to the teacher's width lives outside the model: its weights must be in the saved state too
    def config(folder: str) -> ExperimentConfig:
        return ExperimentConfig(data=str(distillation["noisy"]), modal="T", mode="full", text_model=str(distillation["student_bert"]),
                                lr=5e-4, epochs=4, batch_size=16, pooling="mean", teacher=str(distillation["teacher"]),
                                distill="feature", output_dir=str(tmp_path / folder))
    uninterrupted = train(config("whole"))
    save_state = engine.save_state

    def save_then_die(run_dir, state, *args):
        save_state(run_dir, state, *args)
        if state.epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(engine, "save_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(config("parts"))
    monkeypatch.setattr(engine, "save_state", save_state)
    resumed = train(config("parts"), resume=True)
    losses = [[row["train_loss"] for row in csv.DictReader((folder / "history.csv").open())] for folder in (uninterrupted, resumed)]
    assert losses[0] == losses[1]
    a, b = (load_file(str(folder / "model.safetensors")) for folder in (uninterrupted, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_with_seeds_each_student_learns_from_the_same_seed_of_a_seeded_teacher(distillation, tmp_path):
    teacher_config = json.loads((distillation["teacher"] / "config.json").read_text())["experiment"]
    teachers = train_seeds(ExperimentConfig.from_dict({**teacher_config, "epochs": 1, "output_dir": str(tmp_path / "teachers")}), [1, 2])
    students = train_seeds(ExperimentConfig(teacher=str(teachers), output_dir=str(tmp_path / "students"),
                                            **{**distillation["audio"], "epochs": 1}), [1, 2])
    for seed in (1, 2):
        record = json.loads((students / f"seed-{seed}" / "config.json").read_text())
        assert record["experiment"]["teacher"] == str(teachers / f"seed-{seed}")
        assert record["distillation"]["teacher"] == str(teachers / f"seed-{seed}")


def outputs_of(folder: str, logits: list[list[float]], ids: list[tuple[int, int]]) -> teacher_module.TeacherOutputs:
    """A teacher's outputs made by hand: `logits` for the rows `ids` (dialogue, utterance)."""
    return teacher_module.TeacherOutputs(folder, {"run_name": "T--ET(x)"}, torch.tensor(logits), torch.randn(len(ids), 4),
                                         torch.tensor([d for d, _ in ids]), torch.tensor([u for _, u in ids]),
                                         entries=(Path(folder) / "entry",))


def test_an_ensemble_teachers_probabilities_are_its_seeds_mean_on_rows_matched_by_id():
    ids = [(0, 0), (0, 1), (3, 0)]
    first = outputs_of("s/seed-1", [[2.0, 0.5, -0.5], [0.0, 1.0, 1.5], [-200.0, 0.0, 200.0]], ids)
    second = outputs_of("s/seed-2", [[-200.0, 0.0, 200.0], [1.0, -1.0, 3.0], [0.0, 0.0, 0.0]], list(reversed(ids)))  # rows reordered
    ensemble = teacher_module.ensemble_outputs("s", [first, second])
    second_by_row = {(0, 0): [0.0, 0.0, 0.0], (0, 1): [1.0, -1.0, 3.0], (3, 0): [-200.0, 0.0, 200.0]}
    for row, key in enumerate(ids):
        expected = [(a + b) / 2 for a, b in zip(softmax(first.logits[row].tolist()), softmax(second_by_row[key]))]
        assert ensemble.logits[row].softmax(-1).tolist() == pytest.approx(expected, abs=1e-6)
    assert torch.isfinite(ensemble.logits).all()  # in row 2 both seeds give class 0 exp(-400): 0 in float32, yet no log(0)
    assert ensemble.dialogue_id.tolist() == [0, 0, 3] and ensemble.embeddings.shape == (3, 0)
    assert ensemble.members == ("s/seed-1", "s/seed-2") and ensemble.name == "the 2-seed ensemble of T--ET(x)"
    stranger = outputs_of("s/seed-3", [[0.0, 0.0, 0.0]] * 3, [(0, 0), (0, 1), (4, 0)])
    with pytest.raises(RecognizeError, match=r"s/seed-3: no teacher output for Dialogue_ID 3, Utterance_ID 0 \(the rows of s/seed-1, row 2\)"):
        teacher_module.ensemble_outputs("s", [first, stranger])


def test_with_teacher_ensemble_every_student_learns_from_all_the_teachers_seeds(distillation, tmp_path):
    teacher_config = json.loads((distillation["teacher"] / "config.json").read_text())["experiment"]
    teachers = train_seeds(ExperimentConfig.from_dict({**teacher_config, "epochs": 1, "output_dir": str(tmp_path / "teachers")}), [1, 2])
    student = ExperimentConfig(teacher=str(teachers), teacher_ensemble=True, cache_dir=str(tmp_path / "cache"),
                               output_dir=str(tmp_path / "students"), **{**distillation["audio"], "epochs": 1})
    students = train_seeds(student, [1, 2])
    members = [str(teachers / "seed-1"), str(teachers / "seed-2")]
    for seed in (1, 2):
        record = json.loads((students / f"seed-{seed}" / "config.json").read_text())
        assert record["experiment"]["teacher"] == str(teachers) and record["experiment"]["teacher_ensemble"] is True
        assert record["distillation"]["teacher"] == str(teachers) and record["distillation"]["members"] == members
        assert record_stages(record) == "Training Classification (KD from the 2-seed ensemble of T--ET(tiny-bert), weight 0.5, tau 2)"
    each = [teacher_outputs(ExperimentConfig.from_dict({**student.to_dict(), "teacher": folder, "teacher_ensemble": False}))
            for folder in members]
    together = teacher_outputs(student)
    assert torch.allclose(together.logits.softmax(-1), (each[0].logits.softmax(-1) + each[1].logits.softmax(-1)) / 2, atol=1e-6)
    assert together.entries == (each[0].entries[0], each[1].entries[0])  # each seed's outputs cached as one teacher's


@pytest.mark.parametrize("flags, message", [
    (["--teacher-ensemble"], "--teacher-ensemble: only with --teacher"),
    (["--teacher", "TEACHER", "--teacher-ensemble"], "holds 0 seed-* checkpoint folder(s); an ensemble teacher is a `train --seeds`"),
    (["--teacher", "TEACHER", "--teacher-ensemble", "--mode", "full", "--distill", "kd+feature"],
     "--teacher-ensemble: --distill kd+feature matches the head's input vectors"),
])
def test_bad_ensemble_teacher_flags_are_one_line_errors_before_training(distillation, tmp_path, flags, message):
    audio = distillation["audio"]
    flags = [str(distillation["teacher"]) if f == "TEACHER" else f for f in flags]
    result = CliRunner().invoke(app, ["train", audio["data"], "--modal", "A", "--mode", "frozen", "--audio-model", audio["audio_model"],
                                      "--output-dir", str(tmp_path), *flags])
    assert result.exit_code == 1 and message in result.output.replace("\n", ""), result.output
    assert not any(tmp_path.iterdir())
