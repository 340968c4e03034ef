"""The fixed sound-event vocabulary: plain-English class names, order stable.

`SOUND_LABELS` is the class list of the perception model's sound head; append new classes at the end only, never
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
    # appended 2026-12 (new packages): keep appending
    "piano",
    "harpsichord",
    "trumpet",
    "cello",
    "xylophone",
    "clock ticking",
    "coins",
    "artillery fire",
    "insect buzzing",
    # appended 2026-12 (0ad-data, redeclipse-data, supertuxkart-data, torcs-data, warmux-data ...)
    "elephant",
    "lion roaring",
    "goat bleating",
    "rustling leaves",
    "waterfall",
    "outdoor nature ambience",
    "arrow",
    "wood impact",
    "keyboard typing",
    "tire squeal",
    "engine revving",
    "train",
    "traffic noise",
    "crash",
    "fireworks",
    "firecracker",
    "whip crack",
    "slap",
    "applause",
    "grunting",
    "snoring",
    "crowd chatter",
    "dripping",
    "chainsaw",
    "jackhammer",
    "typewriter",
    "flute",
]

_CATEGORIES: dict[str, tuple[str, ...]] = {
    "human": ("speech", "laughter", "coughing", "scream", "groaning", "crowd cheering", "footsteps", "applause",
              "grunting", "snoring", "crowd chatter"),
    "animal": (
        "dog barking", "growling", "wolf howling", "horse", "cow mooing", "pig oinking", "sheep bleating",
        "chicken clucking", "rooster crowing", "bird song", "bird call", "crickets chirping", "frog croaking",
        "bee buzzing", "insect buzzing", "elephant", "lion roaring", "goat bleating",
    ),
    "nature": ("rain", "thunder", "wind", "fire crackling", "water flowing", "water splashing", "ocean waves",
               "bubbling", "hissing", "rustling leaves", "waterfall", "outdoor nature ambience", "dripping"),
    "vehicle": ("car horn", "siren", "helicopter", "airplane", "engine running", "tire squeal", "engine revving",
                "train", "traffic noise"),
    "impact": ("gunshot", "machine gun", "explosion", "sword clash", "whoosh", "thud", "metal clanging",
               "glass breaking", "artillery fire", "arrow", "wood impact", "crash", "fireworks", "firecracker",
               "whip crack", "slap"),
    "household": ("door", "toilet flush", "camera shutter", "telephone ringing", "alarm", "bell", "beep", "click",
                  "hammering", "sawing", "chopping wood", "machinery", "clock ticking", "coins", "keyboard typing",
                  "chainsaw", "jackhammer", "typewriter"),
    "music": ("drum", "cymbal", "guitar", "music", "piano", "harpsichord", "trumpet", "cello", "xylophone", "flute"),
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
    "guitar": "a guitar", "music": "music", "piano": "a piano", "harpsichord": "a harpsichord",
    "trumpet": "a trumpet", "cello": "a cello", "xylophone": "a xylophone", "clock ticking": "a clock ticking",
    "coins": "coins clinking", "artillery fire": "artillery fire", "insect buzzing": "an insect buzzing",
    "elephant": "an elephant", "lion roaring": "a lion roaring", "goat bleating": "a goat bleating",
    "rustling leaves": "leaves rustling", "waterfall": "a waterfall",
    "outdoor nature ambience": "the countryside outdoors", "arrow": "an arrow being shot or striking",
    "wood impact": "wood being struck", "keyboard typing": "typing on a keyboard", "tire squeal": "tires squealing",
    "engine revving": "an engine revving", "train": "a train", "traffic noise": "road traffic", "crash": "a crash",
    "fireworks": "fireworks", "firecracker": "a firecracker", "whip crack": "a whip cracking", "slap": "a slap",
    "applause": "applause", "grunting": "someone grunting", "snoring": "someone snoring",
    "crowd chatter": "people chattering", "dripping": "water dripping", "chainsaw": "a chainsaw",
    "jackhammer": "a jackhammer", "typewriter": "a typewriter", "flute": "a flute",
}

# Each label's class in the AudioSet ontology (display name as in AudioSet's class_labels_indices.csv, which
# ships with the `whisper-at` package): captions keep our plain words, reports and the perception file carry
# the standard name, so the set can grow toward AudioSet's 527 classes and be compared with AudioSet taggers.
AUDIOSET_NAME: dict[str, str] = {
    "speech": "Speech", "laughter": "Laughter", "coughing": "Cough", "scream": "Screaming", "groaning": "Groan",
    "crowd cheering": "Cheering", "footsteps": "Walk, footsteps", "dog barking": "Bark", "growling": "Growling",
    "wolf howling": "Howl", "horse": "Horse", "cow mooing": "Moo", "pig oinking": "Oink", "sheep bleating": "Bleat",
    "chicken clucking": "Cluck", "rooster crowing": "Crowing, cock-a-doodle-doo", "bird song": "Chirp, tweet",
    "bird call": "Bird vocalization, bird call, bird song", "crickets chirping": "Cricket", "frog croaking": "Croak",
    "bee buzzing": "Bee, wasp, etc.", "rain": "Rain", "thunder": "Thunder", "wind": "Wind",
    "fire crackling": "Crackle", "water flowing": "Stream", "water splashing": "Splash, splatter",
    "ocean waves": "Waves, surf", "bubbling": "Boiling", "hissing": "Hiss",
    "car horn": "Vehicle horn, car horn, honking", "siren": "Siren", "helicopter": "Helicopter",
    "airplane": "Fixed-wing aircraft, airplane", "engine running": "Engine", "gunshot": "Gunshot, gunfire",
    "machine gun": "Machine gun", "explosion": "Explosion", "sword clash": "Clang", "whoosh": "Whoosh, swoosh, swish",
    "thud": "Thump, thud", "metal clanging": "Clang", "glass breaking": "Glass", "door": "Door",
    "toilet flush": "Toilet flush", "camera shutter": "Camera", "telephone ringing": "Telephone bell ringing",
    "alarm": "Alarm", "bell": "Bell", "beep": "Beep, bleep", "click": "Clicking", "hammering": "Hammer",
    "sawing": "Sawing", "chopping wood": "Chop", "machinery": "Mechanisms", "drum": "Drum", "cymbal": "Cymbal",
    "guitar": "Guitar", "music": "Music", "piano": "Piano", "harpsichord": "Harpsichord", "trumpet": "Trumpet",
    "cello": "Cello", "xylophone": "Marimba, xylophone", "clock ticking": "Tick", "coins": "Coin (dropping)",
    "artillery fire": "Artillery fire", "insect buzzing": "Insect",
    "elephant": "Wild animals", "lion roaring": "Roaring cats (lions, tigers)", "goat bleating": "Goat",
    "rustling leaves": "Rustling leaves", "waterfall": "Waterfall",
    "outdoor nature ambience": "Outside, rural or natural", "arrow": "Arrow", "wood impact": "Wood",
    "keyboard typing": "Computer keyboard", "tire squeal": "Tire squeal",
    "engine revving": "Accelerating, revving, vroom", "train": "Train",
    "traffic noise": "Traffic noise, roadway noise", "crash": "Smash, crash", "fireworks": "Fireworks",
    "firecracker": "Firecracker", "whip crack": "Whip", "slap": "Slap, smack", "applause": "Applause",
    "grunting": "Grunt", "snoring": "Snoring", "crowd chatter": "Hubbub, speech noise, speech babble",
    "dripping": "Drip", "chainsaw": "Chainsaw", "jackhammer": "Jackhammer", "typewriter": "Typewriter",
    "flute": "Flute",
}

assert len(set(SOUND_LABELS)) == len(SOUND_LABELS)
assert set(LABEL_CATEGORY) == set(SOUND_LABELS) == set(LABEL_PHRASE) == set(AUDIOSET_NAME)
