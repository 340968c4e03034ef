"""Per-package labelling rules: a file's path inside its package -> one label of SOUND_LABELS, or skip.

Each package lists `Rule(pattern, label, group)`s; the first whose regex `re.search`es the lowercased
path wins, and a file no rule matches is skipped (counted as "unlabelled"). A rule with label None skips
on purpose (voice acknowledgements, music, UI blips). Paths inside a game archive (.pk3 is a zip) read
"<archive path>!<member path>".

`group` names the source recording, so variants of one sound never straddle the train/validation split.
It is a template over:
  {stem}  the file name without extension and without one trailing variant number ("rain2" -> "rain",
          "behemoth_attack1c" -> "behemoth_attack", "bird1_00" -> "bird1")
  {dir}   the parent folder, {dir2} the one above it
  {m}     the rule regex's first capture group
  {label} the label
The source id is "<package>:<group>"; byte-identical files are kept once whatever their names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .labels import SOUND_LABELS

AUDIO_EXTENSIONS = (".ogg", ".oga", ".wav", ".flac", ".mp3")


@dataclass(frozen=True)
class Rule:
    pattern: str
    label: str | None
    group: str = "{stem}"

    def __post_init__(self) -> None:
        if self.label is not None and self.label not in SOUND_LABELS:
            raise ValueError(f"rule {self.pattern!r}: {self.label!r} is not in SOUND_LABELS")
        re.compile(self.pattern)


@dataclass(frozen=True)
class PackageSpec:
    rules: tuple[Rule, ...]
    archives: tuple[str, ...] = ()  # globs of zip archives (.pk3, .wz) inside the package to read members of
    note: str = ""
    # recorded speech: (regex on the path, voice, gender); the first that matches names the speaker of a file
    speakers: tuple[tuple[str, str, str], ...] = ()

    def speaker(self, path: str) -> tuple[str, str] | None:
        """(voice, gender) of the file at `path`, if the package says who speaks in it."""
        low = path.lower()
        return next(((voice, gender) for pattern, voice, gender in self.speakers if re.search(pattern, low)), None)


def _b(name: str) -> str:
    """Regex for a file whose base name is `name` plus an optional variant number."""
    return rf"(?:^|/)(?:{name})[-_ .]?\d*[a-z]?\.[a-z0-9]+$"


_SKIP_COMMON = (
    Rule(r"/music/", None),
    Rule(r"(?:^|/)usr/share/doc/", None),
)

_DRUM_RULES = (
    Rule(r"(?:^|/)[^/]*loop[^/]*$", None),
    Rule(r"/varibreaks/|/beats_", None),
    Rule(r"(?<![a-z])(crash|ride|hi-?hat|hhat|hat|splash|china|cymbal)", "cymbal", "{dir}:{m}"),
    Rule(r"(?<![a-z])(kick|bass-?drum|bd|snare|tom|floortom|conga|bongo|cajon|djembe)", "drum", "{dir}:{m}"),
)



def _asterisk(folder: str, voice: str, gender: str, who: str) -> PackageSpec:
    """A package of asterisk's telephone prompts: one speaker, 8 kHz; words, not digits or silences."""
    return PackageSpec(note=f"telephone prompts recorded by {who}, 8 kHz: real speech with a known gender",
                       speakers=((rf"/{folder}/", voice, gender),),
                       rules=(Rule(rf"sounds/{folder}/(?:[a-z-]+/)?[a-z][a-z0-9-]*\.wav$", "speech", "{stem}"),))


_0AD = r"public\.zip!audio/"  # 0ad-data's sounds are members of public.zip
_TORCS_ENGINES = (  # the per-car engine samples that torcs-data's cars/*.xml name
    r"206_engine|935|944|alpha-romeo|cleanviper|clkdtmb2|corolla1400hi2|engine-1|evo7_engine(?:_f)?|f360"
    r"|ferrarif355|ferrarif50|ford1b|ford2c|gt40|impreza2002_engine|lamborghinidiablo|lotus|mclarenf1|nsx"
    r"|porsche_engine|renault-v10|viper2|viper_long|xj220"
)

