"""The label sets of MELD, each in one fixed index order that every checkpoint records."""

EMOTIONS: tuple[str, ...] = ("neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear")
SENTIMENTS: tuple[str, ...] = ("neutral", "positive", "negative")

LABELS: dict[str, tuple[str, ...]] = {"emotion": EMOTIONS, "sentiment": SENTIMENTS}
"""Task name -> class names; a class's index is its position here."""

CSV_COLUMN: dict[str, str] = {"emotion": "Emotion", "sentiment": "Sentiment"}
"""Task name -> the MELD CSV column that holds its label."""

TASK_LETTER: dict[str, str] = {"emotion": "E", "sentiment": "S"}
