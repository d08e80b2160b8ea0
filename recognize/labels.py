"""The label sets of MELD, each in one fixed index order that every checkpoint records."""

EMOTIONS: tuple[str, ...] = ("neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear")
SENTIMENTS: tuple[str, ...] = ("neutral", "positive", "negative")

LABELS: dict[str, tuple[str, ...]] = {"emotion": EMOTIONS, "sentiment": SENTIMENTS}
"""Task name -> class names; a class's index is its position here."""

SENTIMENTS_OF_EMOTION: dict[str, frozenset[str]] = {
    "neutral": frozenset({"neutral"}), "joy": frozenset({"positive"}), "surprise": frozenset({"positive", "negative"}),
    **{emotion: frozenset({"negative"}) for emotion in ("anger", "sadness", "disgust", "fear")},
}
"""The sentiments MELD's annotation gives each emotion: surprise either way, the others one;
every row of MELD's three splits keeps to it, so a row that does not points to an edited column."""

CSV_COLUMN: dict[str, str] = {"emotion": "Emotion", "sentiment": "Sentiment"}
"""Task name -> the MELD CSV column that holds its label."""

TASK_LETTER: dict[str, str] = {"emotion": "E", "sentiment": "S"}