PACKAGES: dict[str, PackageSpec] = {
    "megaglest-data": PackageSpec(
        note="RTS: animals, ambience (tilesets), combat; unit voice lines (_ack/_select) skipped",
        rules=_SKIP_COMMON + (
            Rule(r"/menu/", None),
            Rule(r"tilesets/[^/]+/sounds/rain", "rain"),
            Rule(r"tilesets/[^/]+/sounds/wind", "wind"),
            Rule(r"tilesets/[^/]+/sounds/(?:owl|hawk)", "bird call"),
            Rule(r"tilesets/[^/]+/sounds/rooster", "rooster crowing"),
            Rule(r"tilesets/[^/]+/sounds/chicken", "chicken clucking"),
            Rule(r"tilesets/[^/]+/sounds/wolf", "wolf howling"),
            Rule(r"tilesets/[^/]+/sounds/mudchute_cow", "cow mooing"),
            Rule(_b(r"(?:cow|bull)_(?:ack|die|select|attack)"), "cow mooing", "{dir2}:{stem}"),
            Rule(_b(r"pig_(?:ack|die|select|attack)"), "pig oinking", "{dir2}:{stem}"),
            Rule(_b(r"chicken_(?:ack|die|select|standing)"), "chicken clucking", "{dir2}:{stem}"),
            Rule(_b(r"sheep(?:_die)?"), "sheep bleating", "{dir2}:{stem}"),
            Rule(_b(r"bee"), "bee buzzing"),
            Rule(_b(r"eagle_(?:ack|die|select|attack)"), "bird call"),
            Rule(_b(r"horseman_walk"), "horse"),
            Rule(_b(r"swordman_attack"), "sword clash"),
            Rule(_b(r"worker_harvest_wood"), "chopping wood"),
            Rule(_b(r"anvil"), "hammering"),
        ),
    ),
    "hedgewars-data": PackageSpec(
        note="artillery game: voice packs (laughs, coughs, pain), weapons; spoken phrases skipped (text unsure)",
        rules=_SKIP_COMMON + (
            Rule(r"/voices/robot/", None),
            Rule(r"/voices/[^/]+/laugh", "laughter", "{dir}:{stem}"),
            Rule(r"/voices/[^/]+/poisoncough", "coughing", "{dir}:{stem}"),
            Rule(r"/voices/[^/]+/(?:ow|ooff|ouch|poisonmoan)\d*\.", "groaning", "{dir}:{stem}"),
            Rule(r"/voices/", None),
            Rule(r"sounds/explosion\.", "explosion"),
            Rule(r"sounds/shotgunfire\.", "gunshot"),
            Rule(r"sounds/gun\.", "gunshot"),
            Rule(r"sounds/minigun\.", "machine gun"),
            Rule(r"sounds/splash\.", "water splashing"),
            Rule(r"sounds/steps\.", "footsteps"),
            Rule(r"sounds/bee\.", "bee buzzing"),
            Rule(r"sounds/plane\.", "airplane"),
            Rule(r"sounds/shutterclick\.", "camera shutter"),
            Rule(r"sounds/beep\.", "beep"),
            Rule(r"sounds/steam\.", "hissing"),
        ),
    ),
    "wesnoth-1.16-data": PackageSpec(
        note="turn-based strategy: animals, combat, ambience",
        rules=_SKIP_COMMON + (
            Rule(r"ambient/birds", "bird song"),
            Rule(r"ambient/campfire", "fire crackling"),
            Rule(r"ambient/wardrums", "drum"),
            Rule(_b(r"explosion"), "explosion"),
            Rule(_b(r"gunshot|thunderstick"), "gunshot"),
            Rule(_b(r"lightning"), "thunder"),
            Rule(_b(r"horse-(?:elf-)?canter|horse-die|horse-hit"), "horse"),
            Rule(_b(r"human-(?:female-|old-)?(?:die|hit)|dwarf-(?:die|hit)|elf-hit|groan"), "groaning"),
            Rule(_b(r"dwarf-laugh|witches-laugh"), "laughter"),
            Rule(_b(r"wolf-growl"), "growling"),
            Rule(_b(r"sword"), "sword clash"),
            Rule(_b(r"hiss|hiss-big"), "hissing"),
            Rule(_b(r"dagger-swish|(?:club|mace|staff|flail|hatchet|spear)-miss"), "whoosh"),
        ),
    ),
    "widelands-data": PackageSpec(
        note="settlers-like: animals, crafts (hammering, sawing, woodcutting)",
        rules=_SKIP_COMMON + (
            Rule(r"sound/animals/(bird\d)", "bird song", "{m}"),
            Rule(r"sound/animals/crickets", "crickets chirping"),
            Rule(r"sound/animals/frog", "frog croaking"),
            Rule(r"sound/animals/wolf", "wolf howling"),
            Rule(r"sound/farm/horse", "horse"),
            Rule(r"sound/farm/ox", "cow mooing"),
            Rule(r"sound/farm/sheep", "sheep bleating"),
            Rule(r"sound/hammering/|sound/smiths/smith", "hammering"),
            Rule(r"sound/atlanteans/saw/|sound/sawmill/", "sawing"),
            Rule(r"sound/woodcutting/(?:fast_)?woodcutting", "chopping wood"),
            Rule(r"sound/empire/(?:beer|wine)bubble", "bubbling"),
        ),
    ),
    "scorched3d-data": PackageSpec(
        note="artillery game: vehicles, animals, weather, explosions",
        rules=_SKIP_COMMON + (
            Rule(r"explosions/(?:exp|large|medium|small|xlarge|tank|napalm)\.", "explosion"),
            Rule(r"explosions/(?:lightning|lightningbolt|thunder)\.|misc/thunder", "thunder"),
            Rule(r"explosions/bees\.", "bee buzzing"),
            Rule(r"misc/carhorn", "car horn"),
            Rule(r"misc/(?:policecar|firetruck)", "siren"),
            Rule(r"misc/(?:apache|helicopter)", "helicopter"),
            Rule(r"misc/(?:cessna|f16|f18|jet)\d*\.", "airplane"),
            Rule(r"misc/cheeringloop", "crowd cheering"),
            Rule(r"misc/factoryloop", "machinery"),
            Rule(r"misc/(?:cows|moo)\.", "cow mooing"),
            Rule(r"misc/dog", "dog barking"),
            Rule(r"misc/rooster", "rooster crowing"),
            Rule(r"misc/scream", "scream"),
            Rule(r"misc/sheep", "sheep bleating"),
            Rule(r"misc/(?:birdchirp|birds)", "bird song"),
            Rule(r"misc/camera", "camera shutter"),
            Rule(r"misc/frogs", "frog croaking"),
            Rule(r"misc/gull", "bird call"),
            Rule(r"misc/oceanwaves", "ocean waves"),
            Rule(r"misc/rain", "rain"),
            Rule(r"misc/splash", "water splashing"),
            Rule(r"misc/wolf", "wolf howling"),
            Rule(r"misc/beep", "beep"),
            Rule(r"shoot/machinegun", "machine gun"),
            Rule(r"shoot/shotgun", "gunshot"),
        ),
    ),
    "minetest-data": PackageSpec(
        note="voxel sandbox: clean foley (doors, footsteps, glass, fire)",
        rules=_SKIP_COMMON + (
            Rule(r"/devtest/", None),
            Rule(_b(r"default_break_glass"), "glass breaking"),
            Rule(_b(r"doors_(?:door|steel_door|glass_door|fencegate)_(?:open|close)"), "door"),
            Rule(_b(r"xpanes_steel_bar_door_(?:open|close)"), "door"),
            Rule(_b(r"default_[a-z]+_footstep"), "footsteps"),
            Rule(_b(r"default_cool_lava|fire_extinguish_flame"), "hissing"),
            Rule(_b(r"env_sounds_water"), "water flowing"),
            Rule(_b(r"fire_(?:fire|small|large)|default_furnace_active"), "fire crackling"),
            Rule(_b(r"tnt_explode"), "explosion"),
        ),
    ),
    "minetest-mod-homedecor": PackageSpec(
        note="minetest home decor: shower, toilet, faucet, doors, doorbell",
        rules=_SKIP_COMMON + (
            Rule(_b(r"homedecor_shower|homedecor_faucet"), "water flowing"),
            Rule(_b(r"homedecor_toilet_flush"), "toilet flush"),
            Rule(_b(r"homedecor_door_(?:open|close)"), "door"),
            Rule(_b(r"homedecor_doorbell"), "bell"),
            Rule(_b(r"fire_small"), "fire crackling"),
            Rule(_b(r"fire_extinguish"), "hissing"),
        ),
    ),
    "minetest-mod-mesecons": PackageSpec(
        note="minetest circuits: noteblock drums, switches",
        rules=_SKIP_COMMON + (
            Rule(_b(r"mesecons_noteblock_(?:snare|kick)"), "drum"),
            Rule(_b(r"mesecons_noteblock_(?:hihat|crash|litecrash)"), "cymbal"),
            Rule(_b(r"mesecons_button_(?:push|pop)|mesecons_lever|mesecons_switch"), "click"),
        ),
    ),
    "minetest-mod-nether": PackageSpec(rules=(Rule(_b(r"nether_lava_bubble"), "bubbling"),)),
    "minetest-mod-xdecor": PackageSpec(rules=(Rule(_b(r"xdecor_boiling_water"), "bubbling"),)),
    "minetest-mod-mobs-redo": PackageSpec(rules=(Rule(_b(r"mobs_swing"), "whoosh"),)),
    "minetest-mod-lucky-block": PackageSpec(rules=(Rule(_b(r"lightning"), "thunder"),)),
    "lugaru-data": PackageSpec(
        note="action game: dogs/wolves, footsteps, weather, combat foley",
        rules=_SKIP_COMMON + (
            Rule(r"sounds/alarm\.", "alarm"),
            Rule(r"sounds/bark(?:growl)?\d*\.", "dog barking"),
            Rule(r"sounds/(?:growl|snarl)\d*\.", "growling"),
            Rule(r"sounds/fire(?:start)?\.", "fire crackling"),
            Rule(r"sounds/footstep(?:grass|snow|stone)\d*\.", "footsteps"),
            Rule(r"sounds/hawk\.", "bird call"),
            Rule(r"sounds/(?:high|low|mid|move)?whoosh\.", "whoosh"),
            Rule(r"sounds/clank\d*\.", "sword clash"),
            Rule(r"sounds/wind\.", "wind"),
            Rule(r"sounds/(?:thud|heavyimpact)\.", "thud"),
            Rule(r"sounds/metalhit\.", "metal clanging"),
        ),
    ),
    "sound-theme-freedesktop": PackageSpec(
        note="desktop sound theme",
        rules=(
            Rule(_b(r"alarm-clock-elapsed"), "alarm"),
            Rule(_b(r"bell"), "bell"),
            Rule(_b(r"camera-shutter"), "camera shutter"),
            Rule(_b(r"phone-incoming-call"), "telephone ringing"),
        ),
    ),
    "oxygen-sounds": PackageSpec(rules=(Rule(_b(r"oxygen-im-phone-ring"), "telephone ringing"),)),
    "yaru-theme-sound": PackageSpec(rules=(Rule(_b(r"bell"), "bell"),)),
    "deepin-sound-theme": PackageSpec(rules=(Rule(_b(r"camera-shutter"), "camera shutter"),)),
    "lomiri-sounds": PackageSpec(
        rules=(
            Rule(r"camera/click/camera_click", "camera shutter"),
            Rule(r"ringtones/alarm", "alarm"),
        ),
    ),
    "nexuiz-data": PackageSpec(
        archives=("usr/share/games/nexuiz/data/data.pk3",),
        note="arena shooter (sounds inside data.pk3): weapons, ambience, footsteps",
        rules=(
            Rule(r"sound/ambient/water\.|desertfactory/pipewater_loop", "water flowing"),
            Rule(r"desertfactory/wind(?:howling|outside)_loop", "wind"),
            Rule(r"desertfactory/cricket_loop", "crickets chirping"),
            Rule(r"desertfactory/steam_(?:burst|loop|fade)", "hissing"),
            Rule(r"desertfactory/generator_loop|sound/ambient/(?:machine|machinerydrone)\d*\.", "machinery"),
            Rule(r"sound/weather/rain", "rain"),
            Rule(r"sound/misc/(?:footstep|metalfootstep)\d*\.", "footsteps"),
            Rule(r"sound/misc/(?:hitground|bodyimpact)\d*\.", "thud"),
            Rule(r"player/(?:marine|soldier|specop|fricka|insurrectionist|pyria-skadi)/player/pain",
                 "groaning", "{dir2}:{stem}"),
            Rule(r"player/(?:marine|soldier|specop|fricka|insurrectionist|pyria-skadi)/player/falling\.",
                 "scream", "{dir2}:{stem}"),
            Rule(r"weapons/(?:shotgun_fire|campingrifle_fire)", "gunshot"),
            Rule(r"weapons/uzi_fire", "machine gun"),
            Rule(r"weapons/(?:rocket_impact|grenade_impact|rocket_det|hagexp)", "explosion"),
            Rule(r"sound/kh/alarm", "alarm"),
            Rule(r"sound/misc/mouseclick", "click"),
        ),
    ),
    "openarena-data": PackageSpec(
        archives=("usr/share/games/openarena/baseoa/pak0.pk3",),
        note="arena shooter (sounds inside pak0.pk3): guns, footsteps, fire, wind",
        rules=(
            Rule(r"player/footsteps/(?:boot|step|clank|flesh|splash)\d*\.", "footsteps"),
            Rule(r"weapons/shotgun/sshotf", "gunshot"),
            Rule(r"weapons/machinegun/machgf|weapons/vulcan/vulcanf", "machine gun"),
            Rule(r"weapons/rocket/rocklx|weapons/proxmine/wstbexpl", "explosion"),
            Rule(r"sound/world/(?:fire|firesoft)\d*\.", "fire crackling"),
            Rule(r"sound/world/wind\d*\.", "wind"),
            Rule(r"sound/world/waterfall", "water flowing"),
            Rule(r"sound/world/machinerydrone", "machinery"),
            Rule(r"player/sarge/pain", "groaning"),
            Rule(r"player/sarge/falling", "scream"),
        ),
    ),
    "ufoai-sound": PackageSpec(
        archives=("usr/share/games/ufoai/base/0snd.pk3",),
        note="tactics game (sounds inside 0snd.pk3): footsteps on many floors, doors, weapons, ambience",
        rules=(
            Rule(r"footsteps/(?:carpet|dirt|grass|gravel|linoleum|metal|sand|snow|stone|tile|wood)", "footsteps"),
            Rule(r"doors/(?:door\d-(?:open|close)|open_close|creak_low_short)", "door"),
            Rule(r"misc/breakglass", "glass breaking"),
            Rule(r"ambience/(?:fire|firesoft|smallfire)\d*\.", "fire crackling"),
            Rule(r"ambience/thunder", "thunder"),
            Rule(r"ambience/(?:water|waterfontain)\d*\.", "water flowing"),
            Rule(r"ambience/cricket_loop", "crickets chirping"),
            Rule(r"ambience/arcticwind", "wind"),
            Rule(r"ambience/steam\.", "hissing"),
            Rule(r"ambience/(?:machine|minepump)\.", "machinery"),
            Rule(r"civilians/civfemscream", "scream"),
            Rule(r"(?:civilians|soldiers)/(?:civ)?(?:fe)?malehurt", "groaning"),
            Rule(r"weapons/bullet-(?:smg|chaingun|hmg|rifle-[38]x)", "machine gun"),
            Rule(r"weapons/bullet-(?:pistol|rifle|rifle-1x|sniper|shotgun)\d*\.", "gunshot"),
            Rule(r"weapons/explosion(?:-grenade|-rocket)?\.", "explosion"),
            Rule(r"weapons/melee-swoosh", "whoosh"),
            Rule(r"seq/sword-hit", "sword clash"),
            Rule(r"ugv/diesel-(?:idle|move)", "engine running"),
        ),
    ),
    "wordwarvi-sound": PackageSpec(
        note="arcade shooter: explosions, screams, a car door; synthetic_* skipped",
        rules=(
            Rule(r"synthetic_", None),
            Rule(_b(r"big_explosion|bombexplosion|missile_explosion"), "explosion"),
            Rule(_b(r"toyota_celica_cardoor_sample"), "door"),
            Rule(_b(r"fallingscreamhi"), "scream"),
            Rule(_b(r"metalbang|clang"), "metal clanging"),
            Rule(_b(r"hohoho"), "laughter"),
            Rule(_b(r"ooooof"), "groaning"),
            Rule(_b(r"missile_alarm"), "alarm"),
        ),
    ),
    "warzone2100-data": PackageSpec(
        archives=("usr/share/games/warzone2100/base.wz",),
        note="RTS: weapons, explosions, vehicles, screams (sfx inside base.wz); voice lines skipped",
        rules=(
            Rule(r"!audio/sfx/weapons/(?:mgbar|mgheavy|mgtower|asltmg)", "machine gun"),
            Rule(r"!audio/sfx/weapons/(?:lrgcan|medcan|smlcan|rapdcan|hivelcan|mortar|hwtzflgt)", "artillery fire"),
            Rule(r"!audio/sfx/explons/[a-z]*expl", "explosion"),
            Rule(r"!audio/sfx/explons/scream", "scream"),
            Rule(r"!audio/sfx/interfce/beep", "beep"),
            Rule(r"!audio/sfx/misc/splash|!audio/sfx/weapons/splash", "water splashing"),
            Rule(r"!audio/sfx/(?:misc|building)/steam", "hissing"),
            Rule(r"!audio/sfx/vehicle/(?:tread|tstart|con-move)", "engine running"),
            Rule(r"!audio/sfx/building/build\d", "hammering"),
        ),
    ),
    "heroes-sound-effects": PackageSpec(
        note="arcade game effects (French file names)",
        rules=(
            Rule(_b(r"claxon"), "car horn"),
            Rule(_b(r"explo"), "explosion"),
            Rule(_b(r"foule"), "crowd cheering"),
            Rule(_b(r"clock"), "clock ticking"),
            Rule(_b(r"coins|argent"), "coins"),
        ),
    ),
    "sound-icons": PackageSpec(
        note="short instrument and nature samples for screen readers (Czech file names)",
        rules=(
            Rule(_b(r"canary-long"), "bird song"),
            Rule(_b(r"cembalo"), "harpsichord", "cembalo"),
            Rule(_b(r"cockchafer-gentleman"), "insect buzzing"),
            Rule(_b(r"(?:electric-)?piano"), "piano", "piano"),
            Rule(_b(r"guitar"), "guitar", "guitar"),
            Rule(_b(r"trumpet"), "trumpet", "trumpet"),
            Rule(_b(r"violoncello"), "cello"),
            Rule(_b(r"xylofon"), "xylophone"),
        ),
    ),
    "qabcs-data": PackageSpec(
        note="alphabet game for children: one real recording per pictured thing (animals, vehicles, instruments); "
             "its spoken letters and words, and the things whose sound a name does not tell, skipped",
        rules=tuple(Rule(rf"/all/noises/(?:{names})\.ogg$", label) for label, names in (
            ("dog barking", "dog"), ("rooster crowing", "rooster"), ("clock ticking", "clock|watch"),
            ("helicopter", "helicopter"), ("flute", "flute|western_concert_flute|quena|ney"),
            ("cow mooing", "cow|calf"), ("pig oinking", "pig"), ("sheep bleating", "sheep"), ("horse", "horse|foal"),
            ("frog croaking", "frog"), ("wolf howling", "wolf"), ("lion roaring", "lion|tiger"),
            ("elephant", "elephant"), ("duck quacking", "duck"), ("bird song", "bird|sparrow"),
            ("bird call", "crow|owl|eagle-owl|goose|quail|pheasant|guinea_fowl"),
            ("crickets chirping", "grasshopper"), ("airplane", "airplane"), ("train", "train"),
            ("fire crackling", "fire"), ("whistle", "whistle"), ("engine running", "tractor"),
            ("machinery", "excavator"), ("drum", "drums|bass_drum|slit_drum|timpani"), ("cymbal", "cymbals"),
            ("guitar", "guitar|electric_guitar"), ("piano", "piano|grand_piano"), ("trumpet", "trumpet"),
            ("cello", "cello"), ("xylophone", "xylophone"))),
    ),
    "brainparty-data": PackageSpec(
        note="puzzle game: sheep, breaking glass, explosions, gunshots, a click, a whoosh, a whack; jingles skipped",
        rules=(
            Rule(_b(r"baa"), "sheep bleating"),
            Rule(_b(r"glass_break"), "glass breaking"),
            Rule(_b(r"explosion|soft_boom"), "explosion", "{stem}"),
            Rule(_b(r"gun"), "gunshot"),
            Rule(_b(r"mouse_click"), "click"),
            Rule(_b(r"swoosh_long"), "whoosh"),
            Rule(_b(r"whack"), "slap"),
        ),
    ),
    "madbomber-data": PackageSpec(
        note="arcade game: splashes, explosions, a burning fuse",
        rules=(
            Rule(_b(r"splash"), "water splashing"),
            Rule(_b(r"(?:big)?explosion"), "explosion", "{stem}"),
            Rule(_b(r"fuse"), "hissing"),
        ),
    ),
    "solarwolf": PackageSpec(
        note="arcade game: a whip and an explosion; its blips and jingles skipped",
        rules=(Rule(_b(r"whip"), "whip crack"), Rule(_b(r"explode"), "explosion")),
    ),
    "triplea": PackageSpec(
        note="war strategy game: recordings named for what they hold (flybys, machine guns, hawks, horses, "
             "coins); anthems, music, lasers and scenes of several sounds skipped",
        rules=(
            Rule(r"hawk_(?:scream|call)\.mp3$", "bird call"),
            Rule(r"sword_fighting[a-z_]*\.mp3$", "sword clash", "sword_fighting"),
            Rule(r"machine_gun_fire\.mp3$", "machine gun"),
            Rule(r"musket_volley\.mp3$", "gunshot"),
            Rule(r"(?:echoing_)?distant_explosions\.mp3$", "explosion", "distant_explosions"),
            Rule(r"air_(?:close_)?flyby\.mp3$", "airplane"),
            Rule(r"air_raid_alarm\.mp3$", "siren"),
            Rule(r"sub_diving_alarm\.mp3$", "alarm"),
            Rule(r"_coins\.mp3$", "coins"),
            Rule(r"horses_galloping\.mp3$", "horse"),
            Rule(r"type_?writer(?:_short)?\.mp3$", "typewriter", "typewriter"),
            Rule(r"people_cheering_with_bells\.mp3$", "crowd cheering"),
            Rule(r"sawing_wood\.mp3$", "sawing"),
            Rule(r"door_bell\.mp3$", "bell"),
            Rule(r"/door_open\.mp3$", "door"),
            Rule(r"motor_engine_noise\.mp3$", "engine running"),
            Rule(r"chat_slap_\d+\.mp3$", "slap", "chat_slap"),
            Rule(r"industrial_noise\.mp3$", "machinery"),
        ),
    ),
    "berusky2-data": PackageSpec(
        note="puzzle game (Czech file names): frogs, gulls, birds, footsteps on many grounds, bubbles, doors, "
             "thunder, wind",
        rules=(
            Rule(r"/music/", None),
            Rule(_b(r"frog"), "frog croaking"),
            Rule(_b(r"racek"), "bird call"),
            Rule(_b(r"ptak"), "bird song"),
            Rule(_b(r"steps(?:and|grass|now|steel|stone|wood)|wstep"), "footsteps", "{stem}"),
            Rule(_b(r"bubliny|bubl"), "bubbling", "{stem}"),
            Rule(_b(r"zvon"), "bell"),
            Rule(_b(r"dvere(?:otevrit|zavrit)"), "door", "dvere"),
            Rule(_b(r"hrom"), "thunder"),
            Rule(_b(r"vitr\d*"), "wind", "vitr"),
            Rule(_b(r"exploze"), "explosion"),
            Rule(_b(r"les"), "outdoor nature ambience"),
        ),
    ),
    "mazeofgalious-data": PackageSpec(
        note="platform game: an owl, a bell, doors; its monsters' sounds skipped",
        rules=(Rule(_b(r"owl"), "bird call"), Rule(_b(r"bell"), "bell"), Rule(_b(r"doors?"), "door", "door")),
    ),
    "trackballs-data": PackageSpec(
        note="marble game: two laughs",
        rules=(Rule(_b(r"crazylaugh|evillaugh"), "laughter", "{stem}"),),
    ),
    "asterisk-core-sounds-en-wav": _asterisk("en_us_f_allison", "asterisk Allison", "female", "a woman (Allison Smith)"),
    "asterisk-core-sounds-fr-wav": _asterisk("fr_ca_f_june", "asterisk June", "female", "a woman (June), in French"),
    "asterisk-core-sounds-it-wav": _asterisk("it_it_m_carlo", "asterisk Carlo", "male", "a man (Carlo), in Italian"),
    "asterisk-core-sounds-ru-wav": _asterisk("ru_ru_f_ivrvoiceru", "asterisk IvrvoiceRU", "female",
                                             "a woman, in Russian"),
    "hydrogen-drumkits": PackageSpec(note="drum machine kits: drum and cymbal one-shots", rules=_DRUM_RULES),
    "hydrogen-data": PackageSpec(note="drum machine default kits", rules=_DRUM_RULES),
    "hydrogen-drumkits-effects": PackageSpec(
        note="guitar strums (one folder)",
        rules=(Rule(r"guitarstrums/([a-g](?:sharp|flat|#|b)?(?:major|minor|maj|min|m)?\d*)[_.]", "guitar", "{m}"),),
    ),
    "0ad-data": PackageSpec(
        archives=("usr/share/games/0ad/mods/public/public.zip",),
        note="ancient-warfare RTS (sounds inside public.zip): animals, weather/water ambience, footsteps, "
             "arrows, swords, crafts; civilian voice lines (Greek/Latin/Persian phrases) and UI skipped",
        rules=_SKIP_COMMON + (
            Rule(_0AD + r"voice/global/civ_dog_bark\.", "dog barking"),
            Rule(_0AD + r"(?:voice|interface)/", None),
            # animals (sound groups in actor/fauna/*.xml name the animal)
            Rule(_0AD + r"actor/fauna/animal/cattle_\d+\.", "cow mooing"),
            Rule(_0AD + r"actor/fauna/animal/chicken_\d+\.", "chicken clucking"),
            Rule(_0AD + r"actor/fauna/animal/elephant_", "elephant", "elephant"),
            Rule(_0AD + r"actor/fauna/animal/lion_", "lion roaring", "lion"),
            Rule(_0AD + r"actor/fauna/animal/pig_", "pig oinking", "pig"),
            Rule(_0AD + r"actor/fauna/animal/sheep_\d+\.", "sheep bleating"),
            Rule(_0AD + r"actor/fauna/death/goat_\d+\.", "goat bleating"),
            Rule(_0AD + r"actor/fauna/animal/(?:flamingo_\d+|peacock_call_\d+)\.", "bird call"),
            Rule(_0AD + r"actor/(?:fauna|mounted)/death/death_horse_\d+\.|actor/fauna/animal/horse_death\d",
                 "horse", "death_horse"),  # horse_death1/2 are byte-identical to death_horse_12/13
            Rule(_0AD + r"actor/fauna/animal/horse_", "horse"),
            Rule(_0AD + r"actor/mounted/movement/mstep\d+\.", "horse", "mstep"),  # hooves of a mounted unit
            # people
            Rule(_0AD + r"actor/human/death/(?:(?:fe)?male_death|death)_\d+\.", "groaning"),  # death cries
            Rule(_0AD + r"actor/human/movement/(?:footsteps/|hstep_)", "footsteps"),
            Rule(_0AD + r"actor/singlesteps/fs_[a-z]+_?\d+\.", "footsteps"),
            # ambience
            Rule(_0AD + r"ambient/dayscape/day_(?:temperate|tropical)", "outdoor nature ambience"),
            Rule(_0AD + r"ambient/water/river_", "water flowing"),
            Rule(_0AD + r"ambient/water/waterfall_", "waterfall"),
            Rule(_0AD + r"ambient/water/wave(?:crash|rocky)?_", "ocean waves"),
            Rule(_0AD + r"ambient/weather/rain_", "rain"),
            Rule(_0AD + r"ambient/weather/thunder_", "thunder"),
            Rule(_0AD + r"ambient/weather/windleaves_", "rustling leaves"),
            Rule(_0AD + r"ambient/weather/(?:wind|windgust|windstorm|snowstorm)_", "wind"),
            Rule(_0AD + r"attack/fire/(?:c|sp)_\d+\.", "fire crackling"),  # crackling_fire.xml, spreading_fire.xml
            # weapons
            Rule(_0AD + r"attack/impact/arrow_|attack/weapon/(?:arrowfly|bow_attack)_", "arrow"),
            Rule(_0AD + r"attack/impact/shield_metal_", "metal clanging"),
            Rule(_0AD + r"attack/impact/shield_wood_", "wood impact"),
            Rule(_0AD + r"attack/weapon/musket_", "gunshot"),
            Rule(_0AD + r"attack/weapon/swordhit_(\d+)", "sword clash", "swordhit{m}"),  # 10, 10a, 10b: one take
            # work
            Rule(_0AD + r"resource/construction/con_saw_", "sawing"),
            Rule(_0AD + r"resource/lumbering/lumber_tree_\d+\.", "chopping wood"),
            Rule(_0AD + r"resource/foraging/leaves_", "rustling leaves"),
        ),
    ),
    "7kaa-data": PackageSpec(
        note="Seven Kingdoms: the loose weather WAVs only (unit sounds are inside A_WAVE*.RES, unsupported)",
        rules=(
            Rule(r"7kaa/sound/wind\.wav$", "wind"),
            Rule(r"7kaa/sound/rain\.wav$", "rain"),
            Rule(r"7kaa/sound/thunder\.wav$", "thunder"),
            Rule(r"7kaa/sound/fire\.wav$", "fire crackling"),
        ),
    ),
    "freecol": PackageSpec(
        note="colonisation strategy: cannon fire; anthems, music and UI events skipped",
        rules=_SKIP_COMMON + (
            Rule(r"resources/sound/attack/(?:artillery|bombard|naval)\.", "artillery fire"),
        ),
    ),
    "unknown-horizons": PackageSpec(
        note="settlers-like: building ambience loops (woodcutter, smith, pasture, ship's bell); music, UI, voices skipped",
        rules=_SKIP_COMMON + (
            Rule(r"audio/sounds/lumberjack(?:_long)?\.", "chopping wood"),
            Rule(r"audio/sounds/(?:smith|stonemason)\.", "hammering"),  # weaponsmith/toolmaker anvil, stonemason
            Rule(r"audio/sounds/sheepfield\.", "sheep bleating"),  # pasture
            Rule(r"audio/sounds/ships_bell\.", "bell"),
        ),
    ),
    "naev-data": PackageSpec(
        note="space trading/combat: explosions only (weapons, engines and UI are sci-fi)",
        rules=_SKIP_COMMON + (
            Rule(r"snd/sounds/(?:explosion\d|medexp\d|lrgexp\d|bansheeexp)\.", "explosion"),
        ),
    ),
    "fillets-ng-data": PackageSpec(
        note="underwater puzzle game (Czech names; level scripts checked): keyboard, phones, clock, bubbles, "
             "impacts; dialogue and cartoon creature voices skipped",
        rules=_SKIP_COMMON + (
            Rule(r"sound/linux/en/(key|enter|space)\d+\.", "keyboard typing", "{m}"),  # the 'linux' terminal level
            Rule(r"sound/bathyscaph/en/bat-t-phone\d\.", "telephone ringing"),
            Rule(r"sound/dump/en/sm-x-tiktak\.", "clock ticking"),  # the alarm clock ticking
            Rule(r"sound/engine/en/mot-x-motor\.", "engine running"),
            Rule(r"sound/corridor/en/ch-x-click\d\.", "click"),
            Rule(r"sound/share/sp-bubles_\d+\.", "bubbling"),
            Rule(r"sound/share/sp-impact_(?:light|heavy)_\d+\.", "thud"),
            Rule(r"sound/steel/en/steel-x-redalert\.", "alarm"),
            Rule(r"sound/aztec/en/bot-x-smich\.", "laughter"),  # 'smich' = laughter
            Rule(r"sound/cancan/en/kan-klavir-music\.", "piano"),  # 'klavir' = piano (cancan on piano)
        ),
    ),
    "supertuxkart-data": PackageSpec(
        note="kart racer: engines, horn, tyre skid, crashes, weather, animals; every sfx credited in copyright",
        rules=_SKIP_COMMON + (
            Rule(_b(r"skid"), "tire squeal", "skid"),  # opengameart "car tire squeal skid loop"
            Rule(_b(r"car_accel|car_revup"), "engine revving"),
            Rule(_b(r"engine_large|engine_small"), "engine running"),
            Rule(_b(r"horn"), "car horn"),  # soundbible "Horn Honk"
            Rule(_b(r"crash"), "crash"),
            Rule(_b(r"steamlocomotive"), "train", "steamlocomotive"),
            Rule(_b(r"airplane_jetengine"), "airplane"),  # airliner flyover, Wikimedia Commons
            Rule(_b(r"wilhelmscream"), "scream"),
            Rule(_b(r"ugh"), "groaning"),
            Rule(_b(r"gp_end"), "applause"),  # soundbible "10 Second Applause"
            Rule(_b(r"lenautile_restaurant"), "crowd chatter"),  # restaurant ambience
            Rule(_b(r"exotic-birds"), "bird song", "{stem}"),
            Rule(r"tracks/black_forest/cow\.", "cow mooing"),
            Rule(r"tracks/scotland/sheep\.", "sheep bleating"),
            Rule(_b(r"clock"), "clock ticking"),  # pdsounds "clock ticking"
            Rule(_b(r"explosion"), "explosion"),
            Rule(_b(r"fireworks_show"), "fireworks"),
            Rule(_b(r"gnu_flute"), "flute"),
            Rule(_b(r"metal_clang"), "metal clanging"),
            Rule(_b(r"rain"), "rain"),
            Rule(_b(r"thunder"), "thunder"),  # soundbible "Lightning Strike Summer Storm"
            Rule(_b(r"river_loop"), "water flowing"),
            Rule(_b(r"waterfall_loop"), "waterfall"),
            Rule(_b(r"splash"), "water splashing"),
            Rule(_b(r"swatter"), "whip crack"),  # soundbible "Whip Crack"
            Rule(_b(r"machine_sound"), "machinery"),
        ),
    ),
    "torcs-data": PackageSpec(
        note="racing simulator: per-car engine samples (named in cars/*.xml), crashes, tyre skids",
        rules=_SKIP_COMMON + (
            Rule(r"data/sound/evo7_engine(?:_f)?\.wav$", "engine running", "evo7_engine"),
            Rule(rf"data/sound/({_TORCS_ENGINES})\.wav$", "engine running", "{m}"),
            Rule(r"data/sound/crash\d*\.wav$", "crash", "crash"),
            Rule(r"data/sound/(?:skid|skid_tyres)\.wav$", "tire squeal", "skid"),
        ),
    ),
    "trigger-rally-data": PackageSpec(
        archives=("usr/share/games/trigger-rally/data.zip",),
        note="rally game (sounds inside data.zip): engine loop, wind; co-driver pace notes (speech) skipped",
        rules=(
            Rule(r"!sounds/codriver/", None),
            Rule(r"!sounds/engine\.wav$", "engine running"),
            Rule(r"!sounds/wind\.wav$", "wind"),
        ),
    ),
    "warmux-data": PackageSpec(
        note="artillery game (Wormux): explosions, guns, pain voices; spoken taunts skipped",
        rules=_SKIP_COMMON + (
            Rule(r"weapons/(?:explosion\d*|dynamite_exp|riot_bomb_exp)\.", "explosion", "{stem}"),
            Rule(r"weapons/(?:shotgun|gun)\.", "gunshot"),
            Rule(r"weapons/m16\.", "machine gun"),
            Rule(r"weapons/aircraft_flying\.", "airplane"),
            Rule(r"weapons/airhammer_used\.", "jackhammer"),
            Rule(r"weapons/anvil_collision\.", "metal clanging"),
            Rule(r"weapons/slap\.", "slap"),
            Rule(r"weapons/dynamite_fuze\.", "hissing"),
            Rule(r"misc/step\.", "footsteps"),
            Rule(r"misc/box_hitting_ground\.", "thud"),
            Rule(r"voices/injured_(?:light|medium|high)\d*\.", "groaning", "{stem}"),
        ),
    ),
    "cube2-data": PackageSpec(
        note="Sauerbraten FPS: guns, pain grunts, chainsaw, weather, water; credits per sound folder",
        rules=_SKIP_COMMON + (
            Rule(r"sounds/0ad/thunder", "thunder"),
            Rule(r"sounds/0ad/windgust", "wind"),
            Rule(r"sounds/0ad/fs_sand", "footsteps"),
            Rule(r"sounds/aard/pain\d*\.", "groaning", "aard:pain"),
            Rule(r"sounds/aard/grunt\d*\.", "grunting", "aard:grunt"),
            Rule(r"sounds/audioaugust/chainsaw/(?:attack|idle)\.", "chainsaw", "chainsaw:{stem}"),
            Rule(r"sounds/olpc/michaelbierylo/sfx_doorslam\.", "door"),
            Rule(r"sounds/olpc/adamkeshen/kik\.", "drum"),
            Rule(r"sounds/q009/minigun\d*\.", "machine gun", "q009:minigun"),
            Rule(r"sounds/q009/(pistol|rifle|shotgun)\d*\.", "gunshot", "q009:{m}"),
            Rule(r"sounds/(?:q009/explosion|sfx/explode)\.", "explosion"),
            Rule(r"sounds/sfx/burning\.", "fire crackling"),
            Rule(r"sounds/yo_frankie/amb_waterdrip", "dripping"),
            Rule(r"sounds/yo_frankie/watersplash", "water splashing"),
        ),
    ),
    "supertux-data": PackageSpec(
        note="platformer: weather, fire, fireworks, water, door, bells; cartoon effects and speech skipped",
        rules=_SKIP_COMMON + (
            Rule(r"/speech/", None),
            Rule(r"sounds/explosion\.", "explosion"),
            Rule(r"sounds/fire\.ogg$", "fire crackling"),
            Rule(r"sounds/firecracker\.", "firecracker"),
            Rule(r"sounds/fireworks\.", "fireworks"),
            Rule(r"sounds/rain\.", "rain"),
            Rule(r"sounds/(?:thunder|lightning)\.", "thunder", "{stem}"),
            Rule(r"sounds/waterfall\.", "waterfall"),
            Rule(r"sounds/splash\.", "water splashing", "splash"),
            Rule(r"sounds/door\.", "door"),
            Rule(r"sounds/savebell(?:2|_low)\.", "bell", "savebell"),
            Rule(r"sounds/thud\.", "thud"),
        ),
    ),
    "freeciv-data": PackageSpec(
        note="strategy game: unit fight/move sounds (soundspec names them; warzone-derived)",
        rules=_SKIP_COMMON + (
            Rule(r"stdsounds/(?:lrgcan|medcan|mortar)\.", "artillery fire"),
            Rule(r"stdsounds/(?:lrgexpl|smlexpl)\.", "explosion"),
            Rule(r"stdsounds/(?:mgbar\d|mgheavy)\.", "machine gun"),
            Rule(r"stdsounds/splash\.", "water splashing"),
            Rule(r"stdsounds/tread\.", "engine running"),
            Rule(r"stdsounds/foot\d*\.", "footsteps"),
        ),
    ),
    "frozen-bubble-data": PackageSpec(
        note="puzzle game: applause, snoring, typewriter; game blips skipped",
        rules=_SKIP_COMMON + (
            Rule(r"snd/applause\.", "applause"),
            Rule(r"snd/snore\.", "snoring"),
            Rule(r"snd/typewriter\.", "typewriter"),
        ),
    ),
    "pingus-data": PackageSpec(
        note="lemmings-like: one water splash; voice lines and blips skipped",
        rules=_SKIP_COMMON + (Rule(r"sounds/splash\.wav$", "water splashing"),),
    ),
    "lincity-ng-data": PackageSpec(
        note="city builder: building ambiences named by building (blacksmith, stadium crowd, trains, traffic)",
        rules=_SKIP_COMMON + (
            Rule(_b(r"blacksmith"), "hammering"),
            Rule(_b(r"sportscroud"), "crowd cheering"),
            Rule(_b(r"railtrain"), "train"),
            Rule(_b(r"trafic(?:high|low)"), "traffic noise", "trafic"),
            Rule(_b(r"fire"), "fire crackling"),
            Rule(_b(r"rocketexplosion"), "explosion"),
        ),
    ),
    "enigma-data": PackageSpec(
        note="puzzle game: glass shattering, explosions, drip, splash (sound-defaults.lua says what uses each)",
        rules=_SKIP_COMMON + (
            Rule(r"soundsets/enigma/shatter\.", "glass breaking"),  # st_window, it_bottle breaking
            Rule(r"soundsets/enigma/explosion[12]\.", "explosion", "explosion"),  # bombs, dynamite
            Rule(r"soundsets/enigma/drip\.", "dripping"),
            Rule(r"soundsets/enigma/dropinwater\.", "water splashing"),
            Rule(r"soundsets/enigma/st-thud\.", "thud"),
        ),
    ),
    "redeclipse-data": PackageSpec(
        note="arena FPS: freesound-derived ambiences (credited in ambience/readme.txt), footsteps, guns, pain",
        rules=_SKIP_COMMON + (
            Rule(r"sounds/announcer/|sounds/interface/", None),
            Rule(r"ambience/(?:wind|blowwind|hollowwind|wastewind|morph/wind\d*|morph/stormwind)\.", "wind", "{stem}"),
            Rule(r"ambience/cavedrip\.", "dripping"),
            Rule(r"ambience/(?:creek|river|water)\.", "water flowing", "{stem}"),
            Rule(r"ambience/waterfall", "waterfall", "waterfall"),
            Rule(r"ambience/cycadas\.", "insect buzzing"),
            Rule(r"ambience/nightcrickets\.", "crickets chirping"),
            Rule(r"ambience/distant_cars\.", "traffic noise"),
            Rule(r"ambience/fire\.", "fire crackling"),
            Rule(r"ambience/machine\d*\.", "machinery", "ambience:machine"),
            Rule(r"ambience/morph/(?:storm)?rain\.", "rain", "morph:{stem}"),
            Rule(r"ambience/morph/stormbolts\.", "thunder"),
            Rule(r"player/(?:footstep|concstep)\d*\.", "footsteps", "{stem}"),
            Rule(r"player/swimstep\d*\.", "water splashing", "swimstep"),
            Rule(r"player/pain\d*\.", "groaning", "player:pain"),
            Rule(r"voice/argh\d*\.", "groaning", "voice:argh"),
            Rule(r"voice/haha\d*\.", "laughter", "voice:haha"),
            Rule(r"sfx/(?:splashin|splashout|splosh)\d*\.", "water splashing", "{stem}"),
            Rule(r"sfx/(?:burning|burnfire)\.", "fire crackling", "{stem}"),
            Rule(r"sfx/extinguish\d*\.", "hissing", "extinguish"),
            Rule(r"sfx/alarm\.", "alarm"),
            Rule(r"weapons/(pistol|shotgun)/primary\d*\.", "gunshot", "{m}:primary"),
            Rule(r"weapons/smg/primary\d*\.", "machine gun", "smg:primary"),
            Rule(r"weapons/(?:explode\d*|mine/explode\d*)\.", "explosion", "{dir}:explode"),
            Rule(r"weapons/thud\d*\.", "thud", "thud"),
        ),
    ),
    # the 2026-12-03 survey: real recordings of vehicles, weather, crowds and voices
    "flightgear-data-base": PackageSpec(
        note="flight simulator: aircraft and helicopter engines, weather, cockpit foley; spoken callouts skipped",
        rules=(
            Rule(r"/sounds/(?:mk-viii|tcas)/", None),
            Rule(_b(r"rain|rain-windshield"), "rain", "rain"),
            Rule(_b(r"thunder"), "thunder", "thunder"),
            Rule(_b(r"wind|wind-8khz"), "wind", "wind"),
            Rule(_b(r"helicopter|rotor|rotor-2blade|rotor_stall|blade_vortex"), "helicopter"),
            Rule(_b(r"jet|turbine_loop|turbojet_fan|turbine_start|turbine_shutdown"), "jet engine"),
            Rule(_b(r"engine-start|engstart|starter_start|cranking|engine-crank|p51d_starter|p51d_startup"),
                 "engine starting"),
            Rule(_b(r"engine-prop|prop|p51d_rpm|r-1535slow|turboprop|engine-idle|engine"), "airplane"),
            Rule(_b(r"gatling"), "machine gun"),
            Rule(_b(r"crash"), "crash", "{dir2}:crash"),
            Rule(_b(r"squeal|tires-screech-asphalt|tires-screech-gravel-oneshot"), "tire squeal"),
            Rule(_b(r"door_close|door-closing|door-opening"), "door"),
            Rule(_b(r"click|double-click|flaps-click"), "click", "{dir2}:click"),
        ),
    ),
    "simutrans-pak64": PackageSpec(
        note="transport simulation: vehicles, horses, gulls, machines; climate ambiences skipped",
        rules=(
            Rule(_b(r"bus|truck|diesel"), "engine running"),
            Rule(_b(r"planelow|comet-jet"), "airplane"),
            Rule(_b(r"steam"), "train"),
            Rule(_b(r"crossing"), "bell"),
            Rule(_b(r"explosion"), "explosion"),
            Rule(_b(r"forest"), "outdoor nature ambience"),
            Rule(_b(r"horse"), "horse"),
            Rule(_b(r"jackhammer"), "jackhammer"),
            Rule(_b(r"seagulls"), "bird call"),
            Rule(_b(r"buzzsaw"), "sawing"),
        ),
    ),
    "tuxfootball": PackageSpec(
        note="football game: crowd cheering and the referee's whistle",
        rules=(
            Rule(_b(r"crowdcheer"), "crowd cheering"),
            Rule(_b(r"refwhistle(?:end|long|short|twice)"), "whistle", "whistle"),
        ),
    ),
    "flare-game": PackageSpec(
        note="fantasy RPG: ambience loops, footsteps, doors; merchants' voice lines as speech with the actor's gender",
        speakers=((r"/npcs/male_merchant", "flare male merchant", "male"),
                  (r"/npcs/female_merchant", "flare female merchant", "female")),
        rules=_SKIP_COMMON + (
            Rule(r"/npcs/(?:male|female)_merchant", "speech", "{dir}:{stem}"),
            Rule(_b(r"rain"), "rain"),
            Rule(_b(r"river_loop"), "water flowing"),
            Rule(_b(r"bird_twitter_loop"), "bird song"),
            Rule(_b(r"forest_owl_loop|raven_loop"), "bird call"),
            Rule(_b(r"open_fire|open_fire_loop"), "fire crackling", "fire"),
            Rule(_b(r"wind_loop|cave_wind_loop"), "wind"),
            Rule(_b(r"cave_droplets_loop"), "dripping"),
            Rule(_b(r"anvil_loop"), "metal clanging"),
            Rule(_b(r"door_open"), "door"),
            Rule(_b(r"stairs"), "footsteps"),
            Rule(r"/steps/step_([a-z]+)\d*\.ogg$", "footsteps", "steps:{m}"),
            Rule(_b(r"inventory_coins"), "coins"),
        ),
    ),
    "freedroidrpg-data": PackageSpec(
        note="sci-fi RPG: foley (glass, camera, steps, swings); robot and Tux voices skipped",
        rules=(
            Rule(_b(r"glass_break"), "glass breaking"),
            Rule(_b(r"cameratakespicture"), "camera shutter"),
            Rule(_b(r"tux_footstep"), "footsteps"),
            Rule(_b(r"swing_then_nohit"), "whoosh"),
            Rule(_b(r"drop_sword_sound"), "metal clanging"),
            Rule(_b(r"blast_sound"), "explosion"),
        ),
    ),
    "kajongg": PackageSpec(
        note="mahjongg: tile names and calls spoken by four English and four German voices, two of each gender",
        speakers=tuple((rf"/voices/{lang}{voice}/", f"kajongg {lang or 'en/'}{voice}", voice.rstrip("12"))
                       for lang in ("", "de/") for voice in ("female1", "female2", "male1", "male2")),
        rules=(Rule(r"/voices/((?:de/)?(?:fe)?male\d)/[^/]+\.ogg$", "speech", "{m}"),),
    ),
    "searchandrescue-data": PackageSpec(
        note="rescue flight simulator: helicopter and jet engines, thunder, splashes, doors, landings",
        rules=(
            Rule(r"/hh6[05]/engine_", "helicopter", "{dir}"),
            Rule(r"/helicopter_engine_", "helicopter", "helicopter_engine"),
            Rule(r"/jet_engine_", "jet engine", "jet_engine"),
            Rule(_b(r"thunder_(?:faint|loud|moderate)"), "thunder", "thunder"),
            Rule(_b(r"splash_(?:human|aircraft)"), "water splashing"),
            Rule(_b(r"door_open|door_close"), "door", "door"),
            Rule(_b(r"crash_(?:ground|obstruction)"), "crash"),
            Rule(_b(r"thud_(?:light|medium|heavy)"), "thud", "thud"),
            Rule(_b(r"land_wheel_skid|land_wheel_skid_inside|helicopter_wheel_screech"), "tire squeal", "skid"),
        ),
    ),
    "micropolis-data": PackageSpec(
        note="city simulation (SimCity): horns, sirens, traffic, ducks; UI and spoken words skipped",
        rules=(
            Rule(_b(r"siren|police"), "siren"),
            Rule(_b(r"honkhonk-(?:hi|high|low|med)"), "car horn", "honkhonk"),
            Rule(_b(r"heavytraffic"), "traffic noise"),
            Rule(_b(r"explosion-(?:hi|high|low)"), "explosion", "explosion"),
            Rule(_b(r"quack|quackquack"), "duck quacking", "quack"),
            Rule(_b(r"cuckoo"), "bird call"),
            Rule(_b(r"rail"), "train"),
            Rule(_b(r"skid"), "tire squeal"),
            Rule(_b(r"stadium"), "crowd cheering"),
        ),
    ),
    "etw-data": PackageSpec(
        note="Eat The Whistle (football): stadium crowds, referee whistles, a dog",
        rules=_SKIP_COMMON + (
            Rule(r"/(?:crowd/crowd\d+|snd/crowd)\.wav$", "crowd cheering", "crowd"),
            Rule(_b(r"fischiocorto|fischiolungo"), "whistle", "whistle"),
            Rule(r"/snd/dog\.wav$", "dog barking"),
            Rule(r"/snd/crash\.wav$", "crash"),
        ),
    ),
    "freedink-data": PackageSpec(
        note="Dink Smallwood RPG: birds, swords, screams, steps",
        rules=(
            Rule(_b(r"bird"), "bird call"),
            Rule(_b(r"sword"), "sword clash"),
            Rule(_b(r"swing"), "whoosh"),
            Rule(_b(r"wscream"), "scream"),
            Rule(_b(r"grunt"), "grunting", "grunt"),
            Rule(_b(r"arrow|bow"), "arrow"),
            Rule(_b(r"stairs"), "footsteps"),
        ),
    ),
    "plee-the-bear-data": PackageSpec(
        note="platformer: rain, snoring, a slap, splashes, a frog",
        rules=(
            Rule(r"/weather/rain\.ogg$", "rain"),
            Rule(r"/plee/snore\.ogg$", "snoring"),
            Rule(r"/plee/slap\.ogg$", "slap"),
            Rule(r"/sound/splash\.ogg$", "water splashing"),
            Rule(r"/frog/croak-(?:idle|jump)\.ogg$", "frog croaking", "croak"),
        ),
    ),
    "netpanzer-data": PackageSpec(
        note="tank battles: explosions, machine guns, screams, idling engines; unit voice lines skipped",
        rules=(
            Rule(_b(r"expl"), "explosion", "expl"),
            Rule(_b(r"battle_mg"), "machine gun"),
            Rule(_b(r"scream|scream_ohgod"), "scream"),
            Rule(_b(r"tankidle|hevidle"), "engine running"),
        ),
    ),
    "gnome-audio": PackageSpec(
        note="old GNOME desktop sounds: one telephone",
        rules=(Rule(_b(r"phone"), "telephone ringing"),),
    ),
}

