"""The fixed sound-event vocabulary: plain-English class names, order stable.

`SOUND_LABELS` is the class list of the tagging head; append new classes at the end only, never
reorder or rename (a checkpoint's output units are indexed by position).
"""

from __future__ import annotations

SOUND_LABELS: list[str] = [
    # human
    "speech",
    "laughter",
    "coughing",
    "scream",
    "groaning",
    "crowd cheering",
    "footsteps",
    # animals
    "dog barking",
    "growling",
    "wolf howling",
    "horse",
    "cow mooing",
    "pig oinking",
    "sheep bleating",
    "chicken clucking",
    "rooster crowing",
    "bird song",
    "bird call",
    "crickets chirping",
    "frog croaking",
    "bee buzzing",
    # nature
    "rain",
    "thunder",
    "wind",
    "fire crackling",
    "water flowing",
    "water splashing",
    "ocean waves",
    "bubbling",
    "hissing",
    # vehicles
    "car horn",
    "siren",
    "helicopter",
    "airplane",
    "engine running",
    # weapons and impacts
    "gunshot",
    "machine gun",
    "explosion",
    "sword clash",
    "whoosh",
    "thud",
    "metal clanging",
    "glass breaking",
    # household, tools, signals
    "door",
    "toilet flush",
    "camera shutter",
    "telephone ringing",
    "alarm",
    "bell",
    "beep",
    "click",
    "hammering",
    "sawing",
    "chopping wood",
    "machinery",
    # music
    "drum",
    "cymbal",
    "guitar",
    "music",
]

_CATEGORIES: dict[str, tuple[str, ...]] = {
    "human": ("speech", "laughter", "coughing", "scream", "groaning", "crowd cheering", "footsteps"),
    "animal": (
        "dog barking", "growling", "wolf howling", "horse", "cow mooing", "pig oinking", "sheep bleating",
        "chicken clucking", "rooster crowing", "bird song", "bird call", "crickets chirping", "frog croaking",
        "bee buzzing",
    ),
    "nature": ("rain", "thunder", "wind", "fire crackling", "water flowing", "water splashing", "ocean waves",
               "bubbling", "hissing"),
    "vehicle": ("car horn", "siren", "helicopter", "airplane", "engine running"),
    "impact": ("gunshot", "machine gun", "explosion", "sword clash", "whoosh", "thud", "metal clanging",
               "glass breaking"),
    "household": ("door", "toilet flush", "camera shutter", "telephone ringing", "alarm", "bell", "beep", "click",
                  "hammering", "sawing", "chopping wood", "machinery"),
    "music": ("drum", "cymbal", "guitar", "music"),
}

# label -> coarse category ("human", "animal", "nature", "vehicle", "impact", "household", "music")
LABEL_CATEGORY: dict[str, str] = {label: cat for cat, labels in _CATEGORIES.items() for label in labels}

# How a category reads in a sentence ("a sound of nature").
CATEGORY_PHRASE: dict[str, str] = {
    "human": "a human sound",
    "animal": "an animal sound",
    "nature": "a sound of nature",
    "vehicle": "a vehicle sound",
    "impact": "an impact or weapon sound",
    "household": "a household or mechanical sound",
    "music": "a musical sound",
}

# How each label reads after "the sound of" in a caption.
LABEL_PHRASE: dict[str, str] = {
    "speech": "speech", "laughter": "laughter", "coughing": "someone coughing", "scream": "a scream",
    "groaning": "someone groaning in pain", "crowd cheering": "a crowd cheering", "footsteps": "footsteps",
    "dog barking": "a dog barking", "growling": "an animal growling", "wolf howling": "a wolf howling",
    "horse": "a horse", "cow mooing": "a cow mooing", "pig oinking": "a pig oinking",
    "sheep bleating": "sheep bleating", "chicken clucking": "a chicken clucking",
    "rooster crowing": "a rooster crowing", "bird song": "birds singing", "bird call": "a bird calling",
    "crickets chirping": "crickets chirping", "frog croaking": "frogs croaking", "bee buzzing": "bees buzzing",
    "rain": "rain", "thunder": "thunder", "wind": "wind", "fire crackling": "a fire crackling",
    "water flowing": "flowing water", "water splashing": "water splashing", "ocean waves": "ocean waves",
    "bubbling": "bubbling liquid", "hissing": "hissing", "car horn": "a car horn", "siren": "a siren",
    "helicopter": "a helicopter", "airplane": "an airplane", "engine running": "an engine running",
    "gunshot": "a gunshot", "machine gun": "machine gun fire", "explosion": "an explosion",
    "sword clash": "swords clashing", "whoosh": "a whoosh", "thud": "a thud", "metal clanging": "metal clanging",
    "glass breaking": "glass breaking", "door": "a door", "toilet flush": "a toilet flushing",
    "camera shutter": "a camera shutter", "telephone ringing": "a telephone ringing", "alarm": "an alarm",
    "bell": "a bell", "beep": "a beep", "click": "a click", "hammering": "hammering", "sawing": "sawing",
    "chopping wood": "wood being chopped", "machinery": "machinery", "drum": "a drum", "cymbal": "a cymbal",
    "guitar": "a guitar", "music": "music",
}

assert len(set(SOUND_LABELS)) == len(SOUND_LABELS)
assert set(LABEL_CATEGORY) == set(SOUND_LABELS) == set(LABEL_PHRASE)