# Packages looked at and left out, with the reason (reported in the manifest).
EXCLUDED_PACKAGES: dict[str, str] = {
    "colobot-common-sounds": "files are numbered (sound001.wav ...), names give no label",
    "xblast-tnt-sounds": "raw PCM with game-event names only",
    "freedoom": "effects inside a Doom WAD (lumps in the DMX format), sci-fi monsters and weapons",
    "asterisk-moh-opsound-wav": "five long hold-music pieces with no labels beyond 'music'",
    "junior-sound": "metapackage, no audio",
    "minetest-mod-throwing-arrows": "only sci-fi arrow effects",
    "openclonk-data": "sound effects are inside Sound.ocg, a c4group container (not zip); only music tracks are loose",
    "lordsawar-data": "only seven music tracks, no sound effects",
    "marble-data": "no audio files (map data and docs)",
    "extremetuxracer-data": "only surface-slide loops (snow/ice/grass), pickups and a tree hit: no clear AudioSet class",
    "xmoto-data": "effects (motorbike engine_00..12, glass, crash) are packed in xmoto.bin, a custom XBI3 container",
    "neverball-data": "no audio (the sounds ship in neverball-common)",
    "teeworlds-data": "all sounds are WavPack (.wv), which the reader does not decode",
    "kobodeluxe-data": "no recordings: sounds are Audiality synthesis scripts (.agw)",
    "btanks-data": "kept for evaluation (engine/eval/sets.py EVENT_PACKAGES)",
    "bzflag-data": "synthetic game tones but for two explosions",
    "neverball-common": "synthetic game tones and a spoken countdown",
    "boswars-data": "unit voice lines and a spoken tutorial, few effects",
    "klettres-data": "spoken letters and syllables in 25 languages, speakers' gender unknown",
    "lmms-common": "synthesizer and drum samples (the drum kits of hydrogen cover them)",
    "asterisk-core-sounds-es-wav": "the same woman (Allison) as asterisk-core-sounds-en-wav, in Spanish",
    "workrave-data": "reminder chimes",
    "atanks-data": "files are numbered (00.wav ...), names give no label",
    "crrcsim-data": "model aircraft motor loops and spoken contest prompts",
    "planetblupi-common": "files are numbered (sound000.wav ...), names give no label",
    "bucklespring-data": "the key clicks of one keyboard, one per key (171 files of one source)",
    "emacspeak": "synthetic auditory icons",
}

# Local folders (--source-dir) use keyword rules on the file name.
GENERIC_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("bark", "dog barking"), ("dog", "dog barking"), ("growl", "growling"), ("howl", "wolf howling"),
    ("wolf", "wolf howling"), ("neigh", "horse"), ("horse", "horse"), ("moo", "cow mooing"),
    ("cow", "cow mooing"), ("oink", "pig oinking"), ("pig", "pig oinking"), ("sheep", "sheep bleating"),
    ("chicken", "chicken clucking"), ("rooster", "rooster crowing"), ("birdsong", "bird song"),
    ("bird", "bird song"), ("cricket", "crickets chirping"), ("frog", "frog croaking"), ("bee", "bee buzzing"),
    ("rain", "rain"), ("thunder", "thunder"), ("wind", "wind"), ("fire", "fire crackling"),
    ("splash", "water splashing"), ("water", "water flowing"), ("waves", "ocean waves"), ("bubbl", "bubbling"),
    ("hiss", "hissing"), ("horn", "car horn"), ("siren", "siren"), ("helicopter", "helicopter"),
    ("airplane", "airplane"), ("engine", "engine running"), ("machinegun", "machine gun"),
    ("gunshot", "gunshot"), ("explosion", "explosion"), ("sword", "sword clash"), ("whoosh", "whoosh"),
    ("thud", "thud"), ("clang", "metal clanging"), ("glass", "glass breaking"), ("door", "door"),
    ("toilet", "toilet flush"), ("shutter", "camera shutter"), ("phone", "telephone ringing"),
    ("alarm", "alarm"), ("bell", "bell"), ("beep", "beep"), ("click", "click"), ("hammer", "hammering"),
    ("saw", "sawing"), ("chop", "chopping wood"), ("machine", "machinery"), ("laugh", "laughter"),
    ("cough", "coughing"), ("scream", "scream"), ("groan", "groaning"), ("cheer", "crowd cheering"),
    ("footstep", "footsteps"), ("step", "footsteps"), ("drum", "drum"), ("snare", "drum"), ("kick", "drum"),
    ("cymbal", "cymbal"), ("hihat", "cymbal"), ("guitar", "guitar"),
)

GENERIC_SPEC = PackageSpec(
    note="local folder: file-name keywords",
    rules=tuple(Rule(rf"(?:^|/)[^/]*(?<![a-z]){re.escape(k)}[^/]*$", label) for k, label in GENERIC_KEYWORDS),
)

_VARIANT = re.compile(r"[-_ .]?\d+[a-z]?$")


@dataclass(frozen=True)
class Match:
    label: str
    group: str


def variant_stem(path: str) -> str:
    """File name without extension and without one trailing variant number."""
    base = path.rsplit("/", 1)[-1].rsplit("!", 1)[-1]
    stem = base.rsplit(".", 1)[0].lower()
    return _VARIANT.sub("", stem) or stem


def match(spec: PackageSpec, path: str) -> Match | None:
    """Label and source group of `path` under `spec`, or None to skip."""
    low = path.lower()
    for rule in spec.rules:
        found = re.search(rule.pattern, low)
        if found is None:
            continue
        if rule.label is None:
            return None
        parts = re.split(r"[/!]", low)
        fields = {
            "stem": variant_stem(low),
            "dir": parts[-2] if len(parts) > 1 else "",
            "dir2": parts[-3] if len(parts) > 2 else "",
            "m": (found.group(1) if found.groups() and found.group(1) else "").lower(),
            "label": rule.label,
        }
        return Match(rule.label, rule.group.format(**fields))
    return None


@dataclass
class SkipCounts:
    """Why files were not used, per package."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, package: str, reason: str, n: int = 1) -> None:
        bucket = self.counts.setdefault(package, {})
        bucket[reason] = bucket.get(reason, 0) + n
